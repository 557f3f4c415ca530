/* Profile archives: round trips keep what a home holds, exclusions hold, and every hostile
 * archive (built here with libarchive's writer, or byte by byte) is refused with nothing outside
 * the target touched. Runs as root or as a user; ACL and xattr checks skip where the
 * filesystem has none. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/acl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>
#include <zstd.h>

#include "pgsmb-archive.h"

static char base[256]; /* per test: base/home, base/t (target), base/victim, base/a.tar */

static void pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, len, fmt, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t)n < len);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static char *read_small(const char *path) {
        static char buf[4096];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        assert_true(n >= 0);
        buf[n] = 0;
        return buf;
}

/* The whole of a file, malloc'd (with `extra` bytes to spare); its length in *len. */
static unsigned char *read_whole(const char *path, size_t extra, size_t *len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        *len = (size_t)st.st_size;
        unsigned char *b = malloc(*len + extra + 1);
        assert_non_null(b);
        assert_int_equal(read(fd, b, *len), (ssize_t)*len);
        close(fd);
        return b;
}

/* The extracted file rel (in base/t) holds exactly data. */
static void assert_target_file_is(const char *rel, const unsigned char *data, size_t len) {
        char q[512];
        pathf(q, sizeof q, "%s/t/%s", base, rel);
        size_t got;
        unsigned char *back = read_whole(q, 0, &got);
        assert_int_equal(got, len);
        assert_memory_equal(back, data, len);
        free(back);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
        (void)sb;
        (void)flag;
        (void)f;
        return remove(p);
}

static int setup(void **state) {
        (void)state;
        snprintf(base, sizeof base, "/tmp/test-pgsmb-archive-XXXXXX");
        if (!mkdtemp(base))
                return -1;
        char p[512];
        pathf(p, sizeof p, "%s/home", base);
        mkdir(p, 0700);
        pathf(p, sizeof p, "%s/t", base);
        mkdir(p, 0700);
        pathf(p, sizeof p, "%s/victim", base);
        write_file(p, "victim", 6, 0644);
        return 0;
}

static void reset_target(void) {
        char t[512];
        pathf(t, sizeof t, "%s/t", base);
        assert_int_equal(nftw(t, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        assert_int_equal(mkdir(t, 0700), 0);
}

static int teardown(void **state) {
        (void)state;
        return nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Nothing but home, t, victim and the archive in base, and the victim unchanged. */
static void assert_outside_untouched(void) {
        char p[512];
        pathf(p, sizeof p, "%s/victim", base);
        assert_string_equal(read_small(p), "victim");
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_nlink, 1);
        DIR *d = opendir(base);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    strcmp(de->d_name, "home") && strcmp(de->d_name, "t") &&
                    strcmp(de->d_name, "victim") && strcmp(de->d_name, "a.tar"))
                        fail_msg("unexpected file outside the target: %s", de->d_name);
        closedir(d);
}

/* ---- archive building: libarchive's writer, any entry we like ---- */

struct ent {
        const char *name;
        mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO; 0 = hardlink */
        mode_t perm;
        const char *data;     /* regular file contents */
        int64_t size;         /* declared size when data is NULL (zeros written) */
        const char *linkname; /* symlink or hardlink target */
};

static void build_archive(const char *path, bool zstd, const struct ent *ents, size_t n) {
        struct archive *w = archive_write_new();
        assert_int_equal(archive_write_set_format_pax_restricted(w), ARCHIVE_OK);
        if (zstd)
                assert_int_equal(archive_write_add_filter_zstd(w), ARCHIVE_OK);
        assert_int_equal(archive_write_open_filename(w, path), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, ents[i].name);
                archive_entry_set_mtime(e, 1500000000, 0);
                if (ents[i].type == 0) {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_hardlink(e, ents[i].linkname);
                } else
                        archive_entry_set_filetype(e, ents[i].type);
                archive_entry_set_perm(e, ents[i].perm ? ents[i].perm : 0644);
                if (ents[i].type == AE_IFLNK)
                        archive_entry_set_symlink(e, ents[i].linkname);
                if (ents[i].type == AE_IFCHR)
                        archive_entry_set_rdev(e, makedev(1, 3));
                int64_t size = ents[i].data ? (int64_t)strlen(ents[i].data) : ents[i].size;
                if (ents[i].type == AE_IFREG)
                        archive_entry_set_size(e, size);
                assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
                if (ents[i].type == AE_IFREG && ents[i].data)
                        assert_int_equal(archive_write_data(w, ents[i].data, (size_t)size), size);
                else if (ents[i].type == AE_IFREG) {
                        static const char zeros[65536];
                        for (int64_t left = size; left > 0;) {
                                size_t k = left > (int64_t)sizeof zeros ? sizeof zeros : (size_t)left;
                                assert_int_equal(archive_write_data(w, zeros, k), (ssize_t)k);
                                left -= (int64_t)k;
                        }
                }
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(w), ARCHIVE_OK);
        archive_write_free(w);
}

/* Extract base/a.tar into base/t with these limits; returns pgsmb_profile_extract's result. */
static int extract_file(const struct profile_limits *lim, const struct profile_compress *c,
                        char *err, size_t errlen) {
        char p[512], t[512];
        pathf(p, sizeof p, "%s/a.tar", base);
        pathf(t, sizeof t, "%s/t", base);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        struct profile_stats st;
        int r = pgsmb_profile_extract(fd, t, lim, c, &st, err, errlen);
        close(fd);
        return r;
}

static void assert_refused(const struct ent *ents, size_t n, const struct profile_limits *lim,
                           int expect_r, const char *expect_msg) {
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        build_archive(p, true, ents, n);
        int r = extract_file(lim, NULL, err, sizeof err);
        if (r != expect_r || !strstr(err, expect_msg))
                fail_msg("expected %d '%s', got %d '%s'", expect_r, expect_msg, r, err);
        assert_outside_untouched();
}

static const struct profile_limits roomy = { .max_total_bytes = 1ull << 40,
                                             .max_entries = 1000000,
                                             .max_entry_bytes = 1ull << 38 };

/* ---- round trip ---- */

/* len bytes, seeded: runs of `run` bytes of noise and of one repeated byte, alternately (half
 * compressible). malloc'd. */
static unsigned char *half_noise(size_t len, uint32_t seed, size_t run) {
        unsigned char *b = malloc(len);
        uint32_t x = seed;

        assert_non_null(b);
        for (size_t i = 0; i < len; i++) {
                x = x * 1103515245u + 12345u;
                b[i] = (i / run) % 2 ? (unsigned char)(x >> 24) : (unsigned char)(i / run);
        }
        return b;
}

static void homef(char *buf, size_t len, const char *rel) { pathf(buf, len, "%s/home/%s", base, rel); }
static void tf(char *buf, size_t len, const char *rel) { pathf(buf, len, "%s/t/%s", base, rel); }

static int archive_home_to_file(const char *const *exclude, const struct profile_compress *c,
                                struct profile_stats *st, char *err, size_t errlen) {
        char p[512], h[512];
        pathf(p, sizeof p, "%s/a.tar", base);
        pathf(h, sizeof h, "%s/home", base);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        int r = pgsmb_profile_archive(h, exclude, c, fd, st, err, errlen);
        close(fd);
        return r;
}

static const char *odd_names[] = { "with space", "new\nline", "\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "de-\xe5\x90\x8d",
                                   "-leading-dash", "bin\xff\xfe-not-utf8" };

static bool has_acl_and_xattr_support(const char *path) {
        if (setxattr(path, "user.probe", "1", 1, 0) < 0)
                return false;
        removexattr(path, "user.probe");
        return true;
}

#define BIG_BYTES (100u * 1024 * 1024)
#define SPARSE_BYTES (1024ull * 1024 * 1024)

