/* pginactl's commands that ask pginad and print its answer: status, sessions, plugins, config,
 * reload, plugin/profile admin commands, wait, cache. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "config.h"
#include "host.h"
#include "log.h"
#include "pgina-build.h"
#include "proto.h"
#include "proto-request.h"
#include "secret.h"
#include "util.h"

#include "pginactl.h"

/* ---- commands ---------------------------------------------------------------------------- */

static int print_plugin_health(const struct proto_row *row, char *buf, size_t len) {
        const char *health = row_get(row, "health"), *reason = row_get(row, "reason");

        if (*reason && !streq(health, "ok"))
                return snprintf(buf, len, "%s: %s", *health ? health : "failed", reason);
        return snprintf(buf, len, "%s", *health ? health : "-");
}

/* A pending logoff job: queued, running, or waiting for a retry (pginad's back-off) with the
 * time of the first failure, the next try and the plugin's reason. */
static void print_job(struct table *jobs, const struct proto_row *row) {
        const char *state = row_get(row, "state"), *retries = row_get(row, "retries");
        bool retry = streq(state, "retry");
        _cleanup_free_ char *err = sanitize(row_get(row, "last_error"), false);
        char st[64], since[64], next[64], why[1024];

        if (retry)
                snprintf(st, sizeof st, "retry %s", *retries ? retries : "?");
        else
                snprintf(st, sizeof st, "%s%s", state, streq(row_get(row, "resumed"), "yes") ? " (resumed)" : "");
        format_time(row_get(row, retry && atoll(row_get(row, "failing_since")) > 0 ? "failing_since" : "since"),
                    since, sizeof since);
        if (retry)
                format_time(row_get(row, "next_try"), next, sizeof next);
        else
                snprintf(next, sizeof next, "-");
        if (err && *err)
                snprintf(why, sizeof why, "%s: %s", row_get(row, "plugin"), err);
        else
                snprintf(why, sizeof why, "-");
        table_add(jobs, (const char *[]){row_get(row, "user"), st, since, next, why});
}

int cmd_status(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        struct table plugins = {.ncols = 3}, jobs = {.ncols = 5};
        bool daemon_seen = false;
        int r;

        if ((r = ctl_simple(ctl, PROTO_REQ_STATUS, &res)) > 0)
                return r;
        if (res.status != PROTO_OK)
                return report_status("status", &res);

        table_add(&plugins, (const char *[]){"PLUGIN", "STAGES", "HEALTH"});
        table_add(&jobs, (const char *[]){"USER", "STATE", "SINCE", "NEXT TRY", "LAST ERROR"});
        for (size_t i = 0; i < res.nrows; i++) {
                const struct proto_row *row = &res.rows[i];
                const char *kind = row_get(row, "kind");
                char b1[64], b2[4096];

                if (streq(kind, "daemon")) {
                        _cleanup_free_ char *cfg = sanitize(row_get(row, "config"), false);
                        _cleanup_free_ char *sock = sanitize(row_get(row, "socket"), false);

                        daemon_seen = true;
                        printf("pginad %s, pid %s, up %s\n", row_get(row, "version"),
                               row_get(row, "pid"),
                               format_duration(row_get(row, "uptime"), b1, sizeof b1));
                        printf("  Config:   %s\n", strempty(cfg));
                        printf("  Socket:   %s\n", strempty(sock));
                        printf("  Sessions: %s\n", row_get(row, "sessions"));
                        printf("  Pending logoff jobs: %s\n", row_get(row, "jobs"));
                        if (proto_row_get(row, "queued")) /* pginad before the request queue: absent */
                                printf("  Requests: %s in workers, %s waiting for a worker\n",
                                       row_get(row, "request_workers"), row_get(row, "queued"));
                } else if (streq(kind, "plugin")) {
                        print_plugin_health(row, b2, sizeof b2);
                        table_add(&plugins,
                                  (const char *[]){row_get(row, "name"), row_get(row, "stages"), b2});
                } else if (streq(kind, "job")) {
                        print_job(&jobs, row);
                }
        }
        if (!daemon_seen)
                printf("pginad (no daemon row in the answer)\n");
        printf("\n");
        if (plugins.nrows > 1)
                table_print(&plugins, stdout);
        else
                printf("No plugins loaded.\n");
        printf("\n");
        if (jobs.nrows > 1) {
                printf("Pending jobs:\n");
                table_print(&jobs, stdout);
        } else
                printf("No pending jobs.\n");
        table_free(&plugins);
        table_free(&jobs);
        return EXIT_OK;
}

