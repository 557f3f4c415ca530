/* Workers: forked children that load the plugins and run one request's chain, one notification or
 * one logoff job, and report to the master through a pipe in wire frames. A crash or hang here
 * costs this request only. Also the probe: a child that loads and checks config + plugins. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "pginad.h"
#include "util.h"

#define WORKER_FD 3

/* ---- child side ---- */

static void worker_send(struct pbuf *b) {
        if (proto_frame_end(b) < 0)
                return;
        (void)write_all(WORKER_FD, b->data, b->len);
}

static void hook_plugin_begin(void *userdata, const char *plugin, const char *stage) {
        _cleanup_pbuf_ struct pbuf b = {0};

        pbuf_init(&b);
        if (proto_frame_begin(&b, PROTO_W_PLUGIN_BEGIN) < 0 || pbuf_put_str(&b, plugin) < 0 ||
            pbuf_put_str(&b, stage) < 0)
                return;
        worker_send(&b);
}

static void hook_progress(void *userdata, const char *text) {
        _cleanup_pbuf_ struct pbuf b = {0};

        pbuf_init(&b);
        if (proto_frame_begin(&b, PROTO_MSG_INFO) < 0 || pbuf_put_u8(&b, PROTO_INFO_PROGRESS) < 0 ||
            pbuf_put_str(&b, text) < 0)
                return;
        worker_send(&b);
}

static const char *yesno(bool b) { return b ? "yes" : "no"; }

/* A step's row: stage, plugin, result, message, retry, its duration ("ms") and the figures the
 * plugin reported ("metric:NAME" = value, pgina_ctx_metric): the master's metrics and log line. */
static int step_row(struct pbuf *b, const struct chain_step *s) {
        char ms[24], v[24], key[PGINA_METRIC_NAME_MAX + 8];
        int r;

        snprintf(ms, sizeof ms, "%lld", s->ms);
        if ((r = proto_row_begin(b, (uint32_t)(6 + s->metrics.n))) < 0 ||
            (r = proto_row_field(b, "stage", conf_stage_name(s->stage))) < 0 ||
            (r = proto_row_field(b, "plugin", s->plugin)) < 0 ||
            (r = proto_row_field(b, "result", chain_result_string(s->result))) < 0 ||
            (r = proto_row_field(b, "message", s->message)) < 0 ||
            (r = proto_row_field(b, "retry", chain_retry_string(s->retry))) < 0 ||
            (r = proto_row_field(b, "ms", ms)) < 0)
                return r;
        for (size_t i = 0; i < s->metrics.n; i++) {
                snprintf(key, sizeof key, "metric:%s", s->metrics.v[i].name);
                snprintf(v, sizeof v, "%llu", (unsigned long long)s->metrics.v[i].value);
                if ((r = proto_row_field(b, key, v)) < 0)
                        return r;
        }
        return 0;
}

/* Rows of a worker result: the steps, the verdict (stage=final), the record (proto.h rows). */
static void send_result(uint32_t status, const struct chain_run *run, const struct pgina_user *u,
                        const char *gateway_state) {
        _cleanup_pbuf_ struct pbuf b = {0};
        char groups[PROTO_STR_MAX] = "";
        size_t off = 0;

        for (size_t i = 0; u && i < u->ngroups; i++) {
                int k = snprintf(groups + off, sizeof groups - off, "%s%s", i ? "," : "", u->groups[i]);
                if (k < 0 || (size_t)k >= sizeof groups - off)
                        break;
                off += (size_t)k;
        }
        pbuf_init(&b);
        if (proto_result_begin(&b, status, run->message, (uint32_t)(1 + run->nsteps + (u ? 1 : 0))) < 0)
                return;
        for (size_t i = 0; i < run->nsteps; i++)
                if (step_row(&b, &run->steps[i]) < 0)
                        return;
        if (proto_row_begin(&b, 8) < 0 || proto_row_field(&b, "stage", "final") < 0 ||
            proto_row_field(&b, "result", status == PROTO_OK ? "success" : "failure") < 0 ||
            proto_row_field(&b, "message", run->message) < 0 ||
            proto_row_field(&b, "authenticated", yesno(run->authenticated)) < 0 ||
            proto_row_field(&b, "authorized", yesno(run->authorized)) < 0 ||
            proto_row_field(&b, "password_expired", yesno(run->password_expired)) < 0 ||
            proto_row_field(&b, "gateway", gateway_state) < 0 ||
            proto_row_field(&b, "groups", groups) < 0)
                return;
        if (u && user_to_row(u, &b) < 0)
                return;
        worker_send(&b);
}

