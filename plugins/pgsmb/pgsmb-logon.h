/* pgSMB logon tasks, shared by pgsmb-logon.c (what runs when) and the files doing the work:
 * pgsmb-ntp.c (one SNTP query) and pgsmb-script.c (the login script as the user). */
#pragma once

#include <pgina/plugin.h>

#include <stdint.h>
#include <sys/types.h>

#include "pgsmb-helper.h"

/* ---- SNTP (RFC 4330 client) ---- */
struct sntp_result {
        int64_t offset_ns; /* server clock minus ours: add it to correct ours */
        int64_t delay_ns; /* round trip, less the server's own time */
        unsigned stratum;
        char address[64]; /* the address that answered */
};

/* Ask `server` ("host", "host:port", "[v6]:port"; port 123 by default) once per address, waiting
 * at most timeout_ms in all. 0 and *res on a valid answer; -errno and err otherwise. */
int sntp_query(const char *server, unsigned timeout_ms, struct sntp_result *res, char *err,
               size_t errlen);

/* ---- the login script ---- */
struct login_script {
        const char *path; /* absolute path of the file to run */
        const char *label; /* for messages: what the admin configured */
        const char *home_share, *home_mount; /* exported when not NULL */
        unsigned timeout_s;
};

/* Check that a local script is safe to run for uid: a regular file, owned by root or uid, not
 * writable by group or others, in directories only root or uid can change (or sticky ones).
 * Symbolic links are resolved first: resolved (PATH_MAX bytes) is what to run. */
int login_script_check(const char *path, uid_t uid, char *resolved, char *err, size_t errlen);

/* Run s->path as the user (pgsmb_as_user + posix_spawn), output logged line by line, killed after
 * s->timeout_s. Returns the script's exit status (>= 0), 128 + signal, or -errno. */
int login_script_run(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s);

/* Run a script held in memory (downloaded from the share): written by the user into a private
 * temporary file (mode 0700) in the home, run as login_script_run does, then deleted. */
int login_script_run_data(struct pgina_ctx *ctx, const struct pgsmb_user *pu, const struct login_script *s,
                          const void *data, size_t len);
