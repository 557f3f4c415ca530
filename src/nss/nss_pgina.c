/* libnss_pgina.so.2: the passwd database of users pginad's plugins know before their local account
 * exists (an LDAP user logging in over sshd: sshd asks getpwnam before PAM runs). A thin client
 * like nss-pam-ldapd's nss_ldap: each lookup is one GETPWNAM request on pginad's socket, which
 * asks the plugins (in [order] authentication order) and remembers answers briefly. nsswitch.conf:
 *
 *     passwd: files pgina
 *
 * Rules this module keeps, because it is loaded into every process that resolves a user:
 *   - bounded: one lookup never takes longer than NSS_PGINA_TIMEOUT_MS in all (connect, send,
 *     answer); pginad down, silent or "cannot tell" is NSS_STATUS_UNAVAIL, never a hang;
 *   - PGINA_NSS_DISABLE in the environment (pginad, its workers, and the tools LocalMachine runs:
 *     useradd must not see the user it is about to create) answers NSS_STATUS_UNAVAIL at once;
 *   - no global state, no signal handlers (sends use MSG_NOSIGNAL), sockets are O_CLOEXEC, no
 *     logging; only the _nss_pgina_* symbols are exported (nss_pgina.sym);
 *   - only names that pass valid_user_name are sent; an answer is believed only from a socket
 *     owned by root (SO_PEERCRED), only when it is well-formed, names the user (or uid) asked
 *     for, and is not uid 0 (files answers for root; a directory entry cannot become root);
 *   - enumeration (getent passwd, getent group) is empty: a directory is not listed into every
 *     process;
 *   - groups (nsswitch.conf "group: files pgina") are answered by name and gid, with their
 *     members, so a directory user's primary group has a name before any local group exists.
 *     There is no initgroups: a user's supplementary groups on this machine are the local ones
 *     LocalMachine syncs at the gateway (the admin's mapping rules), never a directory's list. */
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "proto.h"
#include "proto-request.h"
#include "util.h"

#define NSS_PGINA_TIMEOUT_MS 1500
#define NSS_PGINA_EXPORT __attribute__((visibility("default")))

/* The answer of pginad for one user, as strings of the result row. */
struct pw_answer {
        const char *name, *gecos, *home, *shell;
        uid_t uid;
        gid_t gid;
};

static int parse_id(const char *s, uint32_t *ret) {
        unsigned long long v;
        char *end = NULL;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v >= UINT32_MAX) /* (uid_t)-1 is "no id" */
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

/* A passwd field: no ':' or newline (a line of getent passwd must stay a line). */
static bool valid_field(const char *s) { return s && !strpbrk(s, ":\n"); }

static int answer_from_row(const struct proto_row *row, struct pw_answer *a) {
        uint32_t uid, gid;

        a->name = proto_row_get(row, "user");
        a->gecos = proto_row_get(row, "gecos");
        a->home = proto_row_get(row, "home");
        a->shell = proto_row_get(row, "shell");
        if (!valid_user_name(a->name) || !valid_field(a->gecos) || !valid_field(a->home) ||
            !valid_field(a->shell) || a->home[0] != '/' || a->shell[0] != '/' ||
            parse_id(proto_row_get(row, "uid"), &uid) < 0 ||
            parse_id(proto_row_get(row, "gid"), &gid) < 0)
                return -EBADMSG;
        if (uid == 0 || gid == 0)
                return -EPERM;
        a->uid = (uid_t)uid;
        a->gid = (gid_t)gid;
        return 0;
}

/* Is the peer of fd root (pginad)? A socket anyone else bound is not believed. */
static bool peer_is_root(int fd) {
        struct ucred cred;
        socklen_t len = sizeof cred;

        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof cred &&
               cred.uid == 0;
}

/* The request and its answer on a connected fd, until `deadline` (now_ms() clock). Split from
 * ask_pginad so tests/fuzz/fuzz_nss.c can play the daemon on a socketpair. */
static int nss_exchange(int fd, long long deadline, uint16_t type, const char *name, uint32_t id,
                        struct proto_result *result) {
        _cleanup_pbuf_ struct pbuf req = {0};
        int r;

        pbuf_init(&req);
        r = request_encode(&req, &(struct request){.type = type, .user = (char *)name, .id = id});
        if (r < 0)
                return r;
        r = proto_send(fd, &req);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_pbuf_ struct pbuf p = {0};
                long long left = deadline - now_ms();
                uint16_t got;

                if (left <= 0)
                        return -ETIMEDOUT;
                pbuf_init(&p);
                r = proto_recv(fd, (int)left, &got, &p);
                if (r < 0)
                        return r;
                if (got == PROTO_MSG_INFO)
                        continue; /* keepalive: the deadline still holds */
                if (got != PROTO_MSG_RESULT)
                        return -EBADMSG;
                return proto_result_parse(&p, result);
        }
}

