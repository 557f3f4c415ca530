/* LocalMachine: the one place that starts a process (posix_spawn, fixed argv and environment). */
#include "lm-spawn.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include "util.h"

static const char *const tool_dirs[] = {"/usr/sbin", "/sbin", "/usr/bin"};

static int find_tool(const char *name, char *buf, size_t len) {
        if (!name || strchr(name, '/'))
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(tool_dirs); i++) {
                if (snprintf(buf, len, "%s/%s", tool_dirs[i], name) >= (int)len)
                        return -ENAMETOOLONG;
                if (access(buf, X_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}

/* The worker may run with fds 0-2 closed; keep our pipe ends out of the child's stdio slots. */
static int fd_above_stdio(int fd) {
        int nfd;

        if (fd < 0 || fd > 2)
                return fd;
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        return nfd < 0 ? -errno : nfd;
}

static int make_pipe(int p[2]) {
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        p[0] = fd_above_stdio(p[0]);
        p[1] = fd_above_stdio(p[1]);
        if (p[0] < 0 || p[1] < 0) {
                int r = p[0] < 0 ? p[0] : p[1];
                if (p[0] >= 0)
                        close(p[0]);
                if (p[1] >= 0)
                        close(p[1]);
                return r;
        }
        return 0;
}

/* Write the input with SIGPIPE held back: a tool that exits early must not kill the worker. */
static int write_input(int fd, const char *input, size_t len) {
        sigset_t pipe_set, old;
        struct timespec zero = {0, 0};
        int r;

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        r = write_all(fd, input, len);
        if (r == -EPIPE)
                while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
                        ;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}

/* Read stderr until EOF or the deadline; keep the first line. Returns -ETIMEDOUT at the deadline. */
static int collect_stderr(int fd, long long deadline, char *err, size_t errlen) {
        size_t used = 0;
        bool line_done = false;

        err[0] = '\0';
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                long long left = deadline - now_ms();
                char buf[512];
                ssize_t k;

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&pfd, 1, (int)(left > INT_MAX ? INT_MAX : left)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                k = read(fd, buf, sizeof buf);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return 0;
                for (ssize_t i = 0; i < k && !line_done; i++) {
                        if (buf[i] == '\n' || used + 1 >= errlen) {
                                line_done = true;
                                break;
                        }
                        err[used++] = buf[i];
                        err[used] = '\0';
                }
        }
}

/* Wait for the child until the deadline, then kill its process group. */
static int wait_child(pid_t pid, long long deadline, int *status) {
        for (;;) {
                int st;
                pid_t k = waitpid(pid, &st, WNOHANG);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == pid) {
                        *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                        return 0;
                }
                if (now_ms() >= deadline) {
                        kill(-pid, SIGKILL);
                        kill(pid, SIGKILL);
                        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                                ;
                        return -ETIMEDOUT;
                }
                nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
        }
}

static int spawn_tool(const char *path, const char *const argv[], const char *extra_env, int in_fd,
                      int err_fd, pid_t *pid) {
        /* PGINA_NSS_DISABLE: useradd must not see directory users through libnss_pgina, or it
         * would refuse to create their local accounts ("user already exists"). */
        char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "PGINA_NSS_DISABLE=1",
                              (char *)extra_env, NULL};
        static const int reset_signals[] = {SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM,
                                            SIGUSR1, SIGUSR2, SIGALRM};
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t empty, defaults;
        int r;

        sigemptyset(&empty);
        sigemptyset(&defaults);
        for (size_t i = 0; i < ELEMENTSOF(reset_signals); i++)
                sigaddset(&defaults, reset_signals[i]);

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        if (in_fd >= 0)
                r = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
        else
                r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
        /* Nothing else: the worker's fds without O_CLOEXEC (its result pipe to pginad, whatever
         * another plugin opened) must not outlive it in a tool that hangs or forks, or pginad
         * would wait for that pipe's EOF long after the worker is gone. */
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                            POSIX_SPAWN_SETPGROUP);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &empty);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r == 0)
                r = posix_spawn(pid, path, &fa, &attr, (char *const *)argv, envp);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return -r;
}

int lm_run(const char *const argv[], const char *input, size_t input_len, struct lm_run_result *res) {
        return lm_run_env(argv, NULL, input, input_len, res);
}

int lm_run_env(const char *const argv[], const char *extra_env, const char *input, size_t input_len,
               struct lm_run_result *res) {
        char path[PATH_MAX];
        int in[2] = {-1, -1}, errp[2] = {-1, -1};
        struct sigaction old_chld, dfl = {.sa_handler = SIG_DFL};
        long long deadline;
        pid_t pid;
        int r, rr;

        res->status = -1;
        res->err[0] = '\0';
        r = find_tool(argv[0], path, sizeof path);
        if (r < 0)
                return r;
        if (input) {
                r = make_pipe(in);
                if (r < 0)
                        return r;
        }
        r = make_pipe(errp);
        if (r < 0)
                goto out;

        /* An ignored SIGCHLD would reap the tool before we read its exit status. */
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGCHLD, &dfl, &old_chld);

        r = spawn_tool(path, argv, extra_env, in[0], errp[1], &pid);
        close(errp[1]);
        errp[1] = -1;
        if (in[0] >= 0) {
                close(in[0]);
                in[0] = -1;
        }
        if (r < 0)
                goto restore;

        deadline = now_ms() + LM_RUN_TIMEOUT_MS;
        if (input) {
                (void)write_input(in[1], input, input_len); /* a tool that stops reading says why */
                close(in[1]);
                in[1] = -1;
        }
        r = collect_stderr(errp[0], deadline, res->err, sizeof res->err);
        rr = wait_child(pid, r == -ETIMEDOUT ? 0 : deadline, &res->status);
        if (r >= 0)
                r = rr;
restore:
        sigaction(SIGCHLD, &old_chld, NULL);
out:
        for (int i = 0; i < 2; i++) {
                if (in[i] >= 0)
                        close(in[i]);
                if (errp[i] >= 0)
                        close(errp[i]);
        }
        return r;
}