int cmd_sessions(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        struct table t = {.ncols = ctl->verbose ? 11 : 10};
        int r;

        if ((r = ctl_simple(ctl, PROTO_REQ_SESSIONS, &res)) > 0)
                return r;
        if (res.status != PROTO_OK)
                return report_status("sessions", &res);
        if (res.nrows == 0) {
                printf("No sessions.\n");
                return EXIT_OK;
        }
        /* -v: the phases of the logon that opened the session, last: the one long cell */
        table_add(&t, (const char *[]){"SESSION", "INDEX", "USER", "UID", "SERVICE", "TTY", "RHOST", "OPENED",
                                       "SCENARIO", "LOGIND", "LOGON PHASES"});
        for (size_t i = 0; i < res.nrows; i++) {
                const struct proto_row *row = &res.rows[i];
                char tb[64];

                table_add(&t,
                          (const char *[]){row_get(row, "session"), row_get(row, "index"),
                                           row_get(row, "user"), row_get(row, "uid"), row_get(row, "service"),
                                           row_get(row, "tty"), row_get(row, "rhost"),
                                           format_time(row_get(row, "opened"), tb, sizeof tb),
                                           row_get(row, "scenario"),
                                           *row_get(row, "logind") ? row_get(row, "logind") : "-",
                                           row_get(row, "phases")});
        }
        table_print(&t, stdout);
        table_free(&t);
        return EXIT_OK;
}

/* metrics: pginad's text (Prometheus' format) comes as INFO lines, printed as they come. */
int cmd_metrics(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        _cleanup_pbuf_ struct pbuf req = {0};
        _cleanup_close_ int fd = -1;
        int r;

        pbuf_init(&req);
        if ((r = request_encode(&req, &(struct request){.type = PROTO_REQ_METRICS})) < 0) {
                fprintf(stderr, "pginactl: cannot build request: %s\n", strerror(-r));
                return EXIT_PROTOCOL;
        }
        fd = ctl_connect(ctl);
        if (fd < 0)
                return -fd;
        if ((r = ctl_call_fd_output(ctl, fd, &req, &res, true)) > 0)
                return r;
        if (res.status != PROTO_OK)
                return report_status("metrics", &res);
        return EXIT_OK;
}

/* One line of the "options" field: key TAB type TAB default TAB help (proto.h's PLUGINS). */
static void print_option_line(const char *line) {
        _cleanup_free_ char *raw = strdup(line);
        char *f[4] = {NULL, NULL, NULL, NULL}, *save = NULL, *p = raw;

        if (!raw)
                return;
        for (size_t i = 0; i < 4; i++) {
                f[i] = p;
                p = p ? strchr(p, '\t') : NULL;
                if (p)
                        *p++ = 0;
        }
        (void)save;
        {
                _cleanup_free_ char *key = sanitize(f[0], false), *type = sanitize(f[1] ? f[1] : "", false);
                _cleanup_free_ char *def = sanitize(f[2] ? f[2] : "", false);
                _cleanup_free_ char *help = sanitize(f[3] ? f[3] : "", false);

                if (!key || !type || !def || !help)
                        return;
                printf("    %s (%s%s%s)%s%s\n", key, type, *def ? ", default " : ", no default", def,
                       *help ? ": " : "", help);
        }
}

static void print_plugin_verbose(const struct proto_row *row) {
        const char *options = row_get(row, "options");
        _cleanup_free_ char *name = sanitize(row_get(row, "name"), false);
        _cleanup_free_ char *desc = sanitize(row_get(row, "description"), false);
        static const char *const keys[] = {"version", "stages", "abi", "path", "order"};
        char hb[4096];

        printf("%s%s%s\n", strempty(name), desc && *desc ? " - " : "", strempty(desc));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *v = sanitize(row_get(row, keys[i]), false);
                printf("  %-9s %s\n", keys[i], v && *v ? v : "-");
        }
        print_plugin_health(row, hb, sizeof hb);
        print_text(stdout, "  health    ", hb);
        if (!*options) {
                printf("  options   none\n");
                return;
        }
        printf("  options\n");
        for (const char *p = options; *p;) {
                size_t n = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, n);

                if (line && *line)
                        print_option_line(line);
                p += n;
                if (*p)
                        p++;
        }
}

