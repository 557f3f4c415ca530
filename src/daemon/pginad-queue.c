/* Requests waiting for the master: the request queue (every request worker busy), logons parked
 * behind a logoff job of their user, keepalives while they wait, and the logoff jobs' start. */
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

/* ---- request handlers (master side) ---- */

int user_uid(const char *user, uid_t *uid) {
        struct passwd pw, *res = NULL;
        char buf[4096];

        if (getpwnam_r(user, &pw, buf, sizeof buf, &res) != 0 || !res)
                return -ENOENT;
        *uid = pw.pw_uid;
        return 0;
}

static void keepalive_one(struct conn *c, long long now, long long *next) {
        if (c->keepalive_at == 0)
                c->keepalive_at = now;
        if (now - c->keepalive_at >= PROTO_KEEPALIVE_MS) {
                c->keepalive_at = now;
                reply_info(c, PROTO_INFO_KEEPALIVE, "");
        }
        if (c->keepalive_at + PROTO_KEEPALIVE_MS < *next)
                *next = c->keepalive_at + PROTO_KEEPALIVE_MS;
}

/* While a worker runs for a client, or its request is queued, the client hears from us (see
 * PROTO_INFO_KEEPALIVE): its silence timeout is for a stuck pginad, not for a busy one. */
void keepalives(struct manager *m, long long now, long long *next) {
        for (struct worker *w = m->workers; w; w = w->next)
                if (w->conn && w->kind == WORKER_REQUEST)
                        keepalive_one(w->conn, now, next);
        for (struct conn *c = m->queue; c; c = c->queue_next)
                keepalive_one(c, now, next);
        for (struct conn *c = m->conns; c; c = c->next)
                if (c->waiting) {
                        keepalive_one(c, now, next);
                        if (c->wait_until && c->wait_until < *next)
                                *next = c->wait_until;
                }
}

/* ---- the request queue: requests that found every request worker busy wait here, in
 * arrival order, and start as workers finish. Only past max_queued is "busy" answered. ---- */

static void queue_push(struct manager *m, struct conn *c) {
        c->queued = true;
        c->queued_at = manager_now(m);
        c->queue_next = NULL;
        if (m->queue_tail)
                m->queue_tail->queue_next = c;
        else
                m->queue = c;
        m->queue_tail = c;
        m->nqueued++;
}

void queue_remove(struct manager *m, struct conn *c) {
        struct conn *prev = NULL;

        if (!c->queued)
                return;
        for (struct conn *q = m->queue; q; prev = q, q = q->queue_next) {
                if (q != c)
                        continue;
                if (prev)
                        prev->queue_next = c->queue_next;
                else
                        m->queue = c->queue_next;
                if (m->queue_tail == c)
                        m->queue_tail = prev;
                break;
        }
        c->queued = false;
        c->queue_next = NULL;
        m->nqueued--;
}

/* Root's reserve: non-root peers (NSS lookups, unlocks) never hold the last eighth of the
 * request workers or of the queue, so a logon (login, sshd, sudo ask as root) always finds one. */
static bool request_worker_may_start(const struct manager *m, const struct conn *c) {
        size_t all = 0, nonroot = 0;

        for (const struct worker *w = m->workers; w; w = w->next)
                if (w->kind == WORKER_REQUEST) {
                        all++;
                        nonroot += w->peer_uid != 0;
                }
        if (all >= m->conf->max_workers)
                return false;
        return c->peer.uid == 0 || nonroot < m->conf->max_workers - m->conf->max_workers / 8;
}

static bool queue_full_for(const struct manager *m, const struct conn *c) {
        size_t nonroot = 0;

        if (m->nqueued >= m->conf->max_queued)
                return true;
        if (c->peer.uid == 0)
                return false;
        for (const struct conn *q = m->queue; q; q = q->queue_next)
                nonroot += q->peer.uid != 0;
        return nonroot >= m->conf->max_queued - m->conf->max_queued / 8;
}

