/* pginactl: the admin's client of pginad (status, sessions, plugins, simulate, reload) and the
 * local config checker. Runs as the caller; only `config check` loads plugin code, in-process. */
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

/* Exit codes (documented in --help and pginactl(8)). */
enum {
        EXIT_OK = 0,
        EXIT_REFUSED = 1, /* refused or invalid: the answer was "no" */
        EXIT_USAGE = 2,
        EXIT_UNAVAILABLE = 3, /* the daemon cannot be reached or cannot answer */
        EXIT_PERMISSION = 4,
        EXIT_NOT_FOUND = 5,
        EXIT_PROTOCOL = 6,
};

#define DEFAULT_TIMEOUT_S 90u /* above pginad's default request_timeout (60 s) */
#define CONNECT_TIMEOUT_MS 5000

struct ctl {
        const char *socket_path;
        unsigned timeout_s;
        bool timeout_given; /* -t: for wait, the longest wait */
        bool verbose; /* plugins -v */
        bool gateway; /* simulate --gateway */
};

/* The one place a wire status becomes an exit code. Failures of the client itself (connect,
 * timeout, malformed reply) reach it as the wire status they amount to (status_from_errno). */
static int exit_code(uint32_t status) {
        switch (status) {
        case PROTO_OK:
                return EXIT_OK;
        case PROTO_AUTH_FAILED:
        case PROTO_DENIED:
        case PROTO_GATEWAY_FAILED:
        case PROTO_CHANGE_FAILED:
        case PROTO_CONFIG_INVALID:
                return EXIT_REFUSED;
        case PROTO_UNAVAILABLE:
        case PROTO_SHUTTING_DOWN:
                return EXIT_UNAVAILABLE;
        case PROTO_PERMISSION:
                return EXIT_PERMISSION;
        case PROTO_NOT_FOUND:
                return EXIT_NOT_FOUND;
        case PROTO_BAD_REQUEST:
        default: /* a status this client does not know is a protocol mismatch */
                return EXIT_PROTOCOL;
        }
}

/* A transport error as the status it amounts to: cannot talk to the daemon = unavailable, the
 * daemon's socket refuses us = permission, a reply we cannot parse = bad request. */
static uint32_t status_from_errno(int r) {
        switch (-r) {
        case EACCES:
        case EPERM:
                return PROTO_PERMISSION;
        case EBADMSG:
        case EPROTO:
        case EMSGSIZE:
                return PROTO_BAD_REQUEST;
        default:
                return PROTO_UNAVAILABLE;
        }
}

/* ---- output helpers ---------------------------------------------------------------------- */

/* Daemon text may come from plugins (LDAP attributes, remote servers): never let it reach the
 * terminal as control sequences. Returns a malloc'd copy with control characters as '?' and,
 * unless keep_newlines, newlines as spaces. */
static char *sanitize(const char *s, bool keep_newlines) {
        char *c = strdup(strempty(s));

        if (!c)
                return NULL;
        for (unsigned char *p = (unsigned char *)c; *p; p++) {
                if (*p == '\n' && keep_newlines)
                        continue;
                if (*p == '\n' || *p == '\t')
                        *p = ' ';
                else if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
        }
        return c;
}

/* Display width of a UTF-8 string in the current locale (bytes when it does not decode). */
static size_t display_width(const char *s) {
        mbstate_t st = {0};
        size_t w = 0, len = strlen(s);

        while (len > 0) {
                wchar_t wc;
                size_t n = mbrtowc(&wc, s, len, &st);
                int cw;

                if (n == (size_t)-1 || n == (size_t)-2)
                        return strlen(s);
                if (n == 0)
                        break;
                cw = wcwidth(wc);
                w += cw > 0 ? (size_t)cw : 0;
                s += n;
                len -= n;
        }
        return w;
}

struct table {
        size_t ncols;
        size_t nrows; /* including the header */
        char **cells; /* nrows × ncols, sanitized */
};

