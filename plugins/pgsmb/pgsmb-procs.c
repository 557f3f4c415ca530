/* pgSMB at logoff, before the home is archived: the user's processes that outlived their last
 * session (a desktop's indexer, a nohup job, user@.service lingering) are given
 * logoff_process_wait seconds to end, then ended, as Windows and pGina end a user's programs at
 * logoff: through logind's TerminateUser where logind runs, else SIGTERM and, 5 s later,
 * SIGKILL to every process of the uid. So the home is archived quiet, not while it is written.
 * logoff_end_processes = false, or a user named in logoff_keep_processes (NAME or @GROUP),
 * leaves them alone. The user's systemd manager itself (systemd --user and its (sd-pam), in
 * user@UID.service/init.scope) is not waited for: logind stops it after UserStopDelaySec, and
 * waiting for it would hold every logoff on a systemd machine for logoff_process_wait. */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "pgsmb-config.h"
#include "pgsmb.h"
#include <pgina/util.h>
#if HAVE_LIBSYSTEMD
#include <systemd/sd-bus.h>
#endif

#define KILL_GRACE_MS 5000
#define POLL_MS 100

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Does pid run as uid (real, effective or saved)? */
static bool pid_of_uid(const char *pid, uid_t uid) {
        char path[64], line[256];
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof path, "/proc/%s/status", pid);
        if (!(f = fopen(path, "re")))
                return false;
        while (fgets(line, sizeof line, f)) {
                unsigned r, e, s;
                if (sscanf(line, "Uid: %u %u %u", &r, &e, &s) == 3)
                        return r == uid || e == uid || s == uid;
        }
        return false;
}

/* Is pid the user's service manager (its cgroup user@UID.service/init.scope)? */
static bool pid_is_manager(const char *pid, uid_t uid) {
        char path[64], line[512], tail[64];
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof path, "/proc/%s/cgroup", pid);
        snprintf(tail, sizeof tail, "/user@%u.service/init.scope\n", (unsigned)uid);
        if (!(f = fopen(path, "re")))
                return false;
        while (fgets(line, sizeof line, f)) {
                size_t n = strlen(line), t = strlen(tail);
                if (strncmp(line, "0::", 3) == 0 && n >= t && streq(line + n - t, tail))
                        return true;
        }
        return false;
}

/* Send sig (0: none) to every process of uid but its service manager; the number found. */
static unsigned uid_processes(uid_t uid, int sig) {
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        struct dirent *de;
        unsigned n = 0;

        while (d && (de = readdir(d))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9' || !pid_of_uid(de->d_name, uid) ||
                    pid_is_manager(de->d_name, uid))
                        continue;
                n++;
                if (sig)
                        (void)kill((pid_t)atoi(de->d_name), sig);
        }
        return n;
}

/* 0 when none is left within ms. */
static int wait_gone(uid_t uid, long long ms) {
        long long end = now_ms() + ms;

        while (uid_processes(uid, 0) > 0) {
                if (now_ms() >= end)
                        return -ETIMEDOUT;
                usleep(POLL_MS * 1000);
        }
        return 0;
}

#if HAVE_LIBSYSTEMD
static int logind_terminate(uid_t uid) {
        sd_bus *bus = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        int r;

        if (access("/run/systemd/seats/", F_OK) < 0)
                return -ENOENT; /* logind is not running */
        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
                                       "org.freedesktop.login1.Manager", "TerminateUser", &err, NULL, "u",
                                       (uint32_t)uid);
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(bus);
        return r;
}
#else
static int logind_terminate(uid_t uid) {
        (void)uid;
        return -EOPNOTSUPP;
}
#endif

/* The user is named in logoff_keep_processes, directly or through @group. */
static bool kept(struct pgina_ctx *ctx, const char *user, gid_t gid) {
        size_t n = pgina_conf_list_len(ctx, "logoff_keep_processes");
        gid_t groups[256];
        int ng = (int)ELEMENTSOF(groups);

        if (getgrouplist(user, gid, groups, &ng) < 0)
                ng = 0;
        for (size_t i = 0; i < n; i++) {
                const char *w = pgina_conf_list_item(ctx, "logoff_keep_processes", i);
                if (w[0] != '@') {
                        if (streq(w, user))
                                return true;
                        continue;
                }
                for (int k = 0; k < ng; k++) {
                        struct group gr, *grp = NULL;
                        char buf[4096];
                        if (getgrgid_r(groups[k], &gr, buf, sizeof buf, &grp) == 0 && grp && streq(grp->gr_name, w + 1))
                                return true;
                }
        }
        return false;
}

void pgsmb_end_user_processes(struct pgina_ctx *ctx, const char *user, uid_t uid, gid_t gid) {
        long long wait_s = pgina_conf_int(ctx, "logoff_process_wait");
        unsigned n;

        if (uid == 0 || uid_processes(uid, 0) == 0)
                return;
        if (wait_s > 0 && wait_gone(uid, wait_s * 1000) == 0)
                return;
        n = uid_processes(uid, 0);
        if (n == 0)
                return;
        if (!pgina_conf_bool(ctx, "logoff_end_processes") || kept(ctx, user, gid)) {
                pgina_log(ctx, LOG_NOTICE, "%s: %u process(es) still running %lld s after the last session; left "
                          "alone (%s), the home is archived while they run", user, n, wait_s,
                          pgina_conf_bool(ctx, "logoff_end_processes") ? "logoff_keep_processes"
                                                                       : "logoff_end_processes = false");
                return;
        }
        if (logind_terminate(uid) >= 0) {
                pgina_log(ctx, LOG_NOTICE, "%s: %u process(es) still running %lld s after the last session: ended "
                          "through logind (TerminateUser)", user, n, wait_s);
                if (wait_gone(uid, KILL_GRACE_MS) == 0)
                        return;
        } else {
                pgina_log(ctx, LOG_NOTICE, "%s: %u process(es) still running %lld s after the last session: ending "
                          "them (SIGTERM)", user, n, wait_s);
                (void)uid_processes(uid, SIGTERM);
                if (wait_gone(uid, KILL_GRACE_MS) == 0)
                        return;
        }
        n = uid_processes(uid, SIGKILL);
        if (wait_gone(uid, KILL_GRACE_MS) < 0)
                pgina_log(ctx, LOG_WARNING, "%s: %u process(es) survived SIGKILL; the home is archived anyway", user,
                          uid_processes(uid, 0));
        else
                pgina_log(ctx, LOG_NOTICE, "%s: %u process(es) killed (SIGKILL) after %d s", user, n,
                          KILL_GRACE_MS / 1000);
}