static void make_rich_home(bool *acls, bool with_sparse) {
        char p[512], q[512];
        for (size_t i = 0; i < sizeof odd_names / sizeof *odd_names; i++) {
                homef(p, sizeof p, odd_names[i]);
                write_file(p, odd_names[i], strlen(odd_names[i]), 0640);
        }
        homef(p, sizeof p, "sub");
        assert_int_equal(mkdir(p, 0750), 0);
        homef(p, sizeof p, "sub/file");
        write_file(p, "in sub", 6, 0755);
        homef(p, sizeof p, "emptydir");
        assert_int_equal(mkdir(p, 0700), 0);
        homef(p, sizeof p, "link-rel");
        assert_int_equal(symlink("sub/file", p), 0);
        homef(p, sizeof p, "sub/up");
        assert_int_equal(symlink("../with space", p), 0);
        homef(p, sizeof p, "hard1");
        write_file(p, "shared inode", 12, 0600);
        homef(q, sizeof q, "hard2");
        assert_int_equal(link(p, q), 0);

        /* 1 GiB apparent, 4 KiB of data in the middle (8 MiB when holes would be written out). */
        homef(p, sizeof p, "sparse");
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        char blk[4096];
        memset(blk, 'S', sizeof blk);
        off_t size = with_sparse ? (off_t)SPARSE_BYTES : 8 << 20;
        assert_int_equal(pwrite(fd, blk, sizeof blk, size / 2), (ssize_t)sizeof blk);
        assert_int_equal(ftruncate(fd, size), 0);
        close(fd);

        /* 100 MiB of non-zero, not trivially repeating data. */
        homef(p, sizeof p, "big.bin");
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        static uint32_t chunk[1 << 18];
        uint32_t x = 2463534242u;
        for (unsigned done = 0; done < BIG_BYTES; done += sizeof chunk) {
                for (size_t i = 0; i < sizeof chunk / 4; i++) {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        chunk[i] = x & 0x0f0f0f0f; /* compressible, never a zero block */
                        chunk[i] |= 0x10101010;
                }
                assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
        }
        close(fd);

        /* Times with nanoseconds, on a file, a directory and a symlink. */
        struct timespec ts[2] = { { 1500000000, 123456789 }, { 1500000000, 123456789 } };
        homef(p, sizeof p, "with space");
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
        homef(p, sizeof p, "link-rel");
        assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);

        homef(p, sizeof p, "acl-file");
        write_file(p, "acl", 3, 0640);
        *acls = has_acl_and_xattr_support(p);
        if (*acls) {
                acl_t a = acl_from_text("u::rw-,u:nobody:r--,g::r--,m::r--,o::---");
                assert_non_null(a);
                assert_int_equal(acl_set_file(p, ACL_TYPE_ACCESS, a), 0);
                acl_free(a);
                assert_int_equal(setxattr(p, "user.pgina", "hello", 5, 0), 0);
                homef(q, sizeof q, "sub");
                a = acl_from_text("u::rwx,u:nobody:r-x,g::r-x,m::r-x,o::---");
                assert_non_null(a);
                assert_int_equal(acl_set_file(q, ACL_TYPE_DEFAULT, a), 0);
                acl_free(a);
        }
        /* Directory times last: creating entries above changed them. */
        homef(p, sizeof p, "emptydir");
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
        homef(p, sizeof p, "sub");
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void assert_same_file(const char *rel) {
        char p[512], q[512];
        homef(p, sizeof p, rel);
        tf(q, sizeof q, rel);
        struct stat a, b;
        assert_int_equal(lstat(p, &a), 0);
        if (lstat(q, &b) != 0)
                fail_msg("'%s' missing after extract", rel);
        assert_int_equal(a.st_mode, b.st_mode);
        assert_int_equal(a.st_size, b.st_size);
        assert_int_equal(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
        if (S_ISLNK(a.st_mode)) {
                char x[256], y[256];
                ssize_t n = readlink(p, x, sizeof x), m = readlink(q, y, sizeof y);
                assert_true(n > 0 && n == m);
                assert_memory_equal(x, y, (size_t)n);
        } else if (S_ISREG(a.st_mode) && a.st_size < 65536) {
                char x[65536], y[65536];
                int fa = open(p, O_RDONLY | O_CLOEXEC), fb = open(q, O_RDONLY | O_CLOEXEC);
                ssize_t n = read(fa, x, sizeof x), m = read(fb, y, sizeof y);
                close(fa);
                close(fb);
                assert_true(n == m);
                assert_memory_equal(x, y, (size_t)n);
        }
}

static void assert_same_big_file(const char *rel) {
        char p[512], q[512];
        homef(p, sizeof p, rel);
        tf(q, sizeof q, rel);
        int fa = open(p, O_RDONLY | O_CLOEXEC), fb = open(q, O_RDONLY | O_CLOEXEC);
        assert_true(fa >= 0 && fb >= 0);
        static char x[1 << 20], y[1 << 20];
        for (;;) {
                ssize_t n = read(fa, x, sizeof x), m = read(fb, y, sizeof y);
                assert_int_equal(n, m);
                if (n <= 0)
                        break;
                assert_memory_equal(x, y, (size_t)n);
        }
        close(fa);
        close(fb);
}

static void assert_acl_equal(const char *rel, acl_type_t type) {
        char p[512], q[512];
        homef(p, sizeof p, rel);
        tf(q, sizeof q, rel);
        acl_t a = acl_get_file(p, type), b = acl_get_file(q, type);
        assert_non_null(a);
        assert_non_null(b);
        char *x = acl_to_text(a, NULL), *y = acl_to_text(b, NULL);
        assert_string_equal(x, y);
        assert_non_null(strstr(y, "user:nobody:r"));
        acl_free(x);
        acl_free(y);
        acl_free(a);
        acl_free(b);
}

static void check_round_trip(bool acls, bool sparse_kept) {
        char q[512];
        for (size_t i = 0; i < sizeof odd_names / sizeof *odd_names; i++)
                assert_same_file(odd_names[i]);
        assert_same_file("sub");
        assert_same_file("sub/file");
        assert_same_file("sub/up");
        assert_same_file("emptydir");
        assert_same_file("link-rel");
        assert_same_file("hard1");
        assert_same_big_file("big.bin");
        assert_same_big_file("sparse");

        struct stat a, b;
        tf(q, sizeof q, "hard1");
        assert_int_equal(stat(q, &a), 0);
        tf(q, sizeof q, "hard2");
        assert_int_equal(stat(q, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_nlink, 2);

        tf(q, sizeof q, "sparse");
        assert_int_equal(stat(q, &a), 0);
        assert_int_equal(a.st_size, sparse_kept ? (off_t)SPARSE_BYTES : 8 << 20);
        if (sparse_kept && (uint64_t)a.st_blocks * 512 > 1024 * 1024)
                fail_msg("sparse file not sparse after extract: %lld blocks", (long long)a.st_blocks);

        /* mtimes: whole seconds (assert_same_file); restricted pax stores no fractions. */

        if (acls) {
                assert_acl_equal("acl-file", ACL_TYPE_ACCESS);
                assert_acl_equal("sub", ACL_TYPE_DEFAULT);
                char v[16] = "";
                tf(q, sizeof q, "acl-file");
                assert_int_equal(getxattr(q, "user.pgina", v, sizeof v), 5);
                assert_memory_equal(v, "hello", 5);
        }
}

static void test_round_trip_keeps_odd_names_links_sparse_modes_times_acls_xattrs(void **state) {
        (void)state;
        bool acls;
        make_rich_home(&acls, true);
        char err[512] = "";
        struct profile_compress c = { .level = 3, .threads = 2 };
        struct profile_stats st = { 0 };
        int r = archive_home_to_file(NULL, &c, &st, err, sizeof err);
        if (r < 0)
                fail_msg("archive: %d %s", r, err);
        assert_true(st.files >= 15);
        assert_true(st.bytes >= BIG_BYTES + 4096);
        assert_true(st.bytes < BIG_BYTES + (1u << 20)); /* the sparse file's holes are not data */

        char p[512];
        pathf(p, sizeof p, "%s/a.tar", base);
        struct stat as;
        assert_int_equal(stat(p, &as), 0);
        assert_true(as.st_size < (off_t)BIG_BYTES); /* compressed, holes not stored */

        struct profile_stats xs = { 0 };
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        char t[512];
        pathf(t, sizeof t, "%s/t", base);
        r = pgsmb_profile_extract(fd, t, &roomy, &c, &xs, err, sizeof err);
        close(fd);
        if (r < 0)
                fail_msg("extract: %d %s", r, err);
        assert_int_equal(xs.files, st.files);
        assert_int_equal(xs.bytes, st.bytes);
        check_round_trip(acls, true);
        if (!acls)
                print_message("[  SKIP    ] no ACL/xattr support under /tmp: not checked\n");
        assert_outside_untouched();
}

/* The built-in archive is plain zstd: any decoder reads it (not only libarchive), its frames carry
 * a content checksum, and a file larger than several compression jobs comes back whole, with
 * automatic threads (0) as with one. */
#define JOBS_BYTES (9u * 1024 * 1024 + 123)

static uint32_t le32(const unsigned char *b) {
        return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Decode a whole .tar.zst with libzstd alone: every frame starts with zstd's magic and carries a
 * content checksum (which the decoder checks), the last frame is complete, the content is tar. */
static void zstd_decode_whole(const char *path, uint64_t *out_bytes, unsigned *frames) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        ZSTD_DCtx *d = ZSTD_createDCtx();
        assert_non_null(d);
        static unsigned char in[65536], out[1 << 17];
        unsigned char first[512];
        size_t have_first = 0, left = 0; /* 0: the next byte starts a frame */
        *out_bytes = 0;
        *frames = 0;
        ssize_t n;
        /* Frame boundaries fall inside a read buffer here only because the archive's frames are
         * far larger than 64 KiB apart or the file ends; a header split across reads is caught
         * by the length check. */
        while ((n = read(fd, in, sizeof in)) > 0) {
                ZSTD_inBuffer ib = { in, (size_t)n, 0 };
                while (ib.pos < ib.size) {
                        if (left == 0) {
                                assert_true(ib.size - ib.pos >= 5);
                                assert_int_equal(le32(in + ib.pos), ZSTD_MAGICNUMBER);
                                assert_true(in[ib.pos + 4] & 0x04); /* Content_Checksum_flag */
                                (*frames)++;
                        }
                        ZSTD_outBuffer ob = { out, sizeof out, 0 };
                        left = ZSTD_decompressStream(d, &ob, &ib);
                        if (ZSTD_isError(left))
                                fail_msg("zstd: %s", ZSTD_getErrorName(left));
                        if (have_first < sizeof first) {
                                size_t k = ob.pos < sizeof first - have_first
                                                   ? ob.pos
                                                   : sizeof first - have_first;
                                memcpy(first + have_first, out, k);
                                have_first += k;
                        }
                        *out_bytes += ob.pos;
                }
        }
        assert_int_equal(n, 0);
        assert_int_equal(left, 0); /* the last frame is complete */
        ZSTD_freeDCtx(d);
        close(fd);
        assert_int_equal(have_first, sizeof first);
        assert_memory_equal(first + 257, "ustar", 5); /* a tar header */
}

static void test_archive_is_checksummed_zstd_any_decoder_reads_at_any_thread_count(void **state) {
        (void)state;
        char p[512], t[512], err[512] = "";
        unsigned char *big = half_noise(JOBS_BYTES, 12345, 4096);
        homef(p, sizeof p, "big");
        write_file(p, big, JOBS_BYTES, 0600);
        homef(p, sizeof p, "small");
        write_file(p, "small", 5, 0600);
        pathf(p, sizeof p, "%s/a.tar", base);
        pathf(t, sizeof t, "%s/t", base);

        const int threads[] = { 0, 1, 3 };
        for (size_t i = 0; i < sizeof threads / sizeof *threads; i++) {
                struct profile_compress c = { .level = 3, .threads = threads[i] };
                struct profile_stats st = { 0 };
                int r = archive_home_to_file(NULL, &c, &st, err, sizeof err);
                if (r < 0)
                        fail_msg("archive (threads %d): %d %s", threads[i], r, err);
                assert_int_equal(st.files, 2);
                assert_int_equal(st.bytes, JOBS_BYTES + 5);

                uint64_t tar_bytes;
                unsigned frames;
                zstd_decode_whole(p, &tar_bytes, &frames);
                assert_true(frames >= 1);
                assert_true(tar_bytes > JOBS_BYTES);
                assert_int_equal(tar_bytes % 512, 0);

                struct stat as;
                assert_int_equal(stat(p, &as), 0);
                assert_true(as.st_size < (off_t)(JOBS_BYTES * 3 / 4)); /* compressed */

                reset_target();
                struct profile_stats xs = { 0 };
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                r = pgsmb_profile_extract(fd, t, &roomy, &c, &xs, err, sizeof err);
                close(fd);
                if (r < 0)
                        fail_msg("extract (threads %d): %d %s", threads[i], r, err);
                assert_int_equal(xs.bytes, JOBS_BYTES + 5);
                assert_true(xs.checksummed); /* the restore relies on it instead of a hash */
                assert_target_file_is("big", big, JOBS_BYTES);
        }
        free(big);
        assert_outside_untouched();
}

static void test_external_program_round_trip(void **state) {
        (void)state;
        if (access("/usr/bin/tar", X_OK) < 0 || access("/usr/bin/zstd", X_OK) < 0)
                skip();
        bool acls;
        make_rich_home(&acls, false);
        char *const aargv[] = { "/usr/bin/tar", "--zstd", "-cf", "-", ".", NULL };
        char *const xargv[] = { "/usr/bin/tar", "--zstd", "-xf", "-", NULL };
        struct profile_compress c = { .level = 3, .archive_argv = aargv, .extract_argv = xargv };
        char err[512] = "";
        int r = archive_home_to_file(NULL, &c, NULL, err, sizeof err);
        if (r < 0)
                fail_msg("archive: %d %s", r, err);
        struct profile_stats st;
        char p[512], t[512];
        pathf(p, sizeof p, "%s/a.tar", base);
        pathf(t, sizeof t, "%s/t", base);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        r = pgsmb_profile_extract(fd, t, &roomy, &c, &st, err, sizeof err);
        close(fd);
        if (r < 0)
                fail_msg("extract: %d %s", r, err);
        assert_true(st.files >= 15);
        /* GNU tar keeps names, links, modes, seconds; ACLs, xattrs and holes need its own
         * options (--acls --xattrs --sparse), which are the admin's argv. */
        check_round_trip(false, false);
}

static void test_external_program_failure_reports_status_and_stderr(void **state) {
        (void)state;
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        write_file(p, "this is not an archive at all", 29, 0600);
        char *const xargv[] = { "/usr/bin/tar", "--zstd", "-xf", "-", NULL };
        struct profile_compress c = { .extract_argv = xargv };
        int r = extract_file(&roomy, &c, err, sizeof err);
        assert_true(r < 0);
        assert_non_null(strstr(err, "exited with status"));
        char *const rel[] = { "tar", "-xf", "-", NULL };
        c.extract_argv = rel;
        r = extract_file(&roomy, &c, err, sizeof err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "absolute path"));
}

static void test_external_extract_strips_setuid_and_enforces_limits(void **state) {
        (void)state;
        if (access("/usr/bin/tar", X_OK) < 0 || access("/usr/bin/zstd", X_OK) < 0)
                skip();
        const struct ent e[] = { { "suid", AE_IFREG, 04755, "#!/bin/sh\n", 0, NULL },
                                 { "big", AE_IFREG, 0644, NULL, 4096, NULL } };
        char p[512], q[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        build_archive(p, true, e, 2);
        char *const xargv[] = { "/usr/bin/tar", "--zstd", "-xf", "-", NULL };
        struct profile_compress c = { .extract_argv = xargv };
        int r = extract_file(&roomy, &c, err, sizeof err);
        if (r < 0)
                fail_msg("extract: %s", err);
        tf(q, sizeof q, "suid");
        struct stat st;
        assert_int_equal(stat(q, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);

        struct profile_limits lim = roomy;
        lim.max_entry_bytes = 1000;
        reset_target();
        r = extract_file(&lim, &c, err, sizeof err);
        assert_int_equal(r, -EFBIG);
        assert_non_null(strstr(err, "'big'"));
}

/* ---- exclusion and size ---- */

static void test_exclude_leaves_cache_out_of_archive_and_size(void **state) {
        (void)state;
        char p[512], q[512];
        homef(p, sizeof p, ".cache");
        assert_int_equal(mkdir(p, 0700), 0);
        homef(p, sizeof p, ".cache/big");
        static char mb[1 << 20];
        memset(mb, 'c', sizeof mb);
        write_file(p, mb, sizeof mb, 0600);
        homef(p, sizeof p, "keep");
        write_file(p, "0123456789", 10, 0600);
        homef(q, sizeof q, "keep-link");
        assert_int_equal(link(p, q), 0);
        homef(p, sizeof p, "sym");
        assert_int_equal(symlink("keep", p), 0);
        homef(p, sizeof p, "d");
        assert_int_equal(mkdir(p, 0700), 0);
        homef(p, sizeof p, "d/.cache");
        write_file(p, "not excluded: only the top .cache is", 37, 0600);

        const char *const ex[] = { "./.cache/", NULL };
        char h[512], err[512] = "";
        pathf(h, sizeof h, "%s/home", base);
        uint64_t size = 0;
        assert_int_equal(pgsmb_profile_size(h, ex, &size, err, sizeof err), 0);
        assert_int_equal(size, 10 + 37); /* hardlink once, symlink not, .cache not */
        assert_int_equal(pgsmb_profile_size(h, NULL, &size, err, sizeof err), 0);
        assert_int_equal(size, 10 + 37 + sizeof mb);

        struct profile_compress c = { .level = 1 };
        assert_int_equal(archive_home_to_file(ex, &c, NULL, err, sizeof err), 0);
        assert_int_equal(extract_file(&roomy, NULL, err, sizeof err), 0);
        struct stat st;
        tf(p, sizeof p, ".cache");
        assert_int_equal(lstat(p, &st), -1);
        tf(p, sizeof p, "keep");
        assert_int_equal(stat(p, &st), 0);
        tf(p, sizeof p, "d/.cache");
        assert_int_equal(stat(p, &st), 0);

        const char *const bad[] = { "../x", NULL };
        assert_int_equal(pgsmb_profile_size(h, bad, &size, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "'../x'"));
}

/* A process of the user still appending to a file while it is archived (issue 13): the save goes
 * through with the file cut at the size its header says, and the stats say so (before: "file
 * grew while it was being archived; try again" on every retry, the profile never saved). */
struct grower {
        char path[512];
        atomic_bool stop;
};

static void *grow_file(void *arg) {
        struct grower *g = arg;
        static char chunk[4096];
        int fd = open(g->path, O_WRONLY | O_APPEND | O_CLOEXEC);
        off_t size = 0;

        memset(chunk, 'g', sizeof chunk);
        /* as fast as it can, and back to nothing at 4 MiB: its size is never the same twice */
        while (fd >= 0 && !atomic_load(&g->stop)) {
                if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
                        break;
                if ((size += (off_t)sizeof chunk) >= 4 << 20) {
                        if (ftruncate(fd, 0) < 0)
                                break;
                        size = 0;
                }
        }
        if (fd >= 0)
                close(fd);
        return NULL;
}

static void test_archive_of_a_growing_file_succeeds_and_says_so(void **state) {
        (void)state;
        struct grower g = {0};
        struct profile_compress c = {.level = 1};
        char err[512] = "", p[512];
        unsigned changed_runs = 0;
        pthread_t t;

        homef(p, sizeof p, "a-first");
        write_file(p, "before\n", 7, 0600);
        homef(g.path, sizeof g.path, "growing.log");
        write_file(g.path, "start\n", 6, 0600);
        assert_int_equal(pthread_create(&t, NULL, grow_file, &g), 0);
        usleep(20000);
        for (int i = 0; i < 200 && changed_runs < 3; i++) {
                struct profile_stats st = {0};
                int r = archive_home_to_file(NULL, &c, &st, err, sizeof err);
                if (r < 0)
                        fail_msg("archiving a growing file failed: %s", err);
                if (st.changed) {
                        changed_runs++;
                        assert_string_equal(st.first_changed, "growing.log");
                }
        }
        atomic_store(&g.stop, true);
        pthread_join(t, NULL);
        assert_true(changed_runs > 0); /* the writer outran the reader at least once */
        /* the last archive extracts whole, with the file in it */
        assert_int_equal(extract_file(&roomy, NULL, err, sizeof err), 0);
        tf(p, sizeof p, "growing.log");
        struct stat sb;
        assert_int_equal(stat(p, &sb), 0);
        assert_true(sb.st_size <= 4 << 20);
}

static void test_archive_leaves_out_symlink_leading_outside_home(void **state) {
        (void)state;
        char p[512], t[512], err[512] = "";
        struct profile_stats st = {0};
        struct stat sb;
        homef(p, sizeof p, "out");
        assert_int_equal(symlink("/usr/share", p), 0);
        homef(p, sizeof p, "kept");
        assert_int_equal(symlink("out", p), 0);
        /* the upload goes on: the link that a restore would refuse is left out and counted */
        assert_int_equal(archive_home_to_file(NULL, NULL, &st, err, sizeof err), 0);
        assert_int_equal(st.skipped_links, 1);
        assert_int_equal(extract_file(&roomy, NULL, err, sizeof err), 0);
        pathf(t, sizeof t, "%s/t/out", base);
        assert_int_equal(lstat(t, &sb), -1);
        pathf(t, sizeof t, "%s/t/kept", base);
        assert_int_equal(lstat(t, &sb), 0);
}

/* ---- hostile archives ---- */

static void test_hostile_absolute_path_refused(void **state) {
        (void)state;
        char abs[512];
        pathf(abs, sizeof abs, "%s/pwned-abs", base);
        const struct ent e[] = { { abs, AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e, 1, &roomy, -EPERM, "path leads outside the profile");
}

static void test_hostile_dotdot_refused(void **state) {
        (void)state;
        const struct ent e[] = { { "../pwned", AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e, 1, &roomy, -EPERM, "archive entry '../pwned': path leads outside");
        const struct ent e2[] = { { "a/../../pwned", AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e2, 1, &roomy, -EPERM, "'a/../../pwned': path leads outside");
}

static void test_hostile_symlink_outside_then_file_through_it_refused(void **state) {
        (void)state;
        const struct ent e[] = { { "evil", AE_IFLNK, 0777, NULL, 0, "/etc" },
                                 { "evil/pwned", AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e, 2, &roomy, -EPERM, "archive entry 'evil': symlink to '/etc' leads outside");
        const struct ent e2[] = { { "d", AE_IFLNK, 0777, NULL, 0, ".." },
                                  { "d/pwned", AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e2, 2, &roomy, -EPERM, "symlink to '..' leads outside");
}

static void test_hostile_symlink_with_dotdot_after_a_name_refused(void **state) {
        (void)state;
        /* a/b/up -> ../.. is the top (allowed); z -> a/b/up/.. looks like "a/b" but is the
         * parent of the top. */
        const struct ent e[] = { { "a", AE_IFDIR, 0755, NULL, 0, NULL },
                                 { "a/b", AE_IFDIR, 0755, NULL, 0, NULL },
                                 { "a/b/up", AE_IFLNK, 0777, NULL, 0, "../.." },
                                 { "z", AE_IFLNK, 0777, NULL, 0, "a/b/up/.." },
                                 { "z/pwned", AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e, 5, &roomy, -EPERM, "'z': symlink to 'a/b/up/..' leads outside");
}

static void test_hostile_hardlinks_leading_outside_refused(void **state) {
        (void)state;
        const struct ent e[] = { { "hl", 0, 0644, NULL, 0, "/etc/passwd" } };
        assert_refused(e, 1, &roomy, -EPERM, "'hl': hardlink to '/etc/passwd' leads outside");
        const struct ent e2[] = { { "hl", 0, 0644, NULL, 0, "../victim" } };
        assert_refused(e2, 1, &roomy, -EPERM, "hardlink to '../victim' leads outside");
        char abs[512];
        pathf(abs, sizeof abs, "%s/victim", base);
        const struct ent e3[] = { { "hl", 0, 0644, NULL, 0, abs },
                                  { "hl", AE_IFREG, 0644, "overwritten", 0, NULL } };
        assert_refused(e3, 2, &roomy, -EPERM, "leads outside");
        /* A hardlink to an inside symlink would move the link's relative target elsewhere. */
        const struct ent e4[] = { { "d", AE_IFDIR, 0755, NULL, 0, NULL },
                                  { "d/l", AE_IFLNK, 0777, NULL, 0, "../victim-in-t" },
                                  { "h", 0, 0644, NULL, 0, "d/l" } };
        assert_refused(e4, 3, &roomy, -EPERM, "'h': hardlink to 'd/l', which is not a regular file");
}

/* The fast writer never writes through what an earlier entry made: an inside symlink to a
 * directory, or a file, is not a directory of a later path. */
static void test_hostile_path_through_inside_symlink_or_file_refused(void **state) {
        (void)state;
        const struct ent e[] = { { "real", AE_IFDIR, 0755, NULL, 0, NULL },
                                 { "lnk", AE_IFLNK, 0777, NULL, 0, "real" },
                                 { "lnk/pwned", AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e, 3, &roomy, -EPERM, "'lnk/pwned': a directory of its path is a symlink");
        char p[512];
        struct stat st;
        tf(p, sizeof p, "real/pwned");
        assert_int_equal(lstat(p, &st), -1);
        const struct ent e2[] = { { "f", AE_IFREG, 0644, "data", 0, NULL },
                                  { "f/x", AE_IFREG, 0644, "x", 0, NULL } };
        assert_refused(e2, 2, &roomy, -EPERM, "'f/x': a directory of its path is a symlink or a file");
        const struct ent e3[] = { { "d", AE_IFDIR, 0755, NULL, 0, NULL },
                                  { "d", AE_IFREG, 0644, "over a dir", 0, NULL } };
        assert_refused(e3, 2, &roomy, -EPERM, "archive entry 'd' appears twice");
        const struct ent e4[] = { { "s", AE_IFLNK, 0777, NULL, 0, "x" },
                                  { "s", AE_IFDIR, 0755, NULL, 0, NULL } };
        assert_refused(e4, 2, &roomy, -EPERM, "archive entry 's/' appears twice");
}

/* Directory entries may repeat and may come after their contents; read-only directories are
 * filled and get their mode at the end; parents the archive does not list are made 0755; deep
 * trees (deeper than the writer keeps open) extract; a trailing hole keeps the file's size. */
static void test_extract_directory_order_modes_depth_and_holes(void **state) {
        (void)state;
        static char deep[64 * 100];
        size_t off = 0;
        for (int i = 0; i < 90; i++)
                off += (size_t)snprintf(deep + off, sizeof deep - off, "%sd%d", i ? "/" : "", i);
        snprintf(deep + off, sizeof deep - off, "/leaf");
        const struct ent e[] = { { "ro/inner/f", AE_IFREG, 0600, "inside", 0, NULL },
                                 { "ro/inner", AE_IFDIR, 0500, NULL, 0, NULL },
                                 { "ro", AE_IFDIR, 0700, NULL, 0, NULL },
                                 { "ro", AE_IFDIR, 0555, NULL, 0, NULL }, /* the later wins */
                                 { "./", AE_IFDIR, 0755, NULL, 0, NULL },
                                 { deep, AE_IFREG, 0640, "deep", 0, NULL },
                                 { "zeros", AE_IFREG, 0644, NULL, 3 << 20, NULL },
                                 { "empty", AE_IFREG, 0400, "", 0, NULL } };
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        build_archive(p, true, e, sizeof e / sizeof e[0]);
        if (extract_file(&roomy, NULL, err, sizeof err) != 0)
                fail_msg("extract: %s", err);
        struct stat st;
        tf(p, sizeof p, "ro");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0555);
        assert_int_equal(st.st_mtime, 1500000000);
        tf(p, sizeof p, "ro/inner");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0500);
        tf(p, sizeof p, "ro/inner/f");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_size, 6);
        assert_int_equal(st.st_mtime, 1500000000);
        tf(p, sizeof p, "zeros");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_size, 3 << 20);
        tf(p, sizeof p, "empty");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0400);
        assert_int_equal(st.st_size, 0);
        tf(p, sizeof p, "d0");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        char dp[sizeof deep + 512];
        pathf(dp, sizeof dp, "%s/t/%s", base, deep);
        assert_int_equal(lstat(dp, &st), 0);
        assert_int_equal(st.st_size, 4);
        assert_int_equal(st.st_mode & 07777, 0640);
        /* writable again, so teardown can remove the tree */
        tf(p, sizeof p, "ro");
        chmod(p, 0755);
        tf(p, sizeof p, "ro/inner");
        chmod(p, 0755);
}

/* One long directory entry repeated: the directory fixes stay bounded (an error, not gigabytes). */
static void test_hostile_repeated_directory_entries_bounded(void **state) {
        (void)state;
        static char longdir[4000];
        size_t off = 0;
        for (int i = 0; off + 250 < sizeof longdir - 1; i++)
                off += (size_t)snprintf(longdir + off, sizeof longdir - off, "%s%0200d", i ? "/" : "", i);
        enum { N = 18000 };
        struct ent *e = calloc(N, sizeof *e);
        assert_non_null(e);
        for (size_t i = 0; i < N; i++)
                e[i] = (struct ent){ longdir, AE_IFDIR, 0755, NULL, 0, NULL };
        assert_refused(e, N, &roomy, -E2BIG, "lists more directories than a profile can hold");
        free(e);
}

static void test_hostile_device_fifo_refused(void **state) {
        (void)state;
        const struct ent e[] = { { "null", AE_IFCHR, 0666, NULL, 0, NULL } };
        assert_refused(e, 1, &roomy, -EPERM, "'null': device files, FIFOs and sockets are refused");
        const struct ent e2[] = { { "fifo", AE_IFIFO, 0666, NULL, 0, NULL } };
        assert_refused(e2, 1, &roomy, -EPERM, "'fifo': device files");
        char p[512];
        tf(p, sizeof p, "null");
        struct stat st;
        assert_int_equal(lstat(p, &st), -1);
}

static void test_hostile_duplicate_entry_refused(void **state) {
        (void)state;
        const struct ent e[] = { { "x", AE_IFREG, 0644, "1", 0, NULL },
                                 { "x", AE_IFLNK, 0777, NULL, 0, "y" } };
        assert_refused(e, 2, &roomy, -EPERM, "archive entry 'x' appears twice");
}

static void test_hostile_setuid_setgid_sticky_stripped(void **state) {
        (void)state;
        const struct ent e[] = { { "suid", AE_IFREG, 04755, "#!/bin/sh\n", 0, NULL },
                                 { "sgid", AE_IFREG, 02755, "#!/bin/sh\n", 0, NULL },
                                 { "dir", AE_IFDIR, 03777, NULL, 0, NULL } };
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        build_archive(p, true, e, 3);
        assert_int_equal(extract_file(&roomy, NULL, err, sizeof err), 0);
        struct stat st;
        tf(p, sizeof p, "suid");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        tf(p, sizeof p, "sgid");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        tf(p, sizeof p, "dir");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0777);
}

static void test_hostile_entry_over_max_entry_bytes_refused(void **state) {
        (void)state;
        const struct ent e[] = { { "small", AE_IFREG, 0644, "ok", 0, NULL },
                                 { "big.bin", AE_IFREG, 0644, NULL, 2 << 20, NULL } };
        struct profile_limits lim = roomy;
        lim.max_entry_bytes = 1 << 20;
        assert_refused(e, 2, &lim, -EFBIG,
                       "archive entry 'big.bin': 2097152 bytes exceeds the per-file limit (1048576 bytes)");
        char p[512];
        tf(p, sizeof p, "big.bin");
        struct stat st;
        assert_int_equal(lstat(p, &st), -1);
}

static void test_hostile_bomb_too_many_entries_stops_at_max_entries(void **state) {
        (void)state;
        enum { N = 2000 };
        static struct ent e[N];
        static char names[N][16];
        for (int i = 0; i < N; i++) {
                snprintf(names[i], sizeof names[i], "f%d", i);
                e[i] = (struct ent){ names[i], AE_IFREG, 0644, "", 0, NULL };
        }
        struct profile_limits lim = roomy;
        lim.max_entries = 1000;
        assert_refused(e, N, &lim, -E2BIG,
                       "archive has more than 1000 entries (max_entries) at entry 'f1000'");
}

static void test_hostile_bomb_total_stops_at_max_total_bytes(void **state) {
        (void)state;
        const struct ent e[] = { { "a.bin", AE_IFREG, 0644, NULL, 60 << 20, NULL },
                                 { "b.bin", AE_IFREG, 0644, NULL, 60 << 20, NULL } };
        struct profile_limits lim = roomy;
        lim.max_total_bytes = 100 << 20;
        assert_refused(e, 2, &lim, -EFBIG,
                       "profile exceeds max_profile_size (104857600 bytes) at entry 'b.bin'");
}

/* ---- raw tar, for headers libarchive's writer would not produce ---- */

static void tar_header(unsigned char h[512], const char *name, char type, uint64_t size) {
        memset(h, 0, 512);
        snprintf((char *)h, 100, "%s", name);
        snprintf((char *)h + 100, 8, "%07o", 0644);
        snprintf((char *)h + 108, 8, "%07o", 0);
        snprintf((char *)h + 116, 8, "%07o", 0);
        snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
        snprintf((char *)h + 136, 12, "%011o", 1500000000);
        h[156] = (unsigned char)type;
        memcpy(h + 257, "ustar\0" "00", 8);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
        h[155] = ' ';
}

static void put_padded(FILE *f, const void *data, size_t len) {
        static const char zeros[512];
        assert_int_equal(fwrite(data, 1, len, f), len);
        if (len % 512)
                assert_int_equal(fwrite(zeros, 1, 512 - len % 512, f), 512 - len % 512);
}

static void pax_record(char *buf, size_t cap, size_t *len, const char *kv) {
        size_t n = strlen(kv) + 3; /* digits guess: " " and "\n" plus length */
        for (;;) {
                char tmp[32];
                size_t digits = (size_t)snprintf(tmp, sizeof tmp, "%zu", n);
                size_t total = digits + 1 + strlen(kv) + 1;
                if (total == n)
                        break;
                n = total;
        }
        *len += (size_t)snprintf(buf + *len, cap - *len, "%zu %s\n", n, kv);
}

/* A pax sparse (1.0) entry whose header says 10 bytes while its map carries `data_bytes`. */
static void write_lying_sparse_tar(const char *path, size_t data_bytes) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        char pax[1024];
        size_t plen = 0;
        pax_record(pax, sizeof pax, &plen, "GNU.sparse.major=1");
        pax_record(pax, sizeof pax, &plen, "GNU.sparse.minor=0");
        pax_record(pax, sizeof pax, &plen, "GNU.sparse.name=liar.bin");
        pax_record(pax, sizeof pax, &plen, "GNU.sparse.realsize=10");
        unsigned char h[512];
        tar_header(h, "PaxHeaders/liar.bin", 'x', plen);
        put_padded(f, h, 512);
        put_padded(f, pax, plen);
        char map[512];
        int mlen = snprintf(map, sizeof map, "1\n0\n%zu\n", data_bytes);
        tar_header(h, "GNUSparseFile.0/liar.bin", '0', 512 + data_bytes);
        put_padded(f, h, 512);
        memset(map + mlen, 0, sizeof map - (size_t)mlen);
        put_padded(f, map, 512);
        char *data = malloc(data_bytes);
        assert_non_null(data);
        memset(data, 'L', data_bytes);
        put_padded(f, data, data_bytes);
        free(data);
        static const char end[1024];
        assert_int_equal(fwrite(end, 1, sizeof end, f), sizeof end);
        assert_int_equal(fclose(f), 0);
}

static void test_hostile_header_under_reporting_size_stops_at_limits(void **state) {
        (void)state;
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        write_lying_sparse_tar(p, 4 << 20);
        struct profile_limits lim = roomy;
        lim.max_total_bytes = 1 << 20;
        int r = extract_file(&lim, NULL, err, sizeof err);
        if (r >= 0)
                fail_msg("lying sparse header accepted");
        /* Refused at the first byte past the declared size (libarchive's disk writer would
         * also truncate there); the written-bytes counter is the backstop behind both. */
        if (!strstr(err, "archive entry 'liar.bin': data beyond its declared size (10 bytes)"))
                fail_msg("unexpected error: %s", err);
        struct stat st;
        tf(p, sizeof p, "liar.bin");
        if (lstat(p, &st) == 0)
                assert_true((uint64_t)st.st_blocks * 512 <= (2u << 20));
        assert_outside_untouched();

        /* Plain ustar size under-reporting: the rest of the data is read as the next header,
         * which libarchive or our checks refuse. */
        reset_target();
        pathf(p, sizeof p, "%s/a.tar", base);
        FILE *f = fopen(p, "we");
        unsigned char h[512];
        tar_header(h, "short", '0', 10);
        put_padded(f, h, 512);
        static char junk[8192];
        memset(junk, 'J', sizeof junk);
        put_padded(f, junk, sizeof junk);
        fclose(f);
        r = extract_file(&roomy, NULL, err, sizeof err);
        if (r >= 0 || !*err)
                fail_msg("under-reported ustar size: %d '%s'", r, err);
        assert_outside_untouched();
}

static void test_hostile_garbage_and_truncated_archives_refused(void **state) {
        (void)state;
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        static unsigned char junk[100000];
        uint32_t x = 12345;
        for (size_t i = 0; i < sizeof junk; i++) {
                x = x * 1103515245u + 12345u;
                junk[i] = (unsigned char)(x >> 16);
        }
        write_file(p, junk, sizeof junk, 0600);
        int r = extract_file(&roomy, NULL, err, sizeof err);
        assert_true(r < 0);
        assert_true(strlen(err) > 0);

        /* zstd magic, then garbage */
        junk[0] = 0x28, junk[1] = 0xb5, junk[2] = 0x2f, junk[3] = 0xfd;
        write_file(p, junk, sizeof junk, 0600);
        assert_true(extract_file(&roomy, NULL, err, sizeof err) < 0);

        /* a good archive, cut in the middle of the data */
        const struct ent e[] = { { "a", AE_IFREG, 0644, NULL, 1 << 20, NULL },
                                 { "b", AE_IFREG, 0644, "bbb", 0, NULL } };
        build_archive(p, false, e, 2);
        assert_int_equal(truncate(p, 600 * 1024), 0);
        r = extract_file(&roomy, NULL, err, sizeof err);
        assert_true(r < 0);
        assert_non_null(strstr(err, "'a'"));

        build_archive(p, true, e, 2);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(truncate(p, st.st_size / 2), 0);
        assert_true(extract_file(&roomy, NULL, err, sizeof err) < 0);

        /* empty input */
        write_file(p, "", 0, 0600);
        assert_true(extract_file(&roomy, NULL, err, sizeof err) < 0);
        assert_outside_untouched();
}

/* One zstd frame of src, with or without a content checksum. */
static size_t zstd_frame(void *dst, size_t cap, const void *src, size_t n, bool checksum) {
        ZSTD_CCtx *c = ZSTD_createCCtx();
        assert_non_null(c);
        assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum)));
        size_t k = ZSTD_compress2(c, dst, cap, src, n);
        assert_false(ZSTD_isError(k));
        ZSTD_freeCCtx(c);
        return k;
}

