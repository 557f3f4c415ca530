/* Finding, checking and dlopen()ing plugins, and checking their config sections. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"
#include "util.h"

void stages_to_string(uint32_t stages, char *buf, size_t len) {
        size_t off = 0;

        buf[0] = 0;
        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                if (stages & conf_stage_bit((enum conf_stage)s)) {
                        int k = snprintf(buf + off, len - off, "%s%s", off ? "," : "",
                                         conf_stage_name((enum conf_stage)s));
                        if (k < 0 || (size_t)k >= len - off)
                                return;
                        off += (size_t)k;
                }
}

/* A plugin file runs as root: it and its directory must be root's and not writable by others. */
static int check_trusted(const char *path, const char *what, const char *conf_path, unsigned line,
                         char **errors) {
        struct stat st;

        if (lstat(path, &st) < 0) {
                int r = -errno;
                conf_error(errors, conf_path, line, "%s %s: %s", what, path, strerror(-r));
                return r;
        }
        if (S_ISLNK(st.st_mode) && stat(path, &st) < 0) {
                conf_error(errors, conf_path, line, "%s %s: dangling symlink", what, path);
                return -ENOENT;
        }
        if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
                conf_error(errors, conf_path, line,
                           "refusing %s %s: must be owned by root and not writable by group or "
                           "others (owner uid %u, mode %04o)",
                           what, path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        return 0;
}

/* The line that brought plugin `name` in: its [order] entry, else its own section. */
static unsigned plugin_ref_line(const struct conf *conf, const char *name) {
        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                for (size_t i = 0; i < conf->norder[s]; i++)
                        if (streq(conf->order[s][i], name)) {
                                const struct conf_entry *e = conf_find(conf, "order", conf_stage_name(s));
                                if (e)
                                        return e->line;
                        }
        for (size_t i = 0; i < conf->nentries; i++)
                if (streq(conf->entries[i].section, name))
                        return conf->entries[i].line;
        return 0;
}

static int plugin_open(const struct conf *conf, const char *name, struct loaded_plugin *lp,
                       char **errors) {
        unsigned line = plugin_ref_line(conf, name);
        char path[PATH_MAX];
        const struct pgina_plugin *desc;
        void *dl;
        int r;

        if (snprintf(path, sizeof path, "%s/%s.so", conf->plugin_dir, name) >= (int)sizeof path)
                return -ENAMETOOLONG;
        if (access(path, F_OK) < 0) {
                conf_error(errors, conf->path, line, "plugin '%s' not found: no file %s", name, path);
                return -ENOENT;
        }
        if ((r = check_trusted(conf->plugin_dir, "plugin directory", conf->path, line, errors)) < 0 ||
            (r = check_trusted(path, "plugin", conf->path, line, errors)) < 0)
                return r;
        dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                conf_error(errors, conf->path, line, "plugin '%s': cannot load %s: %s", name, path,
                           dlerror());
                return -ENOEXEC;
        }
        desc = dlsym(dl, PGINA_PLUGIN_SYMBOL);
        if (!desc) {
                conf_error(errors, conf->path, line, "plugin '%s': %s exports no %s", name, path,
                           PGINA_PLUGIN_SYMBOL);
                dlclose(dl);
                return -ENOEXEC;
        }
        if (desc->abi_version != PGINA_PLUGIN_ABI_VERSION) {
                conf_error(errors, conf->path, line,
                           "plugin '%s': %s was built for plugin ABI %u, pginad speaks ABI %u", name,
                           path, desc->abi_version, PGINA_PLUGIN_ABI_VERSION);
                dlclose(dl);
                return -ENOEXEC;
        }
        if (!desc->name || !streq(desc->name, name)) {
                conf_error(errors, conf->path, line, "plugin file %s calls itself '%s', expected '%s'",
                           path, strempty(desc->name), name);
                dlclose(dl);
                return -ENOEXEC;
        }
        lp->name = strdup(name);
        lp->path = strdup(path);
        lp->dl = dl;
        lp->desc = desc;
        if (!lp->name || !lp->path) {
                free(lp->name);
                free(lp->path);
                dlclose(dl);
                return -ENOMEM;
        }
        return 0;
}

int plugins_load(const struct conf *conf, struct plugin_set *set, char **errors) {
        char **names = NULL;
        size_t n = conf_plugin_names(conf, &names);
        int ret = 0;

        memset(set, 0, sizeof *set);
        set->v = calloc(n ? n : 1, sizeof *set->v);
        if (!set->v)
                ret = -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (set->v) {
                        int r = plugin_open(conf, names[i], &set->v[set->n], errors);
                        if (r < 0)
                                ret = -EINVAL;
                        else
                                set->n++;
                }
                free(names[i]);
        }
        free(names);
        return ret;
}

void plugins_unload(struct plugin_set *set) {
        for (size_t i = 0; i < set->n; i++) {
                /* dlclose is skipped on purpose: a plugin's destructors or threads may still run */
                free(set->v[i].name);
                free(set->v[i].path);
        }
        free(set->v);
        memset(set, 0, sizeof *set);
}

const struct loaded_plugin *plugins_find(const struct plugin_set *set, const char *name) {
        for (size_t i = 0; i < set->n; i++)
                if (streq(set->v[i].name, name))
                        return &set->v[i];
        return NULL;
}

