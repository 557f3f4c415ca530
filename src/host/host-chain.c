/* pGina's stage semantics (PluginDriver): who runs, in which order, and what the verdict is. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"
#include "util.h"

void chain_run_free(struct chain_run *run) {
        for (size_t i = 0; i < run->nsteps; i++) {
                free(run->steps[i].plugin);
                free(run->steps[i].message);
        }
        free(run->steps);
        free(run->message);
        memset(run, 0, sizeof *run);
}

const char *chain_result_string(int result) {
        return result > 0 ? "success" : result == 0 ? "failure" : "error";
}

const char *chain_retry_string(enum chain_retry r) {
        return r == CHAIN_RETRY_LATER ? "later" : r == CHAIN_RETRY_NOW ? "now" : "";
}

static void run_set_message(struct chain_run *run, const char *m) {
        char *n = m ? strdup(m) : NULL;
        free(run->message);
        run->message = n;
}

static int run_add_step(struct chain_run *run, enum conf_stage stage, const char *plugin,
                        int result, const char *message) {
        struct chain_step *n = realloc(run->steps, (run->nsteps + 1) * sizeof *n);

        if (!n)
                return -ENOMEM;
        run->steps = n;
        n = &run->steps[run->nsteps++];
        n->stage = stage;
        n->plugin = strdup(plugin);
        n->result = result;
        n->message = message ? strdup(message) : NULL;
        n->retry = CHAIN_RETRY_NONE;
        n->ms = 0;
        n->metrics.n = 0;
        return 0;
}

typedef int (*stage_call_fn)(struct pgina_ctx *ctx, struct pgina_user *u, void *arg);

/* Call one plugin for one stage; the step (result + message) is recorded in run. */
static int call_plugin(const struct chain_env *env, struct chain_run *run, enum conf_stage stage,
                       const struct loaded_plugin *lp, struct pgina_user *u, stage_call_fn fn,
                       void *arg, char **message, bool *password_expired) {
        struct pgina_ctx ctx = {.conf = env->conf, .plugin = lp, .env = env, .run = run};
        long long t0;
        int r;

        if (env->hooks.plugin_begin)
                env->hooks.plugin_begin(env->hooks.userdata, lp->name, conf_stage_name(stage));
        t0 = now_ms();
        r = fn(&ctx, u, arg);
        t0 = now_ms() - t0;
        if (r < 0)
                log_error_errno(r, "plugin %s failed in %s for user %s: %m%s%s", lp->name,
                                conf_stage_name(stage), u->name, ctx.message ? ": " : "",
                                strempty(ctx.message));
        else
                log_debug("plugin %s %s %s for user %s%s%s", lp->name, conf_stage_name(stage),
                          chain_result_string(r), u->name, ctx.message ? ": " : "",
                          strempty(ctx.message));
        /* A retry is asked for by a notification that did not succeed; "now" by any call. */
        if (ctx.retry == CHAIN_RETRY_LATER && (stage != CONF_STAGE_NOTIFICATION || r > 0))
                ctx.retry = CHAIN_RETRY_NONE;
        if (run_add_step(run, stage, lp->name, r, ctx.message) == 0) {
                struct chain_step *st = &run->steps[run->nsteps - 1];
                st->retry = ctx.retry;
                st->ms = t0;
                st->metrics = ctx.metrics;
        }
        if (message)
                *message = TAKE_PTR(ctx.message);
        if (password_expired)
                *password_expired = ctx.password_expired;
        ctx_done(&ctx);
        return r;
}

static const struct loaded_plugin *stage_plugin(const struct chain_env *env, enum conf_stage stage,
                                                size_t i) {
        return plugins_find(env->plugins, env->conf->order[stage][i]);
}

static int missing_plugin(struct chain_run *run, enum conf_stage stage, const char *name) {
        char m[256];

        snprintf(m, sizeof m, "plugin %s is not loaded", name);
        (void)run_add_step(run, stage, name, -ENOENT, m);
        run_set_message(run, m);
        return -ENOENT;
}