int cmd_plugins(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        struct table t = {.ncols = 7};
        int r;

        if ((r = ctl_simple(ctl, PROTO_REQ_PLUGINS, &res)) > 0)
                return r;
        if (res.status != PROTO_OK)
                return report_status("plugins", &res);
        if (res.nrows == 0) {
                printf("No plugins loaded.\n");
                return EXIT_OK;
        }
        if (ctl->verbose) {
                for (size_t i = 0; i < res.nrows; i++) {
                        if (i > 0)
                                printf("\n");
                        print_plugin_verbose(&res.rows[i]);
                }
                return EXIT_OK;
        }
        /* HEALTH last: a failure's reason is the one long cell. */
        table_add(&t, (const char *[]){"NAME", "VERSION", "ABI", "STAGES", "ORDER", "PATH", "HEALTH"});
        for (size_t i = 0; i < res.nrows; i++) {
                const struct proto_row *row = &res.rows[i];
                char hb[4096];

                print_plugin_health(row, hb, sizeof hb);
                table_add(&t, (const char *[]){row_get(row, "name"), row_get(row, "version"),
                                               row_get(row, "abi"), row_get(row, "stages"),
                                               row_get(row, "order"), row_get(row, "path"), hb});
        }
        table_print(&t, stdout);
        table_free(&t);
        return EXIT_OK;
}

static void print_errors(const char *errors) {
        if (errors && *errors)
                fprintf(stderr, "%s%s", errors, errors[strlen(errors) - 1] == '\n' ? "" : "\n");
}

/* Runs here, without the daemon: the same checks pginad makes when it (re)loads the config. */
static int cmd_config_check(const struct ctl *ctl, int argc, char **argv) {
        const char *path = argc > 0 ? argv[0] : PGINA_CONF_FILE;
        _cleanup_conf_ struct conf *conf = NULL;
        _cleanup_free_ char *errors = NULL;
        struct plugin_set set = {0};
        int r, k;

        r = conf_load(path, &conf, &errors);
        if (r < 0) {
                if (errors && *errors)
                        print_errors(errors);
                else
                        fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return exit_code(PROTO_CONFIG_INVALID);
        }
        r = plugins_load(conf, &set, &errors);
        k = conf_check_plugins(conf, &set, &errors);
        plugins_unload(&set);
        if (r < 0 || k < 0 || (errors && *errors)) {
                if (errors && *errors)
                        print_errors(errors);
                else
                        fprintf(stderr, "%s: invalid: %s\n", path, strerror(-(r < 0 ? r : k)));
                return exit_code(PROTO_CONFIG_INVALID);
        }
        printf("%s: OK\n", path);
        return EXIT_OK;
}

int cmd_config(const struct ctl *ctl, int argc, char **argv) {
        if (!streq(argv[0], "check")) {
                fprintf(stderr, "pginactl: unknown config command '%s' (try: config check)\n",
                        argv[0]);
                return EXIT_USAGE;
        }
        return cmd_config_check(ctl, argc - 1, argv + 1);
}

int cmd_reload(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        int r;

        if ((r = ctl_simple(ctl, PROTO_REQ_RELOAD, &res)) > 0)
                return r;
        if (res.status == PROTO_CONFIG_INVALID) {
                fprintf(stderr, "pginactl: reload refused, pginad keeps its previous configuration:\n");
                print_errors(res.message);
                return exit_code(res.status);
        }
        if (res.status != PROTO_OK)
                return report_status("reload", &res);
        if (res.message && *res.message)
                print_text(stdout, "", res.message);
        return EXIT_OK;
}