static void table_free(struct table *t) {
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        memset(t, 0, sizeof *t);
}

/* Append one row of ncols cells; NULL or "" cells are shown as "-". */
static int table_add(struct table *t, const char *const *cells) {
        char **n = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));

        if (!n)
                return -ENOMEM;
        t->cells = n;
        for (size_t i = 0; i < t->ncols; i++) {
                const char *v = cells[i] && cells[i][0] ? cells[i] : "-";
                char *c = sanitize(v, false);

                if (!c) {
                        for (size_t j = 0; j < i; j++)
                                free(t->cells[t->nrows * t->ncols + j]);
                        return -ENOMEM;
                }
                t->cells[t->nrows * t->ncols + i] = c;
        }
        t->nrows++;
        return 0;
}

static void table_print(const struct table *t, FILE *f) {
        size_t width[16] = {0};

        for (size_t r = 0; r < t->nrows; r++)
                for (size_t c = 0; c < t->ncols && c < ELEMENTSOF(width); c++) {
                        size_t w = display_width(t->cells[r * t->ncols + c]);
                        if (w > width[c])
                                width[c] = w;
                }
        for (size_t r = 0; r < t->nrows; r++) {
                for (size_t c = 0; c < t->ncols; c++) {
                        const char *cell = t->cells[r * t->ncols + c];

                        fputs(cell, f);
                        if (c + 1 < t->ncols)
                                fprintf(f, "%*s", (int)(width[c] - display_width(cell) + 2), "");
                }
                fputc('\n', f);
        }
}

static const char *row_get(const struct proto_row *row, const char *key) {
        return strempty(proto_row_get(row, key));
}

