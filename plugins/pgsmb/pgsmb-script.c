/* pgSMB: the login script (pGina's LoginScript), run as the user at logon. The root side checks
 * the file; a child that already is the user (pgsmb_as_user) spawns it with a fixed argv, a
 * minimal environment, stdin /dev/null and cwd = home, logs its output line by line and kills its
 * process group when login_script_timeout runs out. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "pgsmb-logon.h"
#include "spawn-program.h"
#include "util.h"

#define SCRIPT_LINE_MAX 1000 /* longer lines are logged in pieces */
#define SCRIPT_LOG_LINES_MAX 500 /* more output is read and dropped, not logged */

/* ---- checks (root side) ---- */

static bool owner_ok(const struct stat *st, uid_t uid) { return st->st_uid == 0 || st->st_uid == uid; }

int login_script_check(const char *path, uid_t uid, char *resolved, char *err, size_t errlen) {
        char dir[PATH_MAX];
        struct stat st;

        if (path[0] != '/') {
                snprintf(err, errlen, "login script %s is not an absolute path", path);
                return -EINVAL;
        }
        if (!realpath(path, resolved) || stat(resolved, &st) < 0) {
                snprintf(err, errlen, "login script %s: %s", path, strerror(errno));
                return -errno;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "login script %s is not a regular file", path);
                return -EPERM;
        }
        if (!owner_ok(&st, uid) || (st.st_mode & 022)) {
                snprintf(err, errlen, "login script %s must be owned by root or the user and writable by no one else",
                         path);
                return -EPERM;
        }
        if (!(st.st_mode & 0111)) {
                snprintf(err, errlen, "login script %s is not executable", path);
                return -EACCES;
        }
        /* Whoever can change a directory on the way can swap the file. */
        snprintf(dir, sizeof dir, "%s", resolved);
        for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
                slash[slash == dir ? 1 : 0] = 0;
                if (stat(dir, &st) < 0) {
                        snprintf(err, errlen, "login script %s: %s: %s", path, dir, strerror(errno));
                        return -errno;
                }
                if (!owner_ok(&st, uid) || ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))) {
                        snprintf(err, errlen, "login script %s: directory %s may be changed by users other than root and the user",
                                 path, dir);
                        return -EPERM;
                }
                if (streq(dir, "/"))
                        break;
        }
        return 0;
}

/* ---- the child, as the user ---- */

struct run_arg {
        struct pgina_ctx *ctx;
        const struct pgsmb_user *pu;
        const struct login_script *s;
        const void *data; /* non-NULL: write this to a private file first */
        size_t len;
        int status_fd; /* the child writes the script's status here (an int) */
};

struct line_buf {
        char buf[SCRIPT_LINE_MAX + 1];
        size_t n;
        unsigned logged;
        bool dropped;
};

static void line_emit(const struct run_arg *a, struct line_buf *lb) {
        if (lb->logged < SCRIPT_LOG_LINES_MAX) {
                for (size_t i = 0; i < lb->n; i++)
                        if ((unsigned char)lb->buf[i] < ' ' || lb->buf[i] == 0x7f)
                                lb->buf[i] = '?'; /* no forged log lines */
                lb->buf[lb->n] = 0;
                pgina_log(a->ctx, LOG_INFO, "%s: login script: %s", a->pu->name, lb->buf);
                lb->logged++;
        } else
                lb->dropped = true;
        lb->n = 0;
}

static void line_feed(const struct run_arg *a, struct line_buf *lb, const char *p, size_t len) {
        for (size_t i = 0; i < len; i++) {
                if (p[i] == '\n') {
                        line_emit(a, lb);
                        continue;
                }
                if (p[i] == '\r')
                        continue;
                lb->buf[lb->n++] = p[i];
                if (lb->n == SCRIPT_LINE_MAX)
                        line_emit(a, lb);
        }
}

static int spawn_script(const struct run_arg *a, const char *path, int out_fd, pid_t *pid) {
        const struct login_script *s = a->s;
        char home[PATH_MAX + 8], user[300], logname[300], share[PGINA_VALUE_MAX + 32],
                mount[PGINA_VALUE_MAX + 32];
        const char *env[6], *argv[] = {path, NULL};
        /* stdin /dev/null, stdout and stderr the log pipe; nothing of pginad's worker else. */
        const int fds[] = {-1, out_fd, out_fd};
        size_t e = 0;

        snprintf(home, sizeof home, "HOME=%s", a->pu->home);
        snprintf(user, sizeof user, "USER=%s", a->pu->name);
        snprintf(logname, sizeof logname, "LOGNAME=%s", a->pu->name);
        env[e++] = home;
        env[e++] = user;
        env[e++] = logname;
        if (s->home_share) {
                snprintf(share, sizeof share, "PGINA_HOME_SHARE=%s", s->home_share);
                env[e++] = share;
        }
        if (s->home_mount) {
                snprintf(mount, sizeof mount, "PGINA_HOME_MOUNT=%s", s->home_mount);
                env[e++] = mount;
        }
        env[e] = NULL;

        /* Its own process group (spawn_start), so a timeout kills what it started too. */
        return spawn_start(&(const struct spawn){.path = path, .argv = argv, .env_base = SPAWN_ENV_USER,
                                                 .env = env, .fds = fds, .n_fds = ELEMENTSOF(fds),
                                                 .cwd = access(a->pu->home, X_OK) == 0 ? a->pu->home : "/"},
                           pid);
}

