/* Profile archives (worker side, runs as the user): a home as one streamed pax + zstd archive
 * (pax from libarchive, compressed here with libzstd's worker threads) or by the admin's external
 * program, and extraction of archives that may be
 * hostile. Every entry is checked here before libarchive's own SECURE_* checks see it. */
#include "pgsmb-archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <inttypes.h>
#include <limits.h>
#include <search.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "pgsmb-inflate.h"
#include "pgsmb-unpack.h"
#include "spawn-program.h"
#include "util.h"

#define ARCHIVE_BLOCK_BYTES (1024 * 1024)

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...) {
        if (err && errlen > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* libarchive's own message, or a fallback when it has none. */
static const char *la_error(struct archive *a) {
        const char *s = archive_error_string(a);
        return s ? s : "unknown libarchive error";
}

static int la_errno(struct archive *a, int fallback) {
        int e = archive_errno(a);
        return e > 0 ? -e : -fallback;
}

static void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}
static void archive_write_freep(struct archive **a) {
        if (*a)
                archive_write_free(*a);
}
static void unpack_freep(struct unpack **u) { unpack_free(*u); }
static void inflate_freep(struct inflate **z) { inflate_free(*z); }
static void archive_entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}
static void linkresolver_freep(struct archive_entry_linkresolver **l) {
        if (*l)
                archive_entry_linkresolver_free(*l);
}
static void strv_freep(char ***v) {
        if (!*v)
                return;
        for (char **p = *v; *p; p++)
                free(*p);
        free(*v);
}
/* Return to the directory we came from; extraction works relative to the target. */
static void fchdir_backp(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void)!fchdir(*fd);
                close(*fd);
                errno = saved;
        }
}

/* ---- path rules, shared by archive, extract and the check after an external extractor ---- */

/* A relative path with no ".." component, not empty, no NUL (a C string cannot hold one). "."
 * components and doubled slashes are harmless. */
static bool path_is_inside(const char *p) {
        if (!p || !*p || *p == '/')
                return false;
        for (const char *s = p; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return false;
                s += n;
                s += strspn(s, "/");
        }
        return true;
}

/* Number of name components of the directory holding `path` (a path_is_inside() path), not
 * counting ".": "a/b/l" -> 2, "l" -> 0, "./x/l" -> 1. */
static size_t parent_depth(const char *path) {
        size_t depth = 0;
        for (const char *s = path; *s;) {
                size_t n = strcspn(s, "/");
                bool is_dot = n == 1 && s[0] == '.';
                s += n;
                if (!*s)
                        break; /* the last component is the link itself */
                s += strspn(s, "/");
                if (!*s)
                        break; /* "a/b/" : b is the last component */
                if (!is_dot)
                        depth++;
        }
        return depth;
}

/* A symlink at `linkpath` with content `target` stays inside the tree when the target is relative
 * and its ".." components all come first and climb no higher than the link's directory. A ".."
 * after a name is refused: "a/b/.." is not "a" when b is itself a link, so such a target cannot
 * be judged without following links. By induction every link in the tree then resolves inside. */
static bool symlink_stays_inside(const char *linkpath, const char *target) {
        if (!target || !*target || *target == '/')
                return false;
        size_t ups = 0;
        bool seen_name = false;
        for (const char *s = target; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.') {
                        if (seen_name)
                                return false;
                        ups++;
                } else if (n > 0 && !(n == 1 && s[0] == '.'))
                        seen_name = true;
                s += n;
                s += strspn(s, "/");
        }
        return ups <= parent_depth(linkpath);
}

