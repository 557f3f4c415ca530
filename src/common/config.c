/* pgina.conf: read with libinih, every entry kept with its line number, core sections checked. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pgina/plugin.h>

#include "log.h"
#include "proto.h"
#include "util.h"

#define CONF_LINE_MAX INI_MAX_LINE

static const char *const stage_names[_CONF_STAGE_MAX] = {
        [CONF_STAGE_AUTHENTICATION] = "authentication",
        [CONF_STAGE_AUTHORIZATION] = "authorization",
        [CONF_STAGE_GATEWAY] = "gateway",
        [CONF_STAGE_NOTIFICATION] = "notification",
        [CONF_STAGE_CHANGE_PASSWORD] = "change_password",
};

const char *conf_stage_name(enum conf_stage s) {
        return s < _CONF_STAGE_MAX ? stage_names[s] : "?";
}

unsigned conf_stage_bit(enum conf_stage s) { return 1u << s; }

bool conf_is_core_section(const char *section) {
        return streq(section, "service") || streq(section, "order");
}

void conf_error(char **errors, const char *file, unsigned line, const char *fmt, ...) {
        char msg[1024], *n;
        size_t old = *errors ? strlen(*errors) : 0;
        va_list ap;
        int k;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        k = line ? snprintf(NULL, 0, "%s:%u: %s\n", file, line, msg)
                 : snprintf(NULL, 0, "%s: %s\n", file, msg);
        n = realloc(*errors, old + (size_t)k + 1);
        if (!n)
                return;
        if (line)
                snprintf(n + old, (size_t)k + 1, "%s:%u: %s\n", file, line, msg);
        else
                snprintf(n + old, (size_t)k + 1, "%s: %s\n", file, msg);
        *errors = n;
}

/* State while inih walks the file: it does not give handlers line numbers in Debian's build, so
 * our reader counts the lines it hands over and flags lines it cannot hand over whole. */
struct parse_state {
        FILE *f;
        unsigned line;
        unsigned long_line;
        char *buf; /* getline's: a line is read whole, NUL bytes included */
        size_t cap;
        struct conf *c;
        char **errors;
        int oom;
};

static char *conf_reader(char *str, int num, void *stream) {
        struct parse_state *st = stream;
        ssize_t n = getline(&st->buf, &st->cap, st->f);
        size_t len;

        if (n < 0)
                return NULL;
        st->line++;
        len = (size_t)n - (st->buf[n - 1] == '\n');
        /* What fgets would get wrong: a line longer than inih's buffer (cut, its rest read as the
         * next line) or one holding a NUL byte (cut short unseen). Reported, handed over as a
         * comment. */
        if (len > (size_t)num - 2 || memchr(st->buf, 0, (size_t)n)) {
                if (!st->long_line)
                        st->long_line = st->line;
                if (len > (size_t)num - 2)
                        conf_error(st->errors, st->c->path, st->line, "line longer than %d bytes",
                                   CONF_LINE_MAX - 2);
                else
                        conf_error(st->errors, st->c->path, st->line, "NUL byte in the line");
                snprintf(str, (size_t)num, "#\n");
                return str;
        }
        memcpy(str, st->buf, (size_t)n + 1);
        return str;
}

static int conf_handler(void *user, const char *section, const char *key, const char *value) {
        struct parse_state *st = user;
        struct conf *c = st->c;
        struct conf_entry *n;

        n = realloc(c->entries, (c->nentries + 1) * sizeof *n);
        if (!n) {
                st->oom = 1;
                return 0;
        }
        c->entries = n;
        n = &c->entries[c->nentries];
        n->section = strdup(section);
        n->key = strdup(key);
        n->value = strdup(value);
        n->line = st->line;
        if (!n->section || !n->key || !n->value) {
                free(n->section);
                free(n->key);
                free(n->value);
                st->oom = 1;
                return 0;
        }
        c->nentries++;
        return 1;
}

const struct conf_entry *conf_find(const struct conf *c, const char *section, const char *key) {
        for (size_t i = c->nentries; i > 0; i--) {
                const struct conf_entry *e = &c->entries[i - 1];
                if (streq(e->section, section) && streq(e->key, key))
                        return e;
        }
        return NULL;
}

