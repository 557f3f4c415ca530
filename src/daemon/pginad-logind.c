/* Following logind (master side): where systemd-logind runs, a user's logon is a logind session
 * and the logoff is the end of the last one (DESIGN.md), whatever becomes of the PAM session's
 * process. This file is the only one that asks sd-login; without libsystemd, or without logind
 * (containers, the test sandbox), every answer is "not known" and PAM open/close stays the signal. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pgina-build.h"
#include "pginad.h"
#include "util.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>

/* sd_booted(3) and sd-login(3): logind runs when /run/systemd/seats/ exists. */
bool logind_running(void) { return sd_booted() > 0 && access("/run/systemd/seats/", F_OK) == 0; }

int logind_follow(struct logind *l) {
        sd_login_monitor *mon = NULL;
        int r;

        if (l->monitor)
                return 1;
        if (l->failed || !logind_running())
                return 0;
        /* "session": a session's file is rewritten when its state changes (a closing session,
         * whose leader left) and removed when it ends; that is all pginad needs to hear. */
        r = sd_login_monitor_new("session", &mon);
        if (r < 0) {
                l->failed = true;
                return log_warning_errno(r, "Could not follow logind's sessions (logoffs follow PAM "
                                            "closes only): %m");
        }
        l->monitor = mon;
        l->fd = sd_login_monitor_get_fd(mon);
        log_debug("following logind's sessions");
        return 1;
}

void logind_flush(struct logind *l) {
        if (l->monitor)
                (void)sd_login_monitor_flush(l->monitor);
}

void logind_close(struct logind *l) {
        if (l->monitor)
                sd_login_monitor_unref(l->monitor);
        l->monitor = NULL;
        l->fd = -1;
}

int logind_session_of(pid_t pid, uid_t uid, const char *service, char **ret) {
        _cleanup_free_ char *id = NULL, *svc = NULL;
        uid_t owner;
        int r;

        if (pid <= 0)
                return -ESRCH;
        r = sd_pid_get_session(pid, &id);
        if (r < 0)
                return r;
        /* The pid's session is the PAM session's only if logind registered it for the same user
         * and PAM service: `su - bob` inside alice's ssh session runs in her logind session, and
         * pam_systemd registers no new one for it. */
        if (sd_session_get_uid(id, &owner) < 0 || owner != uid || sd_session_get_service(id, &svc) < 0 ||
            !streq(svc, service))
                return -ENODATA;
        *ret = TAKE_PTR(id);
        return 0;
}

enum logind_state logind_session_state(const char *id) {
        _cleanup_free_ char *state = NULL;
        int r = sd_session_get_state(id, &state);

        if (r == -ENXIO || r == -ENOENT)
                return LOGIND_GONE;
        if (r < 0)
                return LOGIND_UNKNOWN;
        return streq(state, "closing") ? LOGIND_CLOSING : LOGIND_OPEN;
}

bool logind_user_online(uid_t uid) {
        _cleanup_free_ char *state = NULL;

        /* "active", "online": a session that is not closing; "closing", "lingering", "offline"
         * (or no such user: -ENXIO): none. */
        if (sd_uid_get_state(uid, &state) < 0)
                return false;
        return streq(state, "active") || streq(state, "online");
}
#else
bool logind_running(void) { return false; }
int logind_follow(struct logind *l) {
        (void)l;
        return 0;
}
void logind_flush(struct logind *l) { (void)l; }
void logind_close(struct logind *l) { l->fd = -1; }
int logind_session_of(pid_t pid, uid_t uid, const char *service, char **ret) {
        (void)pid, (void)uid, (void)service, (void)ret;
        return -EOPNOTSUPP;
}
enum logind_state logind_session_state(const char *id) {
        (void)id;
        return LOGIND_UNKNOWN;
}
bool logind_user_online(uid_t uid) {
        (void)uid;
        return true;
}
#endif

bool logind_session_id_valid(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > LOGIND_ID_MAX)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                        return false;
        return true;
}

bool logind_process_gone(pid_t pid) { return pid > 0 && kill(pid, 0) < 0 && errno == ESRCH; }