/* Exclusions: relative paths, compared whole ("./.cache/" means ".cache"). */
static int exclude_normalize(const char *const *exclude, char ***ret, char *err, size_t errlen) {
        size_t n = 0;
        while (exclude && exclude[n])
                n++;
        _cleanup_(strv_freep) char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return fail(err, errlen, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const char *s = exclude[i];
                while (s[0] == '.' && s[1] == '/')
                        s += 2 + strspn(s + 2, "/");
                if (!path_is_inside(s) || streq(s, "."))
                        return fail(err, errlen, -EINVAL,
                                    "exclude path '%s' must be a relative path inside the home "
                                    "(no '..', not absolute)",
                                    exclude[i]);
                v[i] = strdup(s);
                if (!v[i])
                        return fail(err, errlen, -ENOMEM, "out of memory");
                size_t l = strlen(v[i]);
                while (l > 1 && v[i][l - 1] == '/')
                        v[i][--l] = 0;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

static bool is_excluded(char *const *ex, const char *rel) {
        for (; ex && *ex; ex++)
                if (streq(*ex, rel))
                        return true;
        return false;
}

/* Only user.* extended attributes travel: security.*, trusted.* and system.* belong to the machine
 * (and security.capability would be a privilege). POSIX ACLs travel as ACLs, not as xattrs. */
static int entry_keep_user_xattrs(struct archive_entry *e) {
        int n = archive_entry_xattr_reset(e);
        if (n <= 0)
                return 0;
        struct kept {
                char *name;
                void *value;
                size_t size;
        } *kept = calloc((size_t)n, sizeof(*kept));
        if (!kept)
                return -ENOMEM;
        int k = 0, r = 0;
        const char *name;
        const void *value;
        size_t size;
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK && k < n) {
                if (strncmp(name, "user.", 5) != 0)
                        continue;
                kept[k].name = strdup(name);
                kept[k].value = malloc(size ? size : 1);
                if (!kept[k].name || !kept[k].value) {
                        free(kept[k].name);
                        free(kept[k].value);
                        r = -ENOMEM;
                        break;
                }
                memcpy(kept[k].value, value, size);
                kept[k++].size = size;
        }
        if (r == 0) {
                archive_entry_xattr_clear(e);
                for (int i = 0; i < k; i++)
                        archive_entry_xattr_add_entry(e, kept[i].name, kept[i].value, kept[i].size);
        }
        for (int i = 0; i < k; i++) {
                free(kept[i].name);
                free(kept[i].value);
        }
        free(kept);
        return r;
}

/* ---- external program (pGina's `program` + commands): fixed argv, no shell ---- */

static int run_program(char *const *argv, const char *const *env, const char *cwd, int in_fd,
                       int out_fd, char *err, size_t errlen) {
        if (!argv || !argv[0] || argv[0][0] != '/')
                return fail(err, errlen, -EINVAL,
                            "external archive program '%s' must be an absolute path",
                            argv && argv[0] ? argv[0] : "");

        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return fail(err, errlen, -errno, "cannot create a pipe: %s", strerror(errno));
        _cleanup_close_ int rd = pfd[0];
        _cleanup_close_ int wr = pfd[1];

        /* Its stdin, stdout (the archive's stream, else /dev/null) and stderr, nothing else: the
         * worker's descriptors (the store's connection, a service account's session) are not
         * the user's. */
        const int fds[] = {in_fd, out_fd, wr};
        const struct spawn sp = {.path = argv[0], .argv = (const char *const *)argv,
                                 .env_base = SPAWN_ENV_USER, .env = env,
                                 .fds = fds, .n_fds = ELEMENTSOF(fds), .cwd = cwd};
        pid_t pid;
        int r = spawn_start(&sp, &pid);
        if (r < 0)
                return fail(err, errlen, r, "cannot run '%s' in '%s': %s", argv[0], cwd,
                            strerror(-r));
        close(TAKE_FD(wr));

        /* Drain stderr while it runs (a full pipe would block it); keep the first line. */
        char line[256] = "";
        size_t len = 0;
        bool line_done = false;
        for (;;) {
                char buf[4096];
                ssize_t n = read(rd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n && !line_done; i++) {
                        if (buf[i] == '\n' || len + 1 >= sizeof line)
                                line_done = true;
                        else
                                line[len++] = buf[i];
                }
        }
        line[len] = 0;

        int status;
        r = spawn_wait(pid, SPAWN_FOREVER, &status);
        if (r < 0)
                return fail(err, errlen, r, "cannot wait for '%s': %s", argv[0], strerror(-r));
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                return fail(err, errlen, -EPROTO, "'%s' exited with status %d%s%s", argv[0],
                            WEXITSTATUS(status), len ? ": " : "", line);
        return fail(err, errlen, -EPROTO, "'%s' was killed by signal %d%s%s", argv[0],
                    WTERMSIG(status), len ? ": " : "", line);
}

/* ---- tree walk (pgsmb_profile_size, and the check after an external extractor) ---- */

struct inode_key {
        dev_t dev;
        ino_t ino;
};

static int inode_cmp(const void *a, const void *b) {
        const struct inode_key *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

/* True the first time an inode is seen; hardlinked files count once. */
static int inode_first_seen(void **set, const struct stat *st) {
        if (st->st_nlink <= 1)
                return 1;
        struct inode_key *k = malloc(sizeof *k);
        if (!k)
                return -ENOMEM;
        *k = (struct inode_key){ st->st_dev, st->st_ino };
        struct inode_key **found = tsearch(k, set, inode_cmp);
        if (!found) {
                free(k);
                return -ENOMEM;
        }
        if (*found != k) {
                free(k);
                return 0;
        }
        return 1;
}

static void ftsp(FTS **f) {
        if (*f)
                fts_close(*f);
}

/* Called for each entry below root (not root itself) that is not excluded; rel is relative. */
typedef int (*walk_fn)(FTSENT *ent, const char *rel, void *userdata, char *err, size_t errlen);

static int walk_tree(const char *root, char *const *ex, walk_fn fn, void *userdata, char *err,
                     size_t errlen) {
        char *const paths[] = { (char *)root, NULL };
        /* Physical walk, never into another filesystem (a share mounted inside the home), the
         * home itself may be a symlink (COMFOLLOW). */
        _cleanup_(ftsp) FTS *f =
                fts_open(paths, FTS_PHYSICAL | FTS_COMFOLLOW | FTS_XDEV | FTS_NOCHDIR, NULL);
        if (!f)
                return fail(err, errlen, -errno, "cannot walk '%s': %s", root, strerror(errno));
        size_t rootlen = strlen(root);
        FTSENT *ent;
        errno = 0;
        while ((ent = fts_read(f))) {
                if (ent->fts_info == FTS_DP)
                        continue;
                if (ent->fts_info == FTS_DNR || ent->fts_info == FTS_ERR ||
                    ent->fts_info == FTS_NS)
                        return fail(err, errlen, -ent->fts_errno, "cannot read '%s': %s",
                                    ent->fts_path, strerror(ent->fts_errno));
                if (ent->fts_level == 0)
                        continue;
                const char *rel = ent->fts_path + rootlen;
                rel += strspn(rel, "/");
                if (is_excluded(ex, rel)) {
                        fts_set(f, ent, FTS_SKIP);
                        continue;
                }
                int r = fn(ent, rel, userdata, err, errlen);
                if (r < 0)
                        return r;
                errno = 0;
        }
        if (errno != 0)
                return fail(err, errlen, -errno, "cannot walk '%s': %s", root, strerror(errno));
        return 0;
}

struct size_walk {
        uint64_t bytes;
        void *inodes;
};

static int size_one(FTSENT *ent, const char *rel, void *userdata, char *err, size_t errlen) {
        (void)rel;
        struct size_walk *w = userdata;
        if (ent->fts_info != FTS_F)
                return 0;
        int r = inode_first_seen(&w->inodes, ent->fts_statp);
        if (r < 0)
                return fail(err, errlen, r, "out of memory");
        if (r > 0)
                w->bytes += (uint64_t)ent->fts_statp->st_size;
        return 0;
}

int pgsmb_profile_size(const char *home, const char *const *exclude, uint64_t *bytes, char *err,
                       size_t errlen) {
        _cleanup_(strv_freep) char **ex = NULL;
        int r = exclude_normalize(exclude, &ex, err, errlen);
        if (r < 0)
                return r;
        struct size_walk w = { 0 };
        r = walk_tree(home, ex, size_one, &w, err, errlen);
        tdestroy(w.inodes, free);
        if (r < 0)
                return r;
        *bytes = w.bytes;
        return 0;
}

/* ---- archive ---- */

/* Write one file's data, gaps as zeros: the pax writer drops what falls in the sparse map's
 * holes, so a sparse file stays sparse in the archive without its holes being read. */
static void changed_note(struct profile_stats *st, const char *rel) {
        if (st->changed++ == 0)
                snprintf(st->first_changed, sizeof st->first_changed, "%s", rel);
}

static int archive_copy_data(struct archive *disk, struct archive *w, const char *rel, la_int64_t size,
                             struct profile_stats *st, char *err, size_t errlen) {
        uint64_t *bytes = &st->bytes;
        static const char zeros[64 * 1024];
        const void *blk;
        size_t len;
        la_int64_t off, progress = 0;
        int r;
        while ((r = archive_read_data_block(disk, &blk, &len, &off)) == ARCHIVE_OK) {
                while (off > progress) {
                        size_t n = (size_t)(off - progress) < sizeof zeros
                                           ? (size_t)(off - progress)
                                           : sizeof zeros;
                        la_ssize_t k = archive_write_data(w, zeros, n);
                        if (k <= 0)
                                goto write_failed;
                        progress += k;
                }
                la_ssize_t k = archive_write_data(w, blk, len);
                if (k < 0)
                        goto write_failed;
                progress += k;
                *bytes += (uint64_t)k;
                if ((size_t)k != len) {
                        /* It grew past the size in its header: what fits is saved, the rest
                         * is the writer's (a retry would meet the same writer). */
                        changed_note(st, rel);
                        return 0;
                }
        }
        if (r != ARCHIVE_EOF)
                return fail(err, errlen, la_errno(disk, EIO), "cannot read '%s': %s", rel,
                            la_error(disk));
        if (progress < size)
                changed_note(st, rel); /* it shrank: the pax writer pads it with zeros */
        return 0;
write_failed:
        return fail(err, errlen, la_errno(w, EIO), "cannot write '%s' to the archive: %s", rel,
                    la_error(w));
}

static int archive_write_entry(struct archive *disk, struct archive *w, struct archive_entry *e,
                               const char *rel, struct profile_stats *st, char *err,
                               size_t errlen) {
        int r = archive_write_header(w, e);
        if (r < ARCHIVE_WARN)
                return fail(err, errlen, la_errno(w, EIO), "cannot archive '%s': %s", rel,
                            la_error(w));
        st->files++;
        if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e) &&
            archive_entry_size(e) > 0)
                return archive_copy_data(disk, w, rel, archive_entry_size(e), st, err, errlen);
        return 0;
}

