/* libpgina-plugin: runs a program through spawn_start (spawn.c): a root tool or, with
 * credentials, a program as a user; its stdin fed, the first line of its stderr kept, a time
 * limit. */
#include <pgina/run.h>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

#include <pgina/spawn.h>
#include <pgina/util.h>

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
                k = poll(&pfd, 1, (int)(left > INT_MAX ? INT_MAX : left));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        continue; /* the deadline: a silent program must not block the read */
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

/* 0: stdin (the input's pipe, stdin_fd or /dev/null), 1: stdout_fd or /dev/null, 2: the stderr
 * pipe (or stderr_fd), then keep_fds. Nothing else: the worker's fds without O_CLOEXEC (its result pipe to
 * pginad, whatever another plugin opened) must not outlive it in a program that hangs or forks,
 * or pginad would wait for that pipe's EOF long after the worker is gone. */
static int spawn_run(const struct pgina_run *run, const char *path, int in_fd, int err_fd, pid_t *pid) {
        int fds[SPAWN_FDS_MAX];
        const struct spawn s = {.path = path, .argv = run->argv, .env_base = run->env_base,
                                .env = run->env, .fds = fds, .n_fds = 3 + run->n_keep,
                                .cwd = run->cwd, .creds = run->creds};

        if (run->n_keep > SPAWN_FDS_MAX - 3)
                return -E2BIG;
        fds[0] = in_fd;
        fds[1] = run->stdout_fd;
        fds[2] = err_fd;
        for (size_t i = 0; i < run->n_keep; i++)
                fds[3 + i] = run->keep_fds[i];
        return spawn_start(&s, pid);
}

static int program_path(const char *name, char *buf, size_t len) {
        if (name && name[0] == '/') {
                if (snprintf(buf, len, "%s", name) >= (int)len)
                        return -ENAMETOOLONG;
                return 0;
        }
        return find_tool(name, buf, len);
}

int pgina_run(const struct pgina_run *run, struct pgina_run_result *res) {
        char path[PATH_MAX];
        int in[2] = {-1, -1}, errp[2] = {-1, -1};
        struct sigaction old_chld, dfl = {.sa_handler = SIG_DFL};
        long long deadline, timeout = run->timeout_ms ? run->timeout_ms : PGINA_RUN_TIMEOUT_MS;
        pid_t pid;
        int r, rr, st;

        res->status = res->wstatus = -1;
        res->err[0] = '\0';
        r = program_path(run->argv ? run->argv[0] : NULL, path, sizeof path);
        if (r < 0)
                return r;
        if (run->input) {
                r = make_pipe(in);
                if (r < 0)
                        return r;
        }
        if (run->stderr_fd == 0) {
                r = make_pipe(errp);
                if (r < 0)
                        goto out;
        }

        /* An ignored SIGCHLD would reap the program before we read its exit status. */
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGCHLD, &dfl, &old_chld);

        r = spawn_run(run, path, run->input ? in[0] : run->stdin_fd,
                      run->stderr_fd == 0 ? errp[1] : run->stderr_fd, &pid);
        if (errp[1] >= 0) {
                close(errp[1]);
                errp[1] = -1;
        }
        if (in[0] >= 0) {
                close(in[0]);
                in[0] = -1;
        }
        if (r < 0)
                goto restore;

        deadline = timeout == SPAWN_FOREVER ? SPAWN_FOREVER : now_ms() + timeout;
        if (run->input) {
                (void)write_input(in[1], run->input, run->input_len); /* one that stops reading says why */
                close(in[1]);
                in[1] = -1;
        }
        r = errp[0] >= 0 ? collect_stderr(errp[0], deadline, res->err, sizeof res->err) : 0;
        rr = spawn_wait(pid, r == -ETIMEDOUT ? 0 : deadline, &st);
        if (rr == 0) {
                res->status = spawn_exit_code(st);
                res->wstatus = st;
        }
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

int pgina_run_tool(const char *const argv[], const char *input, size_t input_len,
                   struct pgina_run_result *res) {
        return pgina_run_tool_env(argv, NULL, input, input_len, res);
}

int pgina_run_tool_env(const char *const argv[], const char *extra_env, const char *input,
                       size_t input_len, struct pgina_run_result *res) {
        const char *const env[] = {extra_env, NULL};
        const struct pgina_run run = {.argv = argv, .env_base = SPAWN_ENV_TOOL, .env = env,
                                      .input = input, .input_len = input_len, .stdin_fd = -1,
                                      .stdout_fd = -1};

        if (!argv || !argv[0] || strchr(argv[0], '/'))
                return -EINVAL; /* a tool is a bare name */
        return pgina_run(&run, res);
}
