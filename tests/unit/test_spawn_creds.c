/* Unit tests of spawn_start with credentials (src/libpgina-plugin/spawn.c's fork path), with real
 * programs: the ids, groups and umask the program runs with, the descriptor map and nothing else,
 * default signals, the errors of the child before the exec coming back as spawn_start's, the
 * death signal. Needs root (it changes credentials): skipped otherwise. */
#include <dirent.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <pgina/spawn.h>
#include <pgina/util.h>

#define NOBODY 65534

static const gid_t some_groups[] = {NOBODY, 12345};
static const struct spawn_creds nobody = {.uid = NOBODY, .gid = NOBODY, .groups = some_groups,
                                          .n_groups = ELEMENTSOF(some_groups)};

/* Start s with its stdout (fds[1]) a pipe; its output in out, its exit code returned. */
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

static void test_runs_with_the_ids_groups_and_umask(void **state) {
        int fds[3] = {-1, -1, -1};
        char out[256];
        const char *argv[] = {"/usr/bin/id", "-u", NULL};
        struct spawn s = {.path = argv[0], .argv = argv, .env_base = SPAWN_ENV_USER, .n_fds = 3,
                          .creds = &nobody};

        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "65534\n");

        /* Real, effective and saved ids, the groups as given, umask 077 when none is named. */
        const char *all[] = {"/bin/sh", "-c", "grep -E '^(Uid|Gid|Groups):' /proc/self/status; umask", NULL};
        s.path = all[0];
        s.argv = all;
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n"
                                 "Groups:\t12345 65534 \n0077\n");

        struct spawn_creds c = nobody;
        c.n_groups = 0;
        c.umask = 022;
        s.creds = &c;
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n"
                                 "Groups:\t \n0022\n");
}

static void test_only_the_mapped_descriptors(void **state) {
        /* Left open without O_CLOEXEC on purpose: what a library's socket would be. */
        int leak = open("/dev/null", O_RDONLY);
        int fds[5] = {-1, -1, -1, -1, -1};
        char out[256];
        const char *argv[] = {"/bin/ls", "/proc/self/fd", NULL};
        struct spawn s = {.path = argv[0], .argv = argv, .env_base = SPAWN_ENV_USER, .n_fds = 3,
                          .creds = &nobody};

        assert_true(leak > 2);
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "0\n1\n2\n3\n"); /* 3: ls's own, on /proc/self/fd */

        /* Two more by number, one of them /dev/null; the leaked one still not. */
        fds[3] = STDERR_FILENO;
        s.n_fds = 5;
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "0\n1\n2\n3\n4\n5\n");

        /* Slot 4 is /dev/null, slot 3 our stderr: what the program sees behind them. */
        const char *links[] = {"/bin/sh", "-c", "readlink /proc/self/fd/4; [ -e /proc/self/fd/6 ] || echo none", NULL};
        s.path = links[0];
        s.argv = links;
        assert_int_equal(run_capture(&s, fds, out, sizeof out), 0);
        assert_string_equal(out, "/dev/null\nnone\n");
        close(leak);
}

static void test_default_signals_and_own_group(void **state) {
        int fds[3] = {-1, -1, -1};
        char out[512];
        const char *argv[] = {"/bin/sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; "
                                               "cut -d' ' -f5 /proc/$$/stat; echo $$", NULL};
        struct spawn s = {.path = argv[0], .argv = argv, .env_base = SPAWN_ENV_USER, .n_fds = 3,
                          .creds = &nobody};
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
        /* grep's own SigIgn/SigBlk: the shell's children inherit what it was given. */
        assert_int_equal(sscanf(out, "SigBlk:\t%llx\nSigIgn:\t%llx\n%lu\n%lu", &blocked, &ignored, &pgid, &pid), 4);
        assert_int_equal(blocked, 0);
        assert_int_equal(ignored & 0x7fffffffULL, 0);
        assert_int_equal(pgid, pid); /* a process group of its own */
}

/* Our open descriptors (the directory's own not counted). */
static int open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        int n = -1; /* the directory's own */

        assert_non_null(d);
        for (struct dirent *e; (e = readdir(d));)
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* What goes wrong between the fork and the exec comes back as spawn_start's -errno. */
static void test_child_errors_come_back(void **state) {
        int fds[3] = {-1, -1, -1};
        char dir[] = "/tmp/pgina-spawn-creds.XXXXXX";
        struct spawn s = {.path = "/bin/true", .argv = (const char *[]){"true", NULL},
                          .env_base = SPAWN_ENV_USER, .fds = fds, .n_fds = 3, .creds = &nobody};
        pid_t pid = 0;
        int before = open_fds();

        s.cwd = "/nonexistent-dir";
        assert_int_equal(spawn_start(&s, &pid), -ENOENT);
        /* chdir as the user: root's private directory is closed to it */
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0700), 0);
        s.cwd = dir;
        assert_int_equal(spawn_start(&s, &pid), -EACCES);
        rmdir(dir);
        s.cwd = NULL;
        s.path = "/nonexistent/program";
        assert_int_equal(spawn_start(&s, &pid), -ENOENT);
        s.path = "/bin/true";
        fds[1] = 1000; /* not open */
        assert_int_equal(spawn_start(&s, &pid), -EBADF);
        fds[1] = -1;
        /* No descriptor of the error pipe is left behind, and a start still works. */
        assert_int_equal(open_fds(), before);
        assert_int_equal(spawn_start(&s, &pid), 0);
        int st;
        assert_int_equal(spawn_wait(pid, SPAWN_FOREVER, &st), 0);
        assert_int_equal(spawn_exit_code(st), 0);
}

/* die_with_parent: the program is killed when the process that started it ends. */
static void test_dies_with_its_parent(void **state) {
        int p[2], st = 0;
        pid_t middle, prog = 0, w = 0;

        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        middle = fork();
        assert_true(middle >= 0);
        if (middle == 0) {
                struct spawn_creds c = nobody;
                int fds[3] = {-1, -1, -1};
                const struct spawn s = {.path = "/bin/sleep", .argv = (const char *[]){"sleep", "30", NULL},
                                        .env_base = SPAWN_ENV_USER, .fds = fds, .n_fds = 3, .creds = &c};
                pid_t pid = -1;

                c.die_with_parent = true;
                (void)!spawn_start(&s, &pid);
                (void)!write(p[1], &pid, sizeof pid);
                _exit(0);
        }
        close(p[1]);
        assert_int_equal(read(p[0], &prog, sizeof prog), sizeof prog);
        close(p[0]);
        assert_true(prog > 0);
        assert_int_equal(waitpid(middle, &st, 0), middle);
        for (int i = 0; i < 500 && (w = waitpid(prog, &st, WNOHANG)) == 0; i++)
                usleep(10 * 1000);
        assert_int_equal(w, prog);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_runs_with_the_ids_groups_and_umask),
                cmocka_unit_test(test_only_the_mapped_descriptors),
                cmocka_unit_test(test_default_signals_and_own_group),
                cmocka_unit_test(test_child_errors_come_back),
                cmocka_unit_test(test_dies_with_its_parent),
        };

        if (geteuid() != 0) {
                printf("skip: spawn with credentials needs root\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