/* Several zstd frames one after the other (what a multi-threaded or external compressor may
 * write) are one stream; a stream larger than the decompressing thread's buffers goes through. */
static void test_extract_multi_frame_zstd(void **state) {
        (void)state;
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        const struct ent e[] = { { "big", AE_IFREG, 0644, NULL, 9 << 20, NULL },
                                 { "small", AE_IFREG, 0600, "tail data", 0, NULL } };
        build_archive(p, false, e, 2);
        size_t n;
        unsigned char *raw = read_whole(p, 0, &n);
        size_t half = n / 2 + 12345;
        struct stat st;
        size_t cap = ZSTD_compressBound(n) + 64;
        unsigned char *z = malloc(cap);
        assert_non_null(z);
        size_t k1 = zstd_frame(z, cap, raw, half, false);
        size_t k2 = zstd_frame(z + k1, cap - k1, raw + half, n - half, false);
        write_file(p, z, k1 + k2, 0600);
        free(raw);
        free(z);
        if (extract_file(&roomy, NULL, err, sizeof err) != 0)
                fail_msg("extract: %s", err);
        tf(p, sizeof p, "big");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_size, 9 << 20);
        tf(p, sizeof p, "small");
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_size, 9);
}

/* stats.checksummed (what lets a restore skip hashing the download) is true only when every
 * frame declared a content checksum, also when a frame's header straddles two of the reading
 * thread's 1 MiB reads; an uncompressed tar is never "checksummed". */
