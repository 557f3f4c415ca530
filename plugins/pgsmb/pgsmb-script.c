/* pgSMB: the login script (pGina's LoginScript), run as the user at logon. The root side checks
 * the file and logs the script's output line by line; pgsmb-userwork, already the user, spawns it
 * with a fixed argv, a minimal environment, stdin /dev/null and cwd = home, and kills its process
 * group when login_script_timeout runs out. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <syslog.h>
#include <unistd.h>

#include "pgsmb-logon.h"
#include "pgsmb-userwork.h"
#include <pgina/util.h>

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

/* ---- the run: pgsmb-userwork runs the script as the user, we log its output ---- */

struct line_buf {
        struct pgina_ctx *ctx;
        const char *user;
        char buf[SCRIPT_LINE_MAX + 1];
        size_t n;
        unsigned logged;
        bool dropped;
};

static void line_emit(struct line_buf *lb) {
        if (lb->logged < SCRIPT_LOG_LINES_MAX) {
                for (size_t i = 0; i < lb->n; i++)
                        if ((unsigned char)lb->buf[i] < ' ' || lb->buf[i] == 0x7f)
                                lb->buf[i] = '?'; /* no forged log lines */
                lb->buf[lb->n] = 0;
                pgina_log(lb->ctx, LOG_INFO, "%s: login script: %s", lb->user, lb->buf);
                lb->logged++;
        } else
                lb->dropped = true;
        lb->n = 0;
}

static void line_feed(struct line_buf *lb, const char *p, size_t len) {
        for (size_t i = 0; i < len; i++) {
                if (p[i] == '\n') {
                        line_emit(lb);
                        continue;
                }
                if (p[i] == '\r')
                        continue;
                lb->buf[lb->n++] = p[i];
                if (lb->n == SCRIPT_LINE_MAX)
                        line_emit(lb);
        }
}

/* Log what arrives on out until the program reports (readable ctl_fd) or the deadline passes;
 * then what is already in the pipe. Processes the script left behind that hold the pipe are
 * not waited for. -ETIMEDOUT at the deadline. */
static int script_output(struct line_buf *lb, int out, int ctl_fd, long long deadline) {
        bool eof = false;
        char buf[4096];
        ssize_t k;

        for (;;) {
                struct pollfd pfd[2] = {{.fd = ctl_fd, .events = POLLIN}, {.fd = eof ? -1 : out, .events = POLLIN}};
                long long left = deadline - now_ms();

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(pfd, 2, (int)(left < 1000 ? left : 1000)) < 0 && errno != EINTR)
                        return -errno;
                if (pfd[1].revents) {
                        k = read(out, buf, sizeof buf);
                        if (k > 0)
                                line_feed(lb, buf, (size_t)k);
                        else if (k == 0 || errno != EINTR)
                                eof = true;
                }
                if (pfd[0].revents)
                        break;
        }
        (void)fcntl(out, F_SETFL, O_NONBLOCK);
        while (!eof && (k = read(out, buf, sizeof buf)) > 0)
                line_feed(lb, buf, (size_t)k);
        return 0;
}

static int run_as_user(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s,
                       const void *data, size_t len) {
        struct userwork_job job = {.kind = USERWORK_SCRIPT, .name = pu->name, .home = pu->home,
                                   .dir = pu->home, .script_path = s->path, .script_data = data,
                                   .script_len = (uint32_t)len, .timeout_s = s->timeout_s,
                                   .home_share = s->home_share, .home_mount = s->home_mount};
        struct line_buf lb = {.ctx = ctx, .user = pu->name};
        struct userwork_report rep = {0};
        struct pgsmb_child c;
        int r, p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pgina_log(ctx, LOG_INFO, "%s: running login script %s (time limit %u s)", pu->name, s->label, s->timeout_s);
        r = pgsmb_child_start(pu, &job, -1, p[1], -1, &c, rep.err, sizeof rep.err);
        close(p[1]);
        if (r == 0) {
                /* The program kills the script at its limit; this one is for the program, its
                 * report included (one that stops mid-report is killed too). */
                long long deadline = now_ms() + ((long long)s->timeout_s + 10) * 1000;
                if (script_output(&lb, p[0], c.ctl_fd, deadline) < 0)
                        kill(c.pid, SIGKILL);
                r = pgsmb_child_wait_until(&c, &rep, deadline);
        }
        close(p[0]);
        if (lb.n)
                line_emit(&lb);
        if (lb.dropped)
                pgina_log(ctx, LOG_WARNING, "%s: login script: more than %d lines of output, the rest not logged",
                          pu->name, SCRIPT_LOG_LINES_MAX);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "%s: login script %s not run: %s", pu->name, s->label,
                          rep.err[0] ? rep.err : strerror(-r));
                return r;
        }
        if (rep.code < 0) {
                pgina_log(ctx, LOG_WARNING, "%s: login script %s killed after %u s (login_script_timeout)",
                          pu->name, s->label, s->timeout_s);
                return -ETIMEDOUT;
        }
        pgina_log(ctx, rep.code == 0 ? LOG_INFO : LOG_WARNING, "%s: login script %s exited with status %d",
                  pu->name, s->label, rep.code);
        return rep.code;
}

int login_script_run(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s) {
        return run_as_user(ctx, pu, s, NULL, 0);
}

int login_script_run_data(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s,
                          const void *data, size_t len) {
        return run_as_user(ctx, pu, s, data, len);
}