static struct pgina_user *request_record(const struct request *req, bool with_password) {
        struct pgina_user *u = user_new(req->user);

        if (u && with_password && req->password)
                user_set_password(u, secret_dup(req->password));
        return u;
}

/* LOGIN (logon/unlock/credui) and SIMULATE: pGina's PerformLoginProcess. */
static void run_login(struct chain_env *env, const struct request *req) {
        _cleanup_user_ struct pgina_user *u = request_record(req, true);
        struct chain_run run = {0};
        bool gateway = req->scenario == PGINA_SCENARIO_LOGON ||
                       (req->scenario == PGINA_SCENARIO_SIMULATE && req->run_gateway);
        bool authorize = req->scenario != PGINA_SCENARIO_UNLOCK;
        const char *gw = "skipped";
        uint32_t status;

        if (!u)
                return;
        if (!chain_authenticate(env, u, &run))
                status = PROTO_AUTH_FAILED;
        else if (!streq(u->name, req->user) &&
                 (strchr(req->user, '@') == NULL || (req->scenario != PGINA_SCENARIO_LOGON &&
                                                     req->scenario != PGINA_SCENARIO_SIMULATE))) {
                /* A plugin named another account (ldap schema = ad: the entry's sAMAccountName).
                 * Only a logon as user@domain may become its account: an unlock or a credui logon
                 * is for the user asked (the session's, the one the caller names), and a user
                 * name stands for itself (a caller that keeps the PAM_USER it asked for would
                 * take another account's password for it). */
                log_notice("%s authenticated as the account %s: refused (%s)", req->user, u->name,
                           strchr(req->user, '@') ? "only a logon may name another account"
                                                  : "a user name must stay the account's name");
                free(run.message);
                run.message = strdup("Authentication failed");
                run.authenticated = false;
                status = PROTO_AUTH_FAILED;
        } else if (!valid_user_name(u->name)) {
                /* user@domain that no plugin named an account for */
                log_notice("logon name %s authenticated, but no plugin named its local account", u->name);
                free(run.message);
                run.message = strdup("Authentication failed: log on with your user name");
                run.authenticated = false;
                status = PROTO_AUTH_FAILED;
        } else if (authorize && !chain_authorize(env, u, &run))
                status = PROTO_DENIED;
        else if (gateway && !chain_gateway(env, u, &run)) {
                status = PROTO_GATEWAY_FAILED;
                gw = "no";
        } else {
                status = PROTO_OK;
                if (gateway)
                        gw = "yes";
        }
        if (!authorize)
                run.authorized = run.authenticated;
        user_set_password(u, NULL);
        send_result(status, &run, u, gw);
        chain_run_free(&run);
}

static void run_authorize(struct chain_env *env, const struct request *req) {
        _cleanup_user_ struct pgina_user *u = request_record(req, false);
        struct chain_run run = {0};

        if (!u)
                return;
        run.authenticated = true; /* by another PAM module */
        send_result(chain_authorize(env, u, &run) ? PROTO_OK : PROTO_DENIED, &run, u, "skipped");
        chain_run_free(&run);
}

static void run_change_password(struct chain_env *env, const struct request *req) {
        _cleanup_user_ struct pgina_user *u = request_record(req, false);
        struct chain_run run = {0};
        const char *old = req->password->len ? req->password->data : NULL;
        uint32_t status;

        if (!u)
                return;
        if (old) {
                /* Only the holder of the current password may change it. */
                user_set_password(u, secret_dup(req->password));
                if (!chain_authenticate(env, u, &run)) {
                        user_set_password(u, NULL);
                        send_result(PROTO_AUTH_FAILED, &run, u, "skipped");
                        chain_run_free(&run);
                        return;
                }
        }
        status = chain_change_password(env, u, old, req->new_password->data, &run) ? PROTO_OK
                                                                                   : PROTO_CHANGE_FAILED;
        user_set_password(u, NULL);
        send_result(status, &run, u, "skipped");
        chain_run_free(&run);
}