/* ---- archive output: pax from libarchive, compressed here with libzstd ----
 * libarchive's zstd filter offers threads but not zstd's job size, and its multithreaded buffers
 * grow with the window (~70 MiB for two threads). Compressing here, with small jobs, keeps memory
 * bounded and lets the workers compress while the walk waits on the disk. The output is ordinary
 * zstd frames, read by any zstd decoder. */

/* Job size of each compression worker: small enough to bound memory (a few jobs in flight, each
 * with its input, output and overlap), large enough that the job's overlap costs little ratio. */
#define ZSTD_JOB_BYTES (2 * 1024 * 1024)
/* Automatic threads stop here: each worker costs ~6 MiB, and four compress faster than a
 * gigabit link carries. An explicit compression_threads is taken as it is. */
#define ZSTD_AUTO_THREADS_MAX 4
/* What libarchive hands the compressor at once: tar headers and data, gathered. */
#define PAX_BLOCK_BYTES (256 * 1024)

struct zstd_out {
        ZSTD_CCtx *cctx;
        int fd;
        unsigned char *buf; /* compressed bytes waiting for the fd */
        size_t cap;
};

/* Feed `in` to the compressor with `mode`; write whatever output it gives. With ZSTD_e_end,
 * runs until the frame is complete. */
static int zstd_out_push(struct archive *a, struct zstd_out *z, const void *data, size_t len,
                         ZSTD_EndDirective mode) {
        ZSTD_inBuffer in = { data, len, 0 };
        for (;;) {
                ZSTD_outBuffer out = { z->buf, z->cap, 0 };
                size_t left = ZSTD_compressStream2(z->cctx, &out, &in, mode);
                if (ZSTD_isError(left)) {
                        archive_set_error(a, EIO, "zstd: %s", ZSTD_getErrorName(left));
                        return ARCHIVE_FATAL;
                }
                if (out.pos > 0) {
                        int r = write_all(z->fd, z->buf, out.pos);
                        if (r < 0) {
                                archive_set_error(a, -r, "cannot write the archive: %s",
                                                  strerror(-r));
                                return ARCHIVE_FATAL;
                        }
                }
                if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
                        return ARCHIVE_OK;
        }
}