/* The oldest queued request that may start now (a non-root one may wait while root's start). */
static struct conn *queue_first_startable(const struct manager *m) {
        for (struct conn *q = m->queue; q; q = q->queue_next)
                if (request_worker_may_start(m, q))
                        return q;
        return NULL;
}

static void request_worker_start(struct manager *m, struct conn *c) {
        struct worker_spec spec = {.kind = WORKER_REQUEST, .req = &c->req};
        struct worker *w;

        w = worker_start(m, &spec, c->req.user);
        if (!w) {
                reply_simple(c, PROTO_UNAVAILABLE, "pginad could not start a worker");
                request_free(&c->req);
                return;
        }
        w->conn = c;
        w->peer_uid = c->peer.uid;
        w->req = c->req; /* the worker owns the request now */
        memset(&c->req, 0, sizeof c->req);
}

void handle_request_in_worker(struct manager *m, struct conn *c) {
        c->keepalive_at = manager_now(m);
        /* A worker that finished this round belongs to the oldest queued request (queue_run, at
         * the top of the next round), not to one that arrived after it. */
        if (!queue_first_startable(m) && request_worker_may_start(m, c)) {
                request_worker_start(m, c);
                return;
        }
        if (m->stopping) {
                reply_simple(c, PROTO_SHUTTING_DOWN, "The system is shutting down");
                request_free(&c->req);
                return;
        }
        if (queue_full_for(m, c)) {
                log_warning("%u request workers busy and %zu requests queued (max_queued): refusing "
                            "the request of uid %u for '%s'",
                            m->conf->max_workers, m->nqueued, (unsigned)c->peer.uid, c->req.user);
                reply_simple(c, PROTO_UNAVAILABLE, "pginad is busy; try again");
                request_free(&c->req);
                return;
        }
        queue_push(m, c);
        log_debug("request of uid %u for '%s' queued (%zu waiting for a worker)", (unsigned)c->peer.uid,
                  c->req.user, m->nqueued);
}

/* Start queued requests on free workers, oldest first. request_timeout bounds the chain from the
 * moment its worker starts, so a plugin is never blamed (killed, shown as failed) for time spent
 * in the queue; the wait itself is bounded by request_timeout too: a request not started by then
 * is answered "busy", so a client waits at most twice request_timeout in all. */
void queue_run(struct manager *m) {
        long long now = manager_now(m);
        struct conn *c;

        while ((c = queue_first_startable(m))) {
                queue_remove(m, c);
                log_debug("request of uid %u for '%s' starts after %lld ms in the queue",
                          (unsigned)c->peer.uid, c->req.user, now - c->queued_at);
                request_worker_start(m, c);
        }
        while ((c = m->queue) && now - c->queued_at >= 1000LL * m->conf->request_timeout) {
                queue_remove(m, c);
                log_warning("request of uid %u for '%s' found no free worker within request_timeout "
                            "(%u s); answering busy",
                            (unsigned)c->peer.uid, c->req.user, m->conf->request_timeout);
                reply_simple(c, PROTO_UNAVAILABLE, "pginad is busy; try again");
                request_free(&c->req);
        }
}

/* The queue's deadline: its oldest request is answered "busy" after request_timeout. */
void queue_deadline(const struct manager *m, long long *next) {
        if (m->queue)
                deadline_min(next, m->queue->queued_at + 1000LL * m->conf->request_timeout);
}

/* SIGTERM: no queued request will start now. */
void queue_shutdown(struct manager *m) {
        struct conn *c;

        if (m->nqueued > 0)
                log_info("Stopping: answering %zu queued request(s) \"shutting down\"", m->nqueued);
        while ((c = m->queue)) {
                queue_remove(m, c);
                reply_simple(c, PROTO_SHUTTING_DOWN, "The system is shutting down");
                request_free(&c->req);
        }
}

static bool job_active_of(const struct manager *m, const char *user) {
        for (const struct job *j = m->jobs.head; j; j = j->next)
                if (j->state != JOB_RETRY && (!user || streq(j->user, user)))
                        return true;
        return false;
}

