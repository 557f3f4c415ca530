/* Per-request plugin data (pgina_ctx_set_data): what a plugin keeps from one call of a request to
 * the next, in the request's own list rather than in a static of the plugin. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "util.h"

static struct ctx_data_entry *data_find(const struct ctx_data *d, const char *plugin,
                                        const char *name) {
        for (size_t i = 0; d && i < d->n; i++)
                if (streq(d->v[i].plugin, plugin) && streq(d->v[i].name, name))
                        return &d->v[i];
        return NULL;
}

static void entry_release(struct ctx_data_entry *e) {
        if (e->cleanup && e->data)
                e->cleanup(e->data);
        e->data = NULL;
        e->cleanup = NULL;
}

static void entry_remove(struct ctx_data *d, struct ctx_data_entry *e) {
        entry_release(e);
        free(e->plugin);
        free(e->name);
        *e = d->v[--d->n];
}

int pgina_ctx_set_data(struct pgina_ctx *ctx, const char *name, void *data,
                       void (*cleanup)(void *data)) {
        struct ctx_data *d = ctx->env ? ctx->env->data : NULL;
        struct ctx_data_entry *e, *v;

        if (!name)
                return -EINVAL;
        if (!d)
                return -EOPNOTSUPP;
        e = data_find(d, ctx->plugin->name, name);
        if (e && !data) {
                entry_remove(d, e);
                return 0;
        }
        if (e) {
                entry_release(e);
                e->data = data;
                e->cleanup = cleanup;
                return 0;
        }
        if (!data)
                return 0;
        v = realloc(d->v, (d->n + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        d->v = v;
        e = &v[d->n];
        *e = (struct ctx_data_entry){.plugin = strdup(ctx->plugin->name), .name = strdup(name),
                                     .data = data, .cleanup = cleanup};
        if (!e->plugin || !e->name) {
                free(e->plugin);
                free(e->name);
                return -ENOMEM;
        }
        d->n++;
        return 0;
}

void *pgina_ctx_get_data(const struct pgina_ctx *ctx, const char *name) {
        const struct ctx_data_entry *e = data_find(ctx->env ? ctx->env->data : NULL,
                                                   ctx->plugin->name, name ? name : "");

        return e ? e->data : NULL;
}

void ctx_data_clear(struct ctx_data *d) {
        while (d->n > 0)
                entry_remove(d, &d->v[d->n - 1]);
        free(d->v);
        d->v = NULL;
}
