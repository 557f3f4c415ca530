/* libpgina-plugin: the one way a plugin runs a program (a root tool such as useradd or
 * mount.cifs, an external archive program, a script): spawn_start (<pgina/spawn.h>) with a fixed
 * argv and environment, optional bytes on stdin, the descriptors it is given and no other, its
 * stderr's first line kept for the message, and a bounded wait, as us or with the credentials it
 * is given (struct spawn_creds). Never a shell. */
#pragma once

#include <stddef.h>

#include <pgina/spawn.h>

#define PGINA_RUN_TIMEOUT_MS (60 * 1000)

struct pgina_run_result {
        int status; /* exit status, or 128 + signal number */
        int wstatus; /* waitpid's status (WIFEXITED, WTERMSIG…) */
        char err[256]; /* first line of the tool's stderr, "" when none */
};

struct pgina_run {
        /* argv[0]: an absolute path, or a bare tool name looked up in /usr/sbin, /sbin, /usr/bin */
        const char *const *argv;
        enum spawn_env env_base;
        const char *const *env; /* extra "NAME=value", NULL-terminated; NULL = none */
        const char *input; /* written to its stdin (a pipe); NULL: stdin is stdin_fd */
        size_t input_len;
        int stdin_fd, stdout_fd; /* ours, given as its 0 and 1; -1 = /dev/null */
        /* Its 2: 0 (the default) = a pipe whose first line goes to res->err; else ours (-1 =
         * /dev/null), and res->err stays "" */
        int stderr_fd;
        const int *keep_fds; /* more of ours, given as its 3, 4, ...; n_keep of them */
        size_t n_keep;
        const char *cwd; /* NULL = "/" */
        long long timeout_ms; /* killed after it; 0 = PGINA_RUN_TIMEOUT_MS, SPAWN_FOREVER = none */
        const struct spawn_creds *creds; /* NULL: as us */
};

/* Run it to its end. 0 when it ran (res->status says how), -ENOENT when a tool is not installed,
 * -EINVAL for a relative path that is not a bare name, -ETIMEDOUT when it was killed at its
 * timeout, another -errno when it could not be started (spawn_start's) or waited for. */
int pgina_run(const struct pgina_run *run, struct pgina_run_result *res);

/* argv[0] is a bare tool name, looked up in /usr/sbin, /sbin, /usr/bin only. input (may be NULL)
 * is written to the tool's stdin, which is a pipe, never argv. Returns 0 when the tool ran to
 * its end (res->status says how), -ENOENT when it is not installed, -ETIMEDOUT when it was killed
 * after PGINA_RUN_TIMEOUT_MS, another -errno when it could not be started. */
int pgina_run_tool(const char *const argv[], const char *input, size_t input_len, struct pgina_run_result *res);
/* The same with one more "NAME=value" in the tool's environment (never a secret: e.g.
 * PASSWD_FD=0 for mount.cifs, which then reads the password from stdin). */
int pgina_run_tool_env(const char *const argv[], const char *extra_env, const char *input, size_t input_len,
               struct pgina_run_result *res);
