/* Delta profiles, the walk (as the user): the delta archive holds exactly the entries that changed since
 * the record, the scan flags them '+' and the rest '=', the scan alone lists the same entries,
 * exclusions and outside links stay out of both, and a hostile record is refused with its line.
 * Runs in-process (pgsmb_profile_delta) and through the program's own entry (userwork_main in a
 * forked child with descriptors 3-6 set as pgsmb-helper.c sets them). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <time.h>

#include "pgsmb-archive.h"
#include "pgsmb-scan.h"
#include "pgsmb-userwork-prefetch.h"
#include "pgsmb-userwork.h"

static char base[256]; /* per test: base/home, base/a.tar */

static void pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, len, fmt, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t)n < len);
}

static void homef(char *buf, size_t len, const char *rel) { pathf(buf, len, "%s/home/%s", base, rel); }

static void put(const char *rel, const char *data) {
        char p[512];
        homef(p, sizeof p, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
        close(fd);
}

static void mkd(const char *rel) {
        char p[512];
        homef(p, sizeof p, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
        (void)sb;
        (void)flag;
        (void)f;
        return remove(p);
}

static int setup(void **state) {
        (void)state;
        snprintf(base, sizeof base, "/tmp/test-pgsmb-delta-walk-XXXXXX");
        if (!mkdtemp(base))
                return -1;
        char p[512];
        pathf(p, sizeof p, "%s/home", base);
        return mkdir(p, 0700);
}

static int teardown(void **state) {
        (void)state;
        return nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A home of a few kinds: directories (one inside another), files, a symlink inside, one leading
 * outside, a cache to exclude. */
static void make_home(void) {
        mkd("a");
        put("a/f1", "one");
        put("a/f2", "two");
        mkd("b");
        mkd("b/inner");
        put("b/inner/deep", "deep");
        put("t1", "top");
        put("t2", "gone soon");
        mkd("cache");
        put("cache/junk", "junk");
        char p[512];
        homef(p, sizeof p, "l");
        assert_int_equal(symlink("t1", p), 0);
        homef(p, sizeof p, "out");
        assert_int_equal(symlink("/etc/passwd", p), 0);
}

static const char *const no_exclude[] = { NULL };
static const char *const exclude_cache[] = { "cache", NULL };

/* pgsmb_profile_delta of the home: the archive to base/a.tar (archive false: a scan only), the
 * scan parsed into *scan. */
static int run_delta(const struct scan *record, const char *const *exclude, bool archive, struct scan *scan,
                     struct profile_stats *st, char *err, size_t errlen) {
        char home[512], tar[512];
        const struct profile_compress c = { .level = 3, .threads = 1 };
        pathf(home, sizeof home, "%s/home", base);
        pathf(tar, sizeof tar, "%s/a.tar", base);
        int out = -1;
        if (archive) {
                out = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                assert_true(out >= 0);
        }
        int sfd = memfd_create("scan", MFD_CLOEXEC);
        assert_true(sfd >= 0);
        int r = pgsmb_profile_delta(home, exclude, &c, record, out, sfd, st, err, errlen);
        if (out >= 0)
                close(out);
        scan_init(scan);
        if (r == 0) {
                size_t line = 0;
                assert_int_equal(lseek(sfd, 0, SEEK_SET), 0);
                assert_int_equal(scan_read_fd(scan, sfd, SCAN_BYTES_MAX, &line), 0);
        }
        close(sfd);
        return r;
}

/* What base/a.tar holds: its paths (no trailing '/'), sorted, joined by ' '; *hardlinks counts hardlink entries. */
static char *archive_paths(unsigned *hardlinks) {
        static char out[4096];
        char tar[512], *names[64];
        size_t n = 0;
        pathf(tar, sizeof tar, "%s/a.tar", base);
        struct archive *a = archive_read_new();
        assert_non_null(a);
        archive_read_support_filter_zstd(a);
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_filename(a, tar, 65536), ARCHIVE_OK);
        struct archive_entry *e;
        int r;
        if (hardlinks)
                *hardlinks = 0;
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                assert_true(n < 64);
                char *name = strdup(archive_entry_pathname(e));
                assert_non_null(name);
                size_t len = strlen(name);
                if (len > 1 && name[len - 1] == '/') /* the writer's mark of a directory */
                        name[len - 1] = 0;
                names[n++] = name;
                if (hardlinks && archive_entry_hardlink(e))
                        (*hardlinks)++;
        }
        assert_int_equal(r, ARCHIVE_EOF);
        archive_read_free(a);
        for (size_t i = 1; i < n; i++) /* insertion sort: a few names */
                for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
                        char *t = names[j];
                        names[j] = names[j - 1];
                        names[j - 1] = t;
                }
        out[0] = 0;
        for (size_t i = 0; i < n; i++) {
                if (i)
                        strcat(out, " ");
                strcat(out, names[i]);
                free(names[i]);
        }
        return out;
}

