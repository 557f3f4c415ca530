/* pginactl's and NSS's requests (status, sessions, plugins, reload, plugin admin, wait-jobs,
 * getpwnam/getgrnam), and the state-gated dispatch table for every request type. */
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

static struct cache_entry *cache_user_entry(struct manager *m, const char *user) {
        for (size_t i = 0; i < m->cache.n; i++)
                if (m->cache.v[i].nentries > 0 && streq(m->cache.v[i].entries[0].user, user))
                        return &m->cache.v[i].entries[0];
        return NULL;
}

static void handle_plugin_admin(struct manager *m, struct conn *c) {
        struct cache_entry *e = c->req.user[0] ? cache_user_entry(m, c->req.user) : NULL;
        struct worker_spec spec = {.kind = WORKER_REQUEST,
                                   .req = &c->req,
                                   .record = e ? e->record : NULL,
                                   .password = e ? e->password : NULL};
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
        w->deadline = manager_now(m) + 1000LL * m->conf->job_timeout;
        w->conn = c;
        c->keepalive_at = manager_now(m);
        w->req = c->req;
        memset(&c->req, 0, sizeof c->req);
        log_info("admin command for plugin %s%s%s", w->req.plugin, w->req.user[0] ? ", user " : "",
                 w->req.user);
}

void nss_reply(struct conn *c, const struct nss_entry *e) {
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
                static const char *const states[] = {[JOB_QUEUED] = "queued", [JOB_RUNNING] = "running",
                                                     [JOB_RETRY] = "retry"};
                char num[4][32];
                snprintf(num[0], sizeof num[0], "%lld", (long long)j->since);
                snprintf(num[1], sizeof num[1], "%u", j->attempts);
                snprintf(num[2], sizeof num[2], "%lld", (long long)j->failing_since);
                snprintf(num[3], sizeof num[3], "%lld", j->state == JOB_RETRY ? (long long)j->next_try : 0LL);
                if (proto_row_begin(&b, 10) < 0 || proto_row_field(&b, "kind", "job") < 0 ||
                    proto_row_field(&b, "user", j->user) < 0 || proto_row_field(&b, "state", states[j->state]) < 0 ||
                    proto_row_field(&b, "since", num[0]) < 0 || proto_row_field(&b, "retries", num[1]) < 0 ||
                    proto_row_field(&b, "failing_since", num[2]) < 0 ||
                    proto_row_field(&b, "next_try", num[3]) < 0 ||
                    proto_row_field(&b, "plugin", strempty(j->retry_from)) < 0 ||
                    proto_row_field(&b, "last_error", strempty(j->last_error)) < 0 ||
                    proto_row_field(&b, "resumed", j->resumed ? "yes" : "no") < 0)
                        goto fail;
        }
        reply_frame(c, &b);
        return;
fail:
        reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
}

/* pginactl metrics: the text as INFO frames of whole lines (one string holds PROTO_STR_MAX bytes,
 * one frame PROTO_FRAME_MAX; the text of full tables with the longest names is ~240 KB, under
 * OUT_MAX: test_metrics pins it), then OK. */
static void handle_metrics(struct manager *m, struct conn *c) {
        _cleanup_free_ char *text = NULL;
        struct metrics_gauges g;
        size_t len = 0;

        for (size_t i = 0; i < m->nplugins; i++)
                metrics_plugin_known(&m->metrics, m->plugins[i].name);
        manager_gauges(m, &g);
        if (metrics_render(&m->metrics, &g, &text, &len) < 0) {
                reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
                return;
        }
        for (char *p = text; *p;) {
                size_t n = 0;

                /* whole lines up to the bound; a line is far shorter than it */
                while (p[n]) {
                        size_t k = strcspn(p + n, "\n");
                        if (n && n + k >= PROTO_STR_MAX)
                                break;
                        n += k + (p[n + k] == '\n');
                }
                char save = p[n];
                p[n] = 0;
                if (n && p[n - 1] == '\n')
                        p[n - 1] = 0; /* print_text adds it back */
                reply_info(c, PROTO_INFO_TEXT, p);
                p[n] = save;
                p += n;
        }
        reply_simple(c, PROTO_OK, "");
}

static size_t jobs_of(const struct manager *m, const char *user) {
        size_t n = 0;

        for (const struct job *j = m->jobs.head; j; j = j->next)
                n += !*user || streq(j->user, user);
        return n;
}

/* Answer a held WAIT_JOBS once its jobs are done or its limit passed; `last`: pginad is exiting,
 * answer now whatever is left. */
void wait_jobs_answer(struct manager *m, struct conn *c, long long now, bool last) {
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
        long long now = manager_now(m);

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

void wait_jobs_resume(struct manager *m) {
        long long now = manager_now(m);

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
                        if (proto_row_begin(&b, 11) < 0 || proto_row_field(&b, "session", s->id) < 0 ||
                            proto_row_field(&b, "index", idx) < 0 ||
                            proto_row_field(&b, "user", e->user) < 0 || proto_row_field(&b, "uid", uid) < 0 ||
                            proto_row_field(&b, "service", e->service) < 0 ||
                            proto_row_field(&b, "tty", e->tty) < 0 ||
                            proto_row_field(&b, "rhost", e->rhost) < 0 ||
                            proto_row_field(&b, "opened", opened) < 0 ||
                            proto_row_field(&b, "scenario", k == 0 ? "logon" : "credui") < 0 ||
                            proto_row_field(&b, "logind", s->logind) < 0 ||
                            proto_row_field(&b, "phases", strempty(e->phases)) < 0)
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

static int plugin_row(struct pbuf *b, const struct conf *conf, const struct plugin_info *pi) {
        char abi[16], order[512];

        snprintf(abi, sizeof abi, "%u", PGINA_PLUGIN_ABI_VERSION);
        plugin_order_string(conf, pi->name, order, sizeof order);
        if (proto_row_begin(b, 10) < 0 || proto_row_field(b, "name", pi->name) < 0 ||
            proto_row_field(b, "version", pi->version) < 0 ||
            proto_row_field(b, "description", pi->description) < 0 ||
            proto_row_field(b, "stages", pi->stages) < 0 || proto_row_field(b, "abi", abi) < 0 ||
            proto_row_field(b, "path", pi->path) < 0 ||
            proto_row_field(b, "health", pi->healthy ? "ok" : "failed") < 0 ||
            proto_row_field(b, "reason", pi->reason) < 0 || proto_row_field(b, "order", order) < 0 ||
            proto_row_field(b, "options", pi->options) < 0)
                return -ENOMEM;
        return 0;
}

static void handle_plugins(struct manager *m, struct conn *c) {
        _cleanup_pbuf_ struct pbuf b = {0};
        int r;

        pbuf_init(&b);
        r = proto_result_begin(&b, PROTO_OK, "", (uint32_t)m->nplugins);
        for (size_t i = 0; r >= 0 && i < m->nplugins; i++)
                r = plugin_row(&b, m->conf, &m->plugins[i]);
        if (r < 0)
                reply_simple(c, PROTO_UNAVAILABLE, "could not build the answer");
        else
                reply_frame(c, &b);
}

int manager_reload(struct manager *m, char **errors) {
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
        if (!streq(conf->socket_path, m->conf->socket_path) || !streq(conf->state_dir, m->conf->state_dir))
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
        {PROTO_REQ_METRICS, PEER_ROOT, handle_metrics},
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

void dispatch(struct manager *m, struct conn *c) {
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