static void test_extract_checksummed_only_when_every_frame_is(void **state) {
        (void)state;
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        /* a tar whose first 2 MiB are noise (stored raw by zstd: the frame's size follows the
         * input's, so the first frame can be made to end 2 bytes before 1 MiB) */
        const struct ent e[] = { { "noise", AE_IFREG, 0644, NULL, 2 << 20, NULL },
                                 { "tail", AE_IFREG, 0600, "tail data", 0, NULL } };
        build_archive(p, false, e, 2);
        size_t n;
        unsigned char *raw = read_whole(p, 0, &n);
        int fd;
        uint32_t x = 777;
        /* inside the data of "noise" whatever its header's size (512 bytes, more with pax) */
        for (size_t i = 4096; i < (2 << 20) - 4096; i++) {
                x = x * 1103515245u + 12345u;
                raw[i] = (unsigned char)(x >> 24);
        }
        size_t cap = ZSTD_compressBound(n) + 64;
        unsigned char *z = malloc(cap);
        assert_non_null(z);
        const size_t target = (1 << 20) - 2;
        const struct {
                bool a, b, want;
        } cases[] = { { true, true, true }, { true, false, false }, { false, true, false },
                      { false, false, false } };
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
                /* find the cut whose first frame is `target` bytes long */
                size_t cut = target - 64, k1 = 0;
                for (int tries = 0; tries < 20; tries++) {
                        k1 = zstd_frame(z, cap, raw, cut, cases[c].a);
                        if (k1 == target)
                                break;
                        cut = k1 < target ? cut + (target - k1) : cut - (k1 - target);
                }
                assert_int_equal(k1, target);
                size_t k2 = zstd_frame(z + k1, cap - k1, raw + cut, n - cut, cases[c].b);
                write_file(p, z, k1 + k2, 0600);
                reset_target();
                char t[512];
                pathf(t, sizeof t, "%s/t", base);
                struct profile_stats xs = { 0 };
                fd = open(p, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                int r = pgsmb_profile_extract(fd, t, &roomy, NULL, &xs, err, sizeof err);
                close(fd);
                if (r != 0)
                        fail_msg("extract (case %zu): %s", c, err);
                assert_int_equal(xs.bytes, (2 << 20) + 9);
                if (xs.checksummed != cases[c].want)
                        fail_msg("case %zu: checksummed %d, expected %d", c, xs.checksummed, cases[c].want);
        }
        /* uncompressed */
        write_file(p, raw, n, 0600);
        reset_target();
        char t[512];
        pathf(t, sizeof t, "%s/t", base);
        struct profile_stats xs = { .checksummed = true };
        fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_int_equal(pgsmb_profile_extract(fd, t, &roomy, NULL, &xs, err, sizeof err), 0);
        close(fd);
        assert_false(xs.checksummed);
        free(raw);
        free(z);
}