static void hook_print(void *userdata, const char *text) {
        _cleanup_pbuf_ struct pbuf b = {0};

        if (proto_frame_begin(&b, PROTO_MSG_INFO) < 0 || pbuf_put_u8(&b, PROTO_INFO_TEXT) < 0 ||
            pbuf_put_str(&b, text) < 0)
                return;
        worker_send(&b);
}

/* A plugin's admin command (pginactl plugin NAME ARGS, pginactl profile ...). */
static void run_admin(struct chain_env *env, const struct worker_spec *spec) {
        const struct request *req = spec->req;
        const struct loaded_plugin *lp = plugins_find(env->plugins, req->plugin);
        struct pgina_user *u = NULL;
        struct pgina_ctx ctx = {.conf = env->conf, .plugin = lp, .env = env};
        struct chain_run run = {0};
        uint32_t status = PROTO_OK;
        int r;

        env->hooks.print = hook_print;
        if (!lp || !lp->desc->admin) {
                run.message = strdup(lp ? "this plugin has no admin commands"
                                        : "no such plugin in the configuration");
                send_result(PROTO_NOT_FOUND, &run, NULL, "skipped");
                chain_run_free(&run);
                return;
        }
        if (req->user[0]) {
                u = spec->record ? spec->record : user_new(req->user);
                if (u && spec->password)
                        user_set_password(u, secret_dup(spec->password));
        }
        if (env->hooks.plugin_begin)
                env->hooks.plugin_begin(env->hooks.userdata, lp->name, "admin");
        r = lp->desc->admin(&ctx, u, (int)req->argc, (const char *const *)req->argv);
        if (r < 0)
                status = r == -ENOENT ? PROTO_NOT_FOUND : r == -EINVAL ? PROTO_BAD_REQUEST : PROTO_UNAVAILABLE;
        run.message = ctx.message ? strdup(ctx.message) : NULL;
        ctx_done(&ctx);
        if (u)
                user_set_password(u, NULL);
        send_result(status, &run, NULL, "skipped");
        chain_run_free(&run);
}

/* NSS: the first plugin (in authentication order) that knows the user answers. */
static void run_lookup(struct chain_env *env, const struct request *req) {
        _cleanup_user_ struct pgina_user *u = user_new(req->user);
        struct chain_run run = {0};
        uint32_t status = PROTO_NOT_FOUND;

        if (!u)
                return;
        if (!req->user[0])
                pgina_user_set_ids(u, req->id, -1);
        for (size_t i = 0; i < env->conf->norder[CONF_STAGE_AUTHENTICATION]; i++) {
                const struct loaded_plugin *lp =
                        plugins_find(env->plugins, env->conf->order[CONF_STAGE_AUTHENTICATION][i]);
                struct pgina_ctx ctx = {.conf = env->conf, .plugin = lp, .env = env, .run = &run};
                int r;

                if (!lp || !lp->desc->lookup)
                        continue;
                if (env->hooks.plugin_begin)
                        env->hooks.plugin_begin(env->hooks.userdata, lp->name, "lookup");
                r = lp->desc->lookup(&ctx, u);
                ctx_done(&ctx);
                /* root always comes from files: a directory never answers for uid/gid 0 */
                if (r > 0 && u->name[0] && u->uid > 0 && u->gid != 0) {
                        status = PROTO_OK;
                        break;
                }
                if (r < 0)
                        status = PROTO_UNAVAILABLE;
        }
        send_result(status, &run, status == PROTO_OK ? u : NULL, "skipped");
        chain_run_free(&run);
}

