/* pgSMB gateway and logoff: the home share (pGina's HomeDir) mounted on its mount point
 * (HomeDirDrive) for the session, and unmounted at logoff. Root does this inside a directory the
 * user owns, so nothing is done by name: the mount point is opened from a descriptor of the home
 * one component at a time, with no symbolic link followed and no mount crossed (openat2), and
 * mount.cifs mounts the share in a private mount namespace of a child, whose detached copy
 * (open_tree) is moved onto that very descriptor (move_mount). A user who swaps ~/H or ~/a for a
 * link to /etc between two logons gets a log line, not a share mounted over /etc. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <pgina/run.h>
#include "pgsmb.h"
#include <pgina/util.h>

#define MOUNT_CHILD_TIMEOUT_MS (PGINA_RUN_TIMEOUT_MS + 5000) /* mount.cifs is bounded by pgina_run_tool */
#define STAGE_DIR "/tmp/pgina-share" /* inside the child's private tmpfs on /tmp */

static const char *mount_helper(void) {
        static const char *const paths[] = {"/sbin/mount.cifs", "/usr/sbin/mount.cifs"};

        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

/* smb://server/share/dir or \\server\share\dir -> //server/share/dir (mount.cifs's form). */
static int cifs_source(const char *share, char *out, size_t len) {
        const char *p = strncmp(share, "smb://", 6) == 0 ? share + 6
                        : (share[0] == '\\' && share[1] == '\\') ? share + 2 : NULL;
        size_t o;

        if (!p || !*p)
                return -EINVAL;
        o = (size_t)snprintf(out, len, "//");
        for (; *p && o + 1 < len; p++) {
                if (*p == ',' || *p == '\n')
                        return -EINVAL; /* would split mount's option or line parsing */
                out[o++] = *p == '\\' ? '/' : *p;
        }
        out[o] = 0;
        return 0;
}

/* ---- the mount point, by descriptor ---- */

static int openat2_dir(int dirfd, const char *name, uint64_t resolve) {
        struct open_how how = {
                .flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                .resolve = resolve,
        };
        long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof how);

        return fd < 0 ? -errno : (int)fd;
}

static const char *open_error(int r) {
        switch (r) {
        case -ELOOP:
                return "is a symbolic link";
        case -ENOTDIR:
                return "is not a directory";
        case -EXDEV:
                return "is (or is below) another mount";
        default:
                return strerror(-r);
        }
}

/* The next component `name` below dirfd, created when missing (mode, then owned by uid:gid when
 * own is set). Never follows a symlink, never leaves dirfd, never crosses a mount. The result
 * must be a directory owned by want_uid (or by root when root_ok). */
static int component_open(int dirfd, const char *name, bool create, mode_t mode, bool own, uid_t uid,
                          gid_t gid, bool root_ok, char *why, size_t whylen) {
        const uint64_t resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
        bool made = false;
        struct stat st;
        int fd = openat2_dir(dirfd, name, resolve);

        if (fd == -ENOENT && create) {
                if (mkdirat(dirfd, name, mode) == 0)
                        made = true;
                else if (errno != EEXIST) {
                        snprintf(why, whylen, "cannot create '%s': %s", name, strerror(errno));
                        return -errno;
                }
                fd = openat2_dir(dirfd, name, resolve);
        }
        if (fd < 0) {
                struct stat lst;
                /* O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: name the link as such */
                if (fd == -ENOTDIR && fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode))
                        fd = -ELOOP;
                snprintf(why, whylen, "'%s' %s", name, open_error(fd));
                return fd;
        }
        /* Whoever owns it now: if the user swapped our new directory for their own, it is theirs
         * and inside their home, which is all that matters. */
        if (made && own && fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                snprintf(why, whylen, "cannot give '%s' to the user: %s", name, strerror(errno));
                close(fd);
                return -EPERM;
        }
        if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
                snprintf(why, whylen, "'%s' is not a directory", name);
                close(fd);
                return -ENOTDIR;
        }
        if (st.st_uid != uid && !(root_ok && st.st_uid == 0)) {
                snprintf(why, whylen, "'%s' is owned by uid %u, not by the user", name, (unsigned)st.st_uid);
                close(fd);
                return -EPERM;
        }
        return fd;
}