static la_ssize_t zstd_out_write(struct archive *a, void *userdata, const void *buf, size_t len) {
        if (zstd_out_push(a, userdata, buf, len, ZSTD_e_continue) != ARCHIVE_OK)
                return -1;
        return (la_ssize_t)len;
}

static int zstd_out_close(struct archive *a, void *userdata) {
        return zstd_out_push(a, userdata, NULL, 0, ZSTD_e_end);
}

static void zstd_out_done(struct zstd_out *z) {
        ZSTD_freeCCtx(z->cctx);
        free(z->buf);
        *z = (struct zstd_out){ .fd = -1 };
}

/* threads: 0 = one worker per online CPU (zstd -T0), at most ZSTD_AUTO_THREADS_MAX; a libzstd
 * without threads compresses in the calling thread. */
static int zstd_out_init(struct zstd_out *z, const struct profile_compress *c, int fd, char *err,
                         size_t errlen) {
        int level = c && c->level ? c->level : 3;
        long threads = c && c->threads > 0 ? c->threads : sysconf(_SC_NPROCESSORS_ONLN);
        if (!(c && c->threads > 0) && threads > ZSTD_AUTO_THREADS_MAX)
                threads = ZSTD_AUTO_THREADS_MAX;
        if (threads < 1)
                threads = 1;
        ZSTD_bounds lb = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
        if (ZSTD_isError(lb.error) || level < lb.lowerBound || level > lb.upperBound)
                return fail(err, errlen, -EINVAL, "zstd compression level %d is not supported",
                            level);
        *z = (struct zstd_out){ .fd = fd, .cap = ZSTD_CStreamOutSize() };
        z->cctx = ZSTD_createCCtx();
        z->buf = malloc(z->cap);
        if (!z->cctx || !z->buf) {
                zstd_out_done(z);
                return fail(err, errlen, -ENOMEM, "out of memory");
        }
        ZSTD_bounds wb = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);
        if (!ZSTD_isError(wb.error) && wb.upperBound < threads)
                threads = wb.upperBound; /* 0 without ZSTD_MULTITHREAD */
        if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1)) ||
            (threads > 0 &&
             (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, (int)threads)) ||
              ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, ZSTD_JOB_BYTES))))) {
                zstd_out_done(z);
                return fail(err, errlen, -EINVAL, "zstd refuses its parameters");
        }
        return 0;
}

