/* The one way pgina starts a program (a shadow-utils tool, mount.cifs, the external archive
 * program, the login script, pgsmb-userwork as the user): posix_spawn of an absolute path with a
 * fixed argv, the descriptors it is given and no other, a fixed minimal environment, default
 * signals, its own process group. With credentials, a fork that changes them before the exec
 * (posix_spawn cannot). Never a shell. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SPAWN_FDS_MAX 8 /* descriptors a program gets: 0, 1, 2 and a few more (PASSWD_FD) */
#define SPAWN_ENV_MAX 16 /* extra environment entries */
#define SPAWN_GROUPS_MAX 65536 /* supplementary groups (the kernel's NGROUPS_MAX) */
#define SPAWN_FOREVER LLONG_MAX /* spawn_wait's deadline: no time limit */

/* The environment a program starts from; nothing of ours (pginad's environment) is passed on. */
enum spawn_env {
        /* A root tool: PATH of the system tool directories, LC_ALL=C (its messages are shown as
         * they are), PGINA_NSS_DISABLE=1 (useradd must not see directory users through
         * libnss_pgina, or it refuses to create their local accounts). */
        SPAWN_ENV_TOOL,
        /* A program run as the user: PATH=/usr/local/bin:/usr/bin:/bin only; the caller passes
         * HOME, USER, LOGNAME and what else the program is documented to get. */
        SPAWN_ENV_USER,
};

/* Who the program runs as. The caller looks the groups up (getgrouplist: NSS cannot be called
 * between the fork and the exec); the child sets them, then the gid, then the uid (real,
 * effective and saved), and checks they took: the ids are what was asked and, for a uid other
 * than 0, root cannot be had back. */
struct spawn_creds {
        uid_t uid;
        gid_t gid;
        const gid_t *groups; /* the supplementary groups, n_groups of them (0: none) */
        size_t n_groups;
        mode_t umask; /* the program's umask; 0 means 077 (never a umask of 0 by omission) */
        /* SIGKILL the program when the process that started it ends (PR_SET_PDEATHSIG, set after
         * the credentials, which clear it; a parent already gone fails the start). */
        bool die_with_parent;
};

struct spawn {
        const char *path; /* absolute */
        const char *const *argv; /* NULL-terminated, argv[0] included */
        enum spawn_env env_base;
        const char *const *env; /* extra "NAME=value", NULL-terminated; NULL = none */
        /* The program's descriptors: fds[i] (ours) becomes its fd i, for i < n_fds; -1 means
         * /dev/null there. Every other descriptor is closed in the program, O_CLOEXEC or not.
         * n_fds < 3 leaves the missing standard descriptors closed: give -1 for them. */
        const int *fds;
        size_t n_fds;
        const char *cwd; /* NULL = "/"; with creds, changed into as the new user */
        const struct spawn_creds *creds; /* NULL: ours */
};

/* Start it; *ret_pid is its pid and its process group. -errno when it could not be started
 * (-EINVAL: a relative path or a bad map, -E2BIG: too many fds or variables or groups; the
 * exec's errors, e.g. -ENOENT, -EACCES, or a cwd's chdir error; with creds, the errors of
 * setgroups, setresgid, setresuid, -EPERM when a change did not take, -ESRCH when the parent
 * ended before the exec). */
int spawn_start(const struct spawn *s, pid_t *ret_pid);

/* Wait for it until deadline (now_ms() time; SPAWN_FOREVER: no limit); at the deadline kill its
 * process group (spawn_kill). 0 with *wstatus (waitpid's status), -ETIMEDOUT when it was killed,
 * another -errno when it cannot be waited for. */
int spawn_wait(pid_t pid, long long deadline, int *wstatus);

/* SIGKILL its process group and itself, and reap it. */
void spawn_kill(pid_t pid);

/* The exit status, or 128 + the signal number that ended it (the shell's convention). */
int spawn_exit_code(int wstatus);
