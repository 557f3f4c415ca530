/* libFuzzer target: pgSMB's built-in extraction (pgsmb_profile_extract: the tar reader, our checks,
 * pgsmb-userwork-unpack.c's writer and libarchive's disk writer for ACL/xattr entries) of a hostile archive
 * into a temporary directory. The input is the archive stream (tar, or zstd-compressed tar).
 *
 * Nothing may land outside the target: the sandbox around it (a working directory and a canary
 * directory the seeds aim symlinks and hardlinks at) is checked unchanged after every input, and
 * everything inside must keep the promises of pgsmb-archive.h (no device, FIFO or socket, no
 * setuid/setgid/sticky bit, every symlink resolving inside, sizes within the limits). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fuzz-common.h"
#include "pgsmb-archive.h"
#include "util.h"

#define MAX_TOTAL (4u << 20)
#define MAX_ENTRY (1u << 20)
#define MAX_ENTRIES 256u

static char sandbox[PATH_MAX], target[PATH_MAX + 16];
static struct stat canary_st, cwd_st;
static int in_fd = -1, cwd_fd = -1, home_fd = -1;

static void pathf(char *buf, const char *fmt, const char *a, const char *b) {
        FUZZ_ASSERT(snprintf(buf, PATH_MAX, fmt, a, b) < PATH_MAX);
}

static void remove_sandbox(void) { (void)fuzz_remove_tree(sandbox); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *tmp = getenv("TMPDIR") ?: "/tmp";
        char p[PATH_MAX];
        int fd;

        FUZZ_ASSERT(snprintf(sandbox, sizeof sandbox, "%s/pgina-fuzz-unpack.XXXXXX", tmp) <
                    (int)sizeof sandbox);
        FUZZ_ASSERT(mkdtemp(sandbox));
        atexit(remove_sandbox);
        pathf(p, "%s/%s", sandbox, "outside");
        FUZZ_ASSERT(mkdir(p, 0755) == 0);
        pathf(p, "%s/%s", sandbox, "outside/dir");
        FUZZ_ASSERT(mkdir(p, 0755) == 0);
        pathf(p, "%s/%s", sandbox, "outside/canary");
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        FUZZ_ASSERT(fd >= 0);
        fuzz_write_all(fd, (const uint8_t *)"canary\n", 7);
        close(fd);
        FUZZ_ASSERT(stat(p, &canary_st) == 0);
        /* The working directory of the extraction: relative paths that escaped the target
         * would land here. */
        pathf(p, "%s/%s", sandbox, "cwd");
        FUZZ_ASSERT(mkdir(p, 0755) == 0 && stat(p, &cwd_st) == 0);
        cwd_fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        home_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        FUZZ_ASSERT(cwd_fd >= 0 && home_fd >= 0);
        snprintf(target, sizeof target, "%s/target", sandbox);
        in_fd = memfd_create("archive", MFD_CLOEXEC);
        FUZZ_ASSERT(in_fd >= 0);
        fprintf(stderr, "fuzz_unpack: extracting into %s\n", target);
        return 0;
}

/* The names in directory path, sorted, joined by spaces. */
static void dir_names(const char *path, char *out, size_t len) {
        struct dirent **v = NULL;
        int n = scandir(path, &v, NULL, alphasort);
        size_t off = 0;

        FUZZ_ASSERT(n >= 0);
        out[0] = 0;
        for (int i = 0; i < n; i++) {
                if (off < len && !streq(v[i]->d_name, ".") && !streq(v[i]->d_name, ".."))
                        off += (size_t)snprintf(out + off, len - off, "%s%s", off ? " " : "",
                                                v[i]->d_name);
                free(v[i]);
        }
        free(v);
}

static void check_sandbox(void) {
        char names[1024], p[PATH_MAX];
        struct stat st;

        dir_names(sandbox, names, sizeof names);
        FUZZ_ASSERT(streq(names, "cwd outside target"));
        pathf(p, "%s/%s", sandbox, "cwd");
        dir_names(p, names, sizeof names);
        FUZZ_ASSERT(streq(names, ""));
        pathf(p, "%s/%s", sandbox, "outside");
        dir_names(p, names, sizeof names);
        FUZZ_ASSERT(streq(names, "canary dir"));
        pathf(p, "%s/%s", sandbox, "outside/dir");
        dir_names(p, names, sizeof names);
        FUZZ_ASSERT(streq(names, ""));
        pathf(p, "%s/%s", sandbox, "outside/canary");
        FUZZ_ASSERT(lstat(p, &st) == 0);
        FUZZ_ASSERT(st.st_ino == canary_st.st_ino && st.st_nlink == 1 && st.st_size == 7 &&
                    st.st_mode == canary_st.st_mode &&
                    st.st_mtim.tv_sec == canary_st.st_mtim.tv_sec &&
                    st.st_mtim.tv_nsec == canary_st.st_mtim.tv_nsec);
        /* pgsmb_profile_extract gives the working directory back */
        FUZZ_ASSERT(stat(".", &st) == 0 && st.st_ino == cwd_st.st_ino &&
                    st.st_dev == cwd_st.st_dev);
}