static int archive_open_writer(struct archive **ret, struct zstd_out *z, char *err,
                               size_t errlen) {
        _cleanup_(archive_write_freep) struct archive *w = archive_write_new();
        if (!w)
                return fail(err, errlen, -ENOMEM, "out of memory");
        if (archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
            archive_write_add_filter_none(w) != ARCHIVE_OK)
                return fail(err, errlen, -EOPNOTSUPP, "libarchive cannot write pax: %s",
                            la_error(w));
        /* Names are bytes on Linux: store them as they are, whatever the locale. */
        if (archive_write_set_format_option(w, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK)
                return fail(err, errlen, -EOPNOTSUPP, "libarchive: %s", la_error(w));
        /* No padding after the last byte. */
        archive_write_set_bytes_per_block(w, PAX_BLOCK_BYTES);
        archive_write_set_bytes_in_last_block(w, 1);
        if (archive_write_open2(w, z, NULL, zstd_out_write, zstd_out_close, NULL) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(w, EIO), "cannot start the archive: %s",
                            la_error(w));
        *ret = TAKE_PTR(w);
        return 0;
}

/* Ask the disk for the regular files of a directory before libarchive reads them one by one:
 * with the page cache cold, one blocking read at a time leaves the disk idle between files, while
 * readahead requests queued together are served in one sweep. Best effort, bounded per directory
 * and per file (what is left of a large file comes through the kernel's own readahead). Only
 * DT_REG entries are opened, non-blocking and without following links. */
#define PREFETCH_DIR_BYTES (32 * 1024 * 1024)
#define PREFETCH_FILE_BYTES (4 * 1024 * 1024)

static void prefetch_dir(const char *path) {
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return;
        DIR *d = fdopendir(dfd);
        if (!d)
                return;
        TAKE_FD(dfd);
        uint64_t budget = PREFETCH_DIR_BYTES;
        struct dirent *de;
        while (budget > 0 && (de = readdir(d))) {
                if (de->d_type != DT_REG)
                        continue;
                int fd = openat(dirfd(d), de->d_name,
                                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                struct stat st;
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
                        uint64_t n = (uint64_t)st.st_size;
                        if (n > PREFETCH_FILE_BYTES)
                                n = PREFETCH_FILE_BYTES;
                        if (n > budget)
                                n = budget;
                        (void)posix_fadvise(fd, 0, (off_t)n, POSIX_FADV_WILLNEED);
                        budget -= n;
                }
                close(fd);
        }
        closedir(d);
}

static int archive_builtin(const char *home, char *const *ex, const struct profile_compress *c,
                           int out_fd, struct profile_stats *st, char *err, size_t errlen) {
        _cleanup_free_ char *root = strdup(home);
        if (!root)
                return fail(err, errlen, -ENOMEM, "out of memory");
        size_t rootlen = strlen(root);
        while (rootlen > 1 && root[rootlen - 1] == '/')
                root[--rootlen] = 0;

        _cleanup_(zstd_out_done) struct zstd_out z = { .fd = -1 };
        int r = zstd_out_init(&z, c, out_fd, err, errlen);
        if (r < 0)
                return r;
        /* Declared after z: freed (and closed) before the compressor it writes to. */
        _cleanup_(archive_write_freep) struct archive *w = NULL;
        r = archive_open_writer(&w, &z, err, errlen);
        if (r < 0)
                return r;

        _cleanup_(archive_read_freep) struct archive *disk = archive_read_disk_new();
        _cleanup_(linkresolver_freep) struct archive_entry_linkresolver *lr =
                archive_entry_linkresolver_new();
        _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
        if (!disk || !lr || !e)
                return fail(err, errlen, -ENOMEM, "out of memory");
        archive_entry_linkresolver_set_strategy(lr, archive_format(w));
        /* Never follow links below the home; do not descend into other filesystems; record ACLs,
         * xattrs and sparse maps (the defaults); do not touch atimes (no RESTORE_ATIME). File
         * flags (chattr) are not restored, and recording them (ext4's "e" on every file) would
         * cost a pax header per entry. */
        archive_read_disk_set_symlink_hybrid(disk);
        if (archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS |
                                                         ARCHIVE_READDISK_NO_FFLAGS) !=
                    ARCHIVE_OK ||
            archive_read_disk_set_standard_lookup(disk) != ARCHIVE_OK)
                return fail(err, errlen, -EIO, "libarchive: %s", la_error(disk));
        if (archive_read_disk_open(disk, root) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(disk, EIO), "cannot read home '%s': %s", home,
                            la_error(disk));

        for (;;) {
                archive_entry_clear(e);
                r = archive_read_next_header2(disk, e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return fail(err, errlen, la_errno(disk, EIO), "cannot read home '%s': %s",
                                    home, la_error(disk));
                const char *path = archive_entry_pathname(e);
                if (!path || strncmp(path, root, rootlen) != 0)
                        return fail(err, errlen, -EIO, "unexpected path '%s' below '%s'",
                                    strempty(path), home);
                const char *rel = path + rootlen;
                rel += strspn(rel, "/");
                if (!*rel) { /* the home itself: its contents, not its own entry */
                        prefetch_dir(path);
                        archive_read_disk_descend(disk);
                        continue;
                }
                if (is_excluded(ex, rel))
                        continue; /* not descended either */

                mode_t type = archive_entry_filetype(e);
                /* Sockets, FIFOs and devices are not profile data, and extraction refuses them. */
                if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
                        continue;
                if (type == AE_IFDIR) {
                        prefetch_dir(path);
                        archive_read_disk_descend(disk);
                }
                _cleanup_free_ char *relcopy = strdup(rel);
                if (!relcopy)
                        return fail(err, errlen, -ENOMEM, "out of memory");
                archive_entry_copy_pathname(e, relcopy);
                /* A restore refuses links leading outside the profile; such links (wine's
                 * dosdevices, links into /usr/share) are left out and counted, so one of them
                 * never costs the whole upload. */
                if (type == AE_IFLNK && !symlink_stays_inside(relcopy, archive_entry_symlink(e))) {
                        st->skipped_links++;
                        continue;
                }
                if (entry_keep_user_xattrs(e) < 0)
                        return fail(err, errlen, -ENOMEM, "out of memory");

                struct archive_entry *cur = e, *spare = NULL;
                archive_entry_linkify(lr, &cur, &spare);
                if (cur) {
                        r = archive_write_entry(disk, w, cur, relcopy, st, err, errlen);
                        if (r < 0)
                                return r;
                }
                if (spare) { /* only for strategies that defer links; not pax, kept for safety */
                        r = archive_write_entry(disk, w, spare, archive_entry_pathname(spare), st,
                                                err, errlen);
                        archive_entry_free(spare);
                        if (r < 0)
                                return r;
                }
        }
        if (archive_write_close(w) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(w, EIO), "cannot finish the archive: %s",
                            la_error(w));
        return 0;
}

int pgsmb_profile_archive(const char *home, const char *const *exclude, const struct profile_compress *c,
                          int out_fd, struct profile_stats *stats, char *err, size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = stats ? stats : &dummy;
        *st = (struct profile_stats){ 0 };
        if (err && errlen)
                err[0] = 0;
        if (c && c->archive_argv)
                /* The program sees the whole home; exclusions are its own arguments' business. */
                return run_program(c->archive_argv, c->program_env, home, -1, out_fd, err, errlen);

        _cleanup_(strv_freep) char **ex = NULL;
        int r = exclude_normalize(exclude, &ex, err, errlen);
        if (r < 0)
                return r;
        return archive_builtin(home, ex, c, out_fd, st, err, errlen);
}

/* ---- extract ---- */

struct extract_state {
        const struct profile_limits *lim;
        uint64_t entries;
        uint64_t declared; /* sum of header sizes */
        uint64_t written;  /* sum of data actually written */
};

static int too_big_total(char *err, size_t errlen, const struct profile_limits *lim,
                         const char *name) {
        return fail(err, errlen, -EFBIG,
                    "profile exceeds max_profile_size (%" PRIu64 " bytes) at entry '%s'",
                    lim->max_total_bytes, name);
}

static int too_big_entry(char *err, size_t errlen, const struct profile_limits *lim,
                         const char *name, uint64_t size) {
        return fail(err, errlen, -EFBIG,
                    "archive entry '%s': %" PRIu64 " bytes exceeds the per-file limit (%" PRIu64
                    " bytes)",
                    name, size, lim->max_entry_bytes);
}

/* Everything checked about an entry before libarchive may create anything for it. */
/* fast: the entry goes to unpack_begin, whose O_EXCL creation and no-follow hardlink check do
 * what the two fstatat() checks here do for libarchive's writer (which would replace a path). */
static int extract_check_entry(struct extract_state *s, struct archive_entry *e, bool fast,
                               char *err, size_t errlen) {
        const struct profile_limits *lim = s->lim;
        const char *name = archive_entry_pathname(e);
        if (!name || !*name)
                return fail(err, errlen, -EPERM, "archive entry %" PRIu64 " has no name",
                            s->entries);
        if (lim->max_entries && s->entries > lim->max_entries)
                return fail(err, errlen, -E2BIG,
                            "archive has more than %" PRIu64 " entries (max_entries) at entry '%s'",
                            lim->max_entries, name);
        if (!path_is_inside(name))
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': path leads outside the profile", name);

        const char *hardlink = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        if (hardlink) {
                struct stat st;
                if (!path_is_inside(hardlink))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': hardlink to '%s' leads outside the "
                                    "profile",
                                    name, hardlink);
                /* A hardlink to a symlink would carry the link's relative target to another
                 * directory, where it may point elsewhere. */
                if (!fast && fstatat(AT_FDCWD, hardlink, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    !S_ISREG(st.st_mode))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': hardlink to '%s', which is not a "
                                    "regular file",
                                    name, hardlink);
        } else if (type == AE_IFLNK) {
                if (!symlink_stays_inside(name, archive_entry_symlink(e)))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': symlink to '%s' leads outside the "
                                    "profile",
                                    name, strempty(archive_entry_symlink(e)));
        } else if (type != AE_IFREG && type != AE_IFDIR)
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': device files, FIFOs and sockets are refused",
                            name);

        /* One entry per path (directories may repeat, e.g. "./"): a later entry never replaces
         * what an earlier one made. */
        struct stat st;
        if (!fast && fstatat(AT_FDCWD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !(S_ISDIR(st.st_mode) && type == AE_IFDIR && !hardlink))
                return fail(err, errlen, -EPERM, "archive entry '%s' appears twice", name);

        uint64_t size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0
                                ? (uint64_t)archive_entry_size(e)
                                : 0;
        if (lim->max_entry_bytes && size > lim->max_entry_bytes)
                return too_big_entry(err, errlen, lim, name, size);
        if (!hardlink) {
                s->declared += size;
                if (lim->max_total_bytes && s->declared > lim->max_total_bytes)
                        return too_big_total(err, errlen, lim, name);
        }

        /* Plain permissions only: no setuid, setgid or sticky bit survives. */
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
        if (entry_keep_user_xattrs(e) < 0)
                return fail(err, errlen, -ENOMEM, "out of memory");
        return 0;
}

