/* The call context handed to plugins: their config, messages, progress, logging, chain state. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"
#include "log.h"
#include "util.h"

void ctx_done(struct pgina_ctx *ctx) {
        free(ctx->message);
        free(ctx->state_dir);
        ctx->message = ctx->state_dir = NULL;
}

const char *pgina_ctx_plugin(const struct pgina_ctx *ctx) { return ctx->plugin->name; }
enum pgina_scenario pgina_ctx_scenario(const struct pgina_ctx *ctx) { return ctx->env->scenario; }
const char *pgina_ctx_service(const struct pgina_ctx *ctx) { return strempty(ctx->env->service); }
const char *pgina_ctx_rhost(const struct pgina_ctx *ctx) { return strempty(ctx->env->rhost); }
const char *pgina_ctx_tty(const struct pgina_ctx *ctx) { return strempty(ctx->env->tty); }
bool pgina_ctx_dry_run(const struct pgina_ctx *ctx) { return ctx->env->dry_run; }
unsigned pgina_ctx_user_sessions(const struct pgina_ctx *ctx) { return ctx->env->user_sessions; }

const char *pgina_ctx_state_dir(const struct pgina_ctx *ctx) {
        struct pgina_ctx *c = (struct pgina_ctx *)ctx; /* cache only */
        char path[PATH_MAX];

        if (c->state_dir)
                return c->state_dir;
        snprintf(path, sizeof path, "%s/plugins", ctx->conf->state_dir);
        (void)mkdir(ctx->conf->state_dir, 0700);
        (void)mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/plugins/%s", ctx->conf->state_dir, ctx->plugin->name);
        (void)mkdir(path, 0700);
        c->state_dir = strdup(path);
        return c->state_dir ? c->state_dir : "/nonexistent";
}

bool pgina_ctx_authenticated(const struct pgina_ctx *ctx) {
        const struct chain_run *run = ctx->run;

        for (size_t i = 0; run && i < run->nsteps; i++)
                if (run->steps[i].stage == CONF_STAGE_AUTHENTICATION && run->steps[i].result > 0)
                        return true;
        return false;
}

bool pgina_ctx_authenticated_by(const struct pgina_ctx *ctx, const char *name) {
        const struct chain_run *run = ctx->run;

        for (size_t i = 0; run && name && i < run->nsteps; i++)
                if (run->steps[i].stage == CONF_STAGE_AUTHENTICATION && run->steps[i].result > 0 &&
                    streq(run->steps[i].plugin, name))
                        return true;
        return false;
}

static const struct pgina_option *option_find(const struct pgina_ctx *ctx, const char *key) {
        const struct pgina_option *o = ctx->plugin->desc->options;

        for (; o && o->key; o++)
                if (streq(o->key, key))
                        return o;
        return NULL;
}

const char *pgina_conf_get(const struct pgina_ctx *ctx, const char *key) {
        const struct conf_entry *e = conf_find(ctx->conf, ctx->plugin->name, key);
        const struct pgina_option *o;

        if (e)
                return e->value;
        o = option_find(ctx, key);
        return o ? o->default_value : NULL;
}

void pgina_conf_warn(const struct pgina_ctx *ctx, const char *key, const char *fmt, ...) {
        const struct conf_entry *e = conf_find(ctx->conf, ctx->plugin->name, key);
        char line[1024], where[32] = "";
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (e)
                snprintf(where, sizeof where, "%u:", e->line);
        log_internal(LOG_WARNING, 0, "%s:%s warning: [%s] %s: %s", ctx->conf->path, where, ctx->plugin->name,
                     key, line);
}

bool pgina_conf_bool(const struct pgina_ctx *ctx, const char *key) {
        return parse_bool(pgina_conf_get(ctx, key)) == 1;
}

long long pgina_conf_int(const struct pgina_ctx *ctx, const char *key) {
        const char *v = pgina_conf_get(ctx, key);
        return v ? strtoll(v, NULL, 10) : 0;
}