static int do_authenticate(struct pgina_ctx *ctx, struct pgina_user *u, void *arg) {
        return ctx->plugin->desc->authenticate ? ctx->plugin->desc->authenticate(ctx, u) : -ENOSYS;
}

int chain_authenticate(const struct chain_env *env, struct pgina_user *u, struct chain_run *run) {
        enum conf_stage st = CONF_STAGE_AUTHENTICATION;
        _cleanup_free_ char *fail_msg = NULL, *ok_msg = NULL;

        run->authenticated = false;
        if (env->conf->norder[st] == 0) {
                run_set_message(run, "no authentication plugin configured");
                return 0;
        }
        for (size_t i = 0; i < env->conf->norder[st]; i++) {
                const struct loaded_plugin *lp = stage_plugin(env, st, i);
                char *m = NULL;
                bool expired = false;
                int r;

                if (!lp) {
                        (void)missing_plugin(run, st, env->conf->order[st][i]);
                        continue;
                }
                r = call_plugin(env, run, st, lp, u, do_authenticate, NULL, &m, &expired);
                if (r > 0) {
                        run->authenticated = true;
                        run->password_expired |= expired;
                        if (m && !ok_msg)
                                ok_msg = TAKE_PTR(m);
                } else if (m) {
                        free(fail_msg);
                        fail_msg = TAKE_PTR(m);
                } else if (r < 0) {
                        free(fail_msg);
                        /* out of memory: *strp is undefined then; the generic message */
                        if (asprintf(&fail_msg, "plugin %s failed: %s", lp->name, strerror(-r)) < 0)
                                fail_msg = NULL;
                }
                free(m);
        }
        if (run->authenticated)
                run_set_message(run, ok_msg);
        else
                run_set_message(run, fail_msg ? fail_msg : "Authentication failed");
        return run->authenticated;
}

static int do_authorize(struct pgina_ctx *ctx, struct pgina_user *u, void *arg) {
        return ctx->plugin->desc->authorize ? ctx->plugin->desc->authorize(ctx, u) : -ENOSYS;
}

static int do_gateway(struct pgina_ctx *ctx, struct pgina_user *u, void *arg) {
        return ctx->plugin->desc->gateway ? ctx->plugin->desc->gateway(ctx, u) : -ENOSYS;
}