bool user_has_job(struct manager *m, const char *user) {
        /* user@domain (a logon by userPrincipalName): its account is known only after the chain
         * ran, gateway included, so any pending logoff job may be its own. A retry waiting for its
         * time does not hold a logon: the plugin that asked for it kept the home for it. */
        return job_active_of(m, strchr(user, '@') ? NULL : user);
}

void park(struct manager *m, struct conn *c) {
        char text[256];

        c->parked = true;
        c->parked_ping = manager_now(m);
        snprintf(text, sizeof text,
                 "Please wait: the logoff of %s on this machine is still being completed...", c->req.user);
        reply_info(c, PROTO_INFO_TEXT, text);
        log_info("%s: logon waits for the pending logoff job", c->req.user);
}

/* ---- jobs and parked requests ---- */

/* A logon of user is under way (queued, parked, in a worker, or authenticated and waiting for its
 * session), or a session of theirs is open: a retry of their logoff work must not run now (it ends
 * the user's processes and may remove the account). */
static bool user_logging_on(const struct manager *m, const char *user) {
        if (cache_user_sessions(&m->cache, user) > 0)
                return true;
        for (const struct conn *c = m->conns; c; c = c->next)
                if ((c->queued || c->parked) && c->req.type == PROTO_REQ_LOGIN &&
                    (streq(c->req.user, user) || strchr(c->req.user, '@')))
                        return true;
        for (const struct worker *w = m->workers; w; w = w->next)
                if (w->kind == WORKER_REQUEST && w->req.type == PROTO_REQ_LOGIN &&
                    (streq(strempty(w->user), user) || strchr(strempty(w->user), '@')))
                        return true;
        for (const struct pending_login *pl = m->logins; pl; pl = pl->next)
                if (pl->record && streq(pl->record->name, user))
                        return true;
        return false;
}

static bool job_due(struct manager *m, struct job *j, long long now) {
        if (j->state == JOB_QUEUED)
                return true;
        if (j->state != JOB_RETRY || m->stopping || now < j->next_try_ms || user_logging_on(m, j->user))
                return false;
        j->state = JOB_QUEUED;
        return true;
}

void jobs_start(struct manager *m) {
        long long now = manager_now(m);

        for (struct job *j = m->jobs.head; j && m->jobs.running < JOBS_PARALLEL_MAX; j = j->next) {
                struct worker_spec spec = {.kind = WORKER_JOB, .record = j->record, .attempt = j->attempts,
                                           .notify_from = j->retry_from};
                bool retry = j->state == JOB_RETRY;
                struct worker *w;

                if (!job_due(m, j, now))
                        continue;
                /* A retry is the LOGOFF work again, from the plugin that asked for it. */
                if (j->session_close && !j->retry_from)
                        spec.events[spec.nevents++] = PGINA_EVENT_SESSION_CLOSE;
                spec.events[spec.nevents++] = PGINA_EVENT_LOGOFF;
                w = worker_start(m, &spec, j->user);
                if (!w) {
                        if (retry) /* no worker now: the next round tries again */
                                j->state = JOB_RETRY;
                        return;
                }
                w->job = j;
                j->state = JOB_RUNNING;
                m->jobs.running++;
                if (j->attempts)
                        log_info("logoff job of %s started (retry %u, from plugin %s)", j->user, j->attempts,
                                 strempty(j->retry_from));
                else
                        log_info("logoff job of %s started%s", j->user, j->resumed ? " (resumed)" : "");
        }
        jobs_inhibit_update(&m->jobs);
}

void jobs_deadline(struct manager *m, long long *next) {
        if (m->stopping)
                return;
        for (const struct job *j = m->jobs.head; j; j = j->next)
                if (j->state == JOB_RETRY)
                        deadline_min(next, j->next_try_ms);
}

