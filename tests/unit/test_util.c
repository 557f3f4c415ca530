/* Unit tests of src/libpgina-plugin/util.c: name checks, booleans, atomic file replacement. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>

#include <cmocka.h>

#include "log.h"
#include "util.h"

static char dir[] = "/tmp/pgina-test-util.XXXXXX";

static int setup(void **state) { return mkdtemp(dir) ? 0 : -1; }

static int teardown(void **state) {
        DIR *d = opendir(dir);
        struct dirent *e;
        char p[512];

        while (d && (e = readdir(d))) {
                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
        }
        if (d)
                closedir(d);
        rmdir(dir);
        return 0;
}

static void test_valid_user_names(void **state) {
        static const char *const good[] = {"alice", "_svc", "a", "bob.smith", "x-y_z", "host$",
                                           "a1234567890123456789012345678901" /* 32 */};
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (!valid_user_name(good[i]))
                        fail_msg("'%s' should be a valid user name", good[i]);
}

static void test_invalid_user_names(void **state) {
        static const char *const bad[] = {
                "", "Alice", "1abc", "-rf", ".hidden", "a b", "a/b", "a:b", "../etc", "a$b",
                "$", "a\nb", "ä", "root;id", "a12345678901234567890123456789012" /* 33 */,
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (valid_user_name(bad[i]))
                        fail_msg("'%s' should not be a valid user name", bad[i]);
        assert_false(valid_user_name(NULL));
}

static void test_plugin_names(void **state) {
        char longn[66];

        assert_true(valid_plugin_name("localmachine"));
        assert_true(valid_plugin_name("pg_smb2"));
        assert_false(valid_plugin_name(""));
        assert_false(valid_plugin_name(NULL));
        assert_false(valid_plugin_name("Local"));
        assert_false(valid_plugin_name("local-machine"));
        assert_false(valid_plugin_name("../x"));
        assert_false(valid_plugin_name("a.so"));
        memset(longn, 'a', 64);
        longn[64] = 0;
        assert_true(valid_plugin_name(longn));
        longn[64] = 'a';
        longn[65] = 0;
        assert_false(valid_plugin_name(longn));
}

static void test_parse_bool(void **state) {
        static const char *const yes[] = {"1", "yes", "true", "on", "YES", "True", "ON"};
        static const char *const no[] = {"0", "no", "false", "off", "No", "FALSE"};
        static const char *const bad[] = {"", "2", "y", "n", "enabled", "true ", " yes", "-1"};

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                assert_int_equal(parse_bool(yes[i]), 1);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                assert_int_equal(parse_bool(no[i]), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (parse_bool(bad[i]) != -EINVAL)
                        fail_msg("parse_bool(\"%s\") should be -EINVAL", bad[i]);
        assert_int_equal(parse_bool(NULL), -EINVAL);
}

static void read_whole(const char *path, char *buf, size_t size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_true(fd >= 0);
        n = read(fd, buf, size - 1);
        assert_true(n >= 0);
        buf[n] = 0;
        close(fd);
}

static size_t count_entries(void) {
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n = 0;

        assert_non_null(d);
        while ((e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_write_file_atomic_creates_and_replaces(void **state) {
        char p[512], buf[64];
        struct stat st;

        snprintf(p, sizeof p, "%s/sessions", dir);
        assert_int_equal(write_file_atomic(p, "first\n", 6, 0600), 0);
        read_whole(p, buf, sizeof buf);
        assert_string_equal(buf, "first\n");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        assert_int_equal(write_file_atomic(p, "second", 6, 0644), 0);
        read_whole(p, buf, sizeof buf);
        assert_string_equal(buf, "second");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        assert_int_equal(write_file_atomic(p, "", 0, 0600), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_size, 0);
        /* no temporary file left behind */
        assert_int_equal(count_entries(), 1);
        unlink(p);
}

static void test_write_file_atomic_mode_ignores_umask(void **state) {
        char p[512];
        struct stat st;
        mode_t old = umask(0077);

        snprintf(p, sizeof p, "%s/shared", dir);
        assert_int_equal(write_file_atomic(p, "x", 1, 0644), 0);
        umask(old);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        unlink(p);
}

static void test_write_file_atomic_missing_dir_fails(void **state) {
        char p[512];

        snprintf(p, sizeof p, "%s/no/such/dir/file", dir);
        assert_int_equal(write_file_atomic(p, "x", 1, 0600), -ENOENT);
        assert_int_equal(count_entries(), 0);
}

static void test_write_file_atomic_replaces_symlink_not_target(void **state) {
        char p[512], target[512], buf[64];
        struct stat st;

        snprintf(p, sizeof p, "%s/link", dir);
        snprintf(target, sizeof target, "%s/target", dir);
        assert_int_equal(write_file_atomic(target, "keep", 4, 0600), 0);
        assert_int_equal(symlink(target, p), 0);
        assert_int_equal(write_file_atomic(p, "new", 3, 0600), 0);
        read_whole(target, buf, sizeof buf);
        assert_string_equal(buf, "keep");
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        unlink(p);
        unlink(target);
}

static void test_write_all_handles_large_writes(void **state) {
        int fds[2];
        static char big[200000];
        char p[512];
        struct stat st;
        int fd;

        snprintf(p, sizeof p, "%s/big", dir);
        memset(big, 'b', sizeof big);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write_all(fd, big, sizeof big), 0);
        close(fd);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_size, sizeof big);
        unlink(p);

        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        close(fds[0]);
        signal(SIGPIPE, SIG_IGN);
        assert_int_equal(write_all(fds[1], "x", 1), -EPIPE);
        close(fds[1]);
}

static void test_now_ms_is_monotonic(void **state) {
        long long a = now_ms();
        usleep(20000);
        long long b = now_ms();
        assert_true(b >= a + 15);
        assert_true(b < a + 5000);
}

static void test_log_escape_keeps_one_line(void **state) {
        char a[64] = "plain \xc3\xbc text", b[64] = "x\n<error> forged\t\x1b[2J\r\x7f", c[8] = "ab\ncdef";

        (void)state;
        log_escape(a, sizeof a);
        assert_string_equal(a, "plain \xc3\xbc text"); /* UTF-8 stays */
        log_escape(b, sizeof b);
        assert_string_equal(b, "x\\n<error> forged\\t\\x1b[2J\\r\\x7f");
        log_escape(c, sizeof c); /* truncated to its buffer, still terminated */
        assert_string_equal(c, "ab\\ncde");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_user_names),
                cmocka_unit_test(test_invalid_user_names),
                cmocka_unit_test(test_plugin_names),
                cmocka_unit_test(test_parse_bool),
                cmocka_unit_test(test_write_file_atomic_creates_and_replaces),
                cmocka_unit_test(test_write_file_atomic_mode_ignores_umask),
                cmocka_unit_test(test_write_file_atomic_missing_dir_fails),
                cmocka_unit_test(test_write_file_atomic_replaces_symlink_not_target),
                cmocka_unit_test(test_write_all_handles_large_writes),
                cmocka_unit_test(test_now_ms_is_monotonic),
                cmocka_unit_test(test_log_escape_keeps_one_line),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