/* NSS groups: the first plugin (in authentication order) that knows the group answers. */
static void run_lookup_group(struct chain_env *env, const struct request *req) {
        _cleanup_group_ struct pgina_group *g = group_new(req->user, req->user[0] ? -1 : (int64_t)req->id);
        _cleanup_pbuf_ struct pbuf b = {0};
        uint32_t status = PROTO_NOT_FOUND;

        if (!g)
                return;
        for (size_t i = 0; i < env->conf->norder[CONF_STAGE_AUTHENTICATION]; i++) {
                const struct loaded_plugin *lp =
                        plugins_find(env->plugins, env->conf->order[CONF_STAGE_AUTHENTICATION][i]);
                struct chain_run run = {0};
                struct pgina_ctx ctx = {.conf = env->conf, .plugin = lp, .env = env, .run = &run};
                int r;

                if (!lp || !lp->desc->lookup_group)
                        continue;
                if (env->hooks.plugin_begin)
                        env->hooks.plugin_begin(env->hooks.userdata, lp->name, "lookup");
                r = lp->desc->lookup_group(&ctx, g);
                ctx_done(&ctx);
                /* the group asked for, as pgina_group_set() checked it (never gid 0) */
                if (r > 0 && g->name[0] && g->gid > 0 &&
                    (req->user[0] ? streq(g->name, req->user) : g->gid == (int64_t)req->id)) {
                        status = PROTO_OK;
                        break;
                }
                if (r < 0)
                        status = PROTO_UNAVAILABLE;
        }
        pbuf_init(&b);
        if (proto_result_begin(&b, status, "", status == PROTO_OK ? 1 : 0) < 0 ||
            (status == PROTO_OK && group_to_row(g, &b) < 0))
                return;
        worker_send(&b);
}

static void run_notify(struct chain_env *env, const struct worker_spec *spec) {
        struct chain_run run = {0};
        bool ok = true;

        /* The logon password, kept in pginad's memory only, for plugins that reach a share as
         * the user (pgSMB's credentials = user). */
        if (spec->password && !spec->record->password)
                user_set_password(spec->record, secret_dup(spec->password));
        /* pginad's word alone: a directory attribute of that name does not make a retry. */
        if (spec->kind == WORKER_JOB && spec->attempt > 0) {
                char n[16];
                snprintf(n, sizeof n, "%u", spec->attempt);
                (void)pgina_user_set(spec->record, PGINA_ATTR_LOGOFF_RETRY, n);
        } else
                (void)pgina_user_set(spec->record, PGINA_ATTR_LOGOFF_RETRY, NULL);
        for (size_t i = 0; i < spec->nevents; i++)
                if (!chain_notify(env, spec->events[i], spec->record, &run))
                        ok = false;
        user_set_password(spec->record, NULL);
        send_result(ok ? PROTO_OK : PROTO_UNAVAILABLE, &run, spec->record, "skipped");
        chain_run_free(&run);
}

static _Noreturn void worker_main(const struct worker_spec *spec) {
        struct plugin_set plugins;
        _cleanup_free_ char *errors = NULL;
        struct ctx_data data = {0};
        struct chain_env env = {
                .conf = spec->conf,
                .plugins = &plugins,
                .scenario = PGINA_SCENARIO_LOGON,
                .hooks = {.plugin_begin = hook_plugin_begin, .progress = hook_progress},
                .user_sessions = spec->user_sessions,
                .data = &data,
        };
        static char prefix[64];

        /* In the journal, pginad[PID] names the worker already. */
        snprintf(prefix, sizeof prefix, "worker[%d]", (int)getpid());
        if (log_to_stderr_only())
                log_set_prefix(prefix);
        if (plugins_load(spec->conf, &plugins, &errors) < 0 && errors)
                log_error("%s", errors);

        if (spec->kind == WORKER_REQUEST) {
                const struct request *req = spec->req;

                env.service = req->service;
                env.rhost = req->rhost;
                env.tty = req->tty;
                env.scenario = req->type == PROTO_REQ_SIMULATE ? PGINA_SCENARIO_SIMULATE
                                                               : (enum pgina_scenario)req->scenario;
                env.dry_run = req->type == PROTO_REQ_SIMULATE && !req->run_gateway;
                switch (req->type) {
                case PROTO_REQ_LOGIN:
                case PROTO_REQ_SIMULATE:
                        run_login(&env, req);
                        break;
                case PROTO_REQ_AUTHORIZE:
                        run_authorize(&env, req);
                        break;
                case PROTO_REQ_CHANGE_PASSWORD:
                        run_change_password(&env, req);
                        break;
                case PROTO_REQ_PLUGIN_ADMIN:
                        run_admin(&env, spec);
                        break;
                case PROTO_REQ_GETPWNAM:
                        run_lookup(&env, req);
                        break;
                case PROTO_REQ_GETGRNAM:
                        run_lookup_group(&env, req);
                        break;
                default:
                        break;
                }
        } else {
                env.notify_from = spec->notify_from;
                run_notify(&env, spec);
        }
        ctx_data_clear(&data); /* the end of the request: plugins' cleanups run */
        _exit(0);
}