static int set_string(char **dst, const char *v) {
        char *s = strdup(v);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

static int parse_unsigned(const char *v, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        unsigned long n;

        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-' || n < min || n > max)
                return -EINVAL;
        *ret = (unsigned)n;
        return 0;
}

static void conf_service_entry(struct conf *c, const struct conf_entry *e, char **errors) {
        int r = 0;

        if (streq(e->key, "socket")) {
                if (e->value[0] != '/' || strlen(e->value) >= 108)
                        conf_error(errors, c->path, e->line,
                                   "socket must be an absolute path shorter than 108 bytes");
                else
                        r = set_string(&c->socket_path, e->value);
        } else if (streq(e->key, "state_dir") || streq(e->key, "plugin_dir")) {
                if (e->value[0] != '/')
                        conf_error(errors, c->path, e->line, "%s must be an absolute path", e->key);
                else
                        r = set_string(streq(e->key, "state_dir") ? &c->state_dir : &c->plugin_dir,
                                       e->value);
        } else if (streq(e->key, "request_timeout")) {
                if (parse_unsigned(e->value, 1, 86400, &c->request_timeout) < 0)
                        conf_error(errors, c->path, e->line,
                                   "request_timeout must be seconds between 1 and 86400, not '%s'",
                                   e->value);
        } else if (streq(e->key, "shutdown_timeout")) {
                if (parse_unsigned(e->value, 0, 86400, &c->shutdown_timeout) < 0)
                        conf_error(errors, c->path, e->line,
                                   "shutdown_timeout must be seconds between 0 and 86400, not '%s'",
                                   e->value);
        } else if (streq(e->key, "job_timeout")) {
                if (parse_unsigned(e->value, 1, 7 * 86400, &c->job_timeout) < 0)
                        conf_error(errors, c->path, e->line,
                                   "job_timeout must be seconds between 1 and 604800, not '%s'",
                                   e->value);
        } else if (streq(e->key, "job_retry_delay")) {
                if (parse_unsigned(e->value, 1, 86400, &c->job_retry_delay) < 0)
                        conf_error(errors, c->path, e->line,
                                   "job_retry_delay must be seconds between 1 and 86400, not '%s'",
                                   e->value);
        } else if (streq(e->key, "job_retry_max_delay")) {
                if (parse_unsigned(e->value, 1, 7 * 86400, &c->job_retry_max_delay) < 0)
                        conf_error(errors, c->path, e->line,
                                   "job_retry_max_delay must be seconds between 1 and 604800, not '%s'",
                                   e->value);
        } else if (streq(e->key, "failure_delay_max")) {
                if (parse_unsigned(e->value, 0, 600, &c->failure_delay_max) < 0)
                        conf_error(errors, c->path, e->line,
                                   "failure_delay_max must be seconds between 0 and 600, not '%s'",
                                   e->value);
        } else if (streq(e->key, "max_workers")) {
                if (parse_unsigned(e->value, 1, CONF_MAX_WORKERS_MAX, &c->max_workers) < 0)
                        conf_error(errors, c->path, e->line,
                                   "max_workers must be a number between 1 and %u, not '%s'",
                                   CONF_MAX_WORKERS_MAX, e->value);
        } else if (streq(e->key, "max_queued")) {
                if (parse_unsigned(e->value, 0, CONF_MAX_QUEUED_MAX, &c->max_queued) < 0)
                        conf_error(errors, c->path, e->line,
                                   "max_queued must be a number between 0 and %u, not '%s'",
                                   CONF_MAX_QUEUED_MAX, e->value);
        } else if (streq(e->key, "preload_libraries")) {
                int b = parse_bool(e->value);
                if (b < 0)
                        conf_error(errors, c->path, e->line,
                                   "preload_libraries must be true or false, not '%s'", e->value);
                else
                        c->preload_libraries = b;
        } else if (streq(e->key, "metrics_textfile")) {
                /* empty: no file (the default) */
                if (e->value[0] && (e->value[0] != '/' || e->value[strlen(e->value) - 1] == '/'))
                        conf_error(errors, c->path, e->line,
                                   "metrics_textfile must be an absolute file name (or empty: none), not '%s'",
                                   e->value);
                else if (!e->value[0]) {
                        free(c->metrics_textfile);
                        c->metrics_textfile = NULL;
                } else
                        r = set_string(&c->metrics_textfile, e->value);
        } else if (streq(e->key, "metrics_interval")) {
                if (parse_unsigned(e->value, 1, 86400, &c->metrics_interval) < 0)
                        conf_error(errors, c->path, e->line,
                                   "metrics_interval must be seconds between 1 and 86400, not '%s'",
                                   e->value);
        } else if (streq(e->key, "log_level")) {
                int l = log_level_from_string(e->value);
                if (l < 0)
                        conf_error(errors, c->path, e->line,
                                   "log_level must be debug, info, notice, warning or error, not '%s'",
                                   e->value);
                else
                        c->log_level = l;
        } else
                conf_error(errors, c->path, e->line, "unknown key '%s' in [service]", e->key);
        if (r < 0)
                conf_error(errors, c->path, e->line, "out of memory");
}

static int stage_from_name(const char *name) {
        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                if (streq(stage_names[s], name))
                        return s;
        return -EINVAL;
}

static void conf_order_entry(struct conf *c, const struct conf_entry *e, char **errors) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL, *w;
        int s = stage_from_name(e->key);

        if (s < 0) {
                conf_error(errors, c->path, e->line,
                           "unknown stage '%s' in [order] (authentication, authorization, gateway, "
                           "notification, change_password)",
                           e->key);
                return;
        }
        /* A later line for the same stage replaces the earlier one. */
        for (size_t i = 0; i < c->norder[s]; i++)
                free(c->order[s][i]);
        free(c->order[s]);
        c->order[s] = NULL;
        c->norder[s] = 0;

        copy = strdup(e->value);
        if (!copy)
                return;
        for (w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                char **n;

                if (!valid_plugin_name(w)) {
                        conf_error(errors, c->path, e->line,
                                   "'%s' in [order] %s is not a plugin name ([a-z0-9_]+)", w, e->key);
                        continue;
                }
                for (size_t i = 0; i < c->norder[s]; i++)
                        if (streq(c->order[s][i], w)) {
                                conf_error(errors, c->path, e->line,
                                           "plugin '%s' appears twice in [order] %s", w, e->key);
                                goto next;
                        }
                n = realloc(c->order[s], (c->norder[s] + 1) * sizeof(char *));
                if (!n)
                        return;
                c->order[s] = n;
                c->order[s][c->norder[s]] = strdup(w);
                if (c->order[s][c->norder[s]])
                        c->norder[s]++;
        next:;
        }
}

