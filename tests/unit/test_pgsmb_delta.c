/* pgSMB store format 2, the as-user side, in process: a delta holds exactly what changed since
 * its record and its scan says so; a scan lists what a delta would; a chain's archives extract
 * into one directory by their want lists with directories fixed at the end; in place an entry
 * replaces a file, a directory, a symlink, and a symlink planted in the home leads nowhere;
 * deletions never leave the directory; hostile lists are refused. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pgsmb-archive.h"
#include "pgsmb-scan.h"
#include "pgsmb-userwork-expect.h"

static char base[256], home[300], tgt[300], outside[300];

static void pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, len, fmt, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t)n < len);
}

static void put(const char *dir, const char *rel, const char *text) {
        char p[600];
        pathf(p, sizeof p, "%s/%s", dir, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static const char *get(const char *dir, const char *rel) {
        static char buf[256];
        char p[600];
        pathf(p, sizeof p, "%s/%s", dir, rel);
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return NULL;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n < 0 ? 0 : n] = 0;
        return buf;
}

static void mk(const char *dir, const char *rel) {
        char p[600];
        pathf(p, sizeof p, "%s/%s", dir, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
        (void)flag, (void)f;
        if (S_ISDIR(sb->st_mode))
                chmod(p, 0700);
        return remove(p);
}

static void rmrf(const char *p) {
        /* directories first made writable, then removed */
        char cmd[700];
        pathf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", p, p);
        assert_int_equal(system(cmd), 0);
        (void)rm_one;
}

static int setup(void **state) {
        (void)state;
        pathf(base, sizeof base, "/tmp/test-pgsmb-delta-XXXXXX");
        assert_non_null(mkdtemp(base));
        pathf(home, sizeof home, "%s/home", base);
        pathf(tgt, sizeof tgt, "%s/t", base);
        pathf(outside, sizeof outside, "%s/outside", base);
        assert_int_equal(mkdir(home, 0700), 0);
        assert_int_equal(mkdir(tgt, 0700), 0);
        assert_int_equal(mkdir(outside, 0700), 0);
        return 0;
}

static int teardown(void **state) {
        (void)state;
        rmrf(base);
        return 0;
}

/* ---- the delta and the scan ---- */

struct delta_out {
        int arch_fd, scan_fd;
        struct scan scan;
};

static void delta(const struct scan *record, struct delta_out *o, bool scan_only) {
        struct profile_compress c = {.level = 1, .threads = 1};
        struct profile_stats st;
        char err[512] = "";
        size_t line;

        o->arch_fd = scan_only ? -1 : memfd_create("arch", MFD_CLOEXEC);
        o->scan_fd = memfd_create("scan", MFD_CLOEXEC);
        assert_true(o->scan_fd >= 0);
        int r = pgsmb_profile_delta(home, (const char *const[]){".cache", NULL}, &c, record, o->arch_fd, o->scan_fd,
                                    &st, err, sizeof err);
        if (r < 0)
                fail_msg("delta: %s", err);
        assert_int_equal(lseek(o->scan_fd, 0, SEEK_SET), 0);
        assert_int_equal(scan_read_fd(&o->scan, o->scan_fd, 1 << 24, &line), 0);
        if (o->arch_fd >= 0)
                assert_int_equal(lseek(o->arch_fd, 0, SEEK_SET), 0);
}

static void delta_done(struct delta_out *o) {
        if (o->arch_fd >= 0)
                close(o->arch_fd);
        close(o->scan_fd);
        scan_free(&o->scan);
}

/* The entry names in the archive on fd, "\n"-joined, sorted by the archive's order. */
static void archive_names(int fd, char *out, size_t len) {
        struct archive *a = archive_read_new();
        struct archive_entry *e;
        size_t o = 0;

        archive_read_support_format_tar(a);
        archive_read_support_filter_zstd(a);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(archive_read_open_fd(a, fd, 65536), ARCHIVE_OK);
        out[0] = 0;
        while (archive_read_next_header(a, &e) == ARCHIVE_OK)
                o += (size_t)snprintf(out + o, len - o, "%s\n", archive_entry_pathname(e));
        archive_read_free(a);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
}

