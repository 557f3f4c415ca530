/* Starting programs: posix_spawn (or, to change credentials, vfork and execve) with an explicit
 * descriptor map, a fixed environment, default signals and a process group of their own;
 * waiting for them with a time limit. */
#include <pgina/spawn.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
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

/* Each of our fds is first copied above the map (in this process, O_CLOEXEC), so that no dup2
 * into slot i overwrites a source still to be copied into a later slot, and a source already in
 * its slot still loses O_CLOEXEC. tmp[i] stays -1 for a slot that gets /dev/null. */
static int fds_above_map(const struct spawn *s, int *tmp) {
        for (size_t i = 0; i < s->n_fds; i++) {
                if (s->fds[i] < 0)
                        continue;
                tmp[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, (int)s->n_fds);
                if (tmp[i] < 0)
                        return -errno;
        }
        return 0;
}

/* The file actions: the copies into their slots, then everything from n_fds up closed. */
static int build_actions(const struct spawn *s, posix_spawn_file_actions_t *fa, const int *tmp) {
        int r = 0;

        for (size_t i = 0; i < s->n_fds && r == 0; i++)
                r = tmp[i] < 0 ? posix_spawn_file_actions_addopen(fa, (int)i, "/dev/null", O_RDWR, 0)
                               : posix_spawn_file_actions_adddup2(fa, tmp[i], (int)i);
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

static int spawn_posix(const struct spawn *s, const int *tmp, const char *const *envp, pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int r;

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
        return r;
}

/* ---- with credentials: vfork, change them, exec ----
 * As glibc's posix_spawn does: the child shares our memory and this thread waits until it has
 * exec'd or exited, so a failure before the exec comes back in *err, with no descriptor of ours
 * in a process that already has the user's ids (a CLOEXEC pipe for it stayed open there until
 * the exec, and a root watcher of the user's processes saw it: test-review-pgsmb-user-child-
 * descriptors). Between the vfork and the exec only direct system calls: no malloc, no syslog,
 * no NSS, and the ids change through raw syscalls (glibc's setresuid would make every thread of
 * ours change ids with it: the child's memory is ours). Signals stay blocked until the child's
 * dispositions are back to their defaults: no handler of ours runs on the shared memory. */

static _Noreturn void child_fail(volatile int *err, int r) {
        *err = r;
        _exit(127);
}

/* Groups, gid, uid, in that order (each later change takes the right to the earlier ones), then
 * check they took: the ids are the ones asked for, and root cannot be had back. */
static int child_creds(const struct spawn_creds *c) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;

        if (syscall(SYS_setgroups, (long)c->n_groups, c->groups) < 0 ||
            syscall(SYS_setresgid, (long)c->gid, (long)c->gid, (long)c->gid) < 0 ||
            syscall(SYS_setresuid, (long)c->uid, (long)c->uid, (long)c->uid) < 0)
                return -errno;
        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
                return -errno;
        if (ru != c->uid || eu != c->uid || su != c->uid || rg != c->gid || eg != c->gid ||
            sg != c->gid || getgroups(0, NULL) != (int)c->n_groups)
                return -EPERM;
        if (c->uid != 0 && syscall(SYS_setuid, 0L) == 0)
                return -EPERM; /* the drop did not stick */
        umask(c->umask ? c->umask : 077);
        return 0;
}

/* fds[i] (its copy tmp[i], above the map) into slot i, /dev/null where tmp[i] is -1, every other
 * descriptor closed (the copies above the map are O_CLOEXEC: closed here already). */
static int child_fds(const struct spawn *s, const int *tmp) {
        for (size_t i = 0; i < s->n_fds; i++) {
                int fd = (int)i, null;

                if (tmp[i] >= 0) {
                        if (dup2(tmp[i], fd) < 0)
                                return -errno;
                        continue;
                }
                /* The lowest free descriptor: slot i, a later slot (filled over later) or one
                 * above the map (closed below). */
                null = open("/dev/null", O_RDWR);
                if (null < 0)
                        return -errno;
                if (null != fd) {
                        if (dup2(null, fd) < 0)
                                return -errno;
                        close(null);
                }
        }
        if (close_range((unsigned)s->n_fds, ~0U, 0) < 0)
                return -errno;
        return 0;
}

static _Noreturn void child_exec(const struct spawn *s, const int *tmp, const char *const *envp,
                                 volatile int *err, pid_t parent) {
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigset_t none;
        int r;

        (void)setpgid(0, 0);
        /* The descriptors first, as root (a slot may be a file only root may dup); then the ids. */
        if ((r = child_fds(s, tmp)) < 0 || (r = child_creds(s->creds)) < 0)
                child_fail(err, r);
        /* Default handling for every signal (the worker ignores SIGPIPE; a program must not).
         * Those that cannot be changed (SIGKILL, SIGSTOP, libc's own) say EINVAL. */
        sigemptyset(&dfl.sa_mask);
        for (int sig = 1; sig < NSIG; sig++)
                (void)sigaction(sig, &dfl, NULL);
        if (chdir(s->cwd ? s->cwd : "/") < 0)
                child_fail(err, -errno);
        if (s->creds->die_with_parent &&
            (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
                child_fail(err, -ESRCH); /* it died already: the signal would never come */
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        execve(s->path, (char *const *)s->argv, (char *const *)envp);
        child_fail(err, -errno);
}

static int spawn_vfork(const struct spawn *s, const int *tmp, const char *const *envp, pid_t *ret_pid) {
        volatile int err = 0;
        sigset_t all, old;
        pid_t parent = getpid(), pid;

        if (s->creds->n_groups > SPAWN_GROUPS_MAX)
                return -E2BIG;
        if (s->creds->n_groups > 0 && !s->creds->groups)
                return -EINVAL;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = vfork();
        if (pid == 0)
                child_exec(s, tmp, envp, &err, parent);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0)
                return -errno;
        if (err < 0) {
                int st;

                while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                        ;
                return err;
        }
        (void)setpgid(pid, pid); /* done by the child already; harmless */
        *ret_pid = pid;
        return 0;
}

int spawn_start(const struct spawn *s, pid_t *ret_pid) {
        const char *envp[ELEMENTSOF(env_tool) + SPAWN_ENV_MAX + 1];
        int tmp[SPAWN_FDS_MAX];
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
        r = fds_above_map(s, tmp);
        if (r == 0)
                r = s->creds ? spawn_vfork(s, tmp, envp, ret_pid) : spawn_posix(s, tmp, envp, ret_pid);
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