/* Copy the entry's data, counting what is actually written: headers may lie (a sparse map can
 * carry more data than the size it declares). */
/* Where an entry's data goes: libarchive's disk writer, or a file unpack_begin made. */
struct data_sink {
        struct archive *w; /* or NULL */
        int fd; /* or -1: the data is read, counted and dropped (a hardlink's) */
        uint64_t end; /* highest offset written to fd */
};

static int extract_copy_data(struct extract_state *s, struct archive *a, struct data_sink *sink,
                             struct archive_entry *e, uint64_t *bytes, char *err, size_t errlen) {
        const char *name = archive_entry_pathname(e);
        uint64_t declared = archive_entry_size_is_set(e) && archive_entry_size(e) > 0
                                    ? (uint64_t)archive_entry_size(e)
                                    : 0;
        const struct profile_limits *lim = s->lim;
        const void *blk;
        size_t len;
        la_int64_t off;
        int r;
        while ((r = archive_read_data_block(a, &blk, &len, &off)) == ARCHIVE_OK) {
                if (off < 0)
                        return fail(err, errlen, -EBADMSG,
                                    "archive entry '%s': negative data offset", name);
                uint64_t end = (uint64_t)off + len;
                if (end > declared)
                        return fail(err, errlen, -EBADMSG,
                                    "archive entry '%s': data beyond its declared size (%" PRIu64
                                    " bytes)",
                                    name, declared);
                if (lim->max_entry_bytes && end > lim->max_entry_bytes)
                        return too_big_entry(err, errlen, lim, name, end);
                s->written += len;
                if (lim->max_total_bytes && s->written > lim->max_total_bytes)
                        return too_big_total(err, errlen, lim, name);
                if (len == 0)
                        continue;
                if (sink->w && archive_write_data_block(sink->w, blk, len, off) != ARCHIVE_OK)
                        return fail(err, errlen, la_errno(sink->w, EIO),
                                    "cannot write archive entry '%s': %s", name,
                                    la_error(sink->w));
                if (sink->fd >= 0) {
                        r = unpack_data(sink->fd, blk, len, off);
                        if (r < 0)
                                return fail(err, errlen, r, "cannot write archive entry '%s': %s",
                                            name, strerror(-r));
                        if (end > sink->end)
                                sink->end = end;
                }
                *bytes += len;
        }
        if (r != ARCHIVE_EOF)
                return fail(err, errlen, la_errno(a, EBADMSG),
                            "archive is damaged at entry '%s': %s", name, la_error(a));
        return 0;
}