/* The parents of a mount point: every component of rel but the last, walked below dirfd (no "",
 * "." or ".."). In the home each is the user's (made 0700 by root, then given to them, when
 * create is set); elsewhere (an admin's absolute path) each is root's and writable by no one else.
 * Returns the parent's descriptor and points *last at the last component (inside *copy). */
static int parents_open(int dirfd, char *rel, bool in_home, bool create, uid_t uid, gid_t gid,
                        const char **last, char *why, size_t whylen) {
        char *save = NULL, *name, *next;
        int cur, fd;

        if ((cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3)) < 0)
                return -errno;
        for (name = strtok_r(rel, "/", &save); name; name = next) {
                struct stat st;

                if (streq(name, ".") || streq(name, "..")) {
                        snprintf(why, whylen, "'%s' is not allowed in a mount point", name);
                        close(cur);
                        return -EINVAL;
                }
                next = strtok_r(NULL, "/", &save);
                if (!next) {
                        *last = name;
                        return cur;
                }
                if (in_home)
                        fd = component_open(cur, name, create, 0700, true, uid, gid, false, why, whylen);
                else
                        fd = component_open(cur, name, false, 0, false, 0, 0, true, why, whylen);
                close(cur);
                if (fd < 0)
                        return fd;
                if (!in_home && (fstat(fd, &st) < 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))) {
                        snprintf(why, whylen, "'%s' is writable by others than root", name);
                        close(fd);
                        return -EPERM;
                }
                cur = fd;
        }
        close(cur);
        snprintf(why, whylen, "the mount point is empty");
        return -EINVAL;
}

