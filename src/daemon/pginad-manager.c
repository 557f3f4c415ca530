/* pginad's master: the socket, peer checks, the request dispatch table, the session cache, the
 * logoff job queue and the workers' lifecycle. It never runs plugin code: every chain runs in a
 * forked worker (pginad-worker.c), so a plugin that crashes or hangs costs one request. */
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

#define CONNS_MAX 512
#define CONNS_ROOT_RESERVE 64 /* of CONNS_MAX, for root peers only: local users that fill every
                               * other slot still leave login, sshd and sudo room to connect */
#define CONNS_PER_USER_MAX 16 /* non-root peers */
#define OUT_READ_PAUSE (16 * 1024) /* answers not yet taken by the peer: past this, its next
                                    * requests wait unread (back-pressure) */
#define OUT_MAX (4 * PROTO_FRAME_MAX) /* past this (one answer and the INFO frames of one
                                       * request at most), the connection is closed */
#define SEND_TIMEOUT_MS (10 * 1000) /* a peer that takes none of its pending answers for this
                                     * long is closed: it holds a slot and our memory */
#define WORKERS_PER_USER_MAX 2 /* non-root peers: requests in workers or queued; beyond, they
                                 * wait unread in their connection */
#define IDLE_TIMEOUT_MS (30 * 1000) /* a connection with no complete request for this long */
#define PARKED_PING_MS (10 * 1000) /* a waiting logon hears from us this often (PAM timeouts) */
#define ACCEPT_BATCH 32 /* connections accepted per round: a burst of logons must not sit in
                         * the listen backlog, whose overflow blocks clients in connect() */
#define JOBS_PARALLEL_MAX 4
#define TOKEN_TTL_MS (5 * 60 * 1000)
/* Sessions logind ended that PAM may still close (answered OK, not "no such session"): a
 * session's PAM close and its logind end race. */
#define ENDED_MAX 32
#define ENDED_TTL_MS (10 * 60 * 1000)
#define READ_CHUNK 16384

struct conn {
        int fd;
        struct ucred peer;
        struct pbuf in, out;
        bool busy; /* a request is in progress: read nothing more until it is answered */
        bool closing; /* close once out is flushed */
        long long send_at; /* slowed-down failure: hold the answer until then */
        bool parked; /* waiting for a logoff job of req.user */
        bool waiting; /* WAIT_JOBS: answered when no logoff job (of req.user) is left */
        long long wait_until; /* WAIT_JOBS deadline, 0 = none */
        struct request req;
        int pidx; /* index in this round's pollfd array, -1 if not polled */
        long long idle_since; /* last time it became idle (accepted or answered) */
        long long parked_ping; /* last "please wait" sent while parked */
        long long keepalive_at; /* last keepalive sent while a worker runs or it is queued */
        long long drained_at; /* last time out was empty or the peer took some of it */
        bool queued; /* its request waits in manager.queue for a free request worker */
        long long queued_at;
        struct conn *queue_next;
        struct conn *next;
};

struct worker {
        pid_t pid;
        int fd;
        struct pbuf in;
        enum worker_kind kind;
        struct conn *conn; /* REQUEST; NULL once the client left */
        uid_t peer_uid; /* REQUEST: whose request it runs (0: root's, and every notification) */
        struct request req; /* REQUEST */
        struct job *job; /* JOB */
        char *user;
        long long started, deadline;
        bool timed_out;
        char plugin[72], stage[32];
        struct proto_result result;
        bool have_result, eof, reaped;
        int wstatus;
        struct worker *next;
};

struct pending_login {
        char token[33];
        struct pgina_user *record;
        struct secret *password;
        long long expires;
        struct pending_login *next;
};

struct ended_session {
        char id[32], user[PGINA_NAME_MAX + 1];
        long long at; /* 0: free */
};

struct peer_fail {
        uid_t uid;
        unsigned count;
        long long next_allowed; /* no request of this uid is looked at before then */
        struct peer_fail *next;
};

struct manager {
        char *conf_path;
        char *bound_socket; /* the path we bound (a reload may name another) */
        struct conf *conf;
        struct plugin_info *plugins;
        size_t nplugins;
        int listen_fd, signal_fd;
        struct conn *conns;
        size_t nconns;
        struct worker *workers;
        struct conn *queue, *queue_tail; /* FIFO of requests waiting for a request worker */
        size_t nqueued;
        struct cache cache;
        struct jobs jobs;
        struct pending_login *logins;
        struct peer_fail *fails;
        struct nss_cache nss;
        struct logind logind;
        struct ended_session ended[ENDED_MAX];
        size_t ended_next;
        bool stopping;
        long long stop_deadline;
        time_t started;
};

/* ---- replies ---- */

static void conn_queue(struct conn *c, const struct pbuf *frame) {
        if (c->closing)
                return;
        if (c->out.len + frame->len > OUT_MAX) {
                log_warning("uid %u (pid %d) leaves %zu bytes of answers unread; closing the "
                            "connection", (unsigned)c->peer.uid, (int)c->peer.pid, c->out.len);
                c->closing = true;
                pbuf_free(&c->out);
                return;
        }
        if (c->out.len == 0)
                c->drained_at = now_ms();
        for (size_t i = 0; i < frame->len; i++)
                if (pbuf_put_u8(&c->out, frame->data[i]) < 0) {
                        c->closing = true;
                        pbuf_free(&c->out);
                        return;
                }
}

/* Back-pressure: a peer that does not read its answers gets no new ones. */
static bool conn_out_full(const struct conn *c) { return c->out.len > OUT_READ_PAUSE; }

/* Read more of a peer's requests only when the last one read is done with: a pipelining peer
 * waits in its socket, not in our memory. */
static bool conn_wants_input(const struct conn *c) {
        return !c->busy && !c->closing && !conn_out_full(c) &&
               (c->in.len < PROTO_HEADER_LEN || proto_frame_complete(c->in.data, c->in.len) == 0);
}

/* Answers the peer may take now (a slowed-down failure waits for send_at) but has taken none of
 * for SEND_TIMEOUT_MS: the time it is closed at, or 0 when nothing is stuck. */
static long long conn_send_deadline(const struct conn *c) {
        long long since = c->drained_at > c->send_at ? c->drained_at : c->send_at;

        return c->out.len > 0 ? since + SEND_TIMEOUT_MS : 0;
}

static void reply_simple(struct conn *c, uint32_t status, const char *message) {
        _cleanup_pbuf_ struct pbuf b = {0};

        pbuf_init(&b);
        if (proto_result_begin(&b, status, message, 0) < 0 || proto_frame_end(&b) < 0) {
                c->closing = true;
                return;
        }
        conn_queue(c, &b);
        c->busy = false;
        c->idle_since = now_ms();
}

static void reply_info(struct conn *c, uint8_t kind, const char *text) {
        _cleanup_pbuf_ struct pbuf b = {0};

        pbuf_init(&b);
        if (proto_frame_begin(&b, PROTO_MSG_INFO) < 0 || pbuf_put_u8(&b, kind) < 0 ||
            pbuf_put_str(&b, text) < 0 || proto_frame_end(&b) < 0)
                return;
        conn_queue(c, &b);
}

static void reply_frame(struct conn *c, struct pbuf *b) {
        if (proto_frame_end(b) < 0) {
                reply_simple(c, PROTO_UNAVAILABLE, "answer too large");
                return;
        }
        conn_queue(c, b);
        c->busy = false;
        c->idle_since = now_ms();
}

/* ---- non-root peers: failures slow down the next answers ---- */

static struct peer_fail *peer_fail_get(struct manager *m, uid_t uid, bool create) {
        struct peer_fail *f;

        for (f = m->fails; f; f = f->next)
                if (f->uid == uid)
                        return f;
        if (!create || !(f = calloc(1, sizeof *f)))
                return NULL;
        f->uid = uid;
        f->next = m->fails;
        m->fails = f;
        return f;
}