/* Authorization and gateway share a rule: in order, the first failure stops the stage. */
static int chain_all_must_pass(const struct chain_env *env, enum conf_stage st,
                               struct pgina_user *u, struct chain_run *run, stage_call_fn fn,
                               const char *default_fail) {
        for (size_t i = 0; i < env->conf->norder[st]; i++) {
                const struct loaded_plugin *lp = stage_plugin(env, st, i);
                _cleanup_free_ char *m = NULL;
                int r;

                if (!lp) {
                        (void)missing_plugin(run, st, env->conf->order[st][i]);
                        return 0;
                }
                r = call_plugin(env, run, st, lp, u, fn, NULL, &m, NULL);
                if (r <= 0) {
                        if (m)
                                run_set_message(run, m);
                        else {
                                char buf[512];
                                snprintf(buf, sizeof buf, "%s (plugin %s%s%s)", default_fail,
                                         lp->name, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
                                run_set_message(run, buf);
                        }
                        return 0;
                }
                if (m)
                        run_set_message(run, m);
        }
        return 1;
}

int chain_authorize(const struct chain_env *env, struct pgina_user *u, struct chain_run *run) {
        run->authorized = chain_all_must_pass(env, CONF_STAGE_AUTHORIZATION, u, run, do_authorize,
                                              "Authorization denied") > 0;
        return run->authorized;
}

int chain_gateway(const struct chain_env *env, struct pgina_user *u, struct chain_run *run) {
        run->gateway_ok = chain_all_must_pass(env, CONF_STAGE_GATEWAY, u, run, do_gateway,
                                              "Logon could not be completed") > 0;
        return run->gateway_ok;
}

static int do_notify(struct pgina_ctx *ctx, struct pgina_user *u, void *arg) {
        enum pgina_event ev = *(enum pgina_event *)arg;
        return ctx->plugin->desc->notify ? ctx->plugin->desc->notify(ctx, ev, u) : -ENOSYS;
}

int chain_notify(const struct chain_env *env, enum pgina_event ev, struct pgina_user *u,
                 struct chain_run *run) {
        enum conf_stage st = CONF_STAGE_NOTIFICATION;
        bool all_ok = true;

        size_t from = 0;

        if (env->notify_from) {
                while (from < env->conf->norder[st] && !streq(env->conf->order[st][from], env->notify_from))
                        from++;
                if (from == env->conf->norder[st])
                        log_warning("plugin %s asked to retry the logoff work of %s but is no longer in "
                                    "the notification order: nothing to retry", env->notify_from, u->name);
        }
        for (size_t i = from; i < env->conf->norder[st]; i++) {
                const struct loaded_plugin *lp = stage_plugin(env, st, i);

                if (!lp) {
                        (void)missing_plugin(run, st, env->conf->order[st][i]);
                        all_ok = false;
                        continue;
                }
                /* Results are logged, never acted upon: a failing plugin does not stop the next. */
                char *m = NULL;
                int r = call_plugin(env, run, st, lp, u, do_notify, &ev, &m, NULL);
                /* Only LOGOFF work is retried (a retry runs LOGOFF alone). */
                if (ev != PGINA_EVENT_LOGOFF && run->nsteps && run->steps[run->nsteps - 1].retry == CHAIN_RETRY_LATER)
                        run->steps[run->nsteps - 1].retry = CHAIN_RETRY_NONE;
                if (r <= 0) {
                        char buf[512];
                        all_ok = false;
                        snprintf(buf, sizeof buf, "%s: %s", lp->name,
                                 m ? m : r < 0 ? strerror(-r) : "failed");
                        run_set_message(run, buf);
                }
                free(m);
        }
        return all_ok;
}

struct change_args {
        const char *old_pw, *new_pw;
};

static int do_change(struct pgina_ctx *ctx, struct pgina_user *u, void *arg) {
        struct change_args *a = arg;
        return ctx->plugin->desc->change_password
                       ? ctx->plugin->desc->change_password(ctx, u, a->old_pw, a->new_pw)
                       : -ENOSYS;
}

int chain_change_password(const struct chain_env *env, struct pgina_user *u, const char *old_pw,
                          const char *new_pw, struct chain_run *run) {
        enum conf_stage st = CONF_STAGE_CHANGE_PASSWORD;
        struct change_args fwd = {old_pw, new_pw};

        if (env->conf->norder[st] == 0) {
                run_set_message(run, "no change_password plugin configured");
                return 0;
        }
        for (size_t i = 0; i < env->conf->norder[st]; i++) {
                const struct loaded_plugin *lp = stage_plugin(env, st, i);
                _cleanup_free_ char *m = NULL;
                int r;

                if (!lp) {
                        (void)missing_plugin(run, st, env->conf->order[st][i]);
                        r = -ENOENT;
                } else
                        r = call_plugin(env, run, st, lp, u, do_change, &fwd, &m, NULL);
                if (r > 0)
                        continue;
                if (m)
                        run_set_message(run, m);
                else if (lp) {
                        char buf[512];
                        snprintf(buf, sizeof buf, "Password change failed (plugin %s%s%s)",
                                 lp->name, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
                        run_set_message(run, buf);
                }
                /* Put the old password back where it was already changed, newest first. Without
                 * an old password (root reset) there is nothing to restore. */
                for (size_t k = i; k > 0 && old_pw; k--) {
                        const struct loaded_plugin *prev = stage_plugin(env, st, k - 1);
                        struct change_args back = {new_pw, old_pw};
                        int rr;

                        if (!prev)
                                continue;
                        rr = call_plugin(env, run, st, prev, u, do_change, &back, NULL, NULL);
                        if (rr <= 0)
                                log_error("could not restore the old password of %s in plugin %s",
                                          u->name, prev->name);
                        else
                                log_notice("restored the old password of %s in plugin %s",
                                           u->name, prev->name);
                }
                return 0;
        }
        return 1;
}