/* One GETPWNAM or GETGRNAM request (name, or "" and an id), all of it bounded by
 * NSS_PGINA_TIMEOUT_MS. Returns 0 with *result filled, or -errno (daemon down, silent, or a
 * malformed answer). */
static int ask_pginad(uint16_t type, const char *name, uint32_t id, struct proto_result *result) {
        long long deadline = now_ms() + NSS_PGINA_TIMEOUT_MS;
        _cleanup_close_ int fd = -1;

        fd = proto_connect(PGINA_SOCKET_DEFAULT, NSS_PGINA_TIMEOUT_MS);
        if (fd < 0)
                return fd;
        if (!peer_is_root(fd))
                return -EPERM;
        return nss_exchange(fd, deadline, type, name, id, result);
}

/* Copy s into the caller's buffer; NULL when it does not fit. */
static char *buf_add(char **buf, size_t *left, const char *s) {
        size_t n = strlen(s) + 1;
        char *d = *buf;

        if (n > *left)
                return NULL;
        memcpy(d, s, n);
        *buf += n;
        *left -= n;
        return d;
}

static enum nss_status fill_passwd(const struct pw_answer *a, struct passwd *pw, char *buf,
                                   size_t buflen, int *err) {
        char *name, *passwd, *gecos, *dir, *shell;

        if (!(name = buf_add(&buf, &buflen, a->name)) || !(passwd = buf_add(&buf, &buflen, "x")) ||
            !(gecos = buf_add(&buf, &buflen, a->gecos)) || !(dir = buf_add(&buf, &buflen, a->home)) ||
            !(shell = buf_add(&buf, &buflen, a->shell))) {
                *err = ERANGE;
                return NSS_STATUS_TRYAGAIN;
        }
        *pw = (struct passwd){
                .pw_name = name,
                .pw_passwd = passwd,
                .pw_uid = a->uid,
                .pw_gid = a->gid,
                .pw_gecos = gecos,
                .pw_dir = dir,
                .pw_shell = shell,
        };
        return NSS_STATUS_SUCCESS;
}

/* pginad's answer to a lookup of name (or, name NULL, of uid) into pw. */
static enum nss_status passwd_from_result(const struct proto_result *res, const char *name,
                                          uid_t uid, struct passwd *pw, char *buf, size_t buflen,
                                          int *err) {
        struct pw_answer a;

        if (res->status == PROTO_NOT_FOUND)
                return NSS_STATUS_NOTFOUND;
        if (res->status != PROTO_OK || res->nrows != 1 || answer_from_row(&res->rows[0], &a) < 0)
                return NSS_STATUS_UNAVAIL; /* cannot tell (server down), or an answer not believed */
        if (name ? !streq(a.name, name) : a.uid != uid)
                return NSS_STATUS_NOTFOUND; /* not the user asked for */
        return fill_passwd(&a, pw, buf, buflen, err);
}

/* name: by name; else by uid. *errnop is glibc's errno: set last, after anything that could
 * change errno. */
/* What both lookups do before reading the answer: NOTFOUND for what pginad is never asked about
 * (an invalid name, root, -1), UNAVAIL when disabled or pginad cannot answer (down, silent, or
 * not root); SUCCESS with *res filled otherwise. */
static enum nss_status ask_entry(uint16_t type, const char *name, uint32_t id,
                                 struct proto_result *res) {
        if (getenv("PGINA_NSS_DISABLE"))
                return NSS_STATUS_UNAVAIL;
        if ((name && !valid_user_name(name)) || (!name && (id == 0 || id == (uint32_t)-1)))
                return NSS_STATUS_NOTFOUND;
        if (ask_pginad(type, name ? name : "", name ? 0 : id, res) < 0)
                return NSS_STATUS_UNAVAIL;
        return NSS_STATUS_SUCCESS;
}

static enum nss_status lookup(const char *name, uid_t uid, struct passwd *pw, char *buf,
                              size_t buflen, int *errnop) {
        struct proto_result res = {0};
        enum nss_status st;
        int err = ENOENT;

        st = ask_entry(PROTO_REQ_GETPWNAM, name, (uint32_t)uid, &res);
        if (st == NSS_STATUS_SUCCESS)
                st = passwd_from_result(&res, name, uid, pw, buf, buflen, &err);
        proto_result_free(&res);
        if (st != NSS_STATUS_SUCCESS)
                *errnop = err;
        return st;
}

NSS_PGINA_EXPORT enum nss_status _nss_pgina_getpwnam_r(const char *name, struct passwd *pw,
                                                       char *buf, size_t buflen, int *errnop) {
        if (!name) {
                *errnop = ENOENT;
                return NSS_STATUS_NOTFOUND;
        }
        return lookup(name, 0, pw, buf, buflen, errnop);
}