/* The scan's paths with the given flag (0: any), in order, joined by ' '. */
static char *scan_paths(const struct scan *s, char flag) {
        static char out[4096];
        out[0] = 0;
        for (size_t i = 0; i < s->n; i++) {
                if (flag && s->v[i].flag != flag)
                        continue;
                if (out[0])
                        strcat(out, " ");
                strcat(out, s->v[i].path);
        }
        return out;
}

static void test_delta_holds_exactly_the_changed_entries_and_flags_them(void **state) {
        (void)state;
        make_home();
        struct scan full, next;
        struct profile_stats st;
        char err[512], p[512];

        assert_int_equal(run_delta(NULL, exclude_cache, true, &full, &st, err, sizeof err), 0);
        /* no record: everything kept is new; the outside link and the cache are out of both */
        assert_string_equal(scan_paths(&full, '+'), "a a/f1 a/f2 b b/inner b/inner/deep l t1 t2");
        assert_string_equal(scan_paths(&full, 0), scan_paths(&full, '+'));
        assert_string_equal(archive_paths(NULL), "a a/f1 a/f2 b b/inner b/inner/deep l t1 t2");
        assert_int_equal(st.files, 9);
        assert_int_equal(st.skipped_links, 1);
        assert_int_equal(st.bytes, 3 + 3 + 4 + 3 + 9);

        /* The changes of a session. Sizes change with the content: the test is about what the
         * delta does with a stat, not about the clock's granularity. */
        put("a/f1", "one, changed");
        put("a/new", "new file");
        homef(p, sizeof p, "t2");
        assert_int_equal(unlink(p), 0);
        homef(p, sizeof p, "b");
        assert_int_equal(chmod(p, 0750), 0);
        homef(p, sizeof p, "l");
        const struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
        assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);

        assert_int_equal(run_delta(&full, exclude_cache, true, &next, &st, err, sizeof err), 0);
        /* a: a new entry in it; t2: gone, in neither; the home itself is never listed */
        assert_string_equal(scan_paths(&next, '+'), "a a/f1 a/new b l");
        assert_string_equal(scan_paths(&next, '='), "a/f2 b/inner b/inner/deep t1");
        assert_string_equal(archive_paths(NULL), "a a/f1 a/new b l");
        assert_int_equal(st.files, 5);
        assert_int_equal(st.bytes, strlen("one, changed") + strlen("new file"));
        const struct scan_entry *b = scan_find(&next, "b");
        assert_non_null(b);
        assert_int_equal(b->mode, 0750);
        assert_int_equal(b->type, 'd');

        /* and nothing changed since: an empty archive, every line '=' */
        struct scan again;
        assert_int_equal(run_delta(&next, exclude_cache, true, &again, &st, err, sizeof err), 0);
        assert_string_equal(scan_paths(&again, '+'), "");
        assert_string_equal(scan_paths(&again, 0), scan_paths(&next, 0));
        assert_string_equal(archive_paths(NULL), "");
        assert_int_equal(st.files, 0);
        scan_free(&again);
        scan_free(&full);
        scan_free(&next);
}