/* Word i of a blank-separated list (commas are data: DNs hold them); returns the count. */
static size_t list_word(const char *v, size_t want, const char **start, size_t *len) {
        size_t n = 0;

        while (v && *v) {
                size_t k;

                v += strspn(v, " \t");
                if (!*v)
                        break;
                k = strcspn(v, " \t");
                if (n == want && start) {
                        *start = v;
                        *len = k;
                }
                n++;
                v += k;
        }
        return n;
}

static const struct conf_entry *sub_entry(const struct pgina_ctx *ctx, const char *sub, size_t want,
                                          size_t *count) {
        char section[160];
        size_t n = 0;
        const struct conf_entry *hit = NULL;

        snprintf(section, sizeof section, "%s.%s", ctx->plugin->name, sub);
        for (size_t i = 0; i < ctx->conf->nentries; i++)
                if (streq(ctx->conf->entries[i].section, section)) {
                        if (n == want)
                                hit = &ctx->conf->entries[i];
                        n++;
                }
        if (count)
                *count = n;
        return hit;
}

size_t pgina_conf_sub_len(const struct pgina_ctx *ctx, const char *sub) {
        size_t n = 0;
        (void)sub_entry(ctx, sub, SIZE_MAX, &n);
        return n;
}

const char *pgina_conf_sub_key(const struct pgina_ctx *ctx, const char *sub, size_t i) {
        const struct conf_entry *e = sub_entry(ctx, sub, i, NULL);
        return e ? e->key : NULL;
}

const char *pgina_conf_sub_value(const struct pgina_ctx *ctx, const char *sub, size_t i) {
        const struct conf_entry *e = sub_entry(ctx, sub, i, NULL);
        return e ? e->value : NULL;
}

size_t pgina_conf_list_len(const struct pgina_ctx *ctx, const char *key) {
        return list_word(pgina_conf_get(ctx, key), SIZE_MAX, NULL, NULL);
}

const char *pgina_conf_list_item(const struct pgina_ctx *ctx, const char *key, size_t i) {
        static __thread char buf[PGINA_VALUE_MAX + 1];
        const char *start = NULL;
        size_t len = 0;

        if (i >= list_word(pgina_conf_get(ctx, key), i, &start, &len) || !start)
                return NULL;
        snprintf(buf, sizeof buf, "%.*s", (int)len, start);
        return buf;
}

void pgina_ctx_message(struct pgina_ctx *ctx, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        if (!m)
                return;
        free(ctx->message);
        ctx->message = m;
}

void pgina_ctx_password_expired(struct pgina_ctx *ctx) { ctx->password_expired = true; }

void pgina_ctx_retry_later(struct pgina_ctx *ctx) { ctx->retry = CHAIN_RETRY_LATER; }

void pgina_ctx_retry_now(struct pgina_ctx *ctx) {
        if (ctx->retry == CHAIN_RETRY_NONE)
                ctx->retry = CHAIN_RETRY_NOW;
}

/* A bounded table per call: a plugin cannot grow pginad's memory through it. */
void pgina_ctx_metric(struct pgina_ctx *ctx, const char *name, uint64_t value) {
        struct chain_metrics *m = &ctx->metrics;

        if (!name || strlen(name) > PGINA_METRIC_NAME_MAX || !valid_plugin_name(name))
                return;
        for (size_t i = 0; i < m->n; i++)
                if (streq(m->v[i].name, name)) {
                        m->v[i].value += value;
                        return;
                }
        if (m->n == ELEMENTSOF(m->v))
                return;
        snprintf(m->v[m->n].name, sizeof m->v[m->n].name, "%s", name);
        m->v[m->n++].value = value;
}

void pgina_ctx_progress(struct pgina_ctx *ctx, const char *fmt, ...) {
        char text[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (ctx->env->hooks.progress)
                ctx->env->hooks.progress(ctx->env->hooks.userdata, text);
}

void pgina_ctx_print(struct pgina_ctx *ctx, const char *fmt, ...) {
        char text[PROTO_STR_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (ctx->env->hooks.print)
                ctx->env->hooks.print(ctx->env->hooks.userdata, text);
}

void pgina_log(const struct pgina_ctx *ctx, int priority, const char *fmt, ...) {
        char line[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        log_internal(priority & 7, 0, "%s: %s", ctx->plugin->name, line);
}