/* A plugin's admin command: its output lines go to stdout as they come. */
static int plugin_admin(const struct ctl *ctl, const char *plugin, const char *user, int argc,
                        char *const *argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        _cleanup_pbuf_ struct pbuf req = {0};
        _cleanup_close_ int fd = -1;
        char what[128];
        int r;

        r = request_encode(&req, &(struct request){.type = PROTO_REQ_PLUGIN_ADMIN,
                                                    .plugin = (char *)plugin, .user = (char *)user,
                                                    .argc = (uint32_t)argc, .argv = (char **)argv});
        if (r < 0)
                goto fail;
        fd = ctl_connect(ctl);
        if (fd < 0)
                return -fd;
        if ((r = ctl_call_fd_output(ctl, fd, &req, &res, true)) > 0)
                return r;
        snprintf(what, sizeof what, "%s %s", plugin, argc > 0 ? argv[0] : "");
        if (res.status != PROTO_OK)
                return report_status(what, &res);
        if (res.message && *res.message)
                print_text(stdout, "", res.message);
        return EXIT_OK;
fail:
        fprintf(stderr, "pginactl: cannot build request: %s\n", strerror(-r));
        return r == -EINVAL ? EXIT_USAGE : EXIT_PROTOCOL;
}

int cmd_plugin(const struct ctl *ctl, int argc, char **argv) {
        /* plugin NAME USER|- ARGS... */
        return plugin_admin(ctl, argv[0], streq(argv[1], "-") ? "" : argv[1], argc - 2, argv + 2);
}

int cmd_profile(const struct ctl *ctl, int argc, char **argv) {
        /* profile list|restore|upload USER [VERSION]: pgsmb's roaming profiles */
        char *args[4] = {"profile", argv[0], argv[1], argc > 2 ? argv[2] : NULL};

        if (!streq(argv[0], "list") && !streq(argv[0], "restore") && !streq(argv[0], "upload")) {
                fprintf(stderr, "pginactl: profile: unknown subcommand '%s' (list, restore, upload)\n",
                        argv[0]);
                return EXIT_USAGE;
        }
        if (streq(argv[0], "restore") != (argc == 3)) {
                fprintf(stderr, "pginactl: profile %s: usage: profile list|upload USER, profile restore USER VERSION\n",
                        argv[0]);
                return EXIT_USAGE;
        }
        return plugin_admin(ctl, "pgsmb", argv[1], argc + 1, args);
}

/* wait [USER]: until pginad has no logoff job (of USER) left. pginad holds the request and
 * answers when the last one ends: no polling. -t bounds the wait (default: none). */
int cmd_wait(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        _cleanup_pbuf_ struct pbuf req = {0};
        struct ctl c = *ctl;
        uint32_t limit = ctl->timeout_given ? ctl->timeout_s : 0;
        int r;

        if (argc > 0 && !valid_user_name(argv[0])) {
                fprintf(stderr, "pginactl: wait: invalid user name '%s'\n", argv[0]);
                return EXIT_USAGE;
        }
        /* pginad sends keepalives while it holds the request; silence past this means it is stuck. */
        c.timeout_s = DEFAULT_TIMEOUT_S + limit;
        r = request_encode(&req, &(struct request){.type = PROTO_REQ_WAIT_JOBS,
                                                    .user = argc > 0 ? argv[0] : "", .id = limit});
        if (r < 0) {
                fprintf(stderr, "pginactl: cannot build request: %s\n", strerror(-r));
                return r == -EINVAL ? EXIT_USAGE : EXIT_PROTOCOL;
        }
        if ((r = ctl_call(&c, &req, &res)) > 0)
                return r;
        if (res.status != PROTO_OK)
                return report_status("wait", &res);
        return EXIT_OK;
}

int cmd_cache(const struct ctl *ctl, int argc, char **argv) {
        /* cache list | cache drop USER: the ldap plugin's cached (offline) logons */
        if (streq(argv[0], "list") && argc == 1) {
                char *args[] = {"cache", "list"};
                return plugin_admin(ctl, "ldap", "", 2, args);
        }
        if (streq(argv[0], "drop") && argc == 2) {
                char *args[] = {"cache", "drop", argv[1]};
                return plugin_admin(ctl, "ldap", argv[1], 3, args);
        }
        fprintf(stderr, "pginactl: cache: usage: cache list, cache drop USER\n");
        return EXIT_USAGE;
}
