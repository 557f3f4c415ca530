/* The logon requests: login, open/close session, change password, and the pending logins
 * and ended sessions between them; logind's view of the sessions. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pgina-build.h"
#include "pginad.h"
#include "util.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "pginad-manager.h"

void handle_login(struct manager *m, struct conn *c) {
        struct request *r = &c->req;

        if (!valid_logon_name(r->user)) {
                /* Nothing could authenticate this name; answer like any wrong password. */
                peer_account(m, c, false);
                reply_simple(c, PROTO_AUTH_FAILED, "Authentication failed");
                request_free(r);
                return;
        }
        if (r->scenario == PGINA_SCENARIO_UNLOCK && r->session[0]) {
                struct session *s = cache_find(&m->cache, r->session);
                if (s && s->nentries > 0 && !streq(s->entries[0].user, r->user)) {
                        log_notice("unlock of session %s (user %s) refused for user %s", s->id,
                                   s->entries[0].user, r->user);
                        peer_account(m, c, false);
                        reply_simple(c, PROTO_PERMISSION, "Only the user of this session may unlock it");
                        request_free(r);
                        return;
                }
        }
        if (m->stopping && r->scenario == PGINA_SCENARIO_LOGON) {
                reply_simple(c, PROTO_SHUTTING_DOWN, "The system is shutting down");
                request_free(r);
                return;
        }
        if (r->scenario == PGINA_SCENARIO_LOGON && user_has_job(m, r->user)) {
                park(m, c);
                return;
        }
        handle_request_in_worker(m, c);
}

static bool pending_login_with_token(struct manager *m, const char *token) {
        for (struct pending_login *pl = m->logins; pl; pl = pl->next)
                if (streq(pl->token, token))
                        return true;
        return false;
}

/* One user manager per user (user@UID.service): a manager session of the user still listed when
 * a new one opens is stale, its manager ended before it could close it (logind's TerminateUser
 * at logoff ends sd-pam too). */
static void manager_sessions_drop(struct manager *m, const char *user) {
        for (bool found = true; found;) {
                found = false;
                for (size_t i = 0; i < m->cache.n; i++) {
                        struct session *s = &m->cache.v[i], gone;
                        _cleanup_free_ char *id = NULL;

                        if (!cache_session_is_manager(s) || !streq(s->entries[0].user, user))
                                continue;
                        if (!(id = strdup(s->id)) || cache_close(&m->cache, id, &gone) < 0)
                                return;
                        log_debug("session %s of %s (a user manager that ended without closing it) dropped",
                                  id, user);
                        session_done(&gone);
                        found = true;
                        break;
                }
        }
}

/* Where logind runs, the logind session a pgina login session belongs to: pam_systemd registers it
 * after pam_pgina has opened ours (common-session's order), so this is asked again at each of
 * logind's session events until it is known. */
static void session_logind_map(struct manager *m, struct session *s) {
        struct cache_entry *e = s->nentries > 0 ? &s->entries[0] : NULL;
        char *id = NULL;

        if (!m->logind.monitor || !e || *s->logind || e->uid < 0 || cache_session_is_manager(s) ||
            logind_session_of((pid_t)s->leader, (uid_t)e->uid, e->service, &id) < 0)
                return;
        free(s->logind);
        s->logind = id;
        (void)cache_save(&m->cache);
        log_debug("session %s of %s is logind session %s", s->id, e->user, id);
}