NSS_PGINA_EXPORT enum nss_status _nss_pgina_getpwuid_r(uid_t uid, struct passwd *pw, char *buf,
                                                       size_t buflen, int *errnop) {
        return lookup(NULL, uid, pw, buf, buflen, errnop);
}

/* Enumeration: empty. */
NSS_PGINA_EXPORT enum nss_status _nss_pgina_setpwent(int stayopen) { return NSS_STATUS_SUCCESS; }

NSS_PGINA_EXPORT enum nss_status _nss_pgina_endpwent(void) { return NSS_STATUS_SUCCESS; }

NSS_PGINA_EXPORT enum nss_status _nss_pgina_getpwent_r(struct passwd *pw, char *buf, size_t buflen,
                                                       int *errnop) {
        *errnop = ENOENT;
        return NSS_STATUS_NOTFOUND;
}

/* ---- groups ---- */

/* Fill gr from a GETGRNAM answer row (group, gid, member...). -EBADMSG for a row not believed,
 * -ERANGE when buf is too small. */
static int fill_group(const struct proto_row *row, struct group *gr, char *buf, size_t buflen) {
        const char *name = proto_row_get(row, "group");
        size_t nmem = 0, align;
        char **mem, *gname, *passwd;
        uint32_t gid;

        if (!valid_user_name(name) || parse_id(proto_row_get(row, "gid"), &gid) < 0)
                return -EBADMSG;
        if (gid == 0)
                return -EPERM;
        for (size_t i = 0; i < row->n; i++)
                if (streq(row->keys[i], "member")) {
                        if (!valid_user_name(row->values[i]))
                                return -EBADMSG;
                        nmem++;
                }
        /* the member pointer array first, aligned, then the strings */
        align = (sizeof(char *) - (uintptr_t)buf % sizeof(char *)) % sizeof(char *);
        if (buflen < align || (buflen - align) / sizeof(char *) < nmem + 1)
                return -ERANGE;
        mem = (char **)(void *)(buf + align);
        buf += align + (nmem + 1) * sizeof(char *);
        buflen -= align + (nmem + 1) * sizeof(char *);
        if (!(gname = buf_add(&buf, &buflen, name)) || !(passwd = buf_add(&buf, &buflen, "x")))
                return -ERANGE;
        nmem = 0;
        for (size_t i = 0; i < row->n; i++)
                if (streq(row->keys[i], "member") &&
                    !(mem[nmem++] = buf_add(&buf, &buflen, row->values[i])))
                        return -ERANGE;
        mem[nmem] = NULL;
        *gr = (struct group){.gr_name = gname, .gr_passwd = passwd, .gr_gid = gid, .gr_mem = mem};
        return 0;
}

/* pginad's answer to a lookup of group name (or, name NULL, of gid) into gr. */
static enum nss_status group_from_result(const struct proto_result *res, const char *name,
                                         gid_t gid, struct group *gr, char *buf, size_t buflen,
                                         int *err) {
        int r;

        if (res->status == PROTO_NOT_FOUND)
                return NSS_STATUS_NOTFOUND;
        if (res->status != PROTO_OK || res->nrows != 1)
                return NSS_STATUS_UNAVAIL;
        r = fill_group(&res->rows[0], gr, buf, buflen);
        if (r == -ERANGE) {
                *err = ERANGE;
                return NSS_STATUS_TRYAGAIN;
        }
        if (r < 0)
                return NSS_STATUS_UNAVAIL; /* an answer not believed */
        if (name ? !streq(gr->gr_name, name) : gr->gr_gid != gid)
                return NSS_STATUS_NOTFOUND; /* not the group asked for */
        return NSS_STATUS_SUCCESS;
}

/* name: by name; else by gid. As lookup() for users. */
static enum nss_status lookup_group(const char *name, gid_t gid, struct group *gr, char *buf,
                                    size_t buflen, int *errnop) {
        struct proto_result res = {0};
        enum nss_status st;
        int err = ENOENT;

        st = ask_entry(PROTO_REQ_GETGRNAM, name, (uint32_t)gid, &res);
        if (st == NSS_STATUS_SUCCESS)
                st = group_from_result(&res, name, gid, gr, buf, buflen, &err);
        proto_result_free(&res);
        if (st != NSS_STATUS_SUCCESS)
                *errnop = err;
        return st;
}

NSS_PGINA_EXPORT enum nss_status _nss_pgina_getgrnam_r(const char *name, struct group *gr,
                                                       char *buf, size_t buflen, int *errnop) {
        if (!name) {
                *errnop = ENOENT;
                return NSS_STATUS_NOTFOUND;
        }
        return lookup_group(name, 0, gr, buf, buflen, errnop);
}

NSS_PGINA_EXPORT enum nss_status _nss_pgina_getgrgid_r(gid_t gid, struct group *gr, char *buf,
                                                       size_t buflen, int *errnop) {
        return lookup_group(NULL, gid, gr, buf, buflen, errnop);
}