static void test_record_with_another_inode_or_mode_is_changed(void **state) {
        (void)state;
        make_home();
        struct scan full, next;
        struct profile_stats st;
        char err[512];

        assert_int_equal(run_delta(NULL, no_exclude, false, &full, &st, err, sizeof err), 0);
        for (size_t i = 0; i < full.n; i++) {
                if (strcmp(full.v[i].path, "t1") == 0)
                        full.v[i].ino++; /* the same name, another file (a rename over it) */
                if (strcmp(full.v[i].path, "a/f2") == 0)
                        full.v[i].mode ^= 0100;
                if (strcmp(full.v[i].path, "b/inner") == 0)
                        full.v[i].type = 'f';
        }
        assert_int_equal(run_delta(&full, no_exclude, true, &next, &st, err, sizeof err), 0);
        assert_string_equal(scan_paths(&next, '+'), "a/f2 b/inner t1");
        assert_string_equal(archive_paths(NULL), "a/f2 b/inner t1");
        scan_free(&full);
        scan_free(&next);
}

static void test_scan_lists_what_the_delta_lists_every_flag_equal(void **state) {
        (void)state;
        make_home();
        struct scan only, delta;
        struct profile_stats st;
        char err[512];

        for (int k = 0; k < 2; k++) {
                const char *const *ex = k ? exclude_cache : no_exclude;
                assert_int_equal(run_delta(NULL, ex, false, &only, &st, err, sizeof err), 0);
                assert_int_equal(run_delta(NULL, ex, true, &delta, &st, err, sizeof err), 0);
                assert_string_equal(scan_paths(&only, '='), scan_paths(&delta, '+'));
                assert_string_equal(scan_paths(&only, '+'), "");
                assert_int_equal(only.n, delta.n);
                for (size_t i = 0; i < only.n; i++) {
                        struct scan_entry x = only.v[i], y = delta.v[i];
                        assert_int_equal(x.type, y.type);
                        assert_int_equal(x.mode, y.mode);
                        assert_int_equal(x.ino, y.ino);
                        assert_int_equal(x.size, y.size);
                        assert_int_equal(x.mtime_s, y.mtime_s);
                        assert_int_equal(x.mtime_ns, y.mtime_ns);
                }
                assert_true(strstr(scan_paths(&only, 0), "cache") ? !k : k);
                assert_null(strstr(scan_paths(&only, 0), "out"));
                scan_free(&only);
                scan_free(&delta);
        }
}

/* A hardlink within the delta stays one; an unchanged path linked to a changed one joins it in
 * the delta (as a hardlink, its line '+'), whichever the walk meets first: no hardlink ever
 * spans two archives. */
