/* pgSMB's file:// profile store (pgsmb-store-file.c through pgsmb-store.h), in a temp dir. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pgsmb-store.h"
#include "util.h"

struct fixture {
        char root[64];
        char url[96];
        struct store *s;
};

static int rm_rf(const char *path) {
        char *argv[] = { "rm", "-rf", "--", (char *)path, NULL };
        pid_t pid = fork();
        int status;

        if (pid == 0) {
                execv("/bin/rm", argv);
                _exit(127);
        }
        return pid > 0 && waitpid(pid, &status, 0) == pid && status == 0 ? 0 : -1;
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);

        assert_non_null(f);
        strcpy(f->root, "/tmp/test-pgsmb-store.XXXXXX");
        assert_non_null(mkdtemp(f->root));
        snprintf(f->url, sizeof f->url, "file://%s/", f->root); /* trailing '/' is dropped */
        assert_int_equal(store_open(f->url, NULL, 5, &f->s, NULL, 0), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;

        store_close(f->s);
        rm_rf(f->root);
        free(f);
        return 0;
}

static void put(struct store *s, const char *rel, const void *data, size_t len) {
        struct store_file *w = NULL;

        assert_int_equal(store_open_write(s, rel, &w), 0);
        assert_int_equal(store_write(w, data, len), 0);
        assert_int_equal(store_close_file(w), 0);
}

/* The whole file, NUL-terminated; *len its size. */
static char *get(struct store *s, const char *rel, size_t *len) {
        struct store_file *r = NULL;
        size_t cap = 1 << 16, n = 0;
        char *buf = malloc(cap + 1);
        ssize_t k;

        assert_non_null(buf);
        assert_int_equal(store_open_read(s, rel, &r), 0);
        while ((k = store_read(r, buf + n, cap - n)) > 0) {
                n += (size_t)k;
                if (n == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap + 1);
                        assert_non_null(buf);
                }
        }
        assert_int_equal(k, 0);
        assert_int_equal(store_close_file(r), 0);
        buf[n] = 0;
        if (len)
                *len = n;
        return buf;
}

static void assert_content(struct store *s, const char *rel, const char *want) {
        char *got = get(s, rel, NULL);

        assert_string_equal(got, want);
        free(got);
}

static void test_open_url(void **state) {
        struct fixture *f = *state;
        struct store *s = NULL;
        char url[128], why[STORE_ERROR_MAX];

        assert_int_equal(strncmp(store_url(f->s), "file:///tmp/test-pgsmb-store.", 29), 0);
        assert_int_not_equal(store_url(f->s)[strlen(store_url(f->s)) - 1], '/');

        /* a missing root (an unmounted share) is an error, never created */
        snprintf(url, sizeof url, "file://%s/missing", f->root);
        assert_int_equal(store_open(url, NULL, 5, &s, why, sizeof why), -ENOENT);
        assert_non_null(strstr(why, url));
        assert_non_null(strstr(why, "No such file or directory"));
        snprintf(url, sizeof url, "%s/missing", f->root);
        assert_int_equal(access(url, F_OK), -1);

        assert_int_equal(store_open("file://relative/dir", NULL, 5, &s, why, sizeof why), -EINVAL);
        assert_int_equal(store_open("ftp://host/x", NULL, 5, &s, why, sizeof why), -EPROTONOSUPPORT);
        assert_non_null(strstr(why, "ftp://host/x"));
}

static void test_rejects_bad_paths(void **state) {
        static const char *bad[] = { "/etc/passwd", "../x", "a/../b", "a/..", "..", ".", "a/./b",
                                     "a//b", "a/", "/", "" };
        struct fixture *f = *state;
        struct store_file *h = NULL;
        struct store_stat st;
        struct store_entry *v;
        size_t n;

        put(f->s, "ok", "x", 1);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(store_open_read(f->s, bad[i], &h), -EINVAL);
                assert_non_null(strstr(store_error(f->s), "refusing path"));
                assert_int_equal(store_open_write(f->s, bad[i], &h), -EINVAL);
                assert_int_equal(store_unlink(f->s, bad[i]), -EINVAL);
                assert_int_equal(store_rename(f->s, "ok", bad[i], true), -EINVAL);
                assert_int_equal(store_rename(f->s, bad[i], "ok2", false), -EINVAL);
                assert_int_equal(store_copy(f->s, "ok", bad[i]), -EINVAL);
                if (*bad[i]) { /* "" is the root for these */
                        assert_int_equal(store_stat(f->s, bad[i], &st), -EINVAL);
                        assert_int_equal(store_mkdirs(f->s, bad[i]), -EINVAL);
                        assert_int_equal(store_list(f->s, bad[i], &v, &n), -EINVAL);
                }
        }
        assert_int_equal(store_stat(f->s, "", &st), 0);
        assert_true(st.is_dir);
        assert_content(f->s, "ok", "x"); /* nothing above touched it */
}