static char flag_of(const struct scan *s, const char *path) {
        const struct scan_entry *e = scan_find(s, path);
        return e ? e->flag : 0;
}

static void test_delta_holds_what_changed(void **state) {
        (void)state;
        struct delta_out d0, d1, sc;
        char names[4096], p[600];

        mk(home, "docs");
        mk(home, "keep");
        mk(home, ".cache");
        put(home, "docs/a", "a1");
        put(home, "docs/b", "b1");
        put(home, "docs/c", "c1");
        put(home, "keep/k", "k1");
        put(home, ".cache/junk", "junk");
        pathf(p, sizeof p, "%s/link", home);
        assert_int_equal(symlink("docs/a", p), 0);

        /* no record: everything, '+' */
        delta(NULL, &d0, false);
        assert_int_equal(d0.scan.n, 7);
        for (size_t i = 0; i < d0.scan.n; i++)
                assert_int_equal(d0.scan.v[i].flag, '+');
        assert_null(scan_find(&d0.scan, ".cache"));
        archive_names(d0.arch_fd, names, sizeof names);
        assert_non_null(strstr(names, "docs/b\n"));
        assert_null(strstr(names, ".cache"));

        /* one changed, one new, one deleted, a symlink touched, a directory chmod-ed */
        sleep(0); /* ctimes change at once on tmpfs and ext4 (nanoseconds) */
        put(home, "docs/a", "a2-longer");
        put(home, "docs/new", "n");
        pathf(p, sizeof p, "%s/docs/c", home);
        assert_int_equal(unlink(p), 0);
        pathf(p, sizeof p, "%s/keep", home);
        assert_int_equal(chmod(p, 0750), 0);
        pathf(p, sizeof p, "%s/link", home);
        assert_int_equal(unlink(p), 0);
        assert_int_equal(symlink("docs/b", p), 0);
        delta(&d0.scan, &d1, false);
        assert_int_equal(flag_of(&d1.scan, "docs/a"), '+');
        assert_int_equal(flag_of(&d1.scan, "docs/new"), '+');
        assert_int_equal(flag_of(&d1.scan, "docs"), '+'); /* an entry came and went */
        assert_int_equal(flag_of(&d1.scan, "keep"), '+');
        assert_int_equal(flag_of(&d1.scan, "link"), '+');
        assert_int_equal(flag_of(&d1.scan, "docs/b"), '=');
        assert_int_equal(flag_of(&d1.scan, "keep/k"), '=');
        assert_int_equal(flag_of(&d1.scan, "docs/c"), 0);
        archive_names(d1.arch_fd, names, sizeof names);
        assert_non_null(strstr(names, "docs/a\n"));
        assert_non_null(strstr(names, "docs/new\n"));
        assert_non_null(strstr(names, "link\n"));
        assert_null(strstr(names, "docs/b\n"));
        assert_null(strstr(names, "keep/k\n"));

        /* a record naming another inode for the same path: changed */
        struct scan rec = d1.scan;
        for (size_t i = 0; i < rec.n; i++)
                if (strcmp(rec.v[i].path, "keep/k") == 0)
                        rec.v[i].ino ^= 1;
        struct delta_out d2;
        delta(&rec, &d2, false);
        assert_int_equal(flag_of(&d2.scan, "keep/k"), '+');
        assert_int_equal(flag_of(&d2.scan, "docs/b"), '=');

        /* a scan lists the same entries, every one '=' */
        delta(NULL, &sc, true);
        assert_int_equal(sc.scan.n, d2.scan.n);
        for (size_t i = 0; i < sc.scan.n; i++) {
                assert_string_equal(sc.scan.v[i].path, d2.scan.v[i].path);
                assert_int_equal(sc.scan.v[i].flag, '=');
        }
        delta_done(&d0);
        delta_done(&d1);
        delta_done(&d2);
        delta_done(&sc);
}

/* ---- chains and in place ---- */

struct ent {
        const char *name;
        char type; /* f d l h */
        const char *data; /* file: content; l, h: target */
        mode_t mode;
};