static void test_hardlinks_within_the_delta_and_across_archives(void **state) {
        (void)state;
        char p[512], q[512];
        struct scan full, next;
        struct profile_stats st;
        char err[512];

        mkd("a");
        put("a/h1", "linked data");
        homef(p, sizeof p, "a/h1");
        homef(q, sizeof q, "a/h2");
        assert_int_equal(link(p, q), 0);
        assert_int_equal(run_delta(NULL, no_exclude, true, &full, &st, err, sizeof err), 0);
        unsigned links = 0;
        assert_string_equal(archive_paths(&links), "a a/h1 a/h2");
        assert_int_equal(links, 1);
        assert_int_equal(st.bytes, strlen("linked data"));

        /* a record that says h1 is saved, h2 is not */
        struct scan rec;
        scan_init(&rec);
        for (size_t i = 0; i < full.n; i++)
                if (strcmp(full.v[i].path, "a/h2") != 0) {
                        struct scan_entry e = full.v[i];
                        assert_non_null(e.path = strdup(e.path));
                        assert_int_equal(scan_add(&rec, &e), 0);
                }
        assert_int_equal(scan_sort(&rec), 0);
        assert_int_equal(run_delta(&rec, no_exclude, true, &next, &st, err, sizeof err), 0);
        assert_string_equal(scan_paths(&next, '+'), "a/h1 a/h2");
        assert_string_equal(scan_paths(&next, '='), "a");
        assert_string_equal(archive_paths(&links), "a/h1 a/h2");
        assert_int_equal(links, 1);
        assert_int_equal(st.files, 2);
        assert_int_equal(st.bytes, strlen("linked data"));
        /* the other way round: h2 saved, h1 not */
        scan_free(&rec);
        scan_free(&next);
        scan_init(&rec);
        for (size_t i = 0; i < full.n; i++)
                if (strcmp(full.v[i].path, "a/h1") != 0) {
                        struct scan_entry e = full.v[i];
                        assert_non_null(e.path = strdup(e.path));
                        assert_int_equal(scan_add(&rec, &e), 0);
                }
        assert_int_equal(scan_sort(&rec), 0);
        assert_int_equal(run_delta(&rec, no_exclude, true, &next, &st, err, sizeof err), 0);
        assert_string_equal(scan_paths(&next, '+'), "a/h1 a/h2");
        assert_string_equal(archive_paths(&links), "a/h1 a/h2");
        assert_int_equal(links, 1);
        /* and with both saved, neither */
        scan_free(&next);
        assert_int_equal(run_delta(&full, no_exclude, true, &next, &st, err, sizeof err), 0);
        assert_string_equal(scan_paths(&next, '+'), "");
        assert_string_equal(archive_paths(NULL), "");
        scan_free(&rec);
        scan_free(&full);
        scan_free(&next);
}

/* Extract base/<name> into base/t (created empty) with the want list `want` (space-separated). */
static int extract_want(const char *name, const char *want, char *err, size_t errlen) {
        char tar[512], t[512], *list[32], buf[1024];
        size_t n = 0;
        pathf(tar, sizeof tar, "%s/%s", base, name);
        pathf(t, sizeof t, "%s/t", base);
        mkdir(t, 0700);
        snprintf(buf, sizeof buf, "%s", want);
        for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
                list[n++] = w;
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && strcmp(list[j - 1], list[j]) > 0; j--) {
                        char *x = list[j];
                        list[j] = list[j - 1];
                        list[j - 1] = x;
                }
        const struct profile_limits lim = { 0 };
        const struct extract_opts o = { .want = list, .nwant = n, .no_dirfix = true };
        int fd = open(tar, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        int r = pgsmb_profile_extract_opts(fd, NULL, 0, t, &lim, &o, NULL, err, errlen);
        close(fd);
        return r;
}

static void save_archive_as(const char *name) {
        char a[512], b[512];
        pathf(a, sizeof a, "%s/a.tar", base);
        pathf(b, sizeof b, "%s/%s", base, name);
        assert_int_equal(rename(a, b), 0);
}

/* A chain restore asks each archive for the paths current there: the '+' paths of the last scan
 * from the delta, its '=' paths from the base. Two hardlinked paths must be current in the same
 * archive, or one of them is a link to a path the restore never asks for. */