static const char *option_type_name(enum pgina_option_type t) {
        switch (t) {
        case PGINA_OPT_STRING: return "string";
        case PGINA_OPT_BOOL: return "boolean";
        case PGINA_OPT_INT: return "integer";
        case PGINA_OPT_LIST: return "list";
        }
        return "?";
}

static bool option_value_ok(enum pgina_option_type t, const char *v) {
        char *end;

        switch (t) {
        case PGINA_OPT_BOOL:
                return parse_bool(v) >= 0;
        case PGINA_OPT_INT:
                errno = 0;
                (void)strtoll(v, &end, 10);
                return !errno && end != v && !*end && v[0] != '-';
        default:
                return true;
        }
}

static void check_plugin_section(const struct conf *conf, const struct loaded_plugin *lp,
                                 char **errors) {
        for (size_t i = 0; i < conf->nentries; i++) {
                const struct conf_entry *e = &conf->entries[i];
                const struct pgina_option *o;

                if (!streq(e->section, lp->name))
                        continue;
                for (o = lp->desc->options; o && o->key; o++)
                        if (streq(o->key, e->key))
                                break;
                if (!o || !o->key) {
                        conf_error(errors, conf->path, e->line,
                                   "unknown key '%s' in [%s] (pginactl plugins -v lists the keys)",
                                   e->key, lp->name);
                        continue;
                }
                if (!option_value_ok(o->type, e->value))
                        conf_error(errors, conf->path, e->line, "%s.%s must be a %s, not '%s'",
                                   lp->name, e->key, option_type_name(o->type), e->value);
        }
}

static ssize_t order_index(const struct conf *conf, enum conf_stage s, const char *name) {
        for (size_t i = 0; i < conf->norder[s]; i++)
                if (streq(conf->order[s][i], name))
                        return (ssize_t)i;
        return -1;
}

/* The one ordering pGina's own documentation makes mandatory, between two plugins pgina ships:
 * a roaming home must be saved (pgsmb's logoff) before it is removed (localmachine's
 * logoff_action = remove), or every logoff deletes the user's work. A plugin cannot see another
 * plugin's section or the [order], so the core checks it. */
static void check_profile_order(const struct conf *conf, char **errors) {
        const struct conf_entry *action = conf_find(conf, "localmachine", "logoff_action");
        const struct conf_entry *line = conf_find(conf, "order", conf_stage_name(CONF_STAGE_NOTIFICATION));
        ssize_t lm = order_index(conf, CONF_STAGE_NOTIFICATION, "localmachine");
        ssize_t smb = order_index(conf, CONF_STAGE_NOTIFICATION, "pgsmb");
        bool roaming = order_index(conf, CONF_STAGE_GATEWAY, "pgsmb") >= 0 || smb >= 0;

        if (!action || !streq(action->value, "remove") || lm < 0 || !roaming)
                return;
        if (smb < 0)
                conf_error(errors, conf->path, line ? line->line : action->line,
                           "[order] notification runs localmachine without pgsmb while [localmachine] "
                           "logoff_action = remove (line %u): every roaming home would be removed at logoff "
                           "without being saved; add pgsmb before localmachine", action->line);
        else if (lm < smb)
                conf_error(errors, conf->path, line ? line->line : action->line,
                           "[order] notification runs localmachine before pgsmb while [localmachine] "
                           "logoff_action = remove (line %u): the home would be removed before it is saved; "
                           "put pgsmb first", action->line);
}

int conf_check_plugins(const struct conf *conf, const struct plugin_set *set, char **errors) {
        size_t before_len = *errors ? strlen(*errors) : 0;

        check_profile_order(conf, errors);

        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                for (size_t i = 0; i < conf->norder[s]; i++) {
                        const struct loaded_plugin *lp = plugins_find(set, conf->order[s][i]);
                        const struct conf_entry *e = conf_find(conf, "order", conf_stage_name(s));

                        if (lp && !(lp->desc->stages & conf_stage_bit((enum conf_stage)s)))
                                conf_error(errors, conf->path, e ? e->line : 0,
                                           "plugin '%s' does not implement the %s stage", lp->name,
                                           conf_stage_name((enum conf_stage)s));
                }
        for (size_t i = 0; i < set->n; i++) {
                const struct loaded_plugin *lp = &set->v[i];
                size_t mark = *errors ? strlen(*errors) : 0;

                check_plugin_section(conf, lp, errors);
                if ((*errors ? strlen(*errors) : 0) == mark && lp->desc->check_config) {
                        struct chain_env env = {.conf = conf, .plugins = set,
                                                .scenario = PGINA_SCENARIO_SIMULATE, .dry_run = true};
                        struct pgina_ctx ctx = {.conf = conf, .plugin = lp, .env = &env};

                        if (lp->desc->check_config(&ctx) < 0) {
                                const struct conf_entry *e = NULL;
                                for (size_t k = 0; k < conf->nentries && !e; k++)
                                        if (streq(conf->entries[k].section, lp->name))
                                                e = &conf->entries[k];
                                conf_error(errors, conf->path, e ? e->line : 0, "[%s]: %s", lp->name,
                                           ctx.message ? ctx.message : "invalid configuration");
                        }
                        ctx_done(&ctx);
                }
        }
        return (*errors ? strlen(*errors) : 0) != before_len ? -EINVAL : 0;
}
