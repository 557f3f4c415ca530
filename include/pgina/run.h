/* libpgina-plugin: run one root tool (useradd, usermod, chpasswd, mount.cifs…) through
 * spawn_start (<pgina/spawn.h>) with a fixed argv, a fixed environment, optional bytes on stdin,
 * its stderr's first line kept for the message, and a bounded wait. Never a shell. */
#pragma once

#include <stddef.h>

#define PGINA_RUN_TIMEOUT_MS (60 * 1000)

struct pgina_run_result {
        int status; /* exit status, or 128 + signal number */
        char err[256]; /* first line of the tool's stderr, "" when none */
};

/* argv[0] is a bare tool name, looked up in /usr/sbin, /sbin, /usr/bin only. input (may be NULL)
 * is written to the tool's stdin, which is a pipe, never argv. Returns 0 when the tool ran to
 * its end (res->status says how), -ENOENT when it is not installed, -ETIMEDOUT when it was killed
 * after PGINA_RUN_TIMEOUT_MS, another -errno when it could not be started. */
int pgina_run_tool(const char *const argv[], const char *input, size_t input_len, struct pgina_run_result *res);
/* The same with one more "NAME=value" in the tool's environment (never a secret: e.g.
 * PASSWD_FD=0 for mount.cifs, which then reads the password from stdin). */
int pgina_run_tool_env(const char *const argv[], const char *extra_env, const char *input, size_t input_len,
               struct pgina_run_result *res);