static void test_hardlinks_stay_together_when_one_path_moves(void **state) {
        (void)state;
        char p[512], q[512], err[512];
        struct scan s0, s1;
        struct profile_stats st;

        mkd("d1");
        mkd("d2");
        put("d1/x", "shared content");
        homef(p, sizeof p, "d1/x");
        homef(q, sizeof q, "d2/y");
        assert_int_equal(link(p, q), 0);
        assert_int_equal(run_delta(NULL, no_exclude, true, &s0, &st, err, sizeof err), 0);
        save_archive_as("d0.tar");
        /* d1 renamed: its file has a new path, the inode (and so d2/y's stat) is unchanged */
        homef(q, sizeof q, "d3");
        homef(p, sizeof p, "d1");
        assert_int_equal(rename(p, q), 0);
        assert_int_equal(run_delta(&s0, no_exclude, true, &s1, &st, err, sizeof err), 0);
        save_archive_as("d1.tar");
        /* d2/y joins its moved partner in the new archive (as a hardlink to it): a base holding
         * it as a link to d1/x, which no manifest names any more, is never asked for it. */
        assert_string_equal(scan_paths(&s1, '+'), "d2/y d3 d3/x");
        assert_string_equal(scan_paths(&s1, '='), "d2");
        char *want_new = strdup(scan_paths(&s1, '+')), *want_old = strdup(scan_paths(&s1, '='));
        assert_int_equal(extract_want("d0.tar", want_old, err, sizeof err), 0);
        assert_int_equal(extract_want("d1.tar", want_new, err, sizeof err), 0);
        struct stat a, b;
        pathf(p, sizeof p, "%s/t/d3/x", base);
        pathf(q, sizeof q, "%s/t/d2/y", base);
        assert_int_equal(stat(p, &a), 0);
        assert_int_equal(stat(q, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(b.st_size, strlen("shared content"));
        free(want_new);
        free(want_old);
        scan_free(&s0);
        scan_free(&s1);
}

/* A scan that cannot be fixed afterwards (a pipe): hardlinked files are archived every time. */
static void test_scan_to_a_pipe_archives_hardlinked_files_always(void **state) {
        (void)state;
        char p[512], q[512], home[512], tar[512], err[512];
        struct scan full, next;
        struct profile_stats st;
        const struct profile_compress c = { .level = 3, .threads = 1 };

        mkd("a");
        put("a/h1", "linked data");
        put("a/single", "alone");
        homef(p, sizeof p, "a/h1");
        homef(q, sizeof q, "a/h2");
        assert_int_equal(link(p, q), 0);
        assert_int_equal(run_delta(NULL, no_exclude, true, &full, &st, err, sizeof err), 0);
        pathf(home, sizeof home, "%s/home", base);
        pathf(tar, sizeof tar, "%s/a.tar", base);
        int out = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), pp[2];
        assert_true(out >= 0);
        assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
        assert_int_equal(pgsmb_profile_delta(home, no_exclude, &c, &full, out, pp[1], &st, err, sizeof err), 0);
        close(pp[1]);
        close(out);
        size_t line = 0;
        assert_int_equal(scan_read_fd(&next, pp[0], SCAN_BYTES_MAX, &line), 0);
        close(pp[0]);
        assert_string_equal(scan_paths(&next, '+'), "a/h1 a/h2");
        unsigned links = 0;
        assert_string_equal(archive_paths(&links), "a/h1 a/h2");
        assert_int_equal(links, 1);
        scan_free(&full);
        scan_free(&next);
}

static void test_external_archiver_cannot_write_a_delta(void **state) {
        (void)state;
        char home[512], err[512] = "";
        char *const argv[] = { "/bin/tar", "-c", ".", NULL };
        const struct profile_compress c = { .level = 3, .archive_argv = argv };
        pathf(home, sizeof home, "%s/home", base);
        int fd = memfd_create("scan", MFD_CLOEXEC);
        assert_int_equal(pgsmb_profile_delta(home, no_exclude, &c, NULL, fd, fd, NULL, err, sizeof err), -EOPNOTSUPP);
        assert_non_null(strstr(err, "external program"));
        close(fd);
}

/* The record as the program reads it: err for `text`, which must be refused. */
static int read_record(const void *text, size_t len, char *err, size_t errlen) {
        char home[512];
        pathf(home, sizeof home, "%s/home", base);
        int fd = memfd_create("record", MFD_CLOEXEC);
        assert_true(fd >= 0);
        if (text)
                assert_int_equal(write(fd, text, len), (ssize_t)len);
        else
                assert_int_equal(ftruncate(fd, (off_t)len), 0); /* zeros, without the memory */
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct scan s;
        scan_init(&s);
        int r = pgsmb_profile_record_read(fd, home, &s, err, errlen);
        close(fd);
        assert_int_equal(s.n, 0);
        scan_free(&s);
        return r;
}

#define L1 "= f 644 12 3 1.000000000 1.000000000 a\n"
#define L2 "= d 755 13 0 1.000000000 1.000000000 b\n"

static void test_hostile_record_refused_naming_the_line(void **state) {
        (void)state;
        char err[512];
        static const struct {
                const char *text, *want;
        } cases[] = {
                { L1 "= f 644 12 3 1.000000000 1.000000000 ../x\n", "at line 2" },
                { L1 L2 "= f 644 12 3 1.0 1.000000000 c\n", "at line 3" }, /* nanoseconds cut */
                { L1 "? f 644 12 3 1.000000000 1.000000000 c\n", "at line 2" },
                { L1 "= f 644 12 3 1.000000000 1.000000000 /etc/passwd\n", "at line 2" },
                { L1 "= f 644 12 3 1.000000000 1.000000000 a b\n", "at line 2" }, /* raw space */
                { L1 "= f 644 12 3 1.000000000 1.000000000 a%2\n", "at line 2" },
                { L1 "= f 17777 12 3 1.000000000 1.000000000 c\n", "at line 2" },
                { L1 L2 "= f 644 99 3 1.000000000 1.000000000 a\n", "at line 3" }, /* a twice */
                { L2 L1 L2, "at line 3" },
                { L1 "= f 644 12 3 1.000000000 1.000000000 c", "at line 2" }, /* no '\n' */
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                err[0] = 0;
                assert_int_equal(read_record(cases[i].text, strlen(cases[i].text), err, sizeof err), -EBADMSG);
                if (!strstr(err, cases[i].want))
                        fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].want);
                assert_non_null(strstr(err, "record"));
        }
        /* a NUL inside a line */
        static const char nul[] = L1 "= f 644 12 3 1.000000000 1.000000000 c\0d\n";
        assert_int_equal(read_record(nul, sizeof nul - 1, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "at line 2"));
        /* a line longer than any scan line */
        size_t big = SCAN_LINE_MAX + 10;
        char *longline = malloc(256 + big);
        assert_non_null(longline);
        strcpy(longline, L1 "= f 644 12 3 1.000000000 1.000000000 ");
        size_t at = strlen(longline);
        memset(longline + at, 'x', big);
        longline[at + big] = '\n';
        assert_int_equal(read_record(longline, at + big + 1, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "at line 2"));
        free(longline);
        /* past the bound: refused before anything is parsed, in words */
        assert_int_equal(read_record(NULL, PROFILE_RECORD_MAX + 1, err, sizeof err), -E2BIG);
        assert_non_null(strstr(err, "larger than 512 MiB"));
        /* what is fine: empty, and two good lines */
        assert_int_equal(read_record("", 0, err, sizeof err), 0);
}