static int build(const struct ent *v, size_t n) {
        int fd = memfd_create("a", MFD_CLOEXEC);
        struct archive *a = archive_write_new();

        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_zstd(a);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, v[i].name);
                archive_entry_set_mtime(e, 1000000 + (time_t)i, 0);
                archive_entry_set_perm(e, v[i].mode ? v[i].mode : (v[i].type == 'd' ? 0755 : 0644));
                if (v[i].type == 'd')
                        archive_entry_set_filetype(e, AE_IFDIR);
                else if (v[i].type == 'l') {
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, v[i].data);
                } else if (v[i].type == 'h') {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_hardlink(e, v[i].data);
                } else {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_size(e, (la_int64_t)strlen(v[i].data));
                }
                assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
                if (v[i].type == 'f')
                        archive_write_data(a, v[i].data, strlen(v[i].data));
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static const struct profile_limits roomy = {.max_total_bytes = 1 << 30, .max_entries = 1000, .max_entry_bytes = 1 << 30};

static int extract_x(int fd, const char *dir, const char *const *want, bool in_place, bool no_dirfix,
                     struct expect *x, char *err, size_t errlen) {
        char **list = NULL;
        size_t n = 0, line;
        struct pbuf b;
        struct profile_stats st;

        pbuf_init(&b);
        for (size_t i = 0; want && want[i]; i++)
                assert_int_equal(pathlist_add(&b, want[i]), 0);
        if (want)
                assert_int_equal(pathlist_parse((const char *)b.data, b.len, &list, &n, &line), 0);
        struct extract_opts o = {.want = want ? list : NULL, .nwant = n, .in_place = in_place, .no_dirfix = no_dirfix,
                                 .expect = x};
        int r = pgsmb_profile_extract_opts(fd, NULL, 0, dir, &roomy, &o, &st, err, errlen);
        pathlist_free(list, n);
        pbuf_free(&b);
        close(fd);
        return r;
}

static int extract(int fd, const char *dir, const char *const *want, bool in_place, bool no_dirfix, char *err,
                   size_t errlen) {
        return extract_x(fd, dir, want, in_place, no_dirfix, NULL, err, errlen);
}

static void test_chain_into_one_directory_then_fixdirs(void **state) {
        (void)state;
        char err[512] = "", p[600];
        struct stat st;

        /* base: ro/ (0555) holding old, keep, gone; delta: ro/old rewritten, ro/new */
        const struct ent b[] = {{"ro", 'd', NULL, 0555}, {"ro/old", 'f', "old v1", 0}, {"ro/keep", 'f', "keep", 0},
                                {"ro/gone", 'f', "gone", 0}};
        const struct ent d[] = {{"ro/old", 'f', "old v2", 0}, {"ro/new", 'f', "new", 0}};
        /* what the manifest says each provides */
        if (extract(build(b, 4), tgt, (const char *const[]){"ro", "ro/keep", NULL}, false, true, err, sizeof err) < 0)
                fail_msg("base: %s", err);
        if (extract(build(d, 2), tgt, (const char *const[]){"ro/old", "ro/new", NULL}, false, true, err, sizeof err) < 0)
                fail_msg("delta: %s", err);
        assert_string_equal(get(tgt, "ro/old"), "old v2");
        assert_string_equal(get(tgt, "ro/keep"), "keep");
        assert_string_equal(get(tgt, "ro/new"), "new");
        assert_null(get(tgt, "ro/gone")); /* superseded: never written */
        /* then the directories' modes */
        struct scan dirs;
        struct scan_entry e = {.flag = '=', .type = 'd', .mode = 0555, .mtime_s = 12345, .path = strdup("ro")};
        uint64_t missing;
        scan_init(&dirs);
        assert_int_equal(scan_add(&dirs, &e), 0);
        assert_int_equal(pgsmb_profile_fix_dirs(tgt, &dirs, &missing, err, sizeof err), 0);
        assert_int_equal(missing, 0);
        pathf(p, sizeof p, "%s/ro", tgt);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0555);
        assert_int_equal(st.st_mtime, 12345);
        scan_free(&dirs);

        /* an archive lacking a wanted entry is damaged */
        rmrf(tgt);
        assert_int_equal(mkdir(tgt, 0700), 0);
        assert_int_equal(extract(build(d, 2), tgt, (const char *const[]){"ro/old", "ro/missing", NULL}, false, true,
                                 err, sizeof err),
                         -EBADMSG);
}