/* The stream is read and checked to its very end, past the tar's end marker: a damaged frame
 * checksum (the last 4 bytes) or garbage after the last frame fails the extraction. */
static void test_extract_checks_the_stream_past_the_archive_end(void **state) {
        (void)state;
        char p[512], t[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        pathf(t, sizeof t, "%s/t", base);
        homef(p, sizeof p, "f");
        write_file(p, "some content\n", 13, 0600);
        struct profile_compress c = { .level = 3 };
        struct profile_stats st = { 0 };
        assert_int_equal(archive_home_to_file(NULL, &c, &st, err, sizeof err), 0);
        pathf(p, sizeof p, "%s/a.tar", base);
        size_t n;
        unsigned char *good = read_whole(p, 16, &n);
        /* as it is: fine */
        reset_target();
        assert_int_equal(extract_file(&roomy, NULL, err, sizeof err), 0);

        good[n - 1] ^= 0x5a; /* the frame's checksum */
        write_file(p, good, n, 0600);
        reset_target();
        assert_int_equal(extract_file(&roomy, NULL, err, sizeof err), -EBADMSG);
        /* seen by the decompressing thread before or after the last entry was read */
        if (!strstr(err, "checksum"))
                fail_msg("no word of the checksum: %s", err);
        good[n - 1] ^= 0x5a;

        memcpy(good + n, "trailing junk!", 14); /* not a frame */
        write_file(p, good, n + 14, 0600);
        reset_target();
        assert_true(extract_file(&roomy, NULL, err, sizeof err) < 0);
        free(good);
        assert_outside_untouched();
}

/* A restore reads a socket whose writer (the store side) may still be sending when extraction
 * fails: the decompressing thread, blocked reading, must be woken up, and pgsmb_profile_extract must
 * return at once with the entry's error, not wait for the writer to give up. */
static void test_extract_failing_mid_stream_returns_while_the_writer_still_sends(void **state) {
        (void)state;
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        /* the duplicate comes in the first zstd blocks; fewer follow than the thread buffers,
         * so it waits in read() for the held-back end */
        const struct ent e[] = { { "x", AE_IFREG, 0644, "1", 0, NULL },
                                 { "x", AE_IFREG, 0644, "2", 0, NULL },
                                 { "big", AE_IFREG, 0644, NULL, 2 << 20, NULL } };
        build_archive(p, true, e, 3);
        size_t len;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        len = (size_t)st.st_size;
        char *buf = malloc(len);
        assert_non_null(buf);
        assert_int_equal(read(fd, buf, len), (ssize_t)len);
        close(fd);
        /* The archive's last byte is held back: the stream never ends while the writer lives. */
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                (void)!write(sv[1], buf, len - 1);
                sleep(30);
                _exit(0);
        }
        close(sv[1]);
        free(buf);
        char t[512];
        pathf(t, sizeof t, "%s/t", base);
        time_t t0 = time(NULL);
        struct profile_stats ps;
        int r = pgsmb_profile_extract(sv[0], t, &roomy, NULL, &ps, err, sizeof err);
        time_t took = time(NULL) - t0;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sv[0]);
        assert_int_equal(r, -EPERM);
        assert_non_null(strstr(err, "appears twice"));
        assert_true(took < 10);
}

