/* The external archive program (runs as the user): libpgina-plugin's runner, fixed argv, no
 * shell. */
#include "pgsmb-userwork-program.h"

#include <pgina/run.h>

#include "pgsmb-userwork-archive-internal.h"

/* ---- external program (pGina's `program` + commands): fixed argv, no shell ---- */

int pgsmb_run_program(char *const *argv, const char *const *env, const char *cwd, int in_fd,
                       int out_fd, char *err, size_t errlen) {
        if (!argv || !argv[0] || argv[0][0] != '/')
                return fail(err, errlen, -EINVAL,
                            "external archive program '%s' must be an absolute path",
                            argv && argv[0] ? argv[0] : "");

        /* Its stdin, stdout (the archive's stream, else /dev/null) and stderr, nothing else: the
         * worker's descriptors (the store's connection, a service account's session) are not
         * the user's. */
        const struct pgina_run run = {.argv = (const char *const *)argv, .env_base = SPAWN_ENV_USER,
                                      .env = env, .stdin_fd = in_fd, .stdout_fd = out_fd,
                                      .cwd = cwd, .timeout_ms = SPAWN_FOREVER};
        struct pgina_run_result res;
        int r = pgina_run(&run, &res);
        if (r < 0)
                return fail(err, errlen, r, "cannot run '%s' in '%s': %s", argv[0], cwd,
                            strerror(-r));
        if (WIFEXITED(res.wstatus) && WEXITSTATUS(res.wstatus) == 0)
                return 0;
        if (WIFEXITED(res.wstatus))
                return fail(err, errlen, -EPROTO, "'%s' exited with status %d%s%s", argv[0],
                            WEXITSTATUS(res.wstatus), res.err[0] ? ": " : "", res.err);
        return fail(err, errlen, -EPROTO, "'%s' was killed by signal %d%s%s", argv[0],
                    WTERMSIG(res.wstatus), res.err[0] ? ": " : "", res.err);
}