static void test_in_place_replaces_and_never_follows(void **state) {
        (void)state;
        char err[512] = "", p[600], q[600];
        struct stat st, st2;

        /* the home at the older version */
        mk(tgt, "d");
        put(tgt, "d/file", "old");
        mk(tgt, "becomes-file");
        put(tgt, "becomes-file/inner", "x");
        put(tgt, "becomes-dir", "x");
        pathf(p, sizeof p, "%s/was-link", tgt);
        assert_int_equal(symlink("d/file", p), 0);
        mk(tgt, "ro");
        put(tgt, "ro/f", "old");
        pathf(p, sizeof p, "%s/ro", tgt);
        assert_int_equal(chmod(p, 0555), 0);
        pathf(p, sizeof p, "%s/d/file", tgt);
        assert_int_equal(stat(p, &st), 0);

        const struct ent v[] = {{"d/file", 'f', "new", 0},        {"becomes-file", 'f', "now a file", 0},
                                {"becomes-dir", 'd', NULL, 0},     {"becomes-dir/x", 'f', "inside", 0},
                                {"was-link", 'f', "now a file", 0}, {"ro/f", 'f', "new in ro", 0}};
        if (extract(build(v, 6), tgt,
                    (const char *const[]){"d/file", "becomes-file", "becomes-dir", "becomes-dir/x", "was-link", "ro/f",
                                          NULL},
                    true, true, err, sizeof err) < 0)
                fail_msg("in place: %s", err);
        assert_string_equal(get(tgt, "d/file"), "new");
        pathf(p, sizeof p, "%s/d/file", tgt);
        assert_int_equal(stat(p, &st2), 0);
        assert_int_not_equal(st.st_ino, st2.st_ino); /* a new file renamed over the old */
        assert_string_equal(get(tgt, "becomes-file"), "now a file");
        assert_string_equal(get(tgt, "becomes-dir/x"), "inside");
        assert_string_equal(get(tgt, "was-link"), "now a file");
        pathf(p, sizeof p, "%s/was-link", tgt);
        assert_int_equal(lstat(p, &st2), 0);
        assert_true(S_ISREG(st2.st_mode));
        assert_string_equal(get(tgt, "ro/f"), "new in ro");

        /* a file the new version made a directory, whose entry is in a later archive of the
         * chain than a file in it (review 3: "a directory of its path is a file") */
        put(tgt, "was-file", "a file");
        const struct ent wf[] = {{"was-file/inner", 'f', "inside now", 0}};
        if (extract(build(wf, 1), tgt, (const char *const[]){"was-file/inner", NULL}, true, true, err, sizeof err) < 0)
                fail_msg("file to directory: %s", err);
        assert_string_equal(get(tgt, "was-file/inner"), "inside now");

        /* a symlink planted in the home where a directory of the path is: nothing outside */
        pathf(p, sizeof p, "%s/planted", tgt);
        assert_int_equal(symlink(outside, p), 0);
        const struct ent w[] = {{"planted/x", 'f', "escape", 0}};
        assert_true(extract(build(w, 1), tgt, (const char *const[]){"planted/x", NULL}, true, true, err, sizeof err) <
                    0);
        pathf(q, sizeof q, "%s/x", outside);
        assert_int_equal(access(q, F_OK), -1);
        /* and no temporary file is left anywhere */
        char cmd[700];
        pathf(cmd, sizeof cmd, "find '%s' -name '.pgina-new-*' | grep -q .", base);
        assert_int_not_equal(system(cmd), 0);
}