/* The directory a mount point lies in, by the rules above; *in_home says whose rules. */
static int mount_parent_open(const char *home, const char *mount, bool from_attr, uid_t uid, gid_t gid,
                             bool create, char **copy, const char **last, bool *in_home, char *why,
                             size_t whylen) {
        _cleanup_close_ int base = -1;
        struct stat st;

        if (uid == 0) {
                snprintf(why, whylen, "no mount point for a uid 0 account");
                return -EPERM;
        }
        *in_home = mount[0] != '/';
        if (!*in_home && from_attr) {
                snprintf(why, whylen, "a mount point from the user's directory entry must lie inside the home");
                return -EPERM;
        }
        if (*in_home) {
                /* The home itself: its parents are the admin's; it must be the user's directory. */
                base = open(home, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (base < 0) {
                        snprintf(why, whylen, "cannot open the home %s: %s", home, strerror(errno));
                        return -errno;
                }
                if (fstat(base, &st) < 0 || st.st_uid != uid) {
                        snprintf(why, whylen, "the home %s is not owned by the user", home);
                        return -EPERM;
                }
        } else if ((base = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
                return -errno;
        if (!(*copy = strdup(mount)))
                return -ENOMEM;
        return parents_open(base, *copy, *in_home, create, uid, gid, last, why, whylen);
}

int pgsmb_mount_point_open(const char *home, const char *mount, bool from_attr, uid_t uid, gid_t gid,
                           char *why, size_t whylen) {
        _cleanup_free_ char *copy = NULL;
        _cleanup_close_ int parent = -1, cur = -1;
        const char *last = NULL;
        bool in_home;

        parent = mount_parent_open(home, mount, from_attr, uid, gid, true, &copy, &last, &in_home, why, whylen);
        if (parent < 0)
                return parent;
        if (streq(last, ".") || streq(last, "..")) {
                snprintf(why, whylen, "'%s' is not allowed in a mount point", last);
                return -EINVAL;
        }
        /* Mounted already (the share, from a session still open or an earlier logon)? */
        cur = openat2_dir(parent, last, RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        if (cur >= 0 && pgsmb_fd_is_mount(parent, cur))
                return -EALREADY;
        /* The mount point: the user's in the home; made by root (root's or the user's) elsewhere. */
        return component_open(parent, last, true, in_home ? 0700 : 0755, in_home, uid, gid, !in_home, why, whylen);
}

/* ---- mounting ---- */

static int fd_send(int sock, int fd, const char *text) {
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text) + 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

        if (fd >= 0) {
                struct cmsghdr *cm;
                m.msg_control = cbuf;
                m.msg_controllen = sizeof cbuf;
                cm = CMSG_FIRSTHDR(&m);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        }
        return sendmsg(sock, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* The child: a private mount namespace, a private tmpfs on /tmp, mount.cifs on a directory there,
 * and a detached copy of that mount (open_tree) sent to the parent. The namespace dies with the
 * child, so a crash leaves no mount behind anywhere. A plain fork, not spawn_start: what runs in
 * it is our own code around the mount (unshare, open_tree, the descriptor's passing), not a
 * program; mount.cifs itself is started from it through pgina_run, the one runner. */
static _Noreturn void mount_child(int sock, const char *src, const char *opts, const char *pw) {
        struct pgina_run_result res;
        char msg[300];
        int r, tree;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("pgina-stage", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0 ||
            mkdir(STAGE_DIR, 0700) < 0) {
                snprintf(msg, sizeof msg, "cannot prepare a private mount namespace: %s", strerror(errno));
                (void)fd_send(sock, -1, msg);
                _exit(1);
        }
        r = pgina_run_tool_env((const char *const[]){"mount.cifs", src, STAGE_DIR, "-o", opts, NULL}, "PASSWD_FD=0",
                       pw ? pw : "\n", pw ? strlen(pw) : 1, &res);
        if (r < 0 || res.status != 0) {
                snprintf(msg, sizeof msg, "%s", r < 0 ? strerror(-r) : res.err[0] ? res.err : "non-zero exit status");
                (void)fd_send(sock, -1, msg);
                _exit(1);
        }
        tree = open_tree(AT_FDCWD, STAGE_DIR, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0) {
                snprintf(msg, sizeof msg, "open_tree: %s", strerror(errno));
                (void)fd_send(sock, -1, msg);
                _exit(1);
        }
        _exit(fd_send(sock, tree, "") < 0 ? 1 : 0);
}

/* Receive the child's answer: a mount descriptor (>= 0), or -errno with why. */
static int mount_answer(int sock, pid_t pid, char *why, size_t whylen) {
        char cbuf[CMSG_SPACE(sizeof(int))], text[300] = "";
        struct iovec iov = {.iov_base = text, .iov_len = sizeof text - 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct pollfd p = {.fd = sock, .events = POLLIN};
        struct cmsghdr *cm;
        ssize_t n;
        int fd = -1;

        if (poll(&p, 1, MOUNT_CHILD_TIMEOUT_MS) <= 0) {
                kill(pid, SIGKILL);
                snprintf(why, whylen, "mount.cifs did not finish in time");
                return -ETIMEDOUT;
        }
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        if (n <= 0) {
                snprintf(why, whylen, "the mount child ended without an answer");
                return -EIO;
        }
        for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
                    cm->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(&fd, CMSG_DATA(cm), sizeof fd);
        if (fd < 0) {
                snprintf(why, whylen, "%s", text[0] ? text : "no mount was made");
                return -EIO;
        }
        return fd;
}

/* Mount src (mount.cifs's //server/share) with opts onto the directory target_fd. pw (may be
 * NULL) goes to mount.cifs on a pipe (PASSWD_FD=0), never on argv, in the environment or a file. */
static int share_mount(int target_fd, const char *src, const char *opts, const char *pw, char *why,
                       size_t whylen) {
        _cleanup_close_ int tree = -1;
        int sv[2], r;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (pid == 0) {
                close(sv[0]);
                mount_child(sv[1], src, opts, pw);
        }
        close(sv[1]);
        tree = mount_answer(sv[0], pid, why, whylen);
        close(sv[0]);
        (void)waitpid(pid, NULL, 0);
        if (tree < 0)
                return tree;
        if (move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
                r = -errno;
                snprintf(why, whylen, "move_mount: %s", strerror(errno));
                return r;
        }
        return 0;
}

void pgsmb_home_share_mount(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_cfg *c, uid_t uid,
                            gid_t gid) {
        char share[PGINA_VALUE_MAX], mount[PGINA_VALUE_MAX], src[PGINA_VALUE_MAX], why[512] = "";
        char opts[1024];
        const char *user = pgina_user_name(u);
        _cleanup_free_ char *pw = NULL;
        _cleanup_close_ int target = -1;
        bool from_attr = false;
        int r;

        if (pgsmb_session_value(ctx, u, "home_share", "usri4_home_dir", share, sizeof share, NULL) <= 0 ||
            pgsmb_session_value(ctx, u, "home_mount", "usri4_home_dir_drive", mount, sizeof mount, &from_attr) <= 0)
                return;
        if (!mount_helper()) {
                pgina_log(ctx, LOG_INFO, "%s: no mount.cifs (cifs-utils): home share exported, not mounted", user);
                return;
        }
        if (cifs_source(share, src, sizeof src) < 0 || strchr(c->cred_user, ',') || strchr(c->cred_domain, ',')) {
                pgina_log(ctx, LOG_WARNING, "%s: home share %s unusable (not smb:// or \\\\server\\share, or a ',' in it "
                          "or in the credentials): not mounted", user, share);
                return;
        }
        target = pgsmb_mount_point_open(c->home, mount, from_attr, uid, gid, why, sizeof why);
        if (target == -EALREADY) {
                pgina_log(ctx, LOG_INFO, "%s: something is mounted on %s already: home share not mounted again", user,
                          mount);
                return;
        }
        if (target < 0) {
                pgina_log(ctx, LOG_WARNING, "%s: home share not mounted: mount point %s%s refused: %s", user, mount,
                          from_attr ? " (usri4_home_dir_drive)" : "", why);
                return;
        }
        snprintf(opts, sizeof opts, "username=%s%s%s,uid=%u,gid=%u,file_mode=0600,dir_mode=0700,nosuid,nodev",
                 c->cred_user, c->cred_domain[0] ? ",domain=" : "", c->cred_domain, (unsigned)uid,
                 (unsigned)gid);
        if (c->cred_password && asprintf(&pw, "%s\n", c->cred_password->data) < 0)
                pw = NULL;
        r = share_mount(target, src, opts, pw, why, sizeof why);
        if (pw)
                explicit_bzero(pw, strlen(pw));
        if (r < 0)
                pgina_log(ctx, LOG_WARNING, "%s: mounting %s on %s failed: %s", user, src, mount, why);
        else
                pgina_log(ctx, LOG_INFO, "%s: home share %s mounted on %s", user, src, mount);
}

/* The mount on the mount point, if any: its parent opened by the gateway's rules (nothing
 * created), the last component opened crossing into the mount (its root is what is unmounted),
 * and detached lazily through that descriptor, never by name. */
void pgsmb_logoff_unmount(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_cfg *c, uid_t uid,
                          gid_t gid) {
        char mount[PGINA_VALUE_MAX], why[512] = "", proc[64];
        _cleanup_free_ char *copy = NULL;
        _cleanup_close_ int parent = -1, fd = -1;
        const char *last = NULL;
        bool from_attr = false, in_home;

        if (pgsmb_session_value(ctx, u, "home_mount", "usri4_home_dir_drive", mount, sizeof mount, &from_attr) <= 0)
                return;
        parent = mount_parent_open(c->home, mount, from_attr, uid, gid, false, &copy, &last, &in_home, why, sizeof why);
        if (parent < 0)
                return; /* nothing the gateway mounted can be there */
        fd = openat2_dir(parent, last, RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        if (fd < 0 || !pgsmb_fd_is_mount(parent, fd))
                return;
        /* Lazily: a process of the user that still has it open must not keep the logoff waiting. */
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (umount2(proc, MNT_DETACH) < 0)
                pgina_log(ctx, LOG_WARNING, "%s: cannot unmount %s: %m", c->user, mount);
        else
                pgina_log(ctx, LOG_INFO, "%s: home share unmounted from %s", c->user, mount);
}

/* fd is the root of a mount of its own (its mount id differs from its parent's). */
bool pgsmb_fd_is_mount(int parent, int fd) {
        struct statx a, b;

        if (statx(parent, "", AT_EMPTY_PATH, STATX_MNT_ID, &a) < 0 ||
            statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &b) < 0)
                return false;
        return (a.stx_mask & STATX_MNT_ID) && (b.stx_mask & STATX_MNT_ID) && a.stx_mnt_id != b.stx_mnt_id;
}