/* The secrets of this one request, the only ones the worker gets: every other secret of the
 * master (cached sessions, pending logons) is zeros in the child (secret.h). */
static size_t worker_secrets(const struct worker_spec *spec, const struct secret *v[4]) {
        size_t n = 0;

        if (spec->req && spec->req->password)
                v[n++] = spec->req->password;
        if (spec->req && spec->req->new_password)
                v[n++] = spec->req->new_password;
        if (spec->password)
                v[n++] = spec->password;
        if (spec->record && spec->record->password)
                v[n++] = spec->record->password;
        return n;
}

static void worker_secrets_inherit(const struct secret *const *v, size_t n, bool inherit) {
        for (size_t i = 0; i < n; i++)
                (void)secret_inherit(v[i], inherit);
}

pid_t worker_spawn(const struct worker_spec *spec, int *fd) {
        const struct secret *secrets[4];
        size_t nsecrets = worker_secrets(spec, secrets);
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        for (size_t i = 0; i < nsecrets; i++) {
                int r = secret_inherit(secrets[i], true);
                if (r < 0) {
                        worker_secrets_inherit(secrets, i, false);
                        close(p[0]);
                        close(p[1]);
                        return r;
                }
        }
        pid = fork();
        /* Back to "not inherited" at once, on both sides: the next worker, and whatever this
         * one starts (a process as the user), must not get them. */
        worker_secrets_inherit(secrets, nsecrets, false);
        if (pid < 0) {
                int r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t all;
                struct rlimit no_core = {0, 0};

                /* The master's signal setup is not ours: default dispositions, nothing blocked. */
                for (int s = 1; s < NSIG; s++)
                        if (s != SIGKILL && s != SIGSTOP)
                                signal(s, SIG_DFL);
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void)setrlimit(RLIMIT_CORE, &no_core); /* a crash must not dump passwords */
                /* Under systemd fds 0-2 are taken, so syslog's socket is fd 3 = WORKER_FD: closed
                 * before the dup2 and opened again after, or every log line of the worker went
                 * into the result pipe and every result into the journal (a booted machine's
                 * logons all failed "exited (status 0)"; the foreground logs to stderr). */
                log_close_for_fork();
                if (dup2(p[1], WORKER_FD) < 0)
                        _exit(127);
                /* Processes a plugin starts must not inherit the result pipe. */
                (void)fcntl(WORKER_FD, F_SETFD, FD_CLOEXEC);
                close_range(WORKER_FD + 1, ~0U, 0);
                log_reopen();
                /* Its own process group: a timeout kills the worker and all it started. */
                (void)setpgid(0, 0);
                worker_main(spec);
        }
        close(p[1]);
        *fd = p[0];
        return pid;
}

/* ---- probe ---- */

void plugin_infos_free(struct plugin_info *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].version);
                free(v[i].description);
                free(v[i].stages);
                free(v[i].path);
                free(v[i].options);
                free(v[i].reason);
        }
        free(v);
}

static const char *option_type(enum pgina_option_type t) {
        static const char *const n[] = {"string", "bool", "int", "list"};
        return (unsigned)t < ELEMENTSOF(n) ? n[t] : "?";
}