/* The restore's ring (pgsmb_profile_extract_ring): a writer process plays the store side, filling a
 * shared ring in pieces that wrap around its end and waiting for the reader's "consumed" totals
 * before it overwrites; bad=true sends a position past what the ring can hold. */
static void ring_writer(int ctl, unsigned char *ring, size_t ring_size, const unsigned char *data,
                        size_t len, size_t piece, bool bad) {
        uint64_t produced = 0, acked = 0;
        unsigned char part[8];
        size_t npart = 0;

        while (produced < len) {
                size_t off = (size_t)(produced % ring_size), n = piece;
                if (n > ring_size - off)
                        n = ring_size - off;
                if (n > len - produced)
                        n = (size_t)(len - produced);
                while (produced + n - acked > ring_size) {
                        unsigned char b[64];
                        memcpy(b, part, npart);
                        ssize_t k = read(ctl, b + npart, sizeof b - npart);
                        if (k <= 0)
                                _exit(3);
                        size_t have = npart + (size_t)k, whole = have / 8 * 8;
                        for (size_t i = 0; i < whole; i += 8)
                                memcpy(&acked, b + i, 8);
                        npart = have - whole;
                        memcpy(part, b + whole, npart);
                }
                memcpy(ring + off, data + produced, n);
                produced += n;
                uint64_t v = bad ? produced + 2 * ring_size : produced;
                if (write(ctl, &v, sizeof v) != sizeof v)
                        _exit(4);
                if (bad)
                        break;
        }
        /* as the restore does: the end, then the reader's answers to its close */
        shutdown(ctl, SHUT_WR);
        unsigned char b[512];
        while (read(ctl, b, sizeof b) > 0)
                ;
        _exit(0);
}

