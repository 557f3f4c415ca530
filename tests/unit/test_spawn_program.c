/* Unit tests of src/libpgina-plugin/spawn.c with real programs: the descriptor map and nothing
 * else, the fixed environment, default signals, the time limit killing the process group. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "spawn-program.h"
#include "util.h"

/* Run s with its stdout (fds[1]) a pipe whose output lands in out; returns the exit code. */
static int run_capture(struct spawn *s, int *fds, char *out, size_t outlen) {
        int p[2], st = 0;
        size_t used = 0;
        ssize_t k;
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fds[1] = p[1];
        s->fds = fds;
        assert_int_equal(spawn_start(s, &pid), 0);
        close(p[1]);
        while (used + 1 < outlen && (k = read(p[0], out + used, outlen - 1 - used)) > 0)
                used += (size_t)k;
        out[used] = 0;
        close(p[0]);
        assert_int_equal(spawn_wait(pid, now_ms() + 10000, &st), 0);
        return spawn_exit_code(st);
}

static void test_only_the_mapped_descriptors(void **state) {
        /* Left open without O_CLOEXEC on purpose: what a library's socket would be. */
        int leak = open("/dev/null", O_RDONLY);
        int fds[4] = {-1, -1, -1, -1};
        char out[256];
        const char *argv[] = {"/bin/ls", "/proc/self/fd", NULL};
        struct spawn s = {.path = argv[0], .argv = argv, .env_base = SPAWN_ENV_TOOL, .n_fds = 3};

        assert_true(leak > 2);
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "0\n1\n2\n3\n"); /* 3: ls's own, on /proc/self/fd */

        /* A fourth descriptor passed by number (PASSWD_FD), the leaked one still not. */
        fds[3] = STDERR_FILENO;
        s.n_fds = 4;
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "0\n1\n2\n3\n4\n");
        close(leak);
}

/* The same descriptor in two slots, and a source already in its own slot with O_CLOEXEC set (our
 * stderr made the pipe): both reach the program. */
static void test_same_fd_twice_and_in_its_slot(void **state) {
        int fds[3] = {-1, -1, -1};
        char out[256];
        const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; cat", NULL};
        struct spawn s = {.path = argv[0], .argv = argv, .env_base = SPAWN_ENV_USER, .n_fds = 3};
        int saved = dup(STDERR_FILENO), p[2], st;
        pid_t pid;
        size_t used = 0;
        ssize_t k;

        /* Our stderr is the pipe: fds[2] == 2, its own slot, and it has O_CLOEXEC set. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(dup3(p[1], STDERR_FILENO, O_CLOEXEC), STDERR_FILENO);
        close(p[1]);
        fds[1] = STDERR_FILENO;
        fds[2] = STDERR_FILENO;
        s.fds = fds;
        assert_int_equal(spawn_start(&s, &pid), 0);
        dup2(saved, STDERR_FILENO);
        close(saved);
        while (used + 1 < sizeof out && (k = read(p[0], out + used, sizeof out - 1 - used)) > 0)
                used += (size_t)k;
        out[used] = 0;
        close(p[0]);
        assert_int_equal(spawn_wait(pid, now_ms() + 10000, &st), 0);
        assert_int_equal(spawn_exit_code(st), 0);
        assert_string_equal(out, "out\nerr\n"); /* cat: stdin /dev/null, nothing */
}

static void test_fixed_environment(void **state) {
        int fds[3] = {-1, -1, -1};
        char out[512];
        const char *argv[] = {"/usr/bin/env", NULL};
        const char *env[] = {"HOME=/home/alice", "USER=alice", NULL};
        struct spawn s = {.path = argv[0], .argv = argv, .env_base = SPAWN_ENV_USER, .env = env, .n_fds = 3};

        setenv("PGINA_LEAK_CANARY", "1", 1);
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "PATH=/usr/local/bin:/usr/bin:/bin\nHOME=/home/alice\nUSER=alice\n");

        s.env_base = SPAWN_ENV_TOOL;
        s.env = (const char *[]){"PASSWD_FD=0", NULL};
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLC_ALL=C\nPGINA_NSS_DISABLE=1\nPASSWD_FD=0\n");

        s.env = (const char *[]){"NOT-A-VARIABLE", NULL};
        assert_int_equal(spawn_start(&s, &(pid_t){0}), -EINVAL);
        unsetenv("PGINA_LEAK_CANARY");
}