/* Does symlink content `to`, in the directory of the link at rel (relative to the target, as
 * nftw spells it: no "." or doubled slash), resolve lexically inside the target? */
static bool link_inside(const char *rel, const char *to) {
        long depth = 0;

        if (to[0] == '/')
                return false;
        for (const char *s = rel; (s = strchr(s, '/')); s++)
                depth++;
        for (const char *s = to; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.') {
                        if (--depth < 0)
                                return false;
                } else if (n > 0 && !(n == 1 && s[0] == '.'))
                        depth++;
                s += n;
                s += strspn(s, "/");
        }
        return true;
}

static uint64_t total_size;

/* Pre-order: a directory is checked (and opened up) before nftw enters it. */
static int check_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        const char *rel = path + strlen(target);

        if (ftw->level == 0) {
                (void)chmod(path, 0700); /* "./" entries set the target's own mode */
                return 0;
        }
        FUZZ_ASSERT(rel[0] == '/');
        rel++;
        FUZZ_ASSERT(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode) || S_ISLNK(st->st_mode));
        FUZZ_ASSERT(S_ISLNK(st->st_mode) || !(st->st_mode & 07000));
        FUZZ_ASSERT(st->st_ino != canary_st.st_ino);
        if (S_ISLNK(st->st_mode)) {
                char to[PATH_MAX];
                ssize_t n = readlink(path, to, sizeof to - 1);
                FUZZ_ASSERT(n >= 0);
                to[n] = 0;
                if (!link_inside(rel, to)) {
                        fprintf(stderr, "fuzz_unpack: symlink %s -> %s leads outside\n", rel, to);
                        abort();
                }
        } else if (S_ISREG(st->st_mode)) {
                FUZZ_ASSERT((uint64_t)st->st_size <= MAX_ENTRY);
                if (st->st_nlink == 1)
                        total_size += (uint64_t)st->st_size;
        } else
                (void)chmod(path, 0700); /* to be entered and emptied by a user running this */
        return 0;
}

/* Mutations of a tar header would almost all die on its checksum: every 512-byte block that
 * looks like a ustar/GNU header (magic "ustar" at 257) gets its checksum recomputed, so they
 * reach the header's parsing and our checks instead. A zstd stream is left as it is. */
static void fix_tar_checksums(uint8_t *p, size_t size) {
        for (size_t off = 0; off + 512 <= size; off += 512) {
                uint8_t *h = p + off;
                unsigned sum = 0;

                if (memcmp(h + 257, "ustar", 5) != 0)
                        continue;
                memset(h + 148, ' ', 8);
                for (size_t i = 0; i < 512; i++)
                        sum += h[i];
                snprintf((char *)h + 148, 8, "%06o", sum & 0777777);
                h[155] = ' ';
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct profile_limits lim = {.max_total_bytes = MAX_TOTAL,
                                           .max_entries = MAX_ENTRIES,
                                           .max_entry_bytes = MAX_ENTRY};
        _cleanup_free_ uint8_t *archive = malloc(size ? size : 1);
        struct profile_stats stats;
        char err[1024];
        mode_t mask;
        int r;

        FUZZ_ASSERT(archive);
        memcpy(archive, data, size);
        fix_tar_checksums(archive, size);
        FUZZ_ASSERT(ftruncate(in_fd, 0) == 0 && lseek(in_fd, 0, SEEK_SET) == 0);
        fuzz_write_all(in_fd, archive, size);
        FUZZ_ASSERT(lseek(in_fd, 0, SEEK_SET) == 0);
        FUZZ_ASSERT(mkdir(target, 0700) == 0);
        mask = umask(022);
        umask(mask);

        /* in the sandbox's working directory (not for long: libFuzzer's paths are relative) */
        FUZZ_ASSERT(fchdir(cwd_fd) == 0);
        r = pgsmb_profile_extract(in_fd, target, &lim, NULL, &stats, err, sizeof err);
        FUZZ_ASSERT(r <= 0);
        if (r < 0)
                FUZZ_ASSERT(err[0]); /* every refusal says why */
        else
                FUZZ_ASSERT(stats.files <= MAX_ENTRIES && stats.bytes <= MAX_TOTAL);
        FUZZ_ASSERT(umask(mask) == mask);

        check_sandbox();
        FUZZ_ASSERT(fchdir(home_fd) == 0);
        total_size = 0;
        FUZZ_ASSERT(nftw(target, check_one, 16, FTW_PHYS) == 0);
        FUZZ_ASSERT(total_size <= MAX_TOTAL);
        FUZZ_ASSERT(fuzz_remove_tree(target) == 0);
        return 0;
}
