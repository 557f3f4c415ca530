/* The master's side of workers: starting them, reading their frames, and acting on their results
 * (tokens, credui entries, plugin health). The workers themselves run in pginad-worker.c. */
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

struct worker *worker_start(struct manager *m, struct worker_spec *spec, const char *user) {
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
        w->started = manager_now(m);
        w->deadline = w->started +
                      1000LL * (spec->kind == WORKER_JOB ? m->conf->job_timeout : m->conf->request_timeout);
        pbuf_init(&w->in);
        w->next = m->workers;
        m->workers = w;
        log_debug("worker %d started for %s", (int)pid, user);
        return w;
}

size_t workers_count(const struct manager *m, enum worker_kind kind) {
        size_t n = 0;
        for (const struct worker *w = m->workers; w; w = w->next)
                if (w->kind == kind)
                        n++;
        return n;
}

void notify_start(struct manager *m, struct pgina_user *record, const struct secret *password,
                  const enum pgina_event *ev, size_t nev) {
        struct worker_spec spec = {
                .kind = WORKER_NOTIFY, .record = record, .password = password, .nevents = nev};

        if (m->conf->norder[CONF_STAGE_NOTIFICATION] == 0 || nev == 0)
                return;
        memcpy(spec.events, ev, nev * sizeof *ev);
        (void)worker_start(m, &spec, record->name);
}

/* ---- worker results ---- */