static void peer_account(struct manager *m, struct conn *c, bool success) {
        struct peer_fail *f;
        unsigned delay;

        if (c->peer.uid == 0)
                return;
        f = peer_fail_get(m, c->peer.uid, !success);
        if (!f)
                return;
        if (success) {
                f->count = 0;
                return;
        }
        f->count++;
        delay = f->count >= 8 ? m->conf->failure_delay_max : (1u << (f->count - 1)) / 2;
        if (delay > m->conf->failure_delay_max)
                delay = m->conf->failure_delay_max;
        /* The answer waits, and so does the next request of this uid on any connection. */
        c->send_at = now_ms() + (long long)delay * 1000;
        f->next_allowed = c->send_at;
        if (delay)
                log_notice("uid %u: %u failed request(s) in a row, answering after %u s",
                           (unsigned)c->peer.uid, f->count, delay);
}

/* ---- plugin health ---- */

static struct plugin_info *plugin_info_find(struct manager *m, const char *name) {
        for (size_t i = 0; i < m->nplugins; i++)
                if (streq(m->plugins[i].name, name))
                        return &m->plugins[i];
        return NULL;
}

static void plugin_mark_failed(struct manager *m, const char *name, const char *reason) {
        struct plugin_info *pi = plugin_info_find(m, name);
        char *r;

        if (!pi || !(r = strdup(reason)))
                return;
        free(pi->reason);
        pi->reason = r;
        pi->healthy = false;
}

/* ---- workers ---- */

static struct worker *worker_start(struct manager *m, struct worker_spec *spec, const char *user) {
        struct worker *w = calloc(1, sizeof *w);
        pid_t pid;
        int fd;

        if (!w)
                return NULL;
        spec->conf = m->conf;
        spec->user_sessions = cache_user_sessions(&m->cache, user);
        pid = worker_spawn(spec, &fd);
        if (pid < 0) {
                log_error_errno(pid, "Failed to start a worker for %s: %m", user);
                free(w);
                return NULL;
        }
        (void)fcntl(fd, F_SETFL, O_NONBLOCK);
        w->pid = pid;
        w->fd = fd;
        w->kind = spec->kind;
        w->user = strdup(user);
        w->started = now_ms();
        w->deadline = w->started +
                      1000LL * (spec->kind == WORKER_JOB ? m->conf->job_timeout : m->conf->request_timeout);
        pbuf_init(&w->in);
        w->next = m->workers;
        m->workers = w;
        log_debug("worker %d started for %s", (int)pid, user);
        return w;
}

static size_t workers_count(const struct manager *m, enum worker_kind kind) {
        size_t n = 0;
        for (const struct worker *w = m->workers; w; w = w->next)
                if (w->kind == kind)
                        n++;
        return n;
}

static void notify_start(struct manager *m, struct pgina_user *record, const struct secret *password,
                         const enum pgina_event *ev, size_t nev) {
        struct worker_spec spec = {.kind = WORKER_NOTIFY, .record = record, .password = password,
                                   .nevents = nev};

        if (m->conf->norder[CONF_STAGE_NOTIFICATION] == 0 || nev == 0)
                return;
        memcpy(spec.events, ev, nev * sizeof *ev);
        (void)worker_start(m, &spec, record->name);
}

/* ---- request handlers (master side) ---- */

