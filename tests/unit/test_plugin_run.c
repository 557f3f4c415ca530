/* libpgina-plugin's program runner (pgina_run): stdin bytes or a descriptor, stdout to a
 * descriptor, stderr's first line kept, kept descriptors numbered from 3, the exit status, and
 * the time limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>

#include <cmocka.h>

#include <pgina/run.h>
#include <pgina/util.h>

static void read_back(int fd, char *buf, size_t len) {
        ssize_t n;

        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        n = read(fd, buf, len - 1);
        assert_true(n >= 0);
        buf[n] = 0;
}

static int temp_fd(void) {
        char path[] = "/tmp/test_plugin_run.XXXXXX";
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        unlink(path);
        return fd;
}

static void test_input_to_stdout_and_first_stderr_line(void **state) {
        const char *const argv[] = {"/bin/sh", "-c", "cat; echo first >&2; echo second >&2; exit 3", NULL};
        _cleanup_close_ int out = temp_fd();
        struct pgina_run_result res;
        const struct pgina_run run = {.argv = argv, .env_base = SPAWN_ENV_USER, .input = "hello",
                                      .input_len = 5, .stdin_fd = -1, .stdout_fd = out};
        char buf[64];

        assert_int_equal(pgina_run(&run, &res), 0);
        assert_int_equal(res.status, 3);
        assert_string_equal(res.err, "first");
        read_back(out, buf, sizeof buf);
        assert_string_equal(buf, "hello");
}

static void test_stdin_descriptor_and_kept_descriptor(void **state) {
        const char *const argv[] = {"/bin/sh", "-c", "cat >&3", NULL};
        _cleanup_close_ int in = temp_fd(), aux = temp_fd();
        struct pgina_run_result res;
        const struct pgina_run run = {.argv = argv, .env_base = SPAWN_ENV_USER, .stdin_fd = in,
                                      .stdout_fd = -1, .keep_fds = &aux, .n_keep = 1};
        char buf[64];

        assert_int_equal(write(in, "via fd", 6), 6);
        assert_int_equal(lseek(in, 0, SEEK_SET), 0);
        assert_int_equal(pgina_run(&run, &res), 0);
        assert_int_equal(res.status, 0);
        read_back(aux, buf, sizeof buf);
        assert_string_equal(buf, "via fd");
}

static void test_timeout_kills_it(void **state) {
        const char *const argv[] = {"/bin/sh", "-c", "sleep 30", NULL};
        struct pgina_run_result res;
        const struct pgina_run run = {.argv = argv, .env_base = SPAWN_ENV_USER, .stdin_fd = -1,
                                      .stdout_fd = -1, .timeout_ms = 200};
        long long t0 = now_ms();

        assert_int_equal(pgina_run(&run, &res), -ETIMEDOUT);
        assert_true(now_ms() - t0 < 10000);
}

static void test_tool_names_are_bare(void **state) {
        const char *const rel[] = {"bin/true", NULL}, *const missing[] = {"no-such-tool-pgina", NULL};
        const char *const tool[] = {"true", NULL};
        struct pgina_run_result res;

        assert_int_equal(pgina_run_tool(rel, NULL, 0, &res), -EINVAL);
        assert_int_equal(pgina_run_tool(missing, NULL, 0, &res), -ENOENT);
        assert_int_equal(pgina_run_tool(tool, NULL, 0, &res), 0);
        assert_int_equal(res.status, 0);
}

int main(void) {
        /* one group: each test starts its own programs and waits for them */
        static const struct CMUnitTest run_tests[] = {
                cmocka_unit_test(test_input_to_stdout_and_first_stderr_line),
                cmocka_unit_test(test_stdin_descriptor_and_kept_descriptor),
                cmocka_unit_test(test_timeout_kills_it), cmocka_unit_test(test_tool_names_are_bare),
        };

        return cmocka_run_group_tests_name("plugin_run", run_tests, NULL, NULL);
}