static _Noreturn void probe_main(const struct conf *conf) {
        struct plugin_set set;
        _cleanup_free_ char *errors = NULL;
        _cleanup_pbuf_ struct pbuf b = {0};
        int r;

        r = plugins_load(conf, &set, &errors);
        if (conf_check_plugins(conf, &set, &errors) < 0)
                r = -EINVAL;
        pbuf_init(&b);
        if (proto_result_begin(&b, r < 0 ? PROTO_CONFIG_INVALID : PROTO_OK, errors,
                               (uint32_t)set.n) < 0)
                _exit(1);
        for (size_t i = 0; i < set.n; i++) {
                const struct pgina_plugin *d = set.v[i].desc;
                char stages[256], abi[16];
                _cleanup_free_ char *opts = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&opts, &len);

                for (const struct pgina_option *o = d->options; f && o && o->key; o++)
                        fprintf(f, "%s%s\t%s\t%s\t%s", o == d->options ? "" : "\n", o->key,
                                option_type(o->type), strempty(o->default_value), strempty(o->help));
                if (f)
                        fclose(f);
                stages_to_string(d->stages, stages, sizeof stages);
                snprintf(abi, sizeof abi, "%u", d->abi_version);
                if (proto_row_begin(&b, 7) < 0 || proto_row_field(&b, "name", d->name) < 0 ||
                    proto_row_field(&b, "version", d->version) < 0 ||
                    proto_row_field(&b, "description", d->description) < 0 ||
                    proto_row_field(&b, "stages", stages) < 0 || proto_row_field(&b, "abi", abi) < 0 ||
                    proto_row_field(&b, "path", set.v[i].path) < 0 ||
                    proto_row_field(&b, "options", opts ? opts : "") < 0)
                        _exit(1);
        }
        if (proto_frame_end(&b) < 0 || write_all(WORKER_FD, b.data, b.len) < 0)
                _exit(1);
        _exit(0);
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

int probe_run(const struct conf *conf, struct plugin_info **infos, size_t *n, char **errors) {
        _cleanup_close_ int fd = -1;
        _cleanup_pbuf_ struct pbuf buf = {0};
        struct proto_result res = {0};
        struct pbuf payload;
        uint16_t type;
        /* Real time, not the manager's clock: this bounds a blocking poll() at start and reload,
         * outside the event loop, and a fake clock cannot make a real wait end. */
        long long deadline = now_ms() + 15000;
        int p[2], status, r;
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                log_close_for_fork(); /* syslog's fd may be WORKER_FD (worker_spawn) */
                if (dup2(p[1], WORKER_FD) < 0)
                        _exit(127);
                (void)fcntl(WORKER_FD, F_SETFD, FD_CLOEXEC);
                close_range(WORKER_FD + 1, ~0U, 0);
                log_reopen();
                log_set_prefix("probe");
                probe_main(conf);
        }
        close(p[1]);
        fd = p[0];
        pbuf_init(&buf);
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                long long left = deadline - now_ms();
                ssize_t k;

                if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        conf_error(errors, conf->path, 0, "loading the plugins took over 15 s");
                        return -ETIMEDOUT;
                }
                k = pbuf_read_fd(&buf, fd, 16384);
                if (k == -EINTR || k == -EAGAIN)
                        continue;
                if (k <= 0 || buf.len > PROTO_FRAME_MAX + PROTO_HEADER_LEN)
                        break;
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
            proto_frame_open(buf.data, buf.len, &type, &payload) < 0 || type != PROTO_MSG_RESULT ||
            proto_result_parse(&payload, &res) < 0) {
                conf_error(errors, conf->path, 0,
                           "loading the plugins failed (probe process %s %d)",
                           WIFSIGNALED(status) ? "killed by signal" : "exited with",
                           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                return -EIO;
        }
        if (res.status != PROTO_OK) {
                free(*errors);
                *errors = dup_or_empty(res.message);
                proto_result_free(&res);
                return -EINVAL;
        }
        *infos = calloc(res.nrows ? res.nrows : 1, sizeof **infos);
        if (!*infos) {
                proto_result_free(&res);
                return -ENOMEM;
        }
        for (size_t i = 0; i < res.nrows; i++) {
                const struct proto_row *row = &res.rows[i];
                struct plugin_info *pi = &(*infos)[i];

                pi->name = dup_or_empty(proto_row_get(row, "name"));
                pi->version = dup_or_empty(proto_row_get(row, "version"));
                pi->description = dup_or_empty(proto_row_get(row, "description"));
                pi->stages = dup_or_empty(proto_row_get(row, "stages"));
                pi->path = dup_or_empty(proto_row_get(row, "path"));
                pi->options = dup_or_empty(proto_row_get(row, "options"));
                pi->reason = dup_or_empty("");
                pi->healthy = true;
        }
        *n = res.nrows;
        proto_result_free(&res);
        return 0;
}
