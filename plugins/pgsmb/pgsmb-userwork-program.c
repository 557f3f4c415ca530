/* The external archive program runner (runs as the user): fixed argv, no shell. */
#include "pgsmb-userwork-archive-internal.h"
#include "pgsmb-userwork-program.h"
#include "spawn-program.h"

/* ---- external program (pGina's `program` + commands): fixed argv, no shell ---- */

int pgsmb_run_program(char *const *argv, const char *const *env, const char *cwd, int in_fd,
                       int out_fd, char *err, size_t errlen) {
        if (!argv || !argv[0] || argv[0][0] != '/')
                return fail(err, errlen, -EINVAL,
                            "external archive program '%s' must be an absolute path",
                            argv && argv[0] ? argv[0] : "");

        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return fail(err, errlen, -errno, "cannot create a pipe: %s", strerror(errno));
        _cleanup_close_ int rd = pfd[0];
        _cleanup_close_ int wr = pfd[1];

        /* Its stdin, stdout (the archive's stream, else /dev/null) and stderr, nothing else: the
         * worker's descriptors (the store's connection, a service account's session) are not
         * the user's. */
        const int fds[] = {in_fd, out_fd, wr};
        const struct spawn sp = {.path = argv[0], .argv = (const char *const *)argv,
                                 .env_base = SPAWN_ENV_USER, .env = env,
                                 .fds = fds, .n_fds = ELEMENTSOF(fds), .cwd = cwd};
        pid_t pid;
        int r = spawn_start(&sp, &pid);
        if (r < 0)
                return fail(err, errlen, r, "cannot run '%s' in '%s': %s", argv[0], cwd,
                            strerror(-r));
        close(TAKE_FD(wr));

        /* Drain stderr while it runs (a full pipe would block it); keep the first line. */
        char line[256] = "";
        size_t len = 0;
        bool line_done = false;
        for (;;) {
                char buf[4096];
                ssize_t n = read(rd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n && !line_done; i++) {
                        if (buf[i] == '\n' || len + 1 >= sizeof line)
                                line_done = true;
                        else
                                line[len++] = buf[i];
                }
        }
        line[len] = 0;

        int status;
        r = spawn_wait(pid, SPAWN_FOREVER, &status);
        if (r < 0)
                return fail(err, errlen, r, "cannot wait for '%s': %s", argv[0], strerror(-r));
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                return fail(err, errlen, -EPROTO, "'%s' exited with status %d%s%s", argv[0],
                            WEXITSTATUS(status), len ? ": " : "", line);
        return fail(err, errlen, -EPROTO, "'%s' was killed by signal %d%s%s", argv[0],
                    WTERMSIG(status), len ? ": " : "", line);
}