/* Most entries: our own writer (pgsmb-unpack.c), a few system calls per file. */
static int extract_entry_fast(struct extract_state *s, struct archive *a, struct unpack *u,
                              struct archive_entry *e, uint64_t *bytes, char *err, size_t errlen) {
        const char *name = archive_entry_pathname(e);
        const char *hardlink = archive_entry_hardlink(e);
        struct data_sink sink = { .fd = -1 };
        int r = unpack_begin(u, e, &sink.fd);
        if (r == -EEXIST)
                return fail(err, errlen, -EPERM, "archive entry '%s' appears twice", name);
        if (r == -EPERM && hardlink)
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': hardlink to '%s', which is not a regular file",
                            name, hardlink);
        if (r == -E2BIG)
                return fail(err, errlen, -E2BIG,
                            "the archive lists more directories than a profile can hold "
                            "(at entry '%s')", name);
        if (r == -ELOOP || r == -ENOTDIR)
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': a directory of its path is a symlink or a file",
                            name);
        if (r < 0)
                return fail(err, errlen, r, "cannot extract archive entry '%s': %s", name,
                            strerror(-r));
        r = extract_copy_data(s, a, &sink, e, bytes, err, errlen);
        if (sink.fd >= 0) {
                int k = unpack_end(u, e, sink.fd, sink.end);
                if (r == 0 && k < 0)
                        r = fail(err, errlen, k, "cannot write archive entry '%s': %s", name,
                                 strerror(-k));
        }
        return r;
}

/* Entries with ACLs or xattrs: libarchive's disk writer, with its SECURE_* checks. */
static int extract_entry_libarchive(struct extract_state *s, struct archive *a, struct archive *w,
                                    struct archive_entry *e, uint64_t *bytes, char *err,
                                    size_t errlen) {
        const char *name = archive_entry_pathname(e);
        struct data_sink sink = { .w = w, .fd = -1 };
        int r = archive_write_header(w, e);
        if (r < ARCHIVE_WARN)
                return fail(err, errlen, la_errno(w, EIO), "cannot extract archive entry '%s': %s",
                            name, la_error(w));
        r = extract_copy_data(s, a, &sink, e, bytes, err, errlen);
        if (r < 0)
                return r;
        /* WARN here is an ACL, xattr or time the filesystem would not take: the data is there,
         * and refusing the whole profile for it would lose more. */
        if (archive_write_finish_entry(w) < ARCHIVE_WARN)
                return fail(err, errlen, la_errno(w, EIO), "cannot finish archive entry '%s': %s",
                            name, la_error(w));
        return 0;
}

/* What extract_builtin reads: fd, or (ring != NULL) a shared ring and its control socket fd. */
struct extract_source {
        int fd;
        const void *ring;
        size_t ring_size;
};

static int extract_builtin(const struct extract_source *src, const char *target,
                           const struct profile_limits *lim, struct profile_stats *st, char *err,
                           size_t errlen) {
        /* archive_write_disk works relative to the working directory: its SECURE_* checks refuse
         * absolute paths, so the target must be ".". */
        _cleanup_(fchdir_backp) int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (here < 0)
                return fail(err, errlen, -errno, "cannot open the working directory: %s",
                            strerror(errno));
        _cleanup_close_ int tfd = open(target, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tfd < 0 || fchdir(tfd) < 0)
                return fail(err, errlen, -errno, "cannot enter extraction target '%s': %s", target,
                            strerror(errno));

        _cleanup_(archive_read_freep) struct archive *a = archive_read_new();
        _cleanup_(archive_write_freep) struct archive *w = archive_write_disk_new();
        if (!a || !w)
                return fail(err, errlen, -ENOMEM, "out of memory");
        /* tar (pax, ustar, GNU) only; zstd (undone by pgsmb-inflate.c's thread) or uncompressed
         * only: nothing else is ours. */
        if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_support_filter_none(a) != ARCHIVE_OK)
                return fail(err, errlen, -EOPNOTSUPP, "libarchive cannot read tar + zstd: %s",
                            la_error(a));
        /* No OWNER: we run as the user, and everything we create is the user's. No SPARSE: the
         * holes of a sparse file come from its pax sparse map (data blocks at offsets, seeked
         * over); SPARSE would scan all data for zeros and write it 4 KiB at a time. */
        archive_write_disk_set_options(
                w, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                           ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_TIME |
                           ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_XATTR);
        /* ACL entries name users and groups: map the names to this machine's ids. */
        archive_write_disk_set_standard_lookup(w);
        _cleanup_(inflate_freep) struct inflate *z = NULL;
        int r = src->ring ? inflate_open_ring(a, src->fd, src->ring, src->ring_size, &z)
                          : inflate_open(a, src->fd, &z);
        if (r < 0)
                return fail(err, errlen, r, "cannot read the archive: %s",
                            r == -EBADMSG ? la_error(a) : strerror(-r));

        _cleanup_(unpack_freep) struct unpack *u = NULL;
        r = unpack_new(tfd, &u);
        if (r < 0)
                return fail(err, errlen, r, "out of memory");
        struct extract_state s = { .lim = lim };
        for (;;) {
                struct archive_entry *e;
                r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return fail(err, errlen, la_errno(a, EBADMSG),
                                    "archive is damaged after %" PRIu64 " entries: %s", s.entries,
                                    la_error(a));
                s.entries++;
                bool fast = unpack_wants(e);
                r = extract_check_entry(&s, e, fast, err, errlen);
                if (r < 0)
                        return r;
                r = fast ? extract_entry_fast(&s, a, u, e, &st->bytes, err, errlen)
                         : extract_entry_libarchive(&s, a, w, e, &st->bytes, err, errlen);
                if (r < 0)
                        return r;
                st->files++;
        }
        /* The rest of the stream after the end marker (tar padding, the zstd frame's end and
         * checksum): read and checked, or a damaged end would go unseen. */
        r = inflate_finish(z, &st->checksummed);
        if (r < 0)
                return fail(err, errlen, r, "archive is damaged after its last entry: %s",
                            inflate_error(z));
        /* Directory modes and times are applied here, after their contents. */
        r = unpack_finish(u);
        if (r < 0)
                return fail(err, errlen, r, "cannot set the modes and times of directories: %s",
                            strerror(-r));
        if (archive_write_close(w) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(w, EIO), "cannot finish extraction: %s",
                            la_error(w));
        return 0;
}

