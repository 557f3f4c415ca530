/* /etc/pgina/pgina.conf: INI (libinih) into a list of entries with line numbers, plus the core's
 * own [service] and [order] settings. Plugin sections are checked against the plugins' declared
 * options by host-loader.c (conf_check_plugins), where the plugins are known. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define PGINA_CONF_DEFAULT "/etc/pgina/pgina.conf"
#define PGINA_PLUGIN_DIR_DEFAULT "/usr/lib/pgina/plugins"
#define PGINA_STATE_DIR_DEFAULT "/var/lib/pgina"
/* Bounds of max_workers and max_queued. A queued request holds one of pginad's 512 client
 * connections (CONNS_MAX in pginad-manager.c), so a longer queue could never fill. */
#define CONF_MAX_WORKERS_MAX 256u
#define CONF_MAX_QUEUED_MAX 512u

enum conf_stage {
        CONF_STAGE_AUTHENTICATION,
        CONF_STAGE_AUTHORIZATION,
        CONF_STAGE_GATEWAY,
        CONF_STAGE_NOTIFICATION,
        CONF_STAGE_CHANGE_PASSWORD,
        _CONF_STAGE_MAX,
};

struct conf_entry {
        char *section;
        char *key;
        char *value;
        unsigned line;
};

struct conf {
        char *path;
        struct conf_entry *entries;
        size_t nentries;

        /* [service] */
        char *socket_path;
        char *state_dir;
        char *plugin_dir;
        unsigned request_timeout; /* seconds, per request (whole chain) */
        unsigned shutdown_timeout; /* seconds SIGTERM waits for logoff jobs */
        unsigned job_timeout; /* seconds one logoff job may run */
        unsigned job_retry_delay; /* seconds before a logoff job's first retry (pgina_ctx_retry_later) */
        unsigned job_retry_max_delay; /* the delay doubles up to this */
        unsigned failure_delay_max; /* seconds, cap of the slow-down for a failing non-root peer */
        unsigned max_workers; /* request workers running at once */
        unsigned max_queued; /* requests waiting for a worker; beyond, "busy" */
        bool preload_libraries; /* pginad loads the plugins' libraries once (pginad-preload.c) */
        char *metrics_textfile; /* node_exporter's textfile, written every metrics_interval s; NULL: none */
        unsigned metrics_interval;
        int log_level;

        /* [order]: plugin names per stage, in order */
        char **order[_CONF_STAGE_MAX];
        size_t norder[_CONF_STAGE_MAX];
};

const char *conf_stage_name(enum conf_stage s); /* "authentication", … as in [order] */
unsigned conf_stage_bit(enum conf_stage s); /* PGINA_STAGE_* */

/* Parse and check the core settings. On failure returns -EINVAL (or -errno for I/O) and
 * *errors holds one "FILE:LINE: what is wrong" line per problem (malloc'd). */
int conf_load(const char *path, struct conf **ret, char **errors);
void conf_free(struct conf *c);
static inline void conf_freep(struct conf **c) {
        if (*c)
                conf_free(*c);
}
#define _cleanup_conf_ __attribute__((cleanup(conf_freep)))

/* Last value of section.key (later lines win), or NULL. */
const struct conf_entry *conf_find(const struct conf *c, const char *section, const char *key);
/* Every plugin named in [order] or by a section, once each, in first-seen order. */
size_t conf_plugin_names(const struct conf *c, char ***ret);
bool conf_is_core_section(const char *section);

/* Append "FILE:LINE: msg" (line 0: "FILE: msg") to a newline-separated error string. */
void conf_error(char **errors, const char *file, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