static const struct proto_row *result_row(const struct proto_result *r, const char *key, const char *value) {
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

static void login_token_new(struct manager *m, struct conn *c, struct worker *w, const char *authorized,
                            const char *message, const char *phases) {
        struct pending_login *pl = calloc(1, sizeof *pl);
        _cleanup_pbuf_ struct pbuf b = {0};
        uint8_t raw[16];
        char uid[24] = "-1";

        if (!pl || getrandom(raw, sizeof raw, 0) != sizeof raw || !(pl->record = result_record(&w->result))) {
                free(pl);
                reply_simple(c, PROTO_UNAVAILABLE, "internal error");
                return;
        }
        for (size_t i = 0; i < sizeof raw; i++)
                snprintf(pl->token + 2 * i, 3, "%02x", raw[i]);
        pl->password = TAKE_PTR(w->req.password);
        pl->expires = manager_now(m) + TOKEN_TTL_MS;
        snprintf(pl->phases, sizeof pl->phases, "%s", phases);
        pl->next = m->logins;
        m->logins = pl;
        logins_bound(m);
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

        if (!c) { /* the client left: its logon still counts */
                if (w->req.type == PROTO_REQ_LOGIN)
                        metrics_logon(&m->metrics, w->req.scenario, st, res, manager_now(m) - w->started, NULL, 0);
                return;
        }
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
                char phases[METRICS_PHASES_MAX];

                /* "ok in 812 ms (authentication 120 ms, ..., gateway 650 ms: pgsmb download 400 ms ...)" */
                metrics_logon(&m->metrics, w->req.scenario, st, res, manager_now(m) - w->started, phases,
                              sizeof phases);
                log_info("%s of %s (service %s%s%s): %s in %s%s%s",
                         w->req.scenario == PGINA_SCENARIO_UNLOCK   ? "unlock"
                         : w->req.scenario == PGINA_SCENARIO_CREDUI ? "credui logon"
                                                                    : "logon",
                         w->req.user, w->req.service[0] ? w->req.service : "-",
                         w->req.rhost[0] ? ", from " : "", w->req.rhost, proto_status_to_string(st), phases,
                         msg[0] ? ": " : "", msg);
                peer_account(m, c, st == PROTO_OK);
                if (ok && w->req.scenario == PGINA_SCENARIO_LOGON) {
                        login_token_new(m, c, w, st == PROTO_OK ? "yes" : "no", msg, phases);
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
                snprintf(reason, sizeof reason, "timed out in %s for user %s at %s", w->stage, w->user, when);
        else if (WIFSIGNALED(w->wstatus))
                snprintf(reason, sizeof reason, "crashed (%s) in %s for user %s at %s",
                         strsignal(WTERMSIG(w->wstatus)), w->stage, w->user, when);
        else
                snprintf(reason, sizeof reason, "exited (status %d) in %s for user %s at %s",
                         WEXITSTATUS(w->wstatus), w->stage, w->user, when);
        if (w->plugin[0]) {
                log_error("plugin %s %s", w->plugin, reason);
                plugin_mark_failed(m, w->plugin, reason);
                metrics_plugin_failure(&m->metrics, w->plugin, w->timed_out);
        } else
                log_error("worker %d for %s failed: %s", (int)w->pid, w->user, reason);
        if (w->conn) {
                char msg[600];
                snprintf(msg, sizeof msg, "pgina plugin %s failed (%s)", w->plugin[0] ? w->plugin : "?",
                         w->timed_out ? "timed out" : "crashed");
                peer_account(m, w->conn, false);
                reply_simple(w->conn, PROTO_UNAVAILABLE, msg);
        }
        if (w->kind == WORKER_REQUEST && w->req.type == PROTO_REQ_LOGIN)
                metrics_logon(&m->metrics, w->req.scenario, PROTO_UNAVAILABLE, NULL, manager_now(m) - w->started,
                              NULL, 0);
}

/* A worker's memory and pipe, once it is reaped (or killed at exit). */
void worker_free(struct worker *w) {
        close(w->fd);
        pbuf_free(&w->in);
        proto_result_free(&w->result);
        request_free(&w->req);
        free(w->user);
        free(w);
}

/* Plugins that said what their retries wait for works again (pgina_ctx_retry_now). */
static void worker_retry_wakes(struct manager *m, struct worker *w) {
        char who[PGINA_NAME_MAX + 32];

        snprintf(who, sizeof who, "%s of %s", w->kind == WORKER_JOB ? "the logoff job" : "a call", w->user);
        for (size_t i = 0; i < w->result.nrows; i++) {
                const struct proto_row *row = &w->result.rows[i];
                const char *plugin = proto_row_get(row, "plugin");
                if (plugin && streq(strempty(proto_row_get(row, "retry")), "now"))
                        jobs_retry_now(m, plugin, who);
        }
}

/* The first notification plugin of the job's result that asked for a retry, and its reason. */
static const struct proto_row *job_retry_row(const struct worker *w) {
        for (size_t i = 0; i < w->result.nrows; i++) {
                const struct proto_row *row = &w->result.rows[i];
                if (streq(strempty(proto_row_get(row, "stage")), "notification") && proto_row_get(row, "plugin") &&
                    streq(strempty(proto_row_get(row, "retry")), "later"))
                        return row;
        }
        return NULL;
}

/* One line for the job's end, with its outcome (a failed worker's reason is the line before);
 * then the job waits for its retry, or leaves the list and the journal. */
static void worker_job_done(struct manager *m, struct worker *w, bool ok) {
        struct job *j = w->job;
        double secs = (double)(manager_now(m) - w->started) / 1000.0;
        const struct proto_row *retry = ok ? job_retry_row(w) : NULL;

        if (retry) {
                log_warning("logoff job of %s finished in %.1f s: not done yet", w->user, secs);
                jobs_retry_later(m, j, proto_row_get(retry, "plugin"), proto_row_get(retry, "message"));
                jobs_inhibit_update(&m->jobs);
                return;
        }
        if (ok && w->result.status == PROTO_OK)
                log_info("logoff job of %s finished in %.1f s: ok%s", w->user, secs,
                         j->attempts ? " (after its retries: the work is done)" : "");
        else if (ok)
                log_warning("logoff job of %s finished in %.1f s: some plugins failed: %s", w->user, secs,
                            strempty(w->result.message));
        else
                log_warning("logoff job of %s finished in %.1f s: failed (its worker %s)", w->user, secs,
                            w->timed_out ? "timed out" : "crashed");
        jobs_remove(&m->jobs, j);
        jobs_inhibit_update(&m->jobs);
}

void worker_finish(struct manager *m, struct worker *w) {
        for (struct worker **p = &m->workers; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        bool ok = w->have_result && !w->timed_out;

        if (ok) {
                metrics_result(&m->metrics, &w->result);
                if (w->kind == WORKER_REQUEST)
                        worker_request_done(m, w);
                else if (w->kind == WORKER_NOTIFY && w->result.status != PROTO_OK)
                        log_warning("session notification for %s: some plugins failed: %s", w->user,
                                    strempty(w->result.message));
        } else
                worker_failed(m, w);
        if (ok)
                worker_retry_wakes(m, w);
        if (w->kind == WORKER_JOB && w->job) {
                metrics_job(&m->metrics,
                            !ok                            ? METRICS_JOB_FAILED
                            : job_retry_row(w)             ? METRICS_JOB_RETRY
                            : w->result.status == PROTO_OK ? METRICS_JOB_OK
                                                           : METRICS_JOB_FAILED,
                            manager_now(m) - w->started);
                worker_job_done(m, w, ok);
        }
        worker_free(w);
}

void worker_frames(struct manager *m, struct worker *w) {
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

void worker_read(struct manager *m, struct worker *w) {
        ssize_t k = pbuf_read_fd(&w->in, w->fd, READ_CHUNK);

        if (k == -EAGAIN)
                return;
        if (k <= 0) {
                w->eof = true;
                return;
        }
        worker_frames(m, w);
}

void workers_reap(struct manager *m) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);

                if (pid <= 0)
                        return;
                if (textfile_reaped(m, pid, status))
                        continue;
                for (struct worker *w = m->workers; w; w = w->next)
                        if (w->pid == pid) {
                                w->reaped = true;
                                w->wstatus = status;
                        }
        }
}

/* Add the workers' pipes to this round's poll set (at pfd[n], returns the new n) and their
 * request_timeout deadlines. */
size_t workers_poll(struct manager *m, struct pollfd *pfd, size_t n, long long *next) {
        for (struct worker *w = m->workers; w; w = w->next) {
                pfd[n++] = (struct pollfd){.fd = w->eof ? -1 : w->fd, .events = POLLIN};
                deadline_min(next, w->deadline);
        }
        return n;
}

/* After poll: read the workers' frames, kill those past request_timeout, reap and finish. */
void workers_events(struct manager *m, long long now) {
        for (struct worker *w = m->workers; w; w = w->next)
                if (!w->eof)
                        worker_read(m, w);
        for (struct worker *w = m->workers; w; w = w->next)
                if (!w->reaped && !w->timed_out && now >= w->deadline) {
                        log_error("worker %d for %s: request_timeout reached in %s%s%s; killing it",
                                  (int)w->pid, w->user, w->plugin[0] ? "plugin " : "", w->plugin,
                                  w->stage[0] ? "" : "");
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
}