static void conf_check_sections(struct conf *c, char **errors) {
        for (size_t i = 0; i < c->nentries; i++) {
                const struct conf_entry *e = &c->entries[i];
                char base[PROTO_STR_MAX];
                char *dot;

                if (streq(e->section, "service"))
                        conf_service_entry(c, e, errors);
                else if (streq(e->section, "order"))
                        conf_order_entry(c, e, errors);
                else {
                        snprintf(base, sizeof base, "%s", e->section);
                        dot = strchr(base, '.');
                        if (dot)
                                *dot = 0;
                        if (e->section[0] == 0)
                                conf_error(errors, c->path, e->line,
                                           "key '%s' outside of any section", e->key);
                        else if (!valid_plugin_name(base))
                                conf_error(errors, c->path, e->line,
                                           "section [%s] is not a plugin name ([a-z0-9_]+)",
                                           e->section);
                }
        }
}

static int conf_set_defaults(struct conf *c) {
        c->request_timeout = 300;
        c->shutdown_timeout = 60;
        c->job_timeout = 1800;
        c->job_retry_delay = 60;
        c->job_retry_max_delay = 1800;
        c->failure_delay_max = 8;
        c->max_workers = 64;
        c->max_queued = 256;
        c->preload_libraries = true;
        c->metrics_interval = 60;
        c->log_level = LOG_INFO;
        if (set_string(&c->socket_path, PGINA_SOCKET_DEFAULT) < 0 ||
            set_string(&c->state_dir, PGINA_STATE_DIR_DEFAULT) < 0 ||
            set_string(&c->plugin_dir, PGINA_PLUGIN_DIR_DEFAULT) < 0)
                return -ENOMEM;
        return 0;
}

int conf_load(const char *path, struct conf **ret, char **errors) {
        _cleanup_conf_ struct conf *c = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        struct parse_state st = {0};
        int r;

        c = calloc(1, sizeof *c);
        if (!c || !(c->path = strdup(path)) || conf_set_defaults(c) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                conf_error(errors, path, 0, "cannot open: %s", strerror(-r));
                return r;
        }
        st.f = f;
        st.c = c;
        st.errors = errors;
        r = ini_parse_stream(conf_reader, &st, conf_handler, &st);
        free(st.buf);
        if (st.oom)
                return -ENOMEM;
        if (r > 0 && (unsigned)r != st.long_line)
                conf_error(errors, path, (unsigned)r,
                           "syntax error (expected [section], key = value, or a # comment)");
        else if (r < 0) {
                conf_error(errors, path, 0, "cannot read");
                return -EIO;
        }
        conf_check_sections(c, errors);
        if (*errors)
                return -EINVAL;
        *ret = TAKE_PTR(c);
        return 0;
}

void conf_free(struct conf *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->nentries; i++) {
                free(c->entries[i].section);
                free(c->entries[i].key);
                free(c->entries[i].value);
        }
        free(c->entries);
        for (int s = 0; s < _CONF_STAGE_MAX; s++) {
                for (size_t i = 0; i < c->norder[s]; i++)
                        free(c->order[s][i]);
                free(c->order[s]);
        }
        free(c->socket_path);
        free(c->state_dir);
        free(c->plugin_dir);
        free(c->metrics_textfile);
        free(c->path);
        free(c);
}

static int names_add(char ***v, size_t *n, const char *name) {
        char **x;

        for (size_t i = 0; i < *n; i++)
                if (streq((*v)[i], name))
                        return 0;
        x = realloc(*v, (*n + 1) * sizeof(char *));
        if (!x)
                return -ENOMEM;
        *v = x;
        if (!(x[*n] = strdup(name)))
                return -ENOMEM;
        (*n)++;
        return 0;
}

size_t conf_plugin_names(const struct conf *c, char ***ret) {
        char **v = NULL;
        size_t n = 0;

        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                for (size_t i = 0; i < c->norder[s]; i++)
                        (void)names_add(&v, &n, c->order[s][i]);
        for (size_t i = 0; i < c->nentries; i++) {
                char base[256];
                char *dot;

                if (conf_is_core_section(c->entries[i].section))
                        continue;
                snprintf(base, sizeof base, "%s", c->entries[i].section);
                if ((dot = strchr(base, '.')))
                        *dot = 0;
                if (valid_plugin_name(base))
                        (void)names_add(&v, &n, base);
        }
        *ret = v;
        return n;
}