/* Read the script's output until it exits or time runs out; returns its wait status or -ETIMEDOUT. */
static int script_watch(const struct run_arg *a, pid_t pid, int fd) {
        long long deadline = now_ms() + (long long)a->s->timeout_s * 1000;
        struct line_buf lb = {.n = 0};
        bool eof = false;
        char buf[4096];
        int status = 0;

        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                long long left = deadline - now_ms();
                pid_t w = waitpid(pid, &status, WNOHANG);

                if (w == pid) {
                        /* Exited: take what it wrote, leave stragglers that hold the pipe. */
                        ssize_t k;
                        (void)fcntl(fd, F_SETFL, O_NONBLOCK);
                        while (!eof && (k = read(fd, buf, sizeof buf)) > 0)
                                line_feed(a, &lb, buf, (size_t)k);
                        break;
                }
                if (left <= 0) {
                        spawn_kill(pid);
                        status = -ETIMEDOUT;
                        break;
                }
                if (poll(&pfd, eof ? 0 : 1, (int)(left < 100 ? left : 100)) > 0) {
                        ssize_t k = read(fd, buf, sizeof buf);
                        if (k > 0)
                                line_feed(a, &lb, buf, (size_t)k);
                        else if (k == 0 || errno != EINTR)
                                eof = true;
                }
        }
        if (lb.n)
                line_emit(a, &lb);
        if (lb.dropped)
                pgina_log(a->ctx, LOG_WARNING, "%s: login script: more than %d lines of output, the rest not logged",
                          a->pu->name, SCRIPT_LOG_LINES_MAX);
        return status;
}

/* A private copy of a downloaded script in the home, written by the user: 0700, own name. */
static int write_private(const struct run_arg *a, char *path, size_t len, char *err, size_t errlen) {
        _cleanup_close_ int fd = -1;

        if (snprintf(path, len, "%s/.pgina-login-script.XXXXXX", a->pu->home) >= (int)len)
                return -ENAMETOOLONG;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0) {
                snprintf(err, errlen, "cannot create a file for the login script in %s: %s", a->pu->home,
                         strerror(errno));
                return -errno;
        }
        if (fchmod(fd, 0700) < 0 || write_all(fd, a->data, a->len) < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot write the login script to %s: %s", path, strerror(errno));
                unlink(path);
                return r;
        }
        return 0;
}

static int run_child(void *arg, char *err, size_t errlen) {
        struct run_arg *a = arg;
        char tmp[PATH_MAX];
        const char *path = a->s->path;
        int p[2], r, status;
        pid_t pid;

        if (a->data) {
                if ((r = write_private(a, tmp, sizeof tmp, err, errlen)) < 0)
                        return r;
                path = tmp;
        }
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                snprintf(err, errlen, "pipe: %s", strerror(errno));
                goto out;
        }
        r = spawn_script(a, path, p[1], &pid);
        close(p[1]);
        if (r < 0) {
                close(p[0]);
                snprintf(err, errlen, "cannot run login script %s: %s", a->s->label, strerror(-r));
                goto out;
        }
        status = script_watch(a, pid, p[0]);
        close(p[0]);
        status = status == -ETIMEDOUT ? -1 : spawn_exit_code(status);
        r = write_all(a->status_fd, &status, sizeof status);
out:
        if (a->data)
                (void)unlink(tmp);
        return r;
}

static int run_as_user(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s,
                       const void *data, size_t len) {
        struct run_arg a = {.ctx = ctx, .pu = pu, .s = s, .data = data, .len = len};
        char out[512] = "";
        int r, code = -1, p[2];

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        a.status_fd = p[1];
        pgina_log(ctx, LOG_INFO, "%s: running login script %s (time limit %u s)", pu->name, s->label, s->timeout_s);
        r = pgsmb_as_user(pu, a.status_fd, run_child, &a, out, sizeof out);
        close(p[1]);
        if (r >= 0 && read(p[0], &code, sizeof code) != (ssize_t)sizeof code)
                r = -EIO;
        close(p[0]);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "%s: login script %s not run: %s", pu->name, s->label,
                          out[0] ? out : strerror(-r));
                return r;
        }
        if (code < 0) {
                pgina_log(ctx, LOG_WARNING, "%s: login script %s killed after %u s (login_script_timeout)",
                          pu->name, s->label, s->timeout_s);
                return -ETIMEDOUT;
        }
        pgina_log(ctx, code == 0 ? LOG_INFO : LOG_WARNING, "%s: login script %s exited with status %d",
                  pu->name, s->label, code);
        return code;
}

int login_script_run(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s) {
        return run_as_user(ctx, pu, s, NULL, 0);
}

int login_script_run_data(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s,
                          const void *data, size_t len) {
        return run_as_user(ctx, pu, s, data, len);
}