static int extract_through_ring(const char *archive, size_t ring_size, size_t piece, bool bad,
                                struct profile_stats *xs, char *err, size_t errlen) {
        size_t len;
        unsigned char *data = read_whole(archive, 0, &len);
        unsigned char *ring = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(ring != MAP_FAILED);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                ring_writer(sv[1], ring, ring_size, data, len, piece, bad);
        }
        close(sv[1]);
        free(data);
        char t[512];
        pathf(t, sizeof t, "%s/t", base);
        reset_target();
        int r = pgsmb_profile_extract_ring(sv[0], ring, ring_size, t, &roomy, xs, err, errlen);
        close(sv[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!bad && r == 0)
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        munmap(ring, ring_size);
        return r;
}

static void test_extract_through_a_shared_ring(void **state) {
        (void)state;
        char p[512], err[512] = "";
        const size_t big_len = 5u * 1024 * 1024 + 77;
        unsigned char *big = half_noise(big_len, 99, 8192);
        homef(p, sizeof p, "big");
        write_file(p, big, big_len, 0600);
        homef(p, sizeof p, "small");
        write_file(p, "small", 5, 0640);
        struct profile_compress c = { .level = 3 };
        struct profile_stats st = { 0 };
        assert_int_equal(archive_home_to_file(NULL, &c, &st, err, sizeof err), 0);
        pathf(p, sizeof p, "%s/a.tar", base);

        /* zstd, through a ring far smaller than the archive, in pieces that do not divide it */
        struct profile_stats xs = { 0 };
        if (extract_through_ring(p, 1u << 20, 300001, false, &xs, err, sizeof err) != 0)
                fail_msg("ring extract: %s", err);
        assert_int_equal(xs.files, 2);
        assert_int_equal(xs.bytes, big_len + 5);
        assert_true(xs.checksummed);
        assert_target_file_is("big", big, big_len);
        free(big);

        /* an uncompressed tar, in pieces larger than the decompressing thread's buffers */
        const struct ent e[] = { { "plain", AE_IFREG, 0644, NULL, 3 << 20, NULL },
                                 { "tail", AE_IFREG, 0600, "tail data", 0, NULL } };
        build_archive(p, false, e, 2);
        xs = (struct profile_stats){ 0 };
        if (extract_through_ring(p, 4u << 20, 5u << 19, false, &xs, err, sizeof err) != 0)
                fail_msg("ring extract (plain): %s", err);
        assert_int_equal(xs.bytes, (3 << 20) + 9);
        assert_false(xs.checksummed);

        /* a writer announcing more than the ring holds is refused, not believed */
        assert_int_equal(archive_home_to_file(NULL, &c, &st, err, sizeof err), 0);
        int r = extract_through_ring(p, 1u << 20, 300001, true, &xs, err, sizeof err);
        assert_true(r < 0);
        if (!strstr(err, "impossible position"))
                fail_msg("no word of the bad position: %s", err);
        assert_outside_untouched();
}