static void test_symlinks_are_not_followed(void **state) {
        struct fixture *f = *state;
        struct store_file *h = NULL;
        char path[PATH_MAX];

        snprintf(path, sizeof path, "%s/out", f->root);
        assert_int_equal(symlink("/etc", path), 0);
        assert_int_equal(store_open_read(f->s, "out/passwd", &h), -ENOTDIR);
        snprintf(path, sizeof path, "%s/pw", f->root);
        assert_int_equal(symlink("/etc/passwd", path), 0);
        assert_int_equal(store_open_read(f->s, "pw", &h), -ELOOP);
        assert_int_equal(store_open_write(f->s, "out/new", &h), -ENOTDIR);
        assert_int_not_equal(store_mkdirs(f->s, "out/sub"), 0);
        assert_int_equal(access("/etc/sub", F_OK), -1);
}

static void test_write_read_large(void **state) {
        struct fixture *f = *state;
        size_t len = (3u << 20) + 12345, got_len;
        struct store_file *w = NULL;
        char *data = malloc(len), *got, path[PATH_MAX];
        struct store_stat st;
        struct stat lst;

        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (char)(i * 131 + 7);
        assert_int_equal(store_mkdirs(f->s, "alice/deep/er"), 0);
        assert_int_equal(store_mkdirs(f->s, "alice/deep/er"), 0); /* again: fine */
        assert_int_equal(store_open_write(f->s, "alice/deep/er/alice.tar.zst", &w), 0);
        assert_int_equal(store_read(w, data, 1), -EBADF); /* written handles do not read */
        for (size_t off = 0; off < len; off += 1u << 20)
                assert_int_equal(store_write(w, data + off, len - off < (1u << 20) ? len - off : 1u << 20), 0);
        assert_int_equal(store_close_file(w), 0);

        got = get(f->s, "alice/deep/er/alice.tar.zst", &got_len);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, data, len);
        assert_int_equal(store_stat(f->s, "alice/deep/er/alice.tar.zst", &st), 0);
        assert_int_equal(st.size, len);
        assert_false(st.is_dir);
        assert_true(st.mtime > 0);
        assert_int_equal(store_stat(f->s, "alice/deep", &st), 0);
        assert_true(st.is_dir);
        snprintf(path, sizeof path, "%s/alice/deep/er/alice.tar.zst", f->root);
        assert_int_equal(stat(path, &lst), 0);
        assert_int_equal(lst.st_mode & 07777, 0600);
        free(got);
        free(data);
}

static void test_open_write_never_truncates(void **state) {
        struct fixture *f = *state;
        struct store_file *w = NULL;

        put(f->s, "a", "old", 3);
        assert_int_equal(store_open_write(f->s, "a", &w), -EEXIST);
        assert_null(w);
        assert_non_null(strstr(store_error(f->s), "/a: File exists"));
        assert_content(f->s, "a", "old");
}

/* store_reread: what was written, read back on the writing handle; no write after it; the
 * close still flushes and the file is there whole; a reading handle cannot reread. */
static void test_reread(void **state) {
        struct fixture *f = *state;
        struct store_file *w = NULL, *r = NULL;
        char buf[64] = {0};

        assert_int_equal(store_open_write(f->s, "m", &w), 0);
        assert_int_equal(store_write(w, "manifest", 8), 0);
        assert_int_equal(store_read(w, buf, sizeof buf), -EBADF); /* not yet */
        assert_int_equal(store_reread(w), 0);
        assert_int_equal(store_reread(w), -EBADF);
        assert_int_equal(store_read(w, buf, 4), 4);
        assert_int_equal(store_read(w, buf + 4, sizeof buf - 4), 4);
        assert_string_equal(buf, "manifest");
        assert_int_equal(store_read(w, buf, sizeof buf), 0);
        assert_int_equal(store_write(w, "more", 4), -EBADF);
        assert_int_equal(store_close_file(w), 0);
        assert_content(f->s, "m", "manifest");
        assert_int_equal(store_open_read(f->s, "m", &r), 0);
        assert_int_equal(store_reread(r), -EBADF);
        assert_int_equal(store_close_file(r), 0);
}

static void test_errors_name_url_and_path(void **state) {
        struct fixture *f = *state;
        struct store_file *h = NULL;
        struct store_stat st;
        char want[256];

        assert_int_equal(store_open_read(f->s, "bob/bob.tar.zst", &h), -ENOENT);
        snprintf(want, sizeof want, "file://%s/bob/bob.tar.zst: No such file or directory", f->root);
        assert_string_equal(store_error(f->s), want);
        assert_int_equal(store_stat(f->s, "bob", &st), -ENOENT);
        assert_int_equal(store_unlink(f->s, "nothing"), -ENOENT);
        snprintf(want, sizeof want, "file://%s/nothing: No such file or directory", f->root);
        assert_string_equal(store_error(f->s), want);
        assert_int_equal(store_open_read(f->s, "", &h), -EINVAL);
        assert_int_equal(store_mkdirs(f->s, "d"), 0);
        assert_int_equal(store_open_read(f->s, "d", &h), -EISDIR);
}