static int user_uid(const char *user, uid_t *uid) {
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
static void keepalives(struct manager *m, long long now, long long *next) {
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
        c->queued_at = now_ms();
        c->queue_next = NULL;
        if (m->queue_tail)
                m->queue_tail->queue_next = c;
        else
                m->queue = c;
        m->queue_tail = c;
        m->nqueued++;
}

static void queue_remove(struct manager *m, struct conn *c) {
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

static void handle_request_in_worker(struct manager *m, struct conn *c) {
        c->keepalive_at = now_ms();
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
        log_debug("request of uid %u for '%s' queued (%zu waiting for a worker)",
                  (unsigned)c->peer.uid, c->req.user, m->nqueued);
}

/* Start queued requests on free workers, oldest first. request_timeout bounds the chain from the
 * moment its worker starts, so a plugin is never blamed (killed, shown as failed) for time spent
 * in the queue; the wait itself is bounded by request_timeout too: a request not started by then
 * is answered "busy", so a client waits at most twice request_timeout in all. */
static void queue_run(struct manager *m) {
        long long now = now_ms();
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

/* SIGTERM: no queued request will start now. */
static void queue_shutdown(struct manager *m) {
        struct conn *c;

        if (m->nqueued > 0)
                log_info("Stopping: answering %zu queued request(s) \"shutting down\"", m->nqueued);
        while ((c = m->queue)) {
                queue_remove(m, c);
                reply_simple(c, PROTO_SHUTTING_DOWN, "The system is shutting down");
                request_free(&c->req);
        }
}

static bool user_has_job(struct manager *m, const char *user) {
        /* user@domain (a logon by userPrincipalName): its account is known only after the chain
         * ran, gateway included, so any pending logoff job may be its own */
        if (strchr(user, '@'))
                return m->jobs.head != NULL;
        return jobs_find_user(&m->jobs, user) != NULL;
}

static void park(struct manager *m, struct conn *c) {
        char text[256];

        c->parked = true;
        c->parked_ping = now_ms();
        snprintf(text, sizeof text,
                 "Please wait: the logoff of %s on this machine is still being completed...",
                 c->req.user);
        reply_info(c, PROTO_INFO_TEXT, text);
        log_info("%s: logon waits for the pending logoff job", c->req.user);
}

static void handle_login(struct manager *m, struct conn *c) {
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

static void handle_open_session(struct manager *m, struct conn *c) {
        struct request *r = &c->req;
        struct pgina_user *record = NULL;
        struct secret *password = NULL;
        _cleanup_pbuf_ struct pbuf b = {0};
        struct session *s;
        enum pgina_event ev[2];
        size_t nev = 0, nenv = 0;
        uid_t uid;
        char id[64];

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
        snprintf(id, sizeof id, "%s", s->id);
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
        e->at = now_ms();
}

static bool ended_take(struct manager *m, const char *id, const char *user) {
        long long now = now_ms();

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

static void handle_close_session(struct manager *m, struct conn *c) {
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
static void logind_sync(struct manager *m) {
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

static void handle_change_password(struct manager *m, struct conn *c) {
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

static void handle_worker_request(struct manager *m, struct conn *c) {
        if (!valid_user_name(c->req.user)) {
                reply_simple(c, c->req.type == PROTO_REQ_SIMULATE ? PROTO_AUTH_FAILED : PROTO_BAD_REQUEST,
                             "invalid user name");
                request_free(&c->req);
                return;
        }
        handle_request_in_worker(m, c);
}

/* The record (and in-memory password) pginad keeps for a logged-on user, if any. */
static struct cache_entry *cache_user_entry(struct manager *m, const char *user) {
        for (size_t i = 0; i < m->cache.n; i++)
                if (m->cache.v[i].nentries > 0 && streq(m->cache.v[i].entries[0].user, user))
                        return &m->cache.v[i].entries[0];
        return NULL;
}

static void handle_plugin_admin(struct manager *m, struct conn *c) {
        struct cache_entry *e = c->req.user[0] ? cache_user_entry(m, c->req.user) : NULL;
        struct worker_spec spec = {.kind = WORKER_REQUEST, .req = &c->req,
                                   .record = e ? e->record : NULL, .password = e ? e->password : NULL};
        struct worker *w;

        if (c->req.user[0] && !valid_user_name(c->req.user)) {
                reply_simple(c, PROTO_BAD_REQUEST, "invalid user name");
                request_free(&c->req);
                return;
        }
        w = worker_start(m, &spec, c->req.user[0] ? c->req.user : c->req.plugin);
        if (!w) {
                reply_simple(c, PROTO_UNAVAILABLE, "pginad could not start a worker");
                request_free(&c->req);
                return;
        }
        /* Admin work (a profile upload) may take as long as a logoff job. */
        w->deadline = now_ms() + 1000LL * m->conf->job_timeout;
        w->conn = c;
        c->keepalive_at = now_ms();
        w->req = c->req;
        memset(&c->req, 0, sizeof c->req);
        log_info("admin command for plugin %s%s%s", w->req.plugin, w->req.user[0] ? ", user " : "",
                 w->req.user);
}

static void nss_reply(struct conn *c, const struct nss_entry *e) {
        _cleanup_pbuf_ struct pbuf b = {0};

        if (nss_entry_reply(e, &b) < 0)
                reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
        else
                reply_frame(c, &b);
}

/* GETPWNAM, GETGRNAM: from memory, else from a worker asking the plugins. */
static void handle_nss(struct manager *m, struct conn *c) {
        const struct nss_entry *e;
        char key[128];

        if (c->req.user[0] && !valid_user_name(c->req.user)) {
                reply_simple(c, PROTO_NOT_FOUND, "");
                request_free(&c->req);
                return;
        }
        nss_key(&c->req, key, sizeof key);
        e = nss_cache_find(&m->nss, key);
        if (e) {
                nss_reply(c, e);
                request_free(&c->req);
                return;
        }
        handle_request_in_worker(m, c);
}

static void handle_status(struct manager *m, struct conn *c) {
        _cleanup_pbuf_ struct pbuf b = {0};
        char pid[24], up[32], ns[24], nj[24], nw[24], nq[24];
        size_t njobs = jobs_count(&m->jobs);

        snprintf(pid, sizeof pid, "%d", (int)getpid());
        snprintf(up, sizeof up, "%lld", (long long)(time(NULL) - m->started));
        snprintf(ns, sizeof ns, "%zu", m->cache.n);
        snprintf(nj, sizeof nj, "%zu", njobs);
        snprintf(nw, sizeof nw, "%zu", workers_count(m, WORKER_REQUEST));
        snprintf(nq, sizeof nq, "%zu", m->nqueued);
        pbuf_init(&b);
        if (proto_result_begin(&b, PROTO_OK, m->stopping ? "stopping" : "running",
                               (uint32_t)(1 + m->nplugins + njobs)) < 0 ||
            proto_row_begin(&b, 10) < 0 || proto_row_field(&b, "kind", "daemon") < 0 ||
            proto_row_field(&b, "version", PGINA_VERSION) < 0 || proto_row_field(&b, "pid", pid) < 0 ||
            proto_row_field(&b, "uptime", up) < 0 || proto_row_field(&b, "config", m->conf_path) < 0 ||
            proto_row_field(&b, "socket", m->conf->socket_path) < 0 ||
            proto_row_field(&b, "sessions", ns) < 0 || proto_row_field(&b, "jobs", nj) < 0 ||
            proto_row_field(&b, "request_workers", nw) < 0 || proto_row_field(&b, "queued", nq) < 0)
                goto fail;
        for (size_t i = 0; i < m->nplugins; i++) {
                const struct plugin_info *pi = &m->plugins[i];
                if (proto_row_begin(&b, 5) < 0 || proto_row_field(&b, "kind", "plugin") < 0 ||
                    proto_row_field(&b, "name", pi->name) < 0 ||
                    proto_row_field(&b, "health", pi->healthy ? "ok" : "failed") < 0 ||
                    proto_row_field(&b, "reason", pi->reason) < 0 ||
                    proto_row_field(&b, "stages", pi->stages) < 0)
                        goto fail;
        }
        for (struct job *j = m->jobs.head; j; j = j->next) {
                char since[32];
                snprintf(since, sizeof since, "%lld", (long long)j->since);
                if (proto_row_begin(&b, 4) < 0 || proto_row_field(&b, "kind", "job") < 0 ||
                    proto_row_field(&b, "user", j->user) < 0 ||
                    proto_row_field(&b, "state", j->state == JOB_RUNNING ? "running" : "queued") < 0 ||
                    proto_row_field(&b, "since", since) < 0)
                        goto fail;
        }
        reply_frame(c, &b);
        return;
fail:
        reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
}

static size_t jobs_of(const struct manager *m, const char *user) {
        size_t n = 0;

        for (const struct job *j = m->jobs.head; j; j = j->next)
                n += !*user || streq(j->user, user);
        return n;
}

/* Answer a held WAIT_JOBS once its jobs are done or its limit passed; `last`: pginad is exiting,
 * answer now whatever is left. */
static void wait_jobs_answer(struct manager *m, struct conn *c, long long now, bool last) {
        size_t n = jobs_of(m, c->req.user);
        char msg[PGINA_NAME_MAX + 128];

        if (n > 0 && !last && (!c->wait_until || now < c->wait_until))
                return;
        c->waiting = false;
        if (n == 0)
                reply_simple(c, PROTO_OK, "");
        else if (last)
                reply_simple(c, PROTO_SHUTTING_DOWN, "pginad is stopping; logoff jobs are still pending");
        else {
                snprintf(msg, sizeof msg, "%zu logoff job(s)%s%s still pending after %u s", n,
                         *c->req.user ? " of " : "", c->req.user, c->req.id);
                reply_simple(c, PROTO_UNAVAILABLE, msg);
        }
        request_free(&c->req);
}

/* pginactl wait: held until the logoff jobs end (wait_jobs_resume), never polled. */
static void handle_wait_jobs(struct manager *m, struct conn *c) {
        long long now = now_ms();

        if (*c->req.user && !valid_user_name(c->req.user)) {
                reply_simple(c, PROTO_BAD_REQUEST, "invalid user name");
                request_free(&c->req);
                return;
        }
        c->waiting = true;
        c->keepalive_at = now;
        c->wait_until = c->req.id ? now + 1000LL * c->req.id : 0;
        wait_jobs_answer(m, c, now, false);
}

static void wait_jobs_resume(struct manager *m) {
        long long now = now_ms();

        for (struct conn *c = m->conns; c; c = c->next)
                if (c->waiting)
                        wait_jobs_answer(m, c, now, false);
}

static void handle_sessions(struct manager *m, struct conn *c) {
        _cleanup_pbuf_ struct pbuf b = {0};
        size_t rows = 0;

        for (size_t i = 0; i < m->cache.n; i++)
                rows += m->cache.v[i].nentries;
        pbuf_init(&b);
        if (proto_result_begin(&b, PROTO_OK, "", (uint32_t)rows) < 0)
                goto fail;
        for (size_t i = 0; i < m->cache.n; i++) {
                const struct session *s = &m->cache.v[i];
                for (size_t k = 0; k < s->nentries; k++) {
                        const struct cache_entry *e = &s->entries[k];
                        char idx[24], uid[24], opened[24];
                        snprintf(idx, sizeof idx, "%zu", k);
                        snprintf(uid, sizeof uid, "%lld", (long long)e->uid);
                        snprintf(opened, sizeof opened, "%lld", (long long)e->opened);
                        if (proto_row_begin(&b, 10) < 0 || proto_row_field(&b, "session", s->id) < 0 ||
                            proto_row_field(&b, "index", idx) < 0 ||
                            proto_row_field(&b, "user", e->user) < 0 || proto_row_field(&b, "uid", uid) < 0 ||
                            proto_row_field(&b, "service", e->service) < 0 ||
                            proto_row_field(&b, "tty", e->tty) < 0 ||
                            proto_row_field(&b, "rhost", e->rhost) < 0 ||
                            proto_row_field(&b, "opened", opened) < 0 ||
                            proto_row_field(&b, "scenario", k == 0 ? "logon" : "credui") < 0 ||
                            proto_row_field(&b, "logind", s->logind) < 0)
                                goto fail;
                }
        }
        reply_frame(c, &b);
        return;
fail:
        reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
}

static void plugin_order_string(const struct conf *conf, const char *name, char *buf, size_t len) {
        size_t off = 0;

        buf[0] = 0;
        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                for (size_t i = 0; i < conf->norder[s]; i++)
                        if (streq(conf->order[s][i], name)) {
                                int k = snprintf(buf + off, len - off, "%s%s:%zu", off ? " " : "",
                                                 conf_stage_name((enum conf_stage)s), i + 1);
                                if (k < 0 || (size_t)k >= len - off)
                                        return;
                                off += (size_t)k;
                        }
}

static void handle_plugins(struct manager *m, struct conn *c) {
        _cleanup_pbuf_ struct pbuf b = {0};
        char abi[16], order[512];

        snprintf(abi, sizeof abi, "%u", PGINA_PLUGIN_ABI_VERSION);
        pbuf_init(&b);
        if (proto_result_begin(&b, PROTO_OK, "", (uint32_t)m->nplugins) < 0)
                goto fail;
        for (size_t i = 0; i < m->nplugins; i++) {
                const struct plugin_info *pi = &m->plugins[i];
                plugin_order_string(m->conf, pi->name, order, sizeof order);
                if (proto_row_begin(&b, 10) < 0 || proto_row_field(&b, "name", pi->name) < 0 ||
                    proto_row_field(&b, "version", pi->version) < 0 ||
                    proto_row_field(&b, "description", pi->description) < 0 ||
                    proto_row_field(&b, "stages", pi->stages) < 0 || proto_row_field(&b, "abi", abi) < 0 ||
                    proto_row_field(&b, "path", pi->path) < 0 ||
                    proto_row_field(&b, "health", pi->healthy ? "ok" : "failed") < 0 ||
                    proto_row_field(&b, "reason", pi->reason) < 0 ||
                    proto_row_field(&b, "order", order) < 0 ||
                    proto_row_field(&b, "options", pi->options) < 0)
                        goto fail;
        }
        reply_frame(c, &b);
        return;
fail:
        reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
}

static int manager_reload(struct manager *m, char **errors) {
        struct conf *conf = NULL;
        struct plugin_info *infos = NULL;
        size_t n = 0;
        int r;

        r = conf_load(m->conf_path, &conf, errors);
        if (r < 0)
                return r;
        r = probe_run(conf, &infos, &n, errors);
        if (r < 0) {
                conf_free(conf);
                return r;
        }
        if (!streq(conf->socket_path, m->conf->socket_path) ||
            !streq(conf->state_dir, m->conf->state_dir))
                log_warning("socket and state_dir changes take effect at the next start of pginad");
        log_set_level(conf->log_level);
        conf_free(m->conf);
        m->conf = conf;
        plugin_infos_free(m->plugins, m->nplugins);
        m->plugins = infos;
        m->nplugins = n;
        preload_libraries(conf);
        log_info("Configuration %s reloaded (%zu plugin(s))", m->conf_path, n);
        return 0;
}

static void handle_reload(struct manager *m, struct conn *c) {
        _cleanup_free_ char *errors = NULL;

        if (manager_reload(m, &errors) < 0) {
                log_error("Reload refused, keeping the running configuration:\n%s", strempty(errors));
                reply_simple(c, PROTO_CONFIG_INVALID, errors ? errors : "configuration invalid");
        } else
                reply_simple(c, PROTO_OK, "configuration reloaded");
}

/* State-gated dispatch (OpenSSH monitor style): who may ask what. */
enum peer_rule {
        PEER_ANY, /* any peer (NSS lookups) */
        PEER_ROOT, /* root peers only */
        PEER_OWN_UID, /* root, or a peer asking about its own uid (unlock, change password) */
        /* root, or a peer closing its own user manager's session (systemd --user closes the PAM
         * session of user@.service as the user): the handler checks which session it is */
        PEER_OWN_MANAGER,
};

static const struct dispatch {
        uint16_t type;
        enum peer_rule rule;
        void (*handler)(struct manager *m, struct conn *c);
} dispatch_table[] = {
        {PROTO_REQ_LOGIN, PEER_OWN_UID, handle_login},
        {PROTO_REQ_AUTHORIZE, PEER_ROOT, handle_worker_request},
        {PROTO_REQ_OPEN_SESSION, PEER_ROOT, handle_open_session},
        {PROTO_REQ_CLOSE_SESSION, PEER_OWN_MANAGER, handle_close_session},
        {PROTO_REQ_CHANGE_PASSWORD, PEER_OWN_UID, handle_change_password},
        {PROTO_REQ_STATUS, PEER_ROOT, handle_status},
        {PROTO_REQ_SESSIONS, PEER_ROOT, handle_sessions},
        {PROTO_REQ_PLUGINS, PEER_ROOT, handle_plugins},
        {PROTO_REQ_SIMULATE, PEER_ROOT, handle_worker_request},
        {PROTO_REQ_RELOAD, PEER_ROOT, handle_reload},
        {PROTO_REQ_PLUGIN_ADMIN, PEER_ROOT, handle_plugin_admin},
        {PROTO_REQ_WAIT_JOBS, PEER_ROOT, handle_wait_jobs},
        {PROTO_REQ_GETPWNAM, PEER_ANY, handle_nss},
        {PROTO_REQ_GETGRNAM, PEER_ANY, handle_nss},
};

static bool peer_allowed(const struct conn *c, const struct dispatch *d) {
        uid_t uid;

        if (c->peer.uid == 0 || d->rule == PEER_ANY)
                return true;
        if (d->rule == PEER_ROOT)
                return false;
        if (d->rule == PEER_OWN_MANAGER)
                return user_uid(c->req.user, &uid) == 0 && uid == c->peer.uid; /* and see the handler */
        /* A non-root peer: unlock of its own session, or its own password. */
        if (d->type == PROTO_REQ_LOGIN && c->req.scenario != PGINA_SCENARIO_UNLOCK)
                return false;
        return user_uid(c->req.user, &uid) == 0 && uid == c->peer.uid;
}

static void dispatch(struct manager *m, struct conn *c) {
        for (size_t i = 0; i < ELEMENTSOF(dispatch_table); i++) {
                const struct dispatch *d = &dispatch_table[i];

                if (d->type != c->req.type)
                        continue;
                c->busy = true;
                if (!peer_allowed(c, d)) {
                        log_notice("uid %u (pid %d) may not make request %u for user '%s'",
                                   (unsigned)c->peer.uid, (int)c->peer.pid, d->type, c->req.user);
                        peer_account(m, c, false);
                        reply_simple(c, PROTO_PERMISSION, "permission denied");
                        request_free(&c->req);
                        return;
                }
                d->handler(m, c);
                return;
        }
        c->closing = true;
}

/* ---- connections ---- */

static void conn_free(struct manager *m, struct conn *c) {
        for (struct conn **p = &m->conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        if (c->queued) {
                /* The client left while waiting: no worker is started for it. */
                log_debug("uid %u left while its request for '%s' was queued", (unsigned)c->peer.uid,
                          c->req.user);
                queue_remove(m, c);
        }
        for (struct worker *w = m->workers; w; w = w->next)
                if (w->conn == c)
                        w->conn = NULL;
        close(c->fd);
        pbuf_free(&c->in);
        pbuf_free(&c->out);
        request_free(&c->req);
        free(c);
        m->nconns--;
}

/* Accept one connection; false when there was none to accept. */
static bool conn_accept(struct manager *m) {
        socklen_t len = sizeof(struct ucred);
        struct conn *c;
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0)
                return false;
        c = calloc(1, sizeof *c);
        if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0) {
                free(c);
                close(fd);
                return true;
        }
        if (m->nconns >= CONNS_MAX ||
            (c->peer.uid != 0 && m->nconns >= CONNS_MAX - CONNS_ROOT_RESERVE)) {
                log_warning("Too many connections (%zu, %d of %d kept for root); refusing one of "
                            "uid %u (pid %d)", m->nconns, CONNS_ROOT_RESERVE, CONNS_MAX,
                            (unsigned)c->peer.uid, (int)c->peer.pid);
                free(c);
                close(fd);
                return true;
        }
        if (c->peer.uid != 0) {
                size_t mine = 0;
                for (struct conn *o = m->conns; o; o = o->next)
                        if (o->peer.uid == c->peer.uid)
                                mine++;
                if (mine >= CONNS_PER_USER_MAX) {
                        log_warning("uid %u has %zu connections open; refusing another",
                                    (unsigned)c->peer.uid, mine);
                        free(c);
                        close(fd);
                        return true;
                }
        }
        c->fd = fd;
        c->pidx = -1;
        c->idle_since = now_ms();
        pbuf_init_secret(&c->in); /* LOGIN frames: passwords, until parsed */
        pbuf_init(&c->out);
        c->next = m->conns;
        m->conns = c;
        m->nconns++;
        return true;
}

/* A non-root peer that failed recently, or has enough requests running or queued, waits its
 * turn: one local user's share of the workers and of the queue is WORKERS_PER_USER_MAX. */
static bool peer_must_wait(struct manager *m, const struct conn *c) {
        struct peer_fail *f = peer_fail_get(m, c->peer.uid, false);
        size_t held = 0;

        if (f && f->next_allowed > now_ms())
                return true;
        for (const struct worker *w = m->workers; w; w = w->next)
                if (w->conn && w->conn->peer.uid == c->peer.uid)
                        held++;
        for (const struct conn *q = m->queue; q; q = q->queue_next)
                if (q->peer.uid == c->peer.uid)
                        held++;
        return held >= WORKERS_PER_USER_MAX;
}

static long long peer_wait_until(struct manager *m, const struct conn *c) {
        struct peer_fail *f = peer_fail_get(m, c->peer.uid, false);
        return f ? f->next_allowed : 0;
}

/* Parse one complete frame from c->in, if there is one, and dispatch it. */
static void conn_process(struct manager *m, struct conn *c) {
        struct pbuf payload;
        uint16_t type;
        long n;
        int r;

        if (c->busy || c->closing || conn_out_full(c))
                return;
        n = proto_frame_complete(c->in.data, c->in.len);
        if (n == 0)
                return;
        if (n > 0 && c->peer.uid != 0 && peer_must_wait(m, c))
                return; /* looked at again on a later round */
        if (n < 0) {
                log_warning("uid %u (pid %d): malformed frame (%s); closing the connection",
                            (unsigned)c->peer.uid, (int)c->peer.pid, strerror((int)-n));
                c->closing = true;
                c->in.len = 0;
                return;
        }
        request_free(&c->req); /* whatever the last request left (admin requests keep theirs) */
        r = proto_frame_open(c->in.data, (size_t)n, &type, &payload);
        if (r == 0)
                r = request_parse(type, &payload, &c->req);
        pbuf_consume(&c->in, (size_t)n);
        if (r < 0) {
                log_warning("uid %u (pid %d): invalid request of type %u (%s); closing the connection",
                            (unsigned)c->peer.uid, (int)c->peer.pid, type, strerror(-r));
                c->closing = true;
                return;
        }
        dispatch(m, c);
}

static void conn_read(struct manager *m, struct conn *c) {
        ssize_t k = pbuf_read_fd(&c->in, c->fd, READ_CHUNK);

        if (k == -EAGAIN)
                return;
        if (k <= 0) {
                conn_free(m, c);
                return;
        }
        if (c->in.len > PROTO_FRAME_MAX + PROTO_HEADER_LEN + READ_CHUNK) {
                log_warning("uid %u (pid %d) sent %zu bytes ahead of their answers; closing the "
                            "connection", (unsigned)c->peer.uid, (int)c->peer.pid, c->in.len);
                c->closing = true;
                return;
        }
        conn_process(m, c);
}

static void conn_write(struct manager *m, struct conn *c) {
        ssize_t k = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (k < 0) {
                /* Never freed here: the loop that called us may still use c. */
                if (errno != EAGAIN && errno != EINTR) {
                        c->closing = true;
                        pbuf_reset(&c->out);
                }
                return;
        }
        if (k > 0)
                c->drained_at = now_ms();
        pbuf_consume(&c->out, (size_t)k);
}

/* ---- worker results ---- */

static const struct proto_row *result_row(const struct proto_result *r, const char *key,
                                          const char *value) {
        for (size_t i = 0; i < r->nrows; i++) {
                const char *v = proto_row_get(&r->rows[i], key);
                if (v && (!value || streq(v, value)))
                        return &r->rows[i];
        }
        return NULL;
}

static struct pgina_user *result_record(const struct proto_result *res) {
        const struct proto_row *row = result_row(res, "user", NULL);
        struct pgina_user *u = NULL;

        if (row && user_from_row(row, &u) < 0)
                return NULL;
        return u;
}

static void login_token_new(struct manager *m, struct conn *c, struct worker *w,
                            const char *authorized, const char *message) {
        struct pending_login *pl = calloc(1, sizeof *pl);
        _cleanup_pbuf_ struct pbuf b = {0};
        uint8_t raw[16];
        char uid[24] = "-1";

        if (!pl || getrandom(raw, sizeof raw, 0) != sizeof raw ||
            !(pl->record = result_record(&w->result))) {
                free(pl);
                reply_simple(c, PROTO_UNAVAILABLE, "internal error");
                return;
        }
        for (size_t i = 0; i < sizeof raw; i++)
                snprintf(pl->token + 2 * i, 3, "%02x", raw[i]);
        pl->password = TAKE_PTR(w->req.password);
        pl->expires = now_ms() + TOKEN_TTL_MS;
        pl->next = m->logins;
        m->logins = pl;
        /* The account is the record's name: a plugin may name it differently from what the
         * user typed (ldap schema = ad: alice@acc.test logs on as alice); PAM_USER follows. */
        const char *account = pl->record->name;
        {
                uid_t u;
                if (user_uid(account, &u) == 0)
                        snprintf(uid, sizeof uid, "%u", (unsigned)u);
        }
        const struct proto_row *fin = result_row(&w->result, "stage", "final");
        const char *expired = fin ? proto_row_get(fin, "password_expired") : NULL;

        pbuf_init(&b);
        if (proto_result_begin(&b, PROTO_OK, message, 1) < 0 || proto_row_begin(&b, 5) < 0 ||
            proto_row_field(&b, "token", pl->token) < 0 || proto_row_field(&b, "user", account) < 0 ||
            proto_row_field(&b, "uid", uid) < 0 || proto_row_field(&b, "authorized", authorized) < 0 ||
            proto_row_field(&b, "password_expired", streq_ptr(expired, "yes") ? "yes" : "no") < 0) {
                reply_simple(c, PROTO_UNAVAILABLE, "internal error");
                return;
        }
        reply_frame(c, &b);
}

/* The real uid of a process (sudo runs setuid root: its real uid is the user who called it). */
static int process_real_uid(pid_t pid, uid_t *ret) {
        char path[64], line[256];
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
        if (!(f = fopen(path, "re")))
                return -errno;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, "Uid:", 4) == 0) {
                        *ret = (uid_t)strtoul(line + 4, NULL, 10);
                        return 0;
                }
        return -ENOENT;
}

static void credui_append(struct manager *m, struct worker *w, const struct conn *c) {
        struct session *s = w->req.session[0] ? cache_find(&m->cache, w->req.session) : NULL;
        struct pgina_user *rec;
        uid_t uid, caller = 0;

        if (!s) {
                log_info("credui logon of %s: no pgina session '%s' to append to", w->req.user,
                         w->req.session);
                return;
        }
        /* PGINA_SESSION comes from the caller's environment: only the session's own user may name it. */
        if (s->nentries == 0 || process_real_uid(c->peer.pid, &caller) < 0 ||
            (caller != 0 && (int64_t)caller != s->entries[0].uid)) {
                log_notice("credui logon of %s: caller (pid %d) does not own session %s; not appended",
                           w->req.user, (int)c->peer.pid, s->id);
                return;
        }
        rec = result_record(&w->result);
        if (!rec || cache_append(s, rec, NULL, w->req.service, w->req.tty, w->req.rhost) < 0) {
                user_free(rec);
                return;
        }
        if (user_uid(w->req.user, &uid) == 0)
                s->entries[s->nentries - 1].uid = uid;
        log_info("credui: %s added to session %s of %s", w->req.user, s->id, s->entries[0].user);
        (void)cache_save(&m->cache);
}

/* A password change went through: the user's pending logons and sessions keep the new password
 * (the logoff work uses it: pgSMB's credentials = user), not the one it replaced; a logon whose
 * password had to be changed first (must change at next logon) opens its session after the
 * change. */
static void password_follow(struct manager *m, const char *user, const struct secret *pw) {
        size_t n = 0;

        if (!pw)
                return;
        for (struct pending_login *pl = m->logins; pl; pl = pl->next)
                if (pl->password && streq(pl->record->name, user)) {
                        struct secret *s = secret_dup(pw);
                        if (!s)
                                continue;
                        secret_free(pl->password);
                        pl->password = s;
                }
        for (size_t i = 0; i < m->cache.n; i++)
                for (size_t k = 0; k < m->cache.v[i].nentries; k++) {
                        struct cache_entry *e = &m->cache.v[i].entries[k];
                        struct secret *s;
                        if (!e->password || !streq(e->user, user) || !(s = secret_dup(pw)))
                                continue;
                        secret_free(e->password);
                        e->password = s;
                        n++;
                }
        if (n)
                log_debug("%s: %zu session entr%s now hold the new password", user, n, n == 1 ? "y" : "ies");
}

static void worker_request_done(struct manager *m, struct worker *w) {
        struct conn *c = w->conn;
        struct proto_result *res = &w->result;
        const char *msg = strempty(res->message);
        uint32_t st = res->status;

        if (!c)
                return;
        if (w->req.type == PROTO_REQ_SIMULATE) {
                _cleanup_pbuf_ struct pbuf b = {0};
                pbuf_init(&b);
                /* relay the steps and the verdict; the record row stays here */
                size_t rows = 0;
                for (size_t i = 0; i < res->nrows; i++)
                        if (proto_row_get(&res->rows[i], "stage"))
                                rows++;
                if (proto_result_begin(&b, st, msg, (uint32_t)rows) < 0)
                        goto fail;
                for (size_t i = 0; i < res->nrows; i++) {
                        const struct proto_row *row = &res->rows[i];
                        if (!proto_row_get(row, "stage"))
                                continue;
                        if (proto_row_begin(&b, (uint32_t)row->n) < 0)
                                goto fail;
                        for (size_t k = 0; k < row->n; k++)
                                if (proto_row_field(&b, row->keys[k], row->values[k]) < 0)
                                        goto fail;
                }
                reply_frame(c, &b);
                return;
        }
        if (w->req.type == PROTO_REQ_GETPWNAM || w->req.type == PROTO_REQ_GETGRNAM) {
                const struct nss_entry *e = nss_cache_store(&m->nss, &w->req, res);

                if (e)
                        nss_reply(c, e);
                else
                        reply_simple(c, PROTO_UNAVAILABLE, "out of memory");
                return;
        }
        if (w->req.type == PROTO_REQ_LOGIN) {
                bool ok = st == PROTO_OK || (st == PROTO_DENIED && w->req.scenario == PGINA_SCENARIO_LOGON);
                log_info("%s of %s (service %s%s%s): %s%s%s",
                         w->req.scenario == PGINA_SCENARIO_UNLOCK   ? "unlock"
                         : w->req.scenario == PGINA_SCENARIO_CREDUI ? "credui logon"
                                                                    : "logon",
                         w->req.user, w->req.service[0] ? w->req.service : "-",
                         w->req.rhost[0] ? ", from " : "", w->req.rhost, proto_status_to_string(st),
                         msg[0] ? ": " : "", msg);
                peer_account(m, c, st == PROTO_OK);
                if (ok && w->req.scenario == PGINA_SCENARIO_LOGON) {
                        login_token_new(m, c, w, st == PROTO_OK ? "yes" : "no", msg);
                        return;
                }
                if (st == PROTO_OK && w->req.scenario == PGINA_SCENARIO_CREDUI)
                        credui_append(m, w, c);
        } else if (w->req.type == PROTO_REQ_CHANGE_PASSWORD) {
                log_info("password change of %s: %s%s%s", w->req.user, proto_status_to_string(st),
                         msg[0] ? ": " : "", msg);
                peer_account(m, c, st == PROTO_OK);
                if (st == PROTO_OK)
                        password_follow(m, w->req.user, w->req.new_password);
        } else if (w->req.type == PROTO_REQ_AUTHORIZE)
                /* user@.service's account check of the user's manager is no logon of its own */
                log_internal(streq(w->req.service, "systemd-user") && st == PROTO_OK ? LOG_DEBUG : LOG_INFO,
                             0, "authorization of %s (service %s%s%s): %s%s%s", w->req.user,
                             w->req.service[0] ? w->req.service : "-", w->req.rhost[0] ? ", from " : "",
                             w->req.rhost, proto_status_to_string(st), msg[0] ? ": " : "", msg);
        reply_simple(c, st, msg);
        return;
fail:
        reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
}

static void worker_failed(struct manager *m, struct worker *w) {
        char reason[512], when[32];
        time_t now = time(NULL);
        struct tm tm;

        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
        if (w->timed_out)
                snprintf(reason, sizeof reason, "timed out in %s for user %s at %s", w->stage, w->user,
                         when);
        else if (WIFSIGNALED(w->wstatus))
                snprintf(reason, sizeof reason, "crashed (%s) in %s for user %s at %s",
                         strsignal(WTERMSIG(w->wstatus)), w->stage, w->user, when);
        else
                snprintf(reason, sizeof reason, "exited (status %d) in %s for user %s at %s",
                         WEXITSTATUS(w->wstatus), w->stage, w->user, when);
        if (w->plugin[0]) {
                log_error("plugin %s %s", w->plugin, reason);
                plugin_mark_failed(m, w->plugin, reason);
        } else
                log_error("worker %d for %s failed: %s", (int)w->pid, w->user, reason);
        if (w->conn) {
                char msg[600];
                snprintf(msg, sizeof msg, "pgina plugin %s failed (%s)",
                         w->plugin[0] ? w->plugin : "?", w->timed_out ? "timed out" : "crashed");
                peer_account(m, w->conn, false);
                reply_simple(w->conn, PROTO_UNAVAILABLE, msg);
        }
}

static void worker_finish(struct manager *m, struct worker *w) {
        for (struct worker **p = &m->workers; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        bool ok = w->have_result && !w->timed_out;

        if (ok) {
                if (w->kind == WORKER_REQUEST)
                        worker_request_done(m, w);
                else if (w->kind == WORKER_NOTIFY && w->result.status != PROTO_OK)
                        log_warning("session notification for %s: some plugins failed: %s", w->user,
                                    strempty(w->result.message));
        } else
                worker_failed(m, w);
        if (w->kind == WORKER_JOB && w->job) {
                /* One line for the job's end, with its outcome (a failed worker's reason is the
                 * line before). */
                double secs = (double)(now_ms() - w->started) / 1000.0;

                if (ok && w->result.status == PROTO_OK)
                        log_info("logoff job of %s finished in %.1f s: ok", w->user, secs);
                else if (ok)
                        log_warning("logoff job of %s finished in %.1f s: some plugins failed: %s", w->user,
                                    secs, strempty(w->result.message));
                else
                        log_warning("logoff job of %s finished in %.1f s: failed (its worker %s)", w->user,
                                    secs, w->timed_out ? "timed out" : "crashed");
                jobs_remove(&m->jobs, w->job);
                jobs_inhibit_update(&m->jobs);
        }
        close(w->fd);
        pbuf_free(&w->in);
        proto_result_free(&w->result);
        request_free(&w->req);
        free(w->user);
        free(w);
}

static void worker_frames(struct manager *m, struct worker *w) {
        for (;;) {
                long n = proto_frame_complete(w->in.data, w->in.len);
                struct pbuf p;
                uint16_t type;

                if (n <= 0) {
                        if (n < 0) {
                                log_error("worker %d sent a malformed frame; killing it", (int)w->pid);
                                kill(w->pid, SIGKILL);
                                w->in.len = 0;
                        }
                        return;
                }
                if (proto_frame_open(w->in.data, (size_t)n, &type, &p) == 0) {
                        if (type == PROTO_W_PLUGIN_BEGIN) {
                                _cleanup_free_ char *plugin = NULL, *stage = NULL;
                                if (pbuf_get_str(&p, &plugin, 64) == 0 && pbuf_get_str(&p, &stage, 31) == 0) {
                                        snprintf(w->plugin, sizeof w->plugin, "%s", plugin);
                                        snprintf(w->stage, sizeof w->stage, "%s", stage);
                                }
                        } else if (type == PROTO_MSG_INFO) {
                                if (w->conn) {
                                        struct pbuf frame = {.data = w->in.data, .len = (size_t)n};
                                        conn_queue(w->conn, &frame);
                                }
                        } else if (type == PROTO_MSG_RESULT && !w->have_result) {
                                if (proto_result_parse(&p, &w->result) == 0)
                                        w->have_result = true;
                        }
                }
                pbuf_consume(&w->in, (size_t)n);
        }
}

static void worker_read(struct manager *m, struct worker *w) {
        ssize_t k = pbuf_read_fd(&w->in, w->fd, READ_CHUNK);

        if (k == -EAGAIN)
                return;
        if (k <= 0) {
                w->eof = true;
                return;
        }
        worker_frames(m, w);
}

static void workers_reap(struct manager *m) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);

                if (pid <= 0)
                        return;
                for (struct worker *w = m->workers; w; w = w->next)
                        if (w->pid == pid) {
                                w->reaped = true;
                                w->wstatus = status;
                        }
        }
}

/* ---- jobs and parked requests ---- */

static void jobs_start(struct manager *m) {
        for (struct job *j = m->jobs.head; j && m->jobs.running < JOBS_PARALLEL_MAX; j = j->next) {
                struct worker_spec spec = {.kind = WORKER_JOB, .record = j->record};
                struct worker *w;

                if (j->state != JOB_QUEUED)
                        continue;
                if (j->session_close)
                        spec.events[spec.nevents++] = PGINA_EVENT_SESSION_CLOSE;
                spec.events[spec.nevents++] = PGINA_EVENT_LOGOFF;
                w = worker_start(m, &spec, j->user);
                if (!w)
                        return;
                w->job = j;
                j->state = JOB_RUNNING;
                log_info("logoff job of %s started", j->user);
        }
}

static void jobs_count_running(struct manager *m) {
        m->jobs.running = 0;
        for (struct job *j = m->jobs.head; j; j = j->next)
                if (j->state == JOB_RUNNING)
                        m->jobs.running++;
}

static void parked_resume(struct manager *m) {
        long long now = now_ms();

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

static void logins_expire(struct manager *m) {
        long long now = now_ms();

        for (struct pending_login **p = &m->logins; *p;) {
                struct pending_login *pl = *p;
                if (pl->expires > now) {
                        p = &pl->next;
                        continue;
                }
                *p = pl->next;
                user_free(pl->record);
                secret_free(pl->password);
                free(pl);
        }
}

/* ---- setup ---- */

static int listen_socket(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        char dir[sizeof sa.sun_path];
        struct stat st;
        char *slash;
        int probe;

        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        if ((slash = strrchr(dir, '/')) && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return log_error_errno(-errno, "Failed to create %s: %m", dir);
        }
        probe = proto_connect(path, 1000);
        if (probe >= 0) {
                close(probe);
                log_error("Another pginad is already answering on %s", path);
                return -EADDRINUSE;
        }
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(-EEXIST, "%s exists and is not a socket; not removing it", path);
                (void)unlink(path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create a socket: %m");
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return log_error_errno(-errno, "Failed to bind %s: %m", path);
        /* Everyone may connect (screen lockers run as the user); each request checks its peer. */
        if (chmod(path, 0666) < 0)
                return log_error_errno(-errno, "Failed to chmod %s: %m", path);
        if (listen(fd, 128) < 0)
                return log_error_errno(-errno, "Failed to listen on %s: %m", path);
        return TAKE_FD(fd);
}

/* Sessions recorded before a reboot ended without a logoff: do the logoff work now (upload what
 * was left, clean up accounts), once per user, and forget the sessions. */
static void sessions_from_previous_boot(struct manager *m) {
        for (size_t i = 0; i < m->cache.n; i++) {
                struct session *s = &m->cache.v[i];
                struct cache_entry *e = s->nentries ? &s->entries[0] : NULL;

                if (!e || !e->record || jobs_find_user(&m->jobs, e->user))
                        continue;
                log_notice("session %s of %s is from before the last boot: running its logoff work",
                           s->id, e->user);
                if (m->conf->norder[CONF_STAGE_NOTIFICATION] > 0 &&
                    jobs_add(&m->jobs, e->record, false))
                        e->record = NULL;
        }
        for (size_t i = 0; i < m->cache.n; i++)
                session_done(&m->cache.v[i]);
        m->cache.n = 0;
        (void)cache_save(&m->cache);
        jobs_inhibit_update(&m->jobs);
}

int manager_new(struct manager **ret, const char *conf_path, struct conf *conf,
                struct plugin_info *infos, size_t ninfos) {
        struct manager *m = calloc(1, sizeof *m);
        sigset_t mask;
        int r;

        if (!m || !(m->conf_path = strdup(conf_path))) {
                free(m);
                return -ENOMEM;
        }
        m->conf = conf;
        m->plugins = infos;
        m->nplugins = ninfos;
        m->listen_fd = m->signal_fd = -1;
        m->jobs.inhibit_fd = -1;
        m->logind.fd = -1;
        m->started = time(NULL);
        *ret = m;

        if (mkdir(conf->state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create the state directory %s: %m",
                                       conf->state_dir);
        r = cache_load(&m->cache, conf->state_dir);
        if (r < 0)
                return r;
        if (m->cache.from_previous_boot && m->cache.n > 0)
                sessions_from_previous_boot(m);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        m->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (m->signal_fd < 0)
                return log_error_errno(-errno, "Failed to create a signalfd: %m");
        preload_libraries(conf);
        m->listen_fd = listen_socket(conf->socket_path);
        if (m->listen_fd < 0)
                return m->listen_fd;
        if (!(m->bound_socket = strdup(conf->socket_path)))
                return -ENOMEM;
        /* Sessions logind ended while pginad was not running end now (their workers are
         * reaped through the signalfd). */
        if (logind_follow(&m->logind) > 0)
                logind_sync(m);
        return 0;
}

static void handle_signals(struct manager *m) {
        struct signalfd_siginfo si;

        while (read(m->signal_fd, &si, sizeof si) == sizeof si) {
                switch (si.ssi_signo) {
                case SIGCHLD:
                        workers_reap(m);
                        break;
                case SIGTERM:
                case SIGINT:
                        if (!m->stopping) {
                                m->stopping = true;
                                m->stop_deadline = now_ms() + 1000LL * m->conf->shutdown_timeout;
                                log_info("Stopping: %zu logoff job(s) pending, waiting up to %u s",
                                         jobs_count(&m->jobs), m->conf->shutdown_timeout);
                                queue_shutdown(m);
                        }
                        break;
                case SIGHUP: {
                        _cleanup_free_ char *errors = NULL;
                        if (manager_reload(m, &errors) < 0)
                                log_error("Reload refused, keeping the running configuration:\n%s",
                                          strempty(errors));
                        break;
                }
                }
        }
}

/* pginad is about to exit: a `pginactl wait` still held gets its answer (OK when the jobs are
 * done, else "shutting down"), and what is queued for any client is sent, for at most a second. */
static void conns_last_words(struct manager *m) {
        long long until = now_ms() + 1000;

        for (struct conn *c = m->conns; c; c = c->next)
                if (c->waiting)
                        wait_jobs_answer(m, c, now_ms(), true);
        for (;;) {
                struct pollfd pfd;
                struct conn *c = m->conns;
                long long now = now_ms();

                while (c && (c->out.len == 0 || c->closing || c->send_at > now))
                        c = c->next; /* a slowed-down failure keeps its delay */
                if (!c || now >= until)
                        return;
                pfd = (struct pollfd){.fd = c->fd, .events = POLLOUT};
                if (poll(&pfd, 1, (int)(until - now)) > 0)
                        conn_write(m, c);
        }
}

static bool manager_done(struct manager *m) {
        if (!m->stopping)
                return false;
        if (!m->jobs.head && workers_count(m, WORKER_REQUEST) == 0 && workers_count(m, WORKER_NOTIFY) == 0)
                return true;
        if (now_ms() >= m->stop_deadline) {
                for (struct job *j = m->jobs.head; j; j = j->next)
                        log_error("shutdown_timeout reached: the logoff job of %s did not finish (%s)",
                                  j->user, j->state == JOB_RUNNING ? "running" : "never started");
                return true;
        }
        return false;
}

int manager_run(struct manager *m) {
        struct pollfd *pfd = NULL;
        size_t cap = 0;

        log_info("ready: listening on %s (config %s, %zu plugin(s))", m->conf->socket_path,
                 m->conf_path, m->nplugins);
#if HAVE_LIBSYSTEMD
        (void)sd_notify(0, "READY=1");
#endif
        for (;;) {
                long long now = now_ms(), next = now + 60000;
                size_t n = 0, need = 3 + m->nconns + 64;
                int timeout, k;

                jobs_count_running(m);
                jobs_start(m);
                jobs_count_running(m);
                parked_resume(m);
                wait_jobs_resume(m);
                queue_run(m);
                logins_expire(m);
                if (manager_done(m)) {
                        conns_last_words(m);
                        break;
                }

                for (struct worker *w = m->workers; w; w = w->next)
                        need++;
                if (need > cap) {
                        struct pollfd *np = realloc(pfd, need * sizeof *np);
                        if (!np) {
                                free(pfd);
                                return log_error_errno(-ENOMEM, "Out of memory");
                        }
                        pfd = np;
                        cap = need;
                }
                pfd[n++] = (struct pollfd){.fd = m->signal_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = m->logind.fd, .events = POLLIN}; /* -1: none */
                for (struct conn *c = m->conns; c; c = c->next) {
                        short ev = 0;
                        long long stuck = conn_send_deadline(c);
                        if (conn_wants_input(c))
                                ev |= POLLIN;
                        if (stuck && stuck < next)
                                next = stuck;
                        if (c->out.len > 0 && now >= c->send_at)
                                ev |= POLLOUT;
                        if (c->out.len > 0 && c->send_at > now && c->send_at < next)
                                next = c->send_at;
                        if (!c->busy && c->peer.uid != 0) {
                                long long until = peer_wait_until(m, c);
                                if (until > now && until < next)
                                        next = until;
                        }
                        if (c->parked && c->parked_ping + PARKED_PING_MS < next)
                                next = c->parked_ping + PARKED_PING_MS;
                        if (!c->busy && !c->closing && !conn_out_full(c) && c->in.len >= PROTO_HEADER_LEN &&
                            proto_frame_complete(c->in.data, c->in.len) != 0 &&
                            !(c->peer.uid != 0 && peer_must_wait(m, c)))
                                next = now; /* a pipelined request waits in the buffer */
                        if (!c->busy && c->idle_since + IDLE_TIMEOUT_MS < next)
                                next = c->idle_since + IDLE_TIMEOUT_MS;
                        c->pidx = (int)n;
                        pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
                }
                for (struct worker *w = m->workers; w; w = w->next) {
                        pfd[n++] = (struct pollfd){.fd = w->eof ? -1 : w->fd, .events = POLLIN};
                        if (w->deadline < next)
                                next = w->deadline;
                }
                if (m->stopping && m->stop_deadline < next)
                        next = m->stop_deadline;
                if (m->queue && m->queue->queued_at + 1000LL * m->conf->request_timeout < next)
                        next = m->queue->queued_at + 1000LL * m->conf->request_timeout;
                keepalives(m, now, &next);
                timeout = next <= now ? 0 : (int)(next - now);
                k = poll(pfd, n, timeout);
                if (k < 0 && errno != EINTR) {
                        free(pfd);
                        return log_error_errno(-errno, "poll failed: %m");
                }
                if (k < 0)
                        continue;
                now = now_ms();

                if (pfd[0].revents & POLLIN)
                        handle_signals(m);
                if (pfd[2].revents & POLLIN) {
                        logind_flush(&m->logind);
                        logind_sync(m);
                }
                for (struct conn *c = m->conns, *next_c; c; c = next_c) {
                        short rev = c->pidx >= 0 ? pfd[c->pidx].revents : 0;

                        next_c = c->next;
                        c->pidx = -1;
                        if (rev & POLLNVAL) {
                                conn_free(m, c);
                                continue;
                        }
                        if (rev & POLLOUT)
                                conn_write(m, c);
                        if (rev & (POLLIN | POLLHUP | POLLERR))
                                conn_read(m, c); /* may free c */
                }
                if (pfd[1].revents & POLLIN)
                        for (int i = 0; i < ACCEPT_BATCH && conn_accept(m); i++)
                                ;
                for (struct worker *w = m->workers; w; w = w->next)
                        if (!w->eof)
                                worker_read(m, w);
                for (struct worker *w = m->workers; w; w = w->next)
                        if (!w->reaped && !w->timed_out && now >= w->deadline) {
                                log_error("worker %d for %s: request_timeout reached in %s%s%s; killing it",
                                          (int)w->pid, w->user, w->plugin[0] ? "plugin " : "",
                                          w->plugin, w->stage[0] ? "" : "");
                                w->timed_out = true;
                                kill(-w->pid, SIGKILL); /* the worker and whatever it started */
                                kill(w->pid, SIGKILL);
                        }
                workers_reap(m);
                for (struct worker *w = m->workers, *next_w; w; w = next_w) {
                        next_w = w->next;
                        if (w->reaped && !w->eof) {
                                /* Drain what it wrote before it died; a child of the worker that
                                 * still holds the pipe must not keep the request open. */
                                ssize_t got;
                                do
                                        got = pbuf_read_fd(&w->in, w->fd, READ_CHUNK);
                                while (got > 0);
                                worker_frames(m, w);
                                w->eof = true;
                        }
                        if (w->reaped && w->eof)
                                worker_finish(m, w);
                }
                for (struct conn *c = m->conns, *next_c; c; c = next_c) {
                        next_c = c->next;
                        if (!c->busy && !c->closing)
                                conn_process(m, c);
                        if (conn_send_deadline(c) && now >= conn_send_deadline(c)) {
                                log_notice("uid %u (pid %d) took none of its %zu bytes of answers "
                                           "for %d s; closing the connection",
                                           (unsigned)c->peer.uid, (int)c->peer.pid, c->out.len,
                                           SEND_TIMEOUT_MS / 1000);
                                c->closing = true;
                                pbuf_free(&c->out);
                        }
                        if (!c->busy && !c->closing && c->out.len == 0 &&
                            now - c->idle_since > IDLE_TIMEOUT_MS) {
                                log_debug("closing an idle connection of uid %u", (unsigned)c->peer.uid);
                                c->closing = true;
                        }
                        if (c->closing && c->out.len == 0)
                                conn_free(m, c);
                        else if (c->out.len > 0 && now >= c->send_at)
                                conn_write(m, c);
                }
        }
        free(pfd);
        (void)cache_save(&m->cache);
        log_info("pginad stopped");
        return 0;
}

void manager_free(struct manager *m) {
        if (!m)
                return;
        while (m->conns)
                conn_free(m, m->conns);
        for (struct worker *w = m->workers, *n; w; w = n) {
                n = w->next;
                kill(w->pid, SIGKILL);
                waitpid(w->pid, NULL, 0);
                close(w->fd);
                pbuf_free(&w->in);
                proto_result_free(&w->result);
                request_free(&w->req);
                free(w->user);
                free(w);
        }
        while (m->jobs.head)
                jobs_remove(&m->jobs, m->jobs.head);
        if (m->jobs.inhibit_fd >= 0)
                close(m->jobs.inhibit_fd);
        logins_expire(m);
        for (struct pending_login *pl = m->logins, *n; pl; pl = n) {
                n = pl->next;
                user_free(pl->record);
                secret_free(pl->password);
                free(pl);
        }
        nss_cache_clear(&m->nss);
        for (struct peer_fail *f = m->fails, *n; f; f = n) {
                n = f->next;
                free(f);
        }
        if (m->listen_fd >= 0) {
                close(m->listen_fd);
                if (m->bound_socket)
                        (void)unlink(m->bound_socket);
        }
        if (m->signal_fd >= 0)
                close(m->signal_fd);
        logind_close(&m->logind);
        cache_free(&m->cache);
        plugin_infos_free(m->plugins, m->nplugins);
        conf_free(m->conf);
        free(m->bound_socket);
        free(m->conf_path);
        free(m);
}