/* ---- through the program's entry, as pgsmb-helper.c starts it ---- */

struct ran {
        struct userwork_report rep;
        struct scan scan;
};

/* Run one job in a forked child through userwork_main: ctl on 3, the archive file on 4, the
 * record (a memfd holding `record`, or /dev/null) on 5, the scan memfd on 6. */
static void run_job(enum userwork_kind kind, uint32_t flags, const char *record, const char *const *exclude,
                    struct ran *out) {
        char home[512], tar[512];
        pathf(home, sizeof home, "%s/home", base);
        pathf(tar, sizeof tar, "%s/a.tar", base);
        const struct userwork_job job = { .kind = kind, .name = "u", .home = home, .dir = home,
                                          .exclude = exclude, .level = 3, .threads = 1, .flags = flags };
        struct pbuf b;
        pbuf_init(&b);
        assert_int_equal(userwork_encode(&job, &b), 0);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        int data = kind == USERWORK_DELTA ? open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
                                           : open("/dev/null", O_WRONLY | O_CLOEXEC);
        int rec = record ? memfd_create("record", MFD_CLOEXEC) : open("/dev/null", O_RDONLY | O_CLOEXEC);
        int list = memfd_create("scan", MFD_CLOEXEC);
        assert_true(data >= 0 && rec >= 0 && list >= 0);
        if (record) {
                assert_int_equal(write(rec, record, strlen(record)), (ssize_t)strlen(record));
                assert_int_equal(lseek(rec, 0, SEEK_SET), 0);
        }
        assert_int_equal(write(sv[0], b.data, b.len), (ssize_t)b.len);
        pbuf_free(&b);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* above 6 first, so that no dup2 overwrites a descriptor still to be moved */
                int fds[4] = { fcntl(sv[1], F_DUPFD, 10), fcntl(data, F_DUPFD, 10), fcntl(rec, F_DUPFD, 10),
                               fcntl(list, F_DUPFD, 10) };
                for (int i = 0; i < 4; i++)
                        if (fds[i] < 0 || dup2(fds[i], USERWORK_FD_CTL + i) < 0)
                                _exit(99);
                _exit(userwork_main());
        }
        close(sv[1]);
        close(data);
        close(rec);
        memset(&out->rep, 0, sizeof out->rep);
        assert_int_equal(read(sv[0], &out->rep, sizeof out->rep), (ssize_t)sizeof out->rep);
        close(sv[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 99);
        scan_init(&out->scan);
        if (out->rep.result == 0) {
                size_t line = 0;
                assert_int_equal(lseek(list, 0, SEEK_SET), 0);
                assert_int_equal(scan_read_fd(&out->scan, list, SCAN_BYTES_MAX, &line), 0);
        }
        close(list);
}