void handle_open_session(struct manager *m, struct conn *c) {
        struct request *r = &c->req;
        struct pgina_user *record = NULL;
        struct secret *password = NULL;
        _cleanup_pbuf_ struct pbuf b = {0};
        struct session *s;
        enum pgina_event ev[2];
        size_t nev = 0, nenv = 0;
        uid_t uid;
        char id[64], phases[METRICS_PHASES_MAX] = "";

        if (!valid_user_name(r->user)) {
                reply_simple(c, PROTO_BAD_REQUEST, "invalid user name");
                goto out;
        }
        if (m->stopping) {
                reply_simple(c, PROTO_SHUTTING_DOWN, "The system is shutting down");
                goto out;
        }
        if (user_has_job(m, r->user)) {
                park(m, c);
                return;
        }
        /* The logon's token when the module kept it; otherwise (sshd's keyboard-interactive runs
         * PAM's authentication in a child, whose pam_set_data is lost) the newest pending logon of
         * the same user: both come from root peers only. */
        if (!r->token[0] || !pending_login_with_token(m, r->token)) {
                struct pending_login *newest = NULL;
                for (struct pending_login *pl = m->logins; pl; pl = pl->next)
                        if (streq(pl->record->name, r->user) && (!newest || pl->expires > newest->expires))
                                newest = pl;
                if (newest) {
                        free(r->token);
                        r->token = strdup(newest->token);
                        if (!r->token) {
                                reply_simple(c, PROTO_UNAVAILABLE, "out of memory");
                                goto out;
                        }
                }
        }
        for (struct pending_login **p = &m->logins; *p; p = &(*p)->next)
                if (r->token[0] && streq((*p)->token, r->token)) {
                        struct pending_login *pl = *p;
                        if (streq(pl->record->name, r->user)) {
                                record = TAKE_PTR(pl->record);
                                password = TAKE_PTR(pl->password);
                                snprintf(phases, sizeof phases, "%s", pl->phases);
                        }
                        *p = pl->next;
                        user_free(pl->record);
                        secret_free(pl->password);
                        free(pl);
                        break;
                }
        if (!record && !(record = user_new(r->user))) {
                reply_simple(c, PROTO_UNAVAILABLE, "out of memory");
                goto out;
        }
        if (streq(r->service, "systemd-user"))
                manager_sessions_drop(m, r->user);
        /* The first login session is the logon; the user's manager (systemd-user) never is. */
        if (cache_user_sessions(&m->cache, r->user) == 0 && !streq(r->service, "systemd-user"))
                ev[nev++] = PGINA_EVENT_LOGON;
        ev[nev++] = PGINA_EVENT_SESSION_OPEN;
        /* The leader as pginad sees it (SO_PEERCRED: pginad's pid namespace), for logind. */
        s = cache_open(&m->cache, record, password, r->service, r->tty, r->rhost,
                       c->peer.pid > 0 ? (uint32_t)c->peer.pid : r->pid);
        if (!s) {
                user_free(record);
                secret_free(password);
                reply_simple(c, PROTO_UNAVAILABLE, "out of memory");
                goto out;
        }
        if (user_uid(r->user, &uid) == 0)
                s->entries[0].uid = uid;
        (void)cache_entry_set_phases(&s->entries[0], phases);
        snprintf(id, sizeof id, "%s", s->id);
        if (!streq(r->service, "systemd-user"))
                jobs_superseded(m, r->user);
        (void)cache_save(&m->cache);
        if (logind_follow(&m->logind) > 0) /* logind may have started after pginad */
                session_logind_map(m, s);
        /* the user manager's session (systemd-user) is no logon: debug, like its close */
        log_internal(streq(r->service, "systemd-user") ? LOG_DEBUG : LOG_INFO, 0,
                     "session %s opened for %s (service %s, tty %s%s%s)", id, r->user,
                     r->service[0] ? r->service : "-", r->tty[0] ? r->tty : "-", r->rhost[0] ? ", from " : "",
                     r->rhost);
        notify_start(m, record, s->entries[0].password, ev, nev);

        /* Plugins may hand the session environment variables: record attributes "env:NAME". */
        for (size_t i = 0; i < record->nattrs; i++)
                if (strncmp(record->attr_keys[i], "env:", 4) == 0)
                        nenv++;
        pbuf_init(&b);
        if (proto_result_begin(&b, PROTO_OK, "", 1) < 0 || proto_row_begin(&b, (uint32_t)(1 + nenv)) < 0 ||
            proto_row_field(&b, "session", id) < 0) {
                reply_simple(c, PROTO_UNAVAILABLE, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < record->nattrs; i++)
                if (strncmp(record->attr_keys[i], "env:", 4) == 0)
                        (void)proto_row_field(&b, record->attr_keys[i], record->attr_values[i]);
        reply_frame(c, &b);
out:
        request_free(r);
}

/* Sessions logind ended: their PAM close, if it still comes, has nothing left to do. */
static void ended_add(struct manager *m, const char *id, const char *user) {
        struct ended_session *e = &m->ended[m->ended_next++ % ENDED_MAX];

        snprintf(e->id, sizeof e->id, "%s", id);
        snprintf(e->user, sizeof e->user, "%s", user);
        e->at = manager_now(m);
}

static bool ended_take(struct manager *m, const char *id, const char *user) {
        long long now = manager_now(m);

        for (size_t i = 0; i < ENDED_MAX; i++) {
                struct ended_session *e = &m->ended[i];

                if (e->at && now - e->at < ENDED_TTL_MS && streq(e->id, id) &&
                    (!*user || streq(e->user, user))) {
                        e->at = 0;
                        return true;
                }
        }
        return false;
}

/* Session id ends: its PAM close (how = NULL), or logind's word (how says which). The user's
 * last login session starts the logoff job, another one the session-close notification; the
 * user manager's (systemd-user) ends quietly, the logoff came with the last login session. */
static void session_end(struct manager *m, const char *id, const char *how) {
        struct session gone;

        if (cache_close(&m->cache, id, &gone) < 0)
                return;
        (void)cache_save(&m->cache);
        if (gone.nentries > 0 && cache_session_is_manager(&gone)) {
                log_debug("session %s of %s (its user manager, systemd-user) closed", gone.id,
                          gone.entries[0].user);
        } else if (gone.nentries > 0) {
                struct cache_entry *e = &gone.entries[0];
                bool last = cache_user_sessions(&m->cache, e->user) == 0;

                if (how) {
                        log_info("session %s of %s closed by logind (%s%s)", gone.id, e->user, how,
                                 last ? "; last session: logoff" : "");
                        ended_add(m, gone.id, e->user);
                } else
                        log_info("session %s of %s closed%s", gone.id, e->user,
                                 last ? " (last session: logoff)" : "");
                if (last && m->conf->norder[CONF_STAGE_NOTIFICATION] > 0) {
                        struct pgina_user *rec = TAKE_PTR(e->record);

                        user_set_password(rec, TAKE_PTR(e->password));
                        if (!jobs_add(&m->jobs, rec, true)) {
                                log_error("Could not queue the logoff job of %s", e->user);
                                user_free(rec);
                        } else
                                jobs_inhibit_update(&m->jobs);
                } else if (!last) {
                        enum pgina_event ev = PGINA_EVENT_SESSION_CLOSE;
                        notify_start(m, e->record, e->password, &ev, 1);
                }
        }
        session_done(&gone);
}

void handle_close_session(struct manager *m, struct conn *c) {
        struct request *r = &c->req;
        struct session *s = cache_find(&m->cache, r->session);

        if (!s && c->peer.uid == 0 && ended_take(m, r->session, r->user)) {
                log_debug("session %s of %s: PAM closed it after logind ended it", r->session, r->user);
                reply_simple(c, PROTO_OK, "");
                goto out;
        }
        if (!s) {
                reply_simple(c, PROTO_NOT_FOUND, "no such session");
                goto out;
        }
        if (r->user[0] && s->nentries > 0 && !streq(s->entries[0].user, r->user)) {
                reply_simple(c, PROTO_BAD_REQUEST, "session belongs to another user");
                goto out;
        }
        if (c->peer.uid != 0 &&
            (!cache_session_is_manager(s) || s->nentries == 0 || s->entries[0].uid != c->peer.uid)) {
                log_notice("uid %u (pid %d) may close only its own user manager's session, not session %s",
                           (unsigned)c->peer.uid, (int)c->peer.pid, r->session);
                peer_account(m, c, false);
                reply_simple(c, PROTO_PERMISSION, "permission denied");
                goto out;
        }
        session_end(m, r->session, NULL);
        reply_simple(c, PROTO_OK, "");
out:
        request_free(r);
}

/* Whether logind says pgina session s has ended: its logind session is closing (its leader,
 * the process that opened the PAM session, left: sshd killed, a display manager crashed) or
 * gone; or, for a session logind never registered, the process that opened it is gone and the
 * user has no open logind session left. how: what logind said, for the log. */
static bool session_ended_in_logind(struct manager *m, struct session *s, char *how, size_t len) {
        struct cache_entry *e = s->nentries > 0 ? &s->entries[0] : NULL;

        if (!e || e->uid < 0 || cache_session_is_manager(s))
                return false;
        session_logind_map(m, s);
        if (*s->logind) {
                enum logind_state st = logind_session_state(s->logind);

                if (st != LOGIND_CLOSING && st != LOGIND_GONE)
                        return false;
                snprintf(how, len, "session %s %s", s->logind, st == LOGIND_CLOSING ? "closing" : "ended");
                return true;
        }
        if (!logind_process_gone((pid_t)s->leader) || logind_user_online((uid_t)e->uid))
                return false;
        snprintf(how, len, "its process %u is gone and %s has no open logind session", s->leader, e->user);
        return true;
}

/* logind's sessions changed (or pginad started): end every pgina session logind has ended, even
 * if its PAM close never comes. A PAM close that comes first ends it as usual. */
void logind_sync(struct manager *m) {
        if (!m->logind.monitor)
                return;
        for (bool again = true; again;) {
                again = false;
                for (size_t i = 0; i < m->cache.n; i++) {
                        _cleanup_free_ char *id = NULL;
                        char how[PGINA_NAME_MAX + 128];

                        if (!session_ended_in_logind(m, &m->cache.v[i], how, sizeof how))
                                continue;
                        if (!(id = strdup(m->cache.v[i].id)))
                                return;
                        session_end(m, id, how); /* reorders the cache: look again */
                        again = true;
                        break;
                }
        }
}

void handle_change_password(struct manager *m, struct conn *c) {
        if (!valid_user_name(c->req.user)) {
                peer_account(m, c, false);
                reply_simple(c, PROTO_AUTH_FAILED, "Authentication failed");
                request_free(&c->req);
                return;
        }
        if (c->peer.uid != 0 && c->req.password->len == 0) {
                reply_simple(c, PROTO_PERMISSION, "the current password is required");
                request_free(&c->req);
                return;
        }
        handle_request_in_worker(m, c);
}

void handle_worker_request(struct manager *m, struct conn *c) {
        if (!valid_user_name(c->req.user)) {
                reply_simple(c, c->req.type == PROTO_REQ_SIMULATE ? PROTO_AUTH_FAILED : PROTO_BAD_REQUEST,
                             "invalid user name");
                request_free(&c->req);
                return;
        }
        handle_request_in_worker(m, c);
}

/* The record (and in-memory password) pginad keeps for a logged-on user, if any. */