static void test_list(void **state) {
        struct fixture *f = *state;
        struct store_entry *v = NULL;
        size_t n = 0;

        assert_int_equal(store_list(f->s, "", &v, &n), 0);
        assert_int_equal(n, 0);
        store_entries_free(v, n);

        assert_int_equal(store_mkdirs(f->s, "u/sub"), 0);
        put(f->s, "u/b.tar.zst", "12345", 5);
        put(f->s, "u/a.tar.zst", "1", 1);
        assert_int_equal(store_list(f->s, "u", &v, &n), 3);
        assert_int_equal(n, 3);
        assert_string_equal(v[0].name, "a.tar.zst");
        assert_int_equal(v[0].size, 1);
        assert_false(v[0].is_dir);
        assert_string_equal(v[1].name, "b.tar.zst");
        assert_int_equal(v[1].size, 5);
        assert_true(v[1].mtime > 0);
        assert_string_equal(v[2].name, "sub");
        assert_true(v[2].is_dir);
        store_entries_free(v, n);
        assert_int_equal(store_list(f->s, "u/b.tar.zst", &v, &n), -ENOTDIR);
        assert_int_equal(store_list(f->s, "none", &v, &n), -ENOENT);
}

static void test_rename_replace(void **state) {
        struct fixture *f = *state;
        struct store_stat st;

        assert_int_equal(store_mkdirs(f->s, "u"), 0);
        put(f->s, "u/new", "new", 3);
        put(f->s, "u/cur", "current", 7);
        assert_int_equal(store_rename(f->s, "u/new", "u/cur", true), 0);
        assert_content(f->s, "u/cur", "new");
        assert_int_equal(store_stat(f->s, "u/new", &st), -ENOENT);
        /* replace onto a missing target is a plain rename, across directories too */
        assert_int_equal(store_mkdirs(f->s, "v"), 0);
        assert_int_equal(store_rename(f->s, "u/cur", "v/moved", true), 0);
        assert_content(f->s, "v/moved", "new");
        assert_int_equal(store_rename(f->s, "u/gone", "v/x", true), -ENOENT);
        assert_non_null(strstr(store_error(f->s), "/u/gone: rename to \"v/x\": No such file"));
}

static void test_rename_no_replace(void **state) {
        struct fixture *f = *state;
        struct store_stat st;

        put(f->s, "a", "A", 1);
        put(f->s, "b", "B", 1);
        assert_int_equal(store_rename(f->s, "a", "b", false), -EEXIST);
        assert_non_null(strstr(store_error(f->s), "File exists"));
        assert_content(f->s, "a", "A");
        assert_content(f->s, "b", "B");
        assert_int_equal(store_rename(f->s, "a", "c", false), 0);
        assert_content(f->s, "c", "A");
        assert_int_equal(store_stat(f->s, "a", &st), -ENOENT);
}

static void test_copy(void **state) {
        struct fixture *f = *state;
        size_t len = (2u << 20) + 3, got_len;
        char *data = malloc(len), *got;
        struct store_entry *v = NULL;
        size_t n = 0;

        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (char)(i * 17 + 1);
        assert_int_equal(store_mkdirs(f->s, "u"), 0);
        put(f->s, "u/cur", data, len);
        assert_int_equal(store_copy(f->s, "u/cur", "u/cur.1"), 0);
        got = get(f->s, "u/cur.1", &got_len);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, data, len);
        free(got);

        /* a copy never replaces, and leaves no temporary behind */
        put(f->s, "u/other", "o", 1);
        assert_int_equal(store_copy(f->s, "u/cur", "u/other"), -EEXIST);
        assert_content(f->s, "u/other", "o");
        assert_int_equal(store_copy(f->s, "u/missing", "u/x"), -ENOENT);
        assert_non_null(strstr(store_error(f->s), "/u/missing: No such file"));
        assert_int_equal(store_list(f->s, "u", &v, &n), 3);
        assert_string_equal(v[0].name, "cur");
        assert_string_equal(v[1].name, "cur.1");
        assert_string_equal(v[2].name, "other");
        store_entries_free(v, n);
        free(data);
}

static void test_unlink(void **state) {
        struct fixture *f = *state;
        struct store_stat st;

        put(f->s, "x", "x", 1);
        assert_int_equal(store_unlink(f->s, "x"), 0);
        assert_int_equal(store_stat(f->s, "x", &st), -ENOENT);
        assert_int_equal(store_unlink(f->s, "x"), -ENOENT);
        assert_int_equal(store_mkdirs(f->s, "d"), 0);
        assert_int_equal(store_unlink(f->s, "d"), -EISDIR);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_url, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rejects_bad_paths, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlinks_are_not_followed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_read_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_write_never_truncates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reread, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors_name_url_and_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rename_replace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rename_no_replace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unlink, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