/* After an external extractor: the same rules, checked on what it left (limits can only be
 * enforced afterwards there; setuid/setgid/sticky bits are stripped). */
struct check_walk {
        struct extract_state s;
        struct profile_stats *st;
        void *inodes;
        const char *target;
};

static int check_one(FTSENT *ent, const char *rel, void *userdata, char *err, size_t errlen) {
        struct check_walk *c = userdata;
        const struct profile_limits *lim = c->s.lim;
        const struct stat *sb = ent->fts_statp;
        c->s.entries++;
        c->st->files++;
        if (lim->max_entries && c->s.entries > lim->max_entries)
                return fail(err, errlen, -E2BIG,
                            "archive has more than %" PRIu64 " entries (max_entries) at entry '%s'",
                            lim->max_entries, rel);
        if (S_ISLNK(sb->st_mode)) {
                char buf[PATH_MAX];
                ssize_t n = readlink(ent->fts_path, buf, sizeof buf - 1);
                if (n < 0)
                        return fail(err, errlen, -errno, "cannot read symlink '%s': %s", rel,
                                    strerror(errno));
                buf[n] = 0;
                if (!symlink_stays_inside(rel, buf))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': symlink to '%s' leads outside the "
                                    "profile",
                                    rel, buf);
                return 0;
        }
        if (!S_ISREG(sb->st_mode) && !S_ISDIR(sb->st_mode))
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': device files, FIFOs and sockets are refused", rel);
        if ((sb->st_mode & 07000) && fchmodat(AT_FDCWD, ent->fts_path, sb->st_mode & 0777, 0) < 0)
                return fail(err, errlen, -errno, "cannot clear setuid/setgid bits of '%s': %s",
                            rel, strerror(errno));
        if (!S_ISREG(sb->st_mode))
                return 0;
        uint64_t size = (uint64_t)sb->st_size;
        if (lim->max_entry_bytes && size > lim->max_entry_bytes)
                return too_big_entry(err, errlen, lim, rel, size);
        int r = inode_first_seen(&c->inodes, sb);
        if (r < 0)
                return fail(err, errlen, r, "out of memory");
        if (r > 0) {
                c->s.written += size;
                c->st->bytes += size;
                if (lim->max_total_bytes && c->s.written > lim->max_total_bytes)
                        return too_big_total(err, errlen, lim, rel);
        }
        return 0;
}

/* What both entries do first: no limits, no stats wanted and no error yet are all allowed. */
static struct profile_stats *extract_begin(const struct profile_limits **lim,
                                           struct profile_stats *stats, struct profile_stats *dummy,
                                           char *err, size_t errlen) {
        static const struct profile_limits none = { 0 };
        struct profile_stats *st = stats ? stats : dummy;
        *st = (struct profile_stats){ 0 };
        if (err && errlen)
                err[0] = 0;
        if (!*lim)
                *lim = &none;
        return st;
}

int pgsmb_profile_extract(int in_fd, const char *target, const struct profile_limits *lim,
                          const struct profile_compress *c, struct profile_stats *stats, char *err,
                          size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = extract_begin(&lim, stats, &dummy, err, errlen);
        if (!(c && c->extract_argv))
                return extract_builtin(&(struct extract_source){.fd = in_fd}, target, lim, st, err,
                                       errlen);

        int r = run_program(c->extract_argv, c->program_env, target, in_fd, -1, err, errlen);
        if (r < 0)
                return r;
        struct check_walk cw = { .s = { .lim = lim }, .st = st, .target = target };
        r = walk_tree(target, NULL, check_one, &cw, err, errlen);
        tdestroy(cw.inodes, free);
        return r;
}

int pgsmb_profile_extract_ring(int ctl_fd, const void *ring, size_t ring_size, const char *target,
                               const struct profile_limits *lim, struct profile_stats *stats, char *err,
                               size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = extract_begin(&lim, stats, &dummy, err, errlen);
        return extract_builtin(&(struct extract_source){ .fd = ctl_fd, .ring = ring, .ring_size = ring_size },
                               target, lim, st, err, errlen);
}