/* What a catch-up saw at the paths (a stat of each that exists), as the extraction gets it. */
static void expect_of(struct expect *x, const char *const *rels) {
        char p[600];
        struct stat st;
        struct scan seen;
        struct pbuf b;
        size_t line = 0;

        scan_init(&seen);
        for (size_t i = 0; rels[i]; i++) {
                struct scan_entry e;
                pathf(p, sizeof p, "%s/%s", tgt, rels[i]);
                if (lstat(p, &st) < 0)
                        continue;
                assert_int_equal(scan_entry_from_stat(&e, '=', rels[i], &st), 0);
                assert_int_equal(scan_add(&seen, &e), 0);
        }
        /* as the job reads it: a scan on a descriptor */
        pbuf_init(&b);
        assert_int_equal(scan_format_all(&seen, &b), 0);
        int fd = memfd_create("expect", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(expectation_read_fd(x, fd, 1 << 20, &line), 0);
        close(fd);
        pbuf_free(&b);
        scan_free(&seen);
}

/* Review 2, finding 2 case A: a process that outlived the session writes to a path between the
 * catch-up's look at it and the extraction's rename over it: the write stays, the job stops. */
static void test_in_place_expect(void **state) {
        (void)state;
        char err[512] = "", p[600], q[600];
        struct expect x;
        uint64_t removed;

        mk(tgt, "a");
        put(tgt, "a/same", "v1");
        put(tgt, "a/changed", "v1");
        put(tgt, "a/gone", "v1");
        put(tgt, "a/gone-same", "v1");
        put(tgt, "h1", "linked");
        pathf(p, sizeof p, "%s/h1", tgt);
        pathf(q, sizeof q, "%s/h2", tgt);
        assert_int_equal(link(p, q), 0);
        /* two directories the new version turns into files: one holds a file written after
         * the look (review 3: it was removed with the directory, unchecked), one is as seen */
        mk(tgt, "dd");
        put(tgt, "dd/notes", "n1");
        mk(tgt, "dd/sub");
        put(tgt, "dd/sub/x", "x");
        mk(tgt, "de");
        mk(tgt, "de/sub");
        put(tgt, "de/sub/y", "y");
        const char *const seen[] = {"a/same", "a/changed", "a/gone", "a/gone-same", "h1", "h2", "a/new",
                                    "a/appeared", "dd", "dd/notes", "dd/sub", "dd/sub/x", "de", "de/sub",
                                    "de/sub/y", NULL};
        expect_of(&x, seen);
        usleep(20000); /* past the clock tick of file times: the job's own renames move ctimes */
        /* what the lingering process does after the look */
        put(tgt, "a/changed", "mine, later");
        put(tgt, "a/appeared", "mine too");
        put(tgt, "a/gone", "mine as well");
        put(tgt, "dd/notes", "n2, later");

        /* unchanged targets, a hardlinked pair (replacing h1 moves h2's ctime: the job's own
         * doing) and a path absent then and now: replaced */
        const struct ent ok[] = {{"a/same", 'f', "v2", 0}, {"h1", 'f', "v2 h1", 0}, {"h2", 'f', "v2 h2", 0},
                                 {"a/new", 'f', "new", 0}};
        if (extract_x(build(ok, 4), tgt, (const char *const[]){"a/same", "h1", "h2", "a/new", NULL}, true, true, &x,
                      err, sizeof err) < 0)
                fail_msg("unchanged targets: %s", err);
        assert_string_equal(get(tgt, "a/same"), "v2");
        assert_string_equal(get(tgt, "h1"), "v2 h1");
        assert_string_equal(get(tgt, "h2"), "v2 h2");
        assert_string_equal(get(tgt, "a/new"), "new");

        /* changed since the look, and made since the look: kept, and the job says which */
        const struct ent ch[] = {{"a/changed", 'f', "theirs", 0}};
        assert_int_equal(extract_x(build(ch, 1), tgt, (const char *const[]){"a/changed", NULL}, true, true, &x, err,
                                   sizeof err),
                         -EBUSY);
        assert_non_null(strstr(err, "'a/changed' changed here during the catch-up"));
        assert_string_equal(get(tgt, "a/changed"), "mine, later");
        const struct ent ap[] = {{"a/appeared", 'f', "theirs", 0}};
        assert_int_equal(extract_x(build(ap, 1), tgt, (const char *const[]){"a/appeared", NULL}, true, true, &x, err,
                                   sizeof err),
                         -EBUSY);
        assert_string_equal(get(tgt, "a/appeared"), "mine too");
        const struct ent dirs[] = {{"de", 'f', "de is a file now", 0}};
        if (extract_x(build(dirs, 1), tgt, (const char *const[]){"de", NULL}, true, true, &x, err, sizeof err) < 0)
                fail_msg("a directory as seen, replaced by a file: %s", err);
        assert_string_equal(get(tgt, "de"), "de is a file now");
        const struct ent dirs2[] = {{"dd", 'f', "dd is a file now", 0}};
        assert_int_equal(extract_x(build(dirs2, 1), tgt, (const char *const[]){"dd", NULL}, true, true, &x, err,
                                   sizeof err),
                         -EBUSY);
        assert_non_null(strstr(err, "'dd/notes' changed here during the catch-up"));
        assert_string_equal(get(tgt, "dd/notes"), "n2, later");
        char cmd[700];
        pathf(cmd, sizeof cmd, "find '%s' -name '.pgina-new-*' | grep -q .", base);
        assert_int_not_equal(system(cmd), 0);

        /* a removal: an unchanged file goes, a changed one stays and stops it */
        char *del_ok[] = {strdup("a/gone-same")};
        assert_int_equal(pgsmb_profile_delete(tgt, del_ok, 1, &x, &removed, err, sizeof err), 0);
        assert_int_equal(removed, 1);
        assert_null(get(tgt, "a/gone-same"));
        char *del[] = {strdup("a/gone")};
        assert_int_equal(pgsmb_profile_delete(tgt, del, 1, &x, &removed, err, sizeof err), -EBUSY);
        assert_non_null(strstr(err, "'a/gone' changed here during the catch-up"));
        assert_string_equal(get(tgt, "a/gone"), "mine as well");
        free(del_ok[0]);
        free(del[0]);
        expectation_free(&x);
}

static void test_delete_stays_inside(void **state) {
        (void)state;
        char err[512] = "", p[600], q[600];
        uint64_t removed;

        mk(tgt, "a");
        mk(tgt, "a/b");
        put(tgt, "a/b/f", "f");
        put(tgt, "top", "t");
        put(outside, "precious", "p");
        pathf(p, sizeof p, "%s/lnk", tgt);
        assert_int_equal(symlink(outside, p), 0);
        pathf(p, sizeof p, "%s/a/b", tgt);
        assert_int_equal(chmod(p, 0500), 0);
        mk(tgt, "keep");
        put(tgt, "keep/made-here", "m");
        char *paths[] = {strdup("a"),   strdup("a/b"),     strdup("a/b/f"), strdup("lnk"), strdup("lnk/precious"),
                         strdup("missing"), strdup("top"), strdup("keep")};
        assert_int_equal(pgsmb_profile_delete(tgt, paths, 8, NULL, &removed, err, sizeof err), 0);
        /* a/b/f, a/b, a (deepest first), lnk, top; lnk/precious is not below tgt; keep holds
         * what the list does not name (made here): it stays */
        assert_int_equal(removed, 5);
        pathf(p, sizeof p, "%s/a", tgt);
        assert_int_equal(access(p, F_OK), -1);
        pathf(q, sizeof q, "%s/precious", outside);
        assert_int_equal(access(q, F_OK), 0);
        pathf(p, sizeof p, "%s/keep/made-here", tgt);
        assert_int_equal(access(p, F_OK), 0);
        for (size_t i = 0; i < 8; i++)
                free(paths[i]);
        char *bad[] = {strdup("../outside/precious")};
        assert_int_equal(pgsmb_profile_delete(tgt, bad, 1, NULL, &removed, err, sizeof err), -EINVAL);
        assert_int_equal(access(q, F_OK), 0);
        free(bad[0]);
}

static void test_hostile_want_lists(void **state) {
        (void)state;
        char **v;
        size_t n, line;
        static const char *const bad[] = {"../x\n", "/etc/passwd\n", "a//b\n", "a\na\n", "a%2\n", "a b\n", "a"};

        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                assert_int_equal(pathlist_parse(bad[i], strlen(bad[i]), &v, &n, &line), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_delta_holds_what_changed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chain_into_one_directory_then_fixdirs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_in_place_replaces_and_never_follows, setup, teardown),
                cmocka_unit_test_setup_teardown(test_in_place_expect, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delete_stays_inside, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_want_lists, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
