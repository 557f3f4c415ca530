/* Unit tests of the node_exporter textfile (src/daemon/pginad-textfile.c) on a fake clock: written
 * at once, then every metrics_interval, never while its writer runs; the deadline it offers the
 * loop's poll; a real child writes the file (0644, nothing left beside it) and is reaped; a
 * writer that fails leaves the master as it was. */
#include <dirent.h>
#include <errno.h>
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

#include "pginad-manager.h"
#include "util.h"

/* ---- stubs of the modules this test does not link ---- */
size_t workers_count(const struct manager *m, enum worker_kind kind) {
        (void)m;
        return kind == WORKER_REQUEST ? 3 : 0;
}

static long long fake_now;
static long long fake_clock(void *userdata) {
        (void)userdata;
        return fake_now;
}

static struct conf conf;
static struct manager m;
static char dir[64], path[128];

static int setup(void **state) {
        snprintf(dir, sizeof dir, "/tmp/test_textfile.XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/pgina.prom", dir);
        memset(&conf, 0, sizeof conf);
        memset(&m, 0, sizeof m);
        conf.metrics_textfile = path;
        conf.metrics_interval = 60;
        m.conf = &conf;
        m.clock = (struct manager_clock){.now_ms = fake_clock};
        fake_now = 1000000;
        return 0;
}

static int teardown(void **state) {
        (void)unlink(path);
        (void)rmdir(dir);
        return 0;
}

static int reap(void) {
        int status;
        pid_t pid = m.textfile.writer;

        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_false(textfile_reaped(&m, pid + 100000, status)); /* not its writer */
        assert_true(textfile_reaped(&m, pid, status));
        assert_int_equal(m.textfile.writer, 0);
        return status;
}

static long long deadline(void) {
        long long next = fake_now + 3600 * 1000;
        textfile_deadline(&m, &next);
        return next;
}

static void test_written_at_once_then_every_interval(void **state) {
        struct stat st;
        char buf[8192];
        FILE *f;
        size_t n;

        assert_true(deadline() <= fake_now); /* due at start */
        textfile_write(&m, fake_now);
        assert_true(m.textfile.writer > 0);
        assert_int_equal(m.textfile.next, fake_now + 60 * 1000);
        assert_int_equal(deadline(), fake_now + 3600 * 1000); /* none while it writes */
        pid_t first = m.textfile.writer;
        fake_now += 120 * 1000;
        textfile_write(&m, fake_now); /* its time, but the writer still runs */
        assert_int_equal(m.textfile.writer, first);
        fake_now -= 120 * 1000;
        assert_int_equal(reap(), 0);

        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_non_null(f = fopen(path, "re"));
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        assert_non_null(strstr(buf, "\npgina_request_workers 3\n"));
        assert_non_null(strstr(buf, "# TYPE pgina_logons_total counter\n"));
        {
                DIR *d = opendir(dir);
                struct dirent *e;
                size_t files = 0;
                assert_non_null(d);
                while ((e = readdir(d)))
                        files += e->d_name[0] != '.';
                closedir(d);
                assert_int_equal(files, 1); /* no temporary file beside it */
        }

        fake_now += 59999;
        assert_int_equal(deadline(), fake_now + 1);
        textfile_write(&m, fake_now);
        assert_int_equal(m.textfile.writer, 0);
        fake_now += 1;
        textfile_write(&m, fake_now);
        assert_true(m.textfile.writer > 0);
        assert_int_equal(reap(), 0);
}

static void test_no_file_configured(void **state) {
        conf.metrics_textfile = NULL;
        assert_int_equal(deadline(), fake_now + 3600 * 1000);
        textfile_write(&m, fake_now);
        assert_int_equal(m.textfile.writer, 0);
}

/* Its directory is gone: the writer says so and fails; the next period tries again. */
static void test_failed_writer(void **state) {
        static char missing[160];
        int status;

        snprintf(missing, sizeof missing, "%s/no-such-dir/pgina.prom", dir);
        conf.metrics_textfile = missing;
        textfile_write(&m, fake_now);
        status = reap();
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
        assert_int_equal(deadline(), fake_now + 60 * 1000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_written_at_once_then_every_interval, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_file_configured, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_writer, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
