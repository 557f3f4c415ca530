/* Starting programs: posix_spawn with an explicit descriptor map, a fixed environment, default
 * signals and a process group of their own; waiting for them with a time limit. */
#include <pgina/spawn.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pgina/util.h>

static const char *const env_tool[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
                                       "PGINA_NSS_DISABLE=1", NULL};
static const char *const env_user[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};

static int build_env(const struct spawn *s, const char **envp, size_t max) {
        const char *const *base = s->env_base == SPAWN_ENV_TOOL ? env_tool : env_user;
        size_t n = 0;

        for (const char *const *e = base; *e; e++)
                envp[n++] = *e;
        for (const char *const *e = s->env; e && *e; e++) {
                if (n + 1 >= max)
                        return -E2BIG;
                if (!strchr(*e, '='))
                        return -EINVAL;
                envp[n++] = *e;
        }
        envp[n] = NULL;
        return 0;
}

/* The file actions: each of our fds is first copied above the map (in this process, O_CLOEXEC),
 * so that no dup2 into slot i overwrites a source still to be copied into a later slot, and a
 * source already in its slot still loses O_CLOEXEC. Then everything from n_fds up is closed. */
static int build_actions(const struct spawn *s, posix_spawn_file_actions_t *fa, int *tmp) {
        int r = 0;

        for (size_t i = 0; i < s->n_fds && r == 0; i++) {
                if (s->fds[i] < 0) {
                        r = posix_spawn_file_actions_addopen(fa, (int)i, "/dev/null", O_RDWR, 0);
                        continue;
                }
                tmp[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, (int)s->n_fds);
                if (tmp[i] < 0)
                        return -errno;
                r = posix_spawn_file_actions_adddup2(fa, tmp[i], (int)i);
        }
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(fa, (int)s->n_fds);
        if (r == 0)
                r = posix_spawn_file_actions_addchdir_np(fa, s->cwd ? s->cwd : "/");
        return -r;
}

/* Default handling for every signal (the worker ignores SIGPIPE; a tool must not), none blocked,
 * a process group of its own so that a time limit kills what it started too. */
static int build_attr(posix_spawnattr_t *attr) {
        sigset_t all, none;
        int r;

        sigfillset(&all);
        sigemptyset(&none);
        r = posix_spawnattr_setsigdefault(attr, &all);
        if (r == 0)
                r = posix_spawnattr_setsigmask(attr, &none);
        if (r == 0)
                r = posix_spawnattr_setpgroup(attr, 0);
        if (r == 0)
                r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                                           POSIX_SPAWN_SETPGROUP);
        return -r;
}

int spawn_start(const struct spawn *s, pid_t *ret_pid) {
        const char *envp[ELEMENTSOF(env_tool) + SPAWN_ENV_MAX + 1];
        int tmp[SPAWN_FDS_MAX];
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int r;

        if (!s->path || s->path[0] != '/' || !s->argv || !s->argv[0] || (s->n_fds > 0 && !s->fds))
                return -EINVAL;
        if (s->n_fds > SPAWN_FDS_MAX)
                return -E2BIG;
        r = build_env(s, envp, ELEMENTSOF(envp));
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(tmp); i++)
                tmp[i] = -1;

        r = -posix_spawn_file_actions_init(&fa);
        if (r < 0)
                return r;
        r = -posix_spawnattr_init(&attr);
        if (r < 0) {
                posix_spawn_file_actions_destroy(&fa);
                return r;
        }
        r = build_actions(s, &fa, tmp);
        if (r == 0)
                r = build_attr(&attr);
        if (r == 0)
                r = -posix_spawn(ret_pid, s->path, &fa, &attr, (char *const *)s->argv,
                                 (char *const *)envp);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        for (size_t i = 0; i < ELEMENTSOF(tmp); i++)
                if (tmp[i] >= 0)
                        close(tmp[i]);
        return r;
}

void spawn_kill(pid_t pid) {
        int st;

        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
}

int spawn_wait(pid_t pid, long long deadline, int *wstatus) {
        for (;;) {
                pid_t k = waitpid(pid, wstatus, deadline == SPAWN_FOREVER ? 0 : WNOHANG);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == pid)
                        return 0;
                if (now_ms() >= deadline) {
                        spawn_kill(pid);
                        return -ETIMEDOUT;
                }
                nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
        }
}

int spawn_exit_code(int wstatus) {
        return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}