static void test_program_delta_full_scan_and_hostile_record(void **state) {
        (void)state;
        make_home();
        struct ran full, delta, scan, bad, forced;
        struct pbuf rec;

        run_job(USERWORK_DELTA, USERWORK_F_FULL, NULL, exclude_cache, &full);
        assert_int_equal(full.rep.result, 0);
        assert_string_equal(scan_paths(&full.scan, '+'), "a a/f1 a/f2 b b/inner b/inner/deep l t1 t2");
        assert_string_equal(archive_paths(NULL), "a a/f1 a/f2 b b/inner b/inner/deep l t1 t2");
        assert_int_equal(full.rep.stats.files, 9);
        assert_int_equal(full.rep.stats.skipped_links, 1);

        put("a/f1", "one, changed");
        pbuf_init(&rec);
        assert_int_equal(scan_format_all(&full.scan, &rec), 0);
        assert_int_equal(pbuf_put_u8(&rec, 0), 0); /* NUL-terminated for run_job */
        run_job(USERWORK_DELTA, 0, (const char *)rec.data, exclude_cache, &delta);
        assert_int_equal(delta.rep.result, 0);
        assert_string_equal(scan_paths(&delta.scan, '+'), "a/f1"); /* rewritten in place: a is as it was */
        assert_string_equal(archive_paths(NULL), "a/f1");

        /* F_FULL: every entry, whatever the record says */
        run_job(USERWORK_DELTA, USERWORK_F_FULL, (const char *)rec.data, exclude_cache, &forced);
        assert_int_equal(forced.rep.result, 0);
        assert_string_equal(scan_paths(&forced.scan, '+'), scan_paths(&delta.scan, 0));
        assert_string_equal(scan_paths(&forced.scan, '='), "");

        /* SCAN: the same entries, every flag '=', nothing archived */
        run_job(USERWORK_SCAN, 0, NULL, exclude_cache, &scan);
        assert_int_equal(scan.rep.result, 0);
        assert_string_equal(scan_paths(&scan.scan, '='), scan_paths(&delta.scan, 0));
        assert_int_equal(scan.rep.stats.files, 0);

        run_job(USERWORK_DELTA, 0, L1 L2 "= f 644 1 1 1.000000000 1.000000000 ../x\n", exclude_cache, &bad);
        assert_int_equal(bad.rep.result, -EBADMSG);
        assert_non_null(strstr(bad.rep.err, "invalid at line 3"));
        assert_int_equal(bad.scan.n, 0);

        pbuf_free(&rec);
        scan_free(&full.scan);
        scan_free(&delta.scan);
        scan_free(&forced.scan);
        scan_free(&scan.scan);
}

