/* The host side of the plugin ABI: the user record, the call context, the plugin loader and the
 * stage semantics. This code runs plugin code, so in pginad it runs only in forked workers
 * (pginad-worker.c); pginactl uses it for `config check`. */
#pragma once

#include <pgina/plugin.h>

#include "config.h"
#include "proto.h"
#include "secret.h"

/* ---- user record (host-record.c) ---- */
struct pgina_user {
        char *name;
        struct secret *password; /* NULL when the call has none */
        size_t nattrs;
        char **attr_keys;
        char **attr_values;
        size_t ngroups;
        char **groups;
        int64_t uid, gid;
};

struct pgina_user *user_new(const char *name);
void user_free(struct pgina_user *u);
static inline void user_freep(struct pgina_user **u) {
        if (*u)
                user_free(*u);
}
#define _cleanup_user_ __attribute__((cleanup(user_freep)))
void user_set_password(struct pgina_user *u, struct secret *pw); /* takes ownership */
/* As one result row: "user", "uid", "gid", "attr:KEY", "group" (repeated). Never the password. */
int user_to_row(const struct pgina_user *u, struct pbuf *b);
int user_from_row(const struct proto_row *row, struct pgina_user **ret);

/* ---- a directory's group (host-group.c) ---- */
struct pgina_group {
        char *name; /* "" while asked by gid */
        int64_t gid; /* -1 while asked by name */
        size_t nmembers;
        char **members;
};

struct pgina_group *group_new(const char *name, int64_t gid);
void group_free(struct pgina_group *g);
static inline void group_freep(struct pgina_group **g) {
        if (*g)
                group_free(*g);
}
#define _cleanup_group_ __attribute__((cleanup(group_freep)))
/* As one result row: "group", "gid", "member" (repeated): the row libnss_pgina reads. */
int group_to_row(const struct pgina_group *g, struct pbuf *b);

/* ---- loaded plugins (host-loader.c) ---- */
struct loaded_plugin {
        char *name;
        char *path;
        void *dl;
        const struct pgina_plugin *desc;
};

struct plugin_set {
        struct loaded_plugin *v;
        size_t n;
};

/* Load every plugin the config names (conf_plugin_names) from conf->plugin_dir: file
 * <plugin_dir>/<name>.so, root-owned, not group/other-writable, dlopen(RTLD_NOW|RTLD_LOCAL), ABI
 * checked. Problems are appended to *errors; returns -EINVAL if any plugin failed to load. The
 * plugins that loaded are in *set either way. */
int plugins_load(const struct conf *conf, struct plugin_set *set, char **errors);
void plugins_unload(struct plugin_set *set);
const struct loaded_plugin *plugins_find(const struct plugin_set *set, const char *name);
/* Check [order] entries against the stages each plugin declares, every key of each plugin's
 * section against its declared options (unknown key, wrong type: FILE:LINE), then each plugin's
 * check_config. Returns -EINVAL with *errors filled when anything is wrong. */
int conf_check_plugins(const struct conf *conf, const struct plugin_set *set, char **errors);
/* "authentication,gateway" style list of a stage mask. */
void stages_to_string(uint32_t stages, char *buf, size_t len);

/* ---- call context (host-ctx.c) ---- */
/* Per-request plugin data (pgina_ctx_set_data): one list per request, owned by who runs it. */
struct ctx_data_entry {
        char *plugin, *name;
        void *data;
        void (*cleanup)(void *data);
};
struct ctx_data {
        struct ctx_data_entry *v;
        size_t n;
};
void ctx_data_clear(struct ctx_data *d); /* runs every cleanup, at the end of the request */

struct chain_env;
/* What a plugin said about retries in its call (chain_step.retry). */
enum chain_retry {
        CHAIN_RETRY_NONE = 0,
        CHAIN_RETRY_LATER, /* its LOGOFF work failed for now: run it again later (from this plugin) */
        CHAIN_RETRY_NOW, /* what its pending retries wait for works again: run them now */
};
const char *chain_retry_string(enum chain_retry r); /* "", "later", "now" */
/* What a plugin reported with pgina_ctx_metric in one call (chain_step.metrics). */
struct chain_metric {
        char name[PGINA_METRIC_NAME_MAX + 1];
        uint64_t value;
};
struct chain_metrics {
        struct chain_metric v[PGINA_METRICS_MAX];
        size_t n;
};
struct pgina_ctx {
        const struct conf *conf;
        const struct loaded_plugin *plugin;
        const struct chain_env *env;
        const struct chain_run *run;
        char *message;
        char *state_dir; /* computed on first use */
        bool password_expired; /* pgina_ctx_password_expired */
        enum chain_retry retry; /* pgina_ctx_retry_later / pgina_ctx_retry_now */
        struct chain_metrics metrics; /* pgina_ctx_metric */
};
void ctx_done(struct pgina_ctx *ctx); /* frees message and state_dir */

/* ---- stages (host-chain.c) ---- */
struct chain_hooks {
        void *userdata;
        /* A plugin is about to be called (the worker tells the master, for crash/hang reports). */
        void (*plugin_begin)(void *userdata, const char *plugin, const char *stage);
        /* Progress text for the PAM conversation. */
        void (*progress)(void *userdata, const char *text);
        /* Output of an admin command. */
        void (*print)(void *userdata, const char *text);
};

struct chain_env {
        const struct conf *conf;
        const struct plugin_set *plugins;
        enum pgina_scenario scenario;
        const char *service, *rhost, *tty;
        bool dry_run;
        unsigned user_sessions;
        struct chain_hooks hooks;
        struct ctx_data *data; /* this request's plugin data; NULL: none (config check) */
        /* Notification: start at this plugin of the order, skipping the ones before it (a retried
         * logoff job); NULL = the whole order. */
        const char *notify_from;
};

struct chain_step {
        enum conf_stage stage;
        char *plugin;
        int result; /* >0 success, 0 failure, <0 -errno */
        char *message;
        enum chain_retry retry;
        long long ms; /* how long the plugin's call took */
        struct chain_metrics metrics; /* the figures it reported (pgina_ctx_metric) */
};

struct chain_run {
        struct chain_step *steps;
        size_t nsteps;
        bool authenticated;
        bool authorized;
        bool gateway_ok;
        /* an authentication that passed said the password must be changed first */
        bool password_expired;
        char *message; /* the message for the user (last failure's, or the successes') */
};

void chain_run_free(struct chain_run *run);
/* Each returns 1 when the stage passed, 0 when it failed (run->message says why). */
int chain_authenticate(const struct chain_env *env, struct pgina_user *u, struct chain_run *run);
int chain_authorize(const struct chain_env *env, struct pgina_user *u, struct chain_run *run);
int chain_gateway(const struct chain_env *env, struct pgina_user *u, struct chain_run *run);
int chain_notify(const struct chain_env *env, enum pgina_event ev, struct pgina_user *u,
                 struct chain_run *run);
int chain_change_password(const struct chain_env *env, struct pgina_user *u, const char *old_pw,
                          const char *new_pw, struct chain_run *run);
const char *chain_result_string(int result); /* "success", "failure", "error" */