/* "1700000000" → local "2023-11-14 23:13:20"; anything else is shown as it came. */
static const char *format_time(const char *unix_time, char *buf, size_t len) {
        char *end;
        long long v;
        time_t t;
        struct tm tm;

        errno = 0;
        v = strtoll(unix_time, &end, 10);
        if (!*unix_time || *end || errno || v < 0)
                return unix_time;
        t = (time_t)v;
        if (!localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                return unix_time;
        return buf;
}

static const char *format_duration(const char *seconds, char *buf, size_t len) {
        char *end;
        unsigned long long s;

        errno = 0;
        s = strtoull(seconds, &end, 10);
        if (!*seconds || *end || errno)
                return seconds;
        if (s >= 86400)
                snprintf(buf, len, "%llud %lluh %llumin", s / 86400, s % 86400 / 3600, s % 3600 / 60);
        else if (s >= 3600)
                snprintf(buf, len, "%lluh %llumin", s / 3600, s % 3600 / 60);
        else if (s >= 60)
                snprintf(buf, len, "%llumin %llus", s / 60, s % 60);
        else
                snprintf(buf, len, "%llus", s);
        return buf;
}

static void print_text(FILE *f, const char *prefix, const char *text) {
        _cleanup_free_ char *c = sanitize(text, true);

        if (c)
                fprintf(f, "%s%s\n", prefix, c);
}

/* ---- talking to pginad ------------------------------------------------------------------- */

static void on_info(void *userdata, uint8_t kind, const char *text) {
        /* A plugin command's output (userdata set) is the command's own: stdout, as is. */
        if (userdata && kind == PROTO_INFO_TEXT) {
                print_text(stdout, "", text);
                fflush(stdout);
                return;
        }
        print_text(stderr, kind == PROTO_INFO_ERROR ? "pginad: error: " : "pginad: ", text);
}

/* Returns a connected fd, or minus an exit code after saying why the daemon cannot be reached. */
static int ctl_connect(const struct ctl *ctl) {
        int timeout_ms = (int)ctl->timeout_s * 1000;
        int fd = proto_connect(ctl->socket_path,
                               timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS);

        if (fd < 0) {
                fprintf(stderr,
                        "pginactl: cannot reach pginad at %s: %s (is pginad running? systemctl "
                        "status pginad)\n",
                        ctl->socket_path, fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
                return -exit_code(status_from_errno(fd));
        }
        return fd;
}

/* One request on a connected fd. Returns 0 with *res filled (any status), or an exit code (> 0)
 * after printing why no answer came. */
static int ctl_call_fd_output(const struct ctl *ctl, int fd, const struct pbuf *req,
                              struct proto_result *res, bool output) {
        int r = proto_call(fd, req, (int)ctl->timeout_s * 1000, on_info, output ? (void *)1 : NULL,
                           res);

        if (r == -ETIMEDOUT)
                fprintf(stderr, "pginactl: pginad at %s did not answer within %u s\n",
                        ctl->socket_path, ctl->timeout_s);
        else if (r == -ECONNRESET || r == -EPIPE)
                fprintf(stderr, "pginactl: pginad at %s closed the connection without an answer\n",
                        ctl->socket_path);
        else if (r < 0)
                fprintf(stderr, "pginactl: bad reply from pginad at %s: %s\n", ctl->socket_path,
                        strerror(-r));
        if (r < 0)
                return exit_code(status_from_errno(r));
        return 0;
}

static int ctl_call_fd(const struct ctl *ctl, int fd, const struct pbuf *req,
                       struct proto_result *res) {
        return ctl_call_fd_output(ctl, fd, req, res, false);
}

static int ctl_call(const struct ctl *ctl, const struct pbuf *req, struct proto_result *res) {
        _cleanup_close_ int fd = ctl_connect(ctl);

        if (fd < 0)
                return -fd;
        return ctl_call_fd(ctl, fd, req, res);
}

/* A request without fields (the admin queries). */
static int ctl_simple(const struct ctl *ctl, uint16_t type, struct proto_result *res) {
        _cleanup_pbuf_ struct pbuf req;
        int r;

        pbuf_init(&req);
        if ((r = request_encode(&req, &(struct request){.type = type})) < 0) {
                fprintf(stderr, "pginactl: cannot build request: %s\n", strerror(-r));
                return EXIT_PROTOCOL;
        }
        return ctl_call(ctl, &req, res);
}

/* A non-OK answer: say what the daemon said and return its exit code. */
static int report_status(const char *what, const struct proto_result *res) {
        _cleanup_free_ char *msg = sanitize(res->message, true);
        const char *status = proto_status_to_string(res->status);

        if (msg && strcasecmp(msg, status) == 0)
                msg = (free(msg), NULL); /* nothing beyond the status */
        if (res->status == PROTO_PERMISSION)
                fprintf(stderr, "pginactl: %s: permission denied by pginad%s%s (admin requests "
                        "need root)\n", what, msg && *msg ? ": " : "", strempty(msg));
        else
                fprintf(stderr, "pginactl: %s: %s%s%s\n", what, status, msg && *msg ? ": " : "",
                        strempty(msg));
        return exit_code(res->status);
}

/* ---- commands ---------------------------------------------------------------------------- */

static int print_plugin_health(const struct proto_row *row, char *buf, size_t len) {
        const char *health = row_get(row, "health"), *reason = row_get(row, "reason");

        if (*reason && !streq(health, "ok"))
                return snprintf(buf, len, "%s: %s", *health ? health : "failed", reason);
        return snprintf(buf, len, "%s", *health ? health : "-");
}

static int cmd_status(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        struct table plugins = {.ncols = 3}, jobs = {.ncols = 3};
        bool daemon_seen = false;
        int r;

        if ((r = ctl_simple(ctl, PROTO_REQ_STATUS, &res)) > 0)
                return r;
        if (res.status != PROTO_OK)
                return report_status("status", &res);

        table_add(&plugins, (const char *[]){"PLUGIN", "STAGES", "HEALTH"});
        table_add(&jobs, (const char *[]){"USER", "STATE", "SINCE"});
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
                        table_add(&jobs, (const char *[]){row_get(row, "user"), row_get(row, "state"),
                                                          format_time(row_get(row, "since"), b1,
                                                                      sizeof b1)});
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

static int cmd_sessions(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        struct table t = {.ncols = 10};
        int r;

        if ((r = ctl_simple(ctl, PROTO_REQ_SESSIONS, &res)) > 0)
                return r;
        if (res.status != PROTO_OK)
                return report_status("sessions", &res);
        if (res.nrows == 0) {
                printf("No sessions.\n");
                return EXIT_OK;
        }
        table_add(&t, (const char *[]){"SESSION", "INDEX", "USER", "UID", "SERVICE", "TTY", "RHOST", "OPENED",
                                       "SCENARIO", "LOGIND"});
        for (size_t i = 0; i < res.nrows; i++) {
                const struct proto_row *row = &res.rows[i];
                char tb[64];

                table_add(&t,
                          (const char *[]){row_get(row, "session"), row_get(row, "index"),
                                           row_get(row, "user"), row_get(row, "uid"), row_get(row, "service"),
                                           row_get(row, "tty"), row_get(row, "rhost"),
                                           format_time(row_get(row, "opened"), tb, sizeof tb),
                                           row_get(row, "scenario"),
                                           *row_get(row, "logind") ? row_get(row, "logind") : "-"});
        }
        table_print(&t, stdout);
        table_free(&t);
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

static int cmd_plugins(const struct ctl *ctl, int argc, char **argv) {
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

static int cmd_config(const struct ctl *ctl, int argc, char **argv) {
        if (!streq(argv[0], "check")) {
                fprintf(stderr, "pginactl: unknown config command '%s' (try: config check)\n",
                        argv[0]);
                return EXIT_USAGE;
        }
        return cmd_config_check(ctl, argc - 1, argv + 1);
}

/* ---- the password ------------------------------------------------------------------------ */

/* Restoring the terminal from a signal handler needs these two at file scope. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_echo_off;

static void restore_tty_and_die(int sig) {
        if (tty_echo_off)
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Reads one line from stdin byte by byte (no stdio buffer keeps a copy) into buf. Returns its
 * length, -ENODATA on EOF before any byte, -E2BIG when it does not fit. */
static ssize_t read_line(char *buf, size_t size) {
        size_t n = 0;

        for (;;) {
                char c;
                ssize_t k = read(STDIN_FILENO, &c, 1);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0) {
                        if (n == 0)
                                return -ENODATA;
                        break;
                }
                if (c == '\n')
                        break;
                if (n + 1 >= size) {
                        /* Drain the rest of the line so it does not reach a shell later. */
                        while (read(STDIN_FILENO, &c, 1) == 1 && c != '\n')
                                ;
                        return -E2BIG;
                }
                buf[n++] = c;
        }
        buf[n] = 0;
        return (ssize_t)n;
}

/* The terminal (echo off) when stdin is one, else the first line of stdin. */
static int read_password(const char *user, struct secret **ret) {
        char buf[SECRET_MAX + 2];
        bool tty = isatty(STDIN_FILENO);
        struct sigaction sa = {.sa_handler = restore_tty_and_die}, old[4];
        static const int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP};
        ssize_t n;
        int r = 0;

        if (tty) {
                struct termios t;

                if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
                        return -errno;
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        sigaction(sigs[i], &sa, &old[i]);
                t = saved_tty;
                t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
                t.c_lflag |= ECHONL | ICANON;
                fprintf(stderr, "Password for %s: ", user);
                fflush(stderr);
                if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
                        r = -errno;
                else
                        tty_echo_off = 1;
        }
        n = r < 0 ? r : read_line(buf, sizeof buf);
        if (tty) {
                if (tty_echo_off)
                        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
                tty_echo_off = 0;
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        sigaction(sigs[i], &old[i], NULL);
        }
        if (n >= 0) {
                *ret = secret_new(buf, (size_t)n);
                if (!*ret)
                        n = -ENOMEM;
        }
        explicit_bzero(buf, sizeof buf);
        return n < 0 ? (int)n : 0;
}

/* ---- simulate ---------------------------------------------------------------------------- */

/* The daemon may answer OK with a refusal in the final row; the verdict is the row's. */
static uint32_t simulate_status(const struct proto_result *res, const struct proto_row *final) {
        if (res->status != PROTO_OK || !final)
                return res->status;
        if (streq(row_get(final, "result"), "success"))
                return PROTO_OK;
        if (!streq(row_get(final, "authenticated"), "yes"))
                return PROTO_AUTH_FAILED;
        if (!streq(row_get(final, "authorized"), "yes"))
                return PROTO_DENIED;
        return PROTO_GATEWAY_FAILED;
}

static int print_simulation(const char *user, const struct proto_result *res) {
        const struct proto_row *final = NULL;
        struct table t = {.ncols = 4};
        _cleanup_free_ char *u = sanitize(user, false);
        uint32_t status;

        table_add(&t, (const char *[]){"STAGE", "PLUGIN", "RESULT", "MESSAGE"});
        for (size_t i = 0; i < res->nrows; i++) {
                const struct proto_row *row = &res->rows[i];

                if (streq(row_get(row, "stage"), "final")) {
                        final = row;
                        continue;
                }
                table_add(&t, (const char *[]){row_get(row, "stage"), row_get(row, "plugin"),
                                               row_get(row, "result"), row_get(row, "message")});
        }
        if (t.nrows > 1)
                table_print(&t, stdout);
        else
                printf("No plugin ran.\n");
        table_free(&t);
        printf("\n");

        status = simulate_status(res, final);
        if (status == PROTO_OK)
                printf("Result: user %s would be allowed to log on\n", strempty(u));
        else if (exit_code(status) == EXIT_REFUSED) {
                _cleanup_free_ char *m = sanitize(
                        final && *row_get(final, "message") ? row_get(final, "message") : res->message,
                        false);
                printf("Result: user %s would be refused: %s\n", strempty(u),
                       m && *m ? m : proto_status_to_string(status));
        } else
                return report_status("simulate", res);
        if (final) {
                _cleanup_free_ char *g = sanitize(row_get(final, "groups"), false);

                printf("Authenticated: %s, authorized: %s, gateway: %s\n",
                       *row_get(final, "authenticated") ? row_get(final, "authenticated") : "-",
                       *row_get(final, "authorized") ? row_get(final, "authorized") : "-",
                       *row_get(final, "gateway") ? row_get(final, "gateway") : "-");
                printf("Groups: %s\n", g && *g ? g : "(none)");
        }
        return exit_code(status);
}

static int cmd_simulate(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        _cleanup_secret_ struct secret *pw = NULL;
        _cleanup_pbuf_ struct pbuf req;
        _cleanup_close_ int fd = -1;
        const char *user = argv[0];
        int r;

        pbuf_init_secret(&req);
        if (!*user || strlen(user) > PGINA_NAME_MAX) {
                fprintf(stderr, "pginactl: simulate: invalid user name\n");
                return EXIT_USAGE;
        }
        /* Connect first: no point asking for a password when nobody will check it. */
        fd = ctl_connect(ctl);
        if (fd < 0)
                return -fd;
        r = read_password(user, &pw);
        if (r == -ENODATA) {
                fprintf(stderr, "pginactl: simulate: no password on standard input\n");
                return EXIT_USAGE;
        }
        if (r == -E2BIG) {
                fprintf(stderr, "pginactl: simulate: password longer than %d bytes\n", SECRET_MAX);
                return EXIT_USAGE;
        }
        if (r < 0) {
                fprintf(stderr, "pginactl: simulate: cannot read the password: %s\n", strerror(-r));
                return EXIT_USAGE;
        }
        r = request_encode(&req, &(struct request){.type = PROTO_REQ_SIMULATE, .user = (char *)user,
                                                    .password = pw, .run_gateway = ctl->gateway});
        if (r < 0) {
                fprintf(stderr, "pginactl: simulate: cannot build request: %s\n", strerror(-r));
                return EXIT_PROTOCOL;
        }
        pw = (secret_free(pw), NULL); /* the frame holds it now, and wipes it when freed */
        if ((r = ctl_call_fd(ctl, fd, &req, &res)) > 0)
                return r;
        if (res.nrows == 0 && res.status != PROTO_OK)
                return report_status("simulate", &res);
        return print_simulation(user, &res);
}

static int cmd_reload(const struct ctl *ctl, int argc, char **argv) {
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

static int cmd_plugin(const struct ctl *ctl, int argc, char **argv) {
        /* plugin NAME USER|- ARGS... */
        return plugin_admin(ctl, argv[0], streq(argv[1], "-") ? "" : argv[1], argc - 2, argv + 2);
}

static int cmd_profile(const struct ctl *ctl, int argc, char **argv) {
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
static int cmd_wait(const struct ctl *ctl, int argc, char **argv) {
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

static int cmd_cache(const struct ctl *ctl, int argc, char **argv) {
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

/* ---- command line ------------------------------------------------------------------------ */

struct command {
        const char *name;
        const char *args; /* synopsis after the name */
        unsigned min_args, max_args;
        const char *options; /* per-command options, for help */
        const char *summary;
        const char *help;
        int (*run)(const struct ctl *ctl, int argc, char **argv);
};

static const struct command commands[] = {
        {"status", "", 0, 0, NULL, "Show the daemon, its plugins' health and pending jobs",
         "Shows pginad's version, pid, uptime, config file, socket, number of sessions and\n"
         "pending logoff jobs, then each loaded plugin with its stages and health (ok, or\n"
         "failed with the reason: a crash or a timeout in a worker), then the pending jobs.\n",
         cmd_status},
        {"sessions", "", 0, 0, NULL, "List the sessions pginad knows",
         "One line per user of each session: index 0 is the user who logged on, 1 and up\n"
         "the users who authenticated inside it (sudo, su, pkexec: scenario credui).\n",
         cmd_sessions},
        {"plugins", "[-v]", 0, 0, "  -v, --verbose   also each plugin's description and options\n",
         "List the loaded plugins",
         "Shows each plugin pginad loaded: name, version, stages it implements, plugin ABI,\n"
         "health, its positions in [order] and its file.\n",
         cmd_plugins},
        {"config", "check [FILE]", 1, 2, NULL, "Check a configuration file (no daemon needed)",
         "config check [FILE] parses FILE (default " PGINA_CONF_FILE "), loads the plugins it\n"
         "names and checks every [order] entry and plugin option, as pginad does on start and\n"
         "reload. Prints each problem as FILE:LINE: ... on stderr, or \"FILE: OK\".\n",
         cmd_config},
        {"simulate", "USER [--gateway]", 1, 1,
         "  -g, --gateway   run the gateway stage too, for real: it creates or changes the\n"
         "                  local account as a logon would\n",
         "Show what each plugin would decide for USER's logon",
         "pGina's simulator. Reads USER's password from the terminal (no echo) or, when\n"
         "standard input is not a terminal, from its first line. Shows each plugin's result\n"
         "and message per stage, then the verdict and the groups the user would have.\n"
         "Exit status 0 when the user would be allowed, 1 when refused.\n",
         cmd_simulate},
        {"reload", "", 0, 0, NULL, "Make pginad re-read its configuration",
         "Like SIGHUP, but reports the result: a configuration with errors is refused (the\n"
         "errors are printed, exit status 1) and pginad keeps the one it has.\n",
         cmd_reload},
        {"profile", "list|upload USER | restore USER VERSION", 2, 3, NULL,
         "Roaming profiles of the pgsmb plugin",
         "profile list USER shows the archive of USER in the profile store and the versions\n"
         "kept beside it (size, date, host), and conflict copies. profile upload USER saves\n"
         "USER's home to the store now (as a logoff would). profile restore USER VERSION makes\n"
         "a kept version the current one again; USER gets it at the next logon (refused while\n"
         "USER is logged on).\n",
         cmd_profile},
        {"wait", "[USER]", 0, 1, NULL, "Wait until the pending logoff jobs have ended",
         "Returns when pginad has no logoff job queued or running (of USER only, when given):\n"
         "the profile uploads of the users who logged off are done. pginad answers the moment\n"
         "the last one ends (no polling). With -t SECONDS it gives up after that long and exits\n"
         "with status 3; without, it waits as long as the jobs take. For shutdown and\n"
         "maintenance scripts: pginactl wait && poweroff.\n",
         cmd_wait},
        {"cache", "list | drop USER", 1, 2, NULL, "Cached (offline) logons of the ldap plugin",
         "cache list shows the users whose logon the ldap plugin can check while every LDAP\n"
         "server is unreachable (cache_credentials = true), with when each entry was made and\n"
         "when it expires. cache drop USER forgets USER's entry.\n",
         cmd_cache},
        {"plugin", "NAME USER|- [ARGS...]", 2, 64, NULL, "Run a plugin's admin command",
         "Passes ARGS to plugin NAME's admin command inside pginad and prints its output.\n"
         "USER names the user it is about (pginad hands the plugin that user's record), or -.\n"
         "Options of pginactl go before the command here; ARGS are passed on as they are.\n",
         cmd_plugin},
};

static const char exit_codes_help[] =
        "Exit status:\n"
        "  0  success\n"
        "  1  refused or invalid (authentication failed, denied, gateway failed, invalid config)\n"
        "  2  usage error\n"
        "  3  pginad unavailable (cannot connect, timeout, unavailable, shutting down)\n"
        "  4  permission denied (admin requests need root)\n"
        "  5  not found\n"
        "  6  protocol error (bad request, malformed reply)\n";

static void help_main(FILE *f) {
        fprintf(f,
                "Usage: pginactl [OPTIONS] COMMAND [ARGS]\n"
                "\n"
                "Control and inspect pginad, the pgina daemon.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char head[64];

                snprintf(head, sizeof head, "%s%s%s", commands[i].name, *commands[i].args ? " " : "",
                         commands[i].args);
                fprintf(f, "  %-26s %s\n", head, commands[i].summary);
        }
        fprintf(f,
                "  help [COMMAND]             Show this help, or a command's\n"
                "\n"
                "Options:\n"
                "  -s, --socket PATH  pginad's socket (default $PGINA_SOCKET, else %s)\n"
                "  -t, --timeout S    seconds to wait for an answer (default %u)\n"
                "  -h, --help         show this help\n"
                "      --version      show the version\n"
                "\n"
                "%s"
                "\n"
                "See pginactl(8).\n",
                PGINA_SOCKET_DEFAULT, DEFAULT_TIMEOUT_S, exit_codes_help);
}

static void help_command(const struct command *c, FILE *f) {
        fprintf(f, "Usage: pginactl [OPTIONS] %s%s%s\n\n%s.\n\n%s", c->name, *c->args ? " " : "",
                c->args, c->summary, c->help);
        if (c->options)
                fprintf(f, "\nOptions:\n%s", c->options);
        fprintf(f, "\n%s", exit_codes_help);
}

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static int parse_timeout(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (!*s || *end || errno || v == 0 || v > 3600 || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

enum { ARG_VERSION = 0x100 };
enum { ARGS_RUN, ARGS_HELP, ARGS_VERSION };

/* Options are accepted before and after the command (getopt permutes). */
static int parse_argv(int argc, char **argv, struct ctl *ctl) {
        static const struct option opts[] = {
                {"socket", required_argument, NULL, 's'}, {"timeout", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, ARG_VERSION},
                {"verbose", no_argument, NULL, 'v'},      {"gateway", no_argument, NULL, 'g'},
                {},
        };
        int c, ret = ARGS_RUN;
        const char *optstring = ":s:t:hvg";

        /* `plugin NAME ARGS...` passes ARGS on untouched: options only before the command. */
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "-s") || streq(argv[i], "-t") || streq(argv[i], "--socket") ||
                    streq(argv[i], "--timeout")) {
                        i++;
                        continue;
                }
                if (argv[i][0] == '-')
                        continue;
                if (streq(argv[i], "plugin"))
                        optstring = "+:s:t:hvg";
                break;
        }
        opterr = 0;
        while ((c = getopt_long(argc, argv, optstring, opts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        if (!*optarg) {
                                fprintf(stderr, "pginactl: --socket needs a path\n");
                                return -EINVAL;
                        }
                        ctl->socket_path = optarg;
                        break;
                case 't':
                        if (parse_timeout(optarg, &ctl->timeout_s) < 0) {
                                fprintf(stderr, "pginactl: invalid --timeout '%s' (seconds, 1-3600)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        ctl->timeout_given = true;
                        break;
                case 'h':
                        ret = ARGS_HELP;
                        break;
                case ARG_VERSION:
                        if (ret == ARGS_RUN)
                                ret = ARGS_VERSION;
                        break;
                case 'v':
                        ctl->verbose = true;
                        break;
                case 'g':
                        ctl->gateway = true;
                        break;
                case ':':
                        fprintf(stderr, "pginactl: option '%s' needs an argument\n", argv[optind - 1]);
                        return -EINVAL;
                default:
                        fprintf(stderr, "pginactl: unknown option '%s' (see pginactl --help)\n",
                                argv[optind - 1]);
                        return -EINVAL;
                }
        }
        return ret;
}

int main(int argc, char **argv) {
        struct ctl ctl = {.socket_path = PGINA_SOCKET_DEFAULT, .timeout_s = DEFAULT_TIMEOUT_S};
        const struct command *cmd;
        const char *env = getenv("PGINA_SOCKET");
        char **args;
        int nargs, r;
        bool want_help;

        setlocale(LC_ALL, "");
        log_open("pginactl", true);
        if (env && *env)
                ctl.socket_path = env;

        r = parse_argv(argc, argv, &ctl);
        if (r < 0)
                return EXIT_USAGE;
        if (r == ARGS_VERSION) {
                printf("pginactl %s\n", PGINA_VERSION);
                return EXIT_OK;
        }
        want_help = r == ARGS_HELP;
        args = argv + optind;
        nargs = argc - optind;
        if (want_help && nargs == 0) {
                help_main(stdout);
                return EXIT_OK;
        }
        if (nargs == 0) {
                help_main(stderr);
                return EXIT_USAGE;
        }
        if (streq(args[0], "help")) {
                if (nargs == 1) {
                        help_main(stdout);
                        return EXIT_OK;
                }
                cmd = find_command(args[1]);
                if (!cmd) {
                        fprintf(stderr, "pginactl: unknown command '%s'\n", args[1]);
                        return EXIT_USAGE;
                }
                help_command(cmd, stdout);
                return EXIT_OK;
        }
        cmd = find_command(args[0]);
        if (!cmd) {
                fprintf(stderr, "pginactl: unknown command '%s' (see pginactl --help)\n", args[0]);
                return EXIT_USAGE;
        }
        if (want_help) {
                help_command(cmd, stdout);
                return EXIT_OK;
        }
        args++;
        nargs--;
        if ((unsigned)nargs < cmd->min_args || (unsigned)nargs > cmd->max_args) {
                fprintf(stderr, "pginactl: usage: pginactl %s%s%s\n", cmd->name, *cmd->args ? " " : "",
                        cmd->args);
                return EXIT_USAGE;
        }
        if ((ctl.verbose && cmd->run != cmd_plugins) || (ctl.gateway && cmd->run != cmd_simulate)) {
                fprintf(stderr, "pginactl: %s: option %s does not apply\n", cmd->name,
                        ctl.verbose ? "--verbose" : "--gateway");
                return EXIT_USAGE;
        }
        return cmd->run(&ctl, nargs, args);
}