void jobs_retry_later(struct manager *m, struct job *j, const char *plugin, const char *why) {
        unsigned delay;
        int r;

        j->attempts++;
        delay = jobs_retry_delay(j->attempts, m->conf->job_retry_delay, m->conf->job_retry_max_delay);
        if (!j->failing_since)
                j->failing_since = (int64_t)time(NULL);
        if (!j->retry_from || !streq(j->retry_from, plugin)) {
                char *p = strdup(plugin);
                if (p) {
                        free(j->retry_from);
                        j->retry_from = p;
                }
        }
        free(j->last_error);
        j->last_error = strdup(strempty(why));
        j->state = JOB_RETRY;
        j->next_try_ms = manager_now(m) + 1000LL * delay;
        j->next_try = (int64_t)time(NULL) + delay;
        if ((r = journal_write(&m->jobs, j)) < 0)
                log_error_errno(r, "Could not journal the retry of %s's logoff job: %m", j->user);
        log_warning("logoff job of %s: plugin %s will try again in %u s (retry %u): %s", j->user, plugin,
                    delay, j->attempts, strempty(why));
}

void jobs_retry_now(struct manager *m, const char *plugin, const char *who) {
        long long now = manager_now(m);

        for (struct job *j = m->jobs.head; j; j = j->next)
                if (j->state == JOB_RETRY && j->retry_from && streq(j->retry_from, plugin) && j->next_try_ms > now) {
                        log_info("plugin %s works again (%s): retrying the logoff work of %s now", plugin, who,
                                 j->user);
                        j->next_try_ms = now;
                        j->next_try = (int64_t)time(NULL);
                }
}

void jobs_superseded(struct manager *m, const char *user) {
        struct job *j = jobs_find_user(&m->jobs, user);

        if (!j || j->state != JOB_RETRY)
                return;
        log_notice("%s logged on here again: the pending retry of their logoff work (%s) is dropped, "
                   "their next logoff does it", user, strempty(j->last_error));
        jobs_remove(&m->jobs, j);
}

void jobs_count_running(struct manager *m) {
        m->jobs.running = 0;
        for (struct job *j = m->jobs.head; j; j = j->next)
                if (j->state == JOB_RUNNING)
                        m->jobs.running++;
}

void parked_resume(struct manager *m) {
        long long now = manager_now(m);

        for (struct conn *c = m->conns; c; c = c->next)
                if (c->parked && user_has_job(m, c->req.user) && now - c->parked_ping >= PARKED_PING_MS) {
                        c->parked_ping = now;
                        reply_info(c, PROTO_INFO_PROGRESS, "Still waiting for the logoff to finish...");
                }
        for (struct conn *c = m->conns; c; c = c->next)
                if (c->parked && !user_has_job(m, c->req.user)) {
                        c->parked = false;
                        log_info("%s: logoff finished, logon continues", c->req.user);
                        dispatch(m, c);
                }
}

static void pending_login_free(struct pending_login *pl) {
        user_free(pl->record);
        secret_free(pl->password);
        free(pl);
}

void logins_bound(struct manager *m) {
        size_t total = 0;

        /* Newest first: what is past a bound is the oldest, dropped (its PAM session, if it ever
         * opens, starts without the cached password). */
        for (struct pending_login **p = &m->logins; *p;) {
                struct pending_login *pl = *p;
                size_t same = 0;

                for (const struct pending_login *q = m->logins; q != pl; q = q->next)
                        same += streq(q->record->name, pl->record->name);
                if (same >= PENDING_LOGINS_PER_USER_MAX || total >= PENDING_LOGINS_MAX) {
                        log_notice("%s: dropping an authenticated logon that never opened its session "
                                   "(more than %d are pending)", pl->record->name,
                                   same >= PENDING_LOGINS_PER_USER_MAX ? PENDING_LOGINS_PER_USER_MAX
                                                                       : PENDING_LOGINS_MAX);
                        *p = pl->next;
                        pending_login_free(pl);
                        continue;
                }
                total++;
                p = &pl->next;
        }
}

void logins_expire(struct manager *m) {
        long long now = manager_now(m);

        for (struct pending_login **p = &m->logins; *p;) {
                struct pending_login *pl = *p;
                if (pl->expires > now) {
                        p = &pl->next;
                        continue;
                }
                *p = pl->next;
                pending_login_free(pl);
        }
}
