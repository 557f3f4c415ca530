/* pginactl's shared pieces: exit codes, the options every command sees, and what each
 * pginactl-*.c file offers the others. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"
#include "secret.h"

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

struct table {
        size_t ncols;
        size_t nrows; /* including the header */
        char **cells; /* nrows × ncols, sanitized */
};

/* pginactl-call.c */
int exit_code(uint32_t status);
int ctl_connect(const struct ctl *ctl);
int ctl_call_fd_output(const struct ctl *ctl, int fd, const struct pbuf *req,
                       struct proto_result *res, bool output);
int ctl_call_fd(const struct ctl *ctl, int fd, const struct pbuf *req, struct proto_result *res);
int ctl_call(const struct ctl *ctl, const struct pbuf *req, struct proto_result *res);
int ctl_simple(const struct ctl *ctl, uint16_t type, struct proto_result *res);
int report_status(const char *what, const struct proto_result *res);

/* pginactl-output.c */
char *sanitize(const char *s, bool keep_newlines);
void table_free(struct table *t);
int table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *f);
const char *row_get(const struct proto_row *row, const char *key);
const char *format_time(const char *unix_time, char *buf, size_t len);
const char *format_duration(const char *seconds, char *buf, size_t len);
void print_text(FILE *f, const char *prefix, const char *text);

/* pginactl-simulate.c */
int cmd_simulate(const struct ctl *ctl, int argc, char **argv);

/* pginactl-commands.c */
int cmd_status(const struct ctl *ctl, int argc, char **argv);
int cmd_sessions(const struct ctl *ctl, int argc, char **argv);
int cmd_plugins(const struct ctl *ctl, int argc, char **argv);
int cmd_config(const struct ctl *ctl, int argc, char **argv);
int cmd_reload(const struct ctl *ctl, int argc, char **argv);
int cmd_plugin(const struct ctl *ctl, int argc, char **argv);
int cmd_profile(const struct ctl *ctl, int argc, char **argv);
int cmd_wait(const struct ctl *ctl, int argc, char **argv);
int cmd_cache(const struct ctl *ctl, int argc, char **argv);
int cmd_metrics(const struct ctl *ctl, int argc, char **argv);