static void test_default_signals_own_group(void **state) {
        int fds[3] = {-1, -1, -1};
        char out[512];
        const char *grep[] = {"/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status", NULL};
        const char *group[] = {"/bin/sh", "-c", "cut -d' ' -f5 /proc/$$/stat; echo $$", NULL};
        struct spawn s = {.path = grep[0], .argv = grep, .env_base = SPAWN_ENV_USER, .n_fds = 3};
        sigset_t block, old;
        unsigned long pgid = 0, pid = 0;
        unsigned long long blocked = 1, ignored = 1;

        signal(SIGPIPE, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigprocmask(SIG_BLOCK, &block, &old);
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        sigprocmask(SIG_SETMASK, &old, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        assert_int_equal(sscanf(out, "SigBlk:\t%llx\nSigIgn:\t%llx", &blocked, &ignored), 2);
        assert_int_equal(blocked, 0);
        /* None of signals 1-31 ignored. glibc's posix_spawn leaves its internal signals 32 and 33
         * (SIGCANCEL, SIGSETXID) ignored in the child; no program uses them. */
        assert_int_equal(ignored & 0x7fffffffULL, 0);

        s.path = group[0];
        s.argv = group;
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_int_equal(sscanf(out, "%lu\n%lu", &pgid, &pid), 2);
        assert_int_equal(pgid, pid); /* a process group of its own */
}

static void test_time_limit_kills_the_group(void **state) {
        int fds[3] = {-1, -1, -1}, p[2], st = 0;
        const char *argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!; exec sleep 30", NULL};
        struct spawn s = {.path = argv[0], .argv = argv, .env_base = SPAWN_ENV_USER, .fds = fds, .n_fds = 3};
        char buf[64] = "";
        long long t0;
        pid_t pid, bg, w;

        /* The background sleep is orphaned when its shell dies; adopt it to see how it ended. */
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fds[1] = p[1];
        assert_int_equal(spawn_start(&s, &pid), 0);
        close(p[1]);
        assert_true(read(p[0], buf, sizeof buf - 1) > 0);
        close(p[0]);
        bg = (pid_t)atoi(buf);
        assert_true(bg > 0);

        t0 = now_ms();
        assert_int_equal(spawn_wait(pid, t0 + 200, &st), -ETIMEDOUT);
        assert_true(now_ms() - t0 < 5000);
        for (int i = 0; i < 500 && (w = waitpid(bg, &st, WNOHANG)) == 0; i++)
                usleep(10 * 1000);
        assert_int_equal(w, bg);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void test_refusals_and_exit_codes(void **state) {
        int fds[3] = {-1, -1, -1}, st = 0;
        struct spawn s = {.argv = (const char *[]){"sh", NULL}, .fds = fds, .n_fds = 3};
        pid_t pid;

        s.path = "sh";
        assert_int_equal(spawn_start(&s, &pid), -EINVAL);
        s.path = "/nonexistent/program";
        assert_int_equal(spawn_start(&s, &pid), -ENOENT);
        s.path = "/bin/sh";
        s.cwd = "/nonexistent-dir";
        assert_int_equal(spawn_start(&s, &pid), -ENOENT);
        s.cwd = NULL;
        s.n_fds = SPAWN_FDS_MAX + 1;
        assert_int_equal(spawn_start(&s, &pid), -E2BIG);

        s.n_fds = 3;
        s.argv = (const char *[]){"sh", "-c", "exit 7", NULL};
        assert_int_equal(spawn_start(&s, &pid), 0);
        assert_int_equal(spawn_wait(pid, SPAWN_FOREVER, &st), 0);
        assert_int_equal(spawn_exit_code(st), 7);
        s.argv = (const char *[]){"sh", "-c", "kill -TERM $$", NULL};
        assert_int_equal(spawn_start(&s, &pid), 0);
        assert_int_equal(spawn_wait(pid, SPAWN_FOREVER, &st), 0);
        assert_int_equal(spawn_exit_code(st), 128 + SIGTERM);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_only_the_mapped_descriptors),
                cmocka_unit_test(test_same_fd_twice_and_in_its_slot),
                cmocka_unit_test(test_fixed_environment),
                cmocka_unit_test(test_default_signals_own_group),
                cmocka_unit_test(test_time_limit_kills_the_group),
                cmocka_unit_test(test_refusals_and_exit_codes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