static void test_extract_rejects_other_compression(void **state) {
        (void)state;
        char p[512], err[512] = "";
        pathf(p, sizeof p, "%s/a.tar", base);
        struct archive *w = archive_write_new();
        archive_write_set_format_pax_restricted(w);
        archive_write_add_filter_gzip(w);
        assert_int_equal(archive_write_open_filename(w, p), ARCHIVE_OK);
        archive_write_close(w);
        archive_write_free(w);
        assert_true(extract_file(&roomy, NULL, err, sizeof err) < 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
                T(test_round_trip_keeps_odd_names_links_sparse_modes_times_acls_xattrs),
                T(test_archive_is_checksummed_zstd_any_decoder_reads_at_any_thread_count),
                T(test_extract_checksummed_only_when_every_frame_is),
                T(test_extract_checks_the_stream_past_the_archive_end),
                T(test_extract_through_a_shared_ring),
                T(test_external_program_round_trip),
                T(test_external_program_failure_reports_status_and_stderr),
                T(test_external_extract_strips_setuid_and_enforces_limits),
                T(test_exclude_leaves_cache_out_of_archive_and_size),
                T(test_archive_of_a_growing_file_succeeds_and_says_so),
                T(test_archive_leaves_out_symlink_leading_outside_home),
                T(test_hostile_absolute_path_refused),
                T(test_hostile_dotdot_refused),
                T(test_hostile_symlink_outside_then_file_through_it_refused),
                T(test_hostile_symlink_with_dotdot_after_a_name_refused),
                T(test_hostile_hardlinks_leading_outside_refused),
                T(test_hostile_path_through_inside_symlink_or_file_refused),
                T(test_extract_directory_order_modes_depth_and_holes),
                T(test_hostile_repeated_directory_entries_bounded),
                T(test_hostile_device_fifo_refused),
                T(test_hostile_duplicate_entry_refused),
                T(test_hostile_setuid_setgid_sticky_stripped),
                T(test_hostile_entry_over_max_entry_bytes_refused),
                T(test_hostile_bomb_too_many_entries_stops_at_max_entries),
                T(test_hostile_bomb_total_stops_at_max_total_bytes),
                T(test_hostile_header_under_reporting_size_stops_at_limits),
                T(test_hostile_garbage_and_truncated_archives_refused),
                T(test_extract_multi_frame_zstd),
                T(test_extract_failing_mid_stream_returns_while_the_writer_still_sends),
                T(test_extract_rejects_other_compression),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