static int entries_of(const char *dir) {
        DIR *d = opendir(dir);
        int n = 0;
        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static int open_fds(void) { return entries_of("/proc/self/fd"); }

/* The read-ahead ahead of a lean walk, over a tree with a symlink loop, a link to /, a FIFO where
 * the record says a file was, and an excluded directory: its threads end by themselves when the
 * tree is done, it stops when told at any moment, leaves no descriptor open, and refuses a home
 * that is a symlink or missing. (The races it guards against, a swap as it opens, are not made
 * here.) */
static void test_prefetch_ends_and_leaves_nothing(void **state) {
        (void)state;
        char p[512], q[512];
        for (int i = 0; i < 40; i++) {
                snprintf(q, sizeof q, "d%02d", i);
                mkd(q);
                for (int j = 0; j < 5; j++) {
                        snprintf(q, sizeof q, "d%02d/s%d", i, j);
                        mkd(q);
                        snprintf(q, sizeof q, "d%02d/s%d/f", i, j);
                        put(q, "data\n");
                }
        }
        mkd("cache");
        put("cache/big", "excluded\n");
        homef(p, sizeof p, "loop");
        assert_int_equal(symlink(".", p), 0);
        homef(p, sizeof p, "root");
        assert_int_equal(symlink("/", p), 0);
        homef(p, sizeof p, "fifo");
        assert_int_equal(mkfifo(p, 0600), 0);

        struct scan rec;
        scan_init(&rec);
        static const char lines[] = "= f 644 1 1 1.000000000 1.000000000 d00/s0/f\n"
                                    "= f 644 1 1 1.000000000 1.000000000 fifo\n";
        size_t line = 0;
        assert_int_equal(scan_parse(&rec, lines, sizeof lines - 1, &line), 0);
        assert_true(rec.sorted);
        char *ex[] = { "cache", NULL };
        char home[512];
        pathf(home, sizeof home, "%s/home", base);
        int fds = open_fds();
        for (int round = 0; round < 30; round++) {
                struct prefetch *pf = pgsmb_prefetch_start(home, ex, round % 2 ? &rec : NULL);
                assert_non_null(pf);
                if (round % 3)
                        nanosleep(&(struct timespec){ .tv_nsec = round * 1000000L }, NULL);
                pgsmb_prefetch_stop(pf); /* returns: stopped or done */
        }
        assert_int_equal(open_fds(), fds);
        pgsmb_prefetch_stop(NULL);

        /* done by itself: only this thread left, before any stop */
        int tasks = entries_of("/proc/self/task");
        struct prefetch *pf = pgsmb_prefetch_start(home, ex, &rec);
        assert_non_null(pf);
        int now = 0;
        for (int i = 0; i < 500 && (now = entries_of("/proc/self/task")) != tasks; i++)
                nanosleep(&(struct timespec){ .tv_nsec = 10000000L }, NULL);
        assert_int_equal(now, tasks);
        pgsmb_prefetch_stop(pf);

        pathf(p, sizeof p, "%s/home-link", base);
        assert_int_equal(symlink(home, p), 0);
        assert_null(pgsmb_prefetch_start(p, ex, NULL));
        pathf(p, sizeof p, "%s/none", base);
        assert_null(pgsmb_prefetch_start(p, ex, NULL));
        assert_int_equal(open_fds(), fds);
        scan_free(&rec);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_delta_holds_exactly_the_changed_entries_and_flags_them),
                T(test_record_with_another_inode_or_mode_is_changed),
                T(test_scan_lists_what_the_delta_lists_every_flag_equal),
                T(test_hardlinks_within_the_delta_and_across_archives),
                T(test_hardlinks_stay_together_when_one_path_moves),
                T(test_scan_to_a_pipe_archives_hardlinked_files_always),
                T(test_external_archiver_cannot_write_a_delta),
                T(test_hostile_record_refused_naming_the_line),
                T(test_program_delta_full_scan_and_hostile_record),
                T(test_prefetch_ends_and_leaves_nothing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
