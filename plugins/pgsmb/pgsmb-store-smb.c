/* The smb:// profile store, through libsmbclient: one SMBCCTX per store_open (so a forked worker
 * opens its own), SMB2 or newer, the caller's credentials handed over only in the auth
 * callback, every request bounded by smbc_setTimeout.
 *
 * What libsmbclient (Samba 4.17) does, and what this file does about it:
 * - smbc_rename never replaces atomically: it renames without ReplaceIfExists and, when the
 *   target exists, unlinks it and renames again (SMBC_rename_ctx), so a failure between the two
 *   loses the old target. store_rename(replace) therefore moves the old target aside to a fresh
 *   name first and moves it back if the rename fails; readers may see no target in between (two
 *   round trips). Without replace, the target is checked first; a file created by someone else
 *   between that check and the rename would be replaced (smbc_rename offers nothing better).
 * - smbc_setTimeout bounds each request (negotiate, session setup, read, write…), but the TCP
 *   connect has its own 20 s limit inside cli_connect_nb; store_open probes the port itself with
 *   the store's timeout first, so an unreachable server fails within it.
 * - After a request timed out, libsmbclient keeps the connection, and every later request on it
 *   (closing the file, and the close and logoff of smbc_free_context) waits out its own timeout
 *   again: a server stopped mid-read cost 3 timeouts. smb_break shuts the receiving side of
 *   libsmbclient's socket (found by its address pair after connecting), so those fail at once,
 *   and the store fails fast with -ETIMEDOUT until it is closed and opened again. */
#include <errno.h>
#include <fcntl.h>
#include <libsmbclient.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgsmb-store-internal.h"
#include "pgsmb-store-smb-url.h"
#include <pgina/util.h>

#define SMB_AUTH_MAX 255 /* libsmbclient's auth buffers are 256-byte fstrings */
#define SMB_CHUNK (8u << 20) /* SMB3 max read/write of Samba and Windows */

/* One TCP connection libsmbclient made, identified by both ends: the fd number alone could
 * have been reused by the time we look again. */
struct smb_conn {
        int fd;
        struct sockaddr_storage local, peer;
        socklen_t local_len, peer_len;
};

struct smb_store {
        struct store s;
        SMBCCTX *ctx;
        char *base; /* "smb://server/share[/dir]", %-encoded, for libsmbclient */
        char *server;
        uint16_t port; /* 0 = libsmbclient's default (445, then 139) */
        char *user;
        char *domain;
        const char *password; /* the caller's memory: see store_smb_open */
        bool broken; /* a request timed out: the connection is gone */
        struct smb_conn conns[4]; /* libsmbclient's sockets to the server, for smb_break */
        size_t n_conns;
        smbc_check_server_fn check_default; /* libsmbclient's, behind check_server */
        long long checked_at; /* the connection was last known alive (now_ms) */
        /* store_open_listing's listing, for the caller's first call (see smb_pre_*) */
        char *pre_rel;
        struct store_entry *pre_v;
        size_t pre_n;
};

struct smb_file {
        struct store_file f;
        SMBCFILE *fh;
        uint64_t size, pos; /* reading: the size fstat saw at open, and how far we are */
        uint64_t written; /* writing: the bytes written (store_reread reads that far) */
        bool reread_end; /* store_reread: a short read saw the end; the next says 0 at once */
};

static struct smb_store *SS(struct store *s) { return (struct smb_store *)s; }

static void auth_copy(char *dst, int len, const char *src) {
        if (len <= 0)
                return;
        if (!src || strlen(src) >= (size_t)len)
                src = ""; /* refused in store_smb_open; never truncate a password */
        memcpy(dst, src, strlen(src) + 1);
}

static void auth_cb(SMBCCTX *ctx, const char *srv, const char *shr, char *wg, int wglen, char *un,
                    int unlen, char *pw, int pwlen) {
        struct smb_store *ss = smbc_getOptionUserData(ctx);

        if (ss->domain)
                auth_copy(wg, wglen, ss->domain);
        auth_copy(un, unlen, ss->user);
        auth_copy(pw, pwlen, ss->password);
}

/* libsmbclient's debug lines would go to stdout, which belongs to whoever forked us. */
static void log_cb(void *priv, int level, const char *msg) {}

/* The libsmbclient URL of rel ("" = the root). NULL (and the message set) on error. */
static char *smb_path(struct store *s, const char *rel, int *r) {
        struct smb_store *ss = SS(s);
        char *u = strdup(ss->base);
        size_t len = u ? strlen(u) : 0;

        *r = 0;
        if (!smb_name_ok(rel)) {
                free(u);
                *r = store_fail(s, -EINVAL, rel, "name not allowed on an SMB share");
                return NULL;
        }
        if (!u || (*rel && (smb_append_encoded(&u, &len, "/") < 0 || smb_append_encoded(&u, &len, rel) < 0))) {
                free(u);
                *r = store_fail(s, -ENOMEM, rel, NULL);
                return NULL;
        }
        return u;
}

/* Socket fds of this process that are connected (inet), as a bitmap of fd numbers. */
#define FD_SCAN_MAX 4096
static void socket_fds(unsigned char *set) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        memset(set, 0, FD_SCAN_MAX / 8);
        if (!d)
                return;
        while ((de = readdir(d))) {
                struct sockaddr_storage sa;
                socklen_t len = sizeof sa;
                char *end;
                long fd = strtol(de->d_name, &end, 10);
                struct stat st;

                if (*end || end == de->d_name || fd < 0 || fd >= FD_SCAN_MAX || fd == dirfd(d))
                        continue;
                if (fstat((int)fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
                    getpeername((int)fd, (struct sockaddr *)&sa, &len) < 0 ||
                    (sa.ss_family != AF_INET && sa.ss_family != AF_INET6))
                        continue;
                set[fd / 8] |= (unsigned char)(1u << (fd % 8));
        }
        closedir(d);
}

/* Remember the connections libsmbclient opened since `before` was taken. */
static void record_conns(struct smb_store *ss, const unsigned char *before) {
        unsigned char now_set[FD_SCAN_MAX / 8];

        socket_fds(now_set);
        for (int fd = 0; fd < FD_SCAN_MAX && ss->n_conns < ELEMENTSOF(ss->conns); fd++) {
                struct smb_conn *c = &ss->conns[ss->n_conns];

                if (!(now_set[fd / 8] & (1u << (fd % 8))) || (before[fd / 8] & (1u << (fd % 8))))
                        continue;
                c->fd = fd;
                c->local_len = c->peer_len = sizeof(struct sockaddr_storage);
                if (getsockname(fd, (struct sockaddr *)&c->local, &c->local_len) == 0 &&
                    getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) == 0)
                        ss->n_conns++;
        }
}

/* A request timed out. libsmbclient keeps the connection and would wait out the timeout again
 * for every later request, closing handles and logging off at smbc_free_context included. Shut
 * the receiving side of its sockets: the next wait sees end of file at once and libsmbclient
 * drops the connection. (SHUT_RD only: a write to a fully shut socket would raise SIGPIPE.) */
/* Is fd still the connection we recorded (not closed, its number not reused)? */
static bool conn_same(const struct smb_conn *c) {
        struct sockaddr_storage l, p;
        socklen_t ll = sizeof l, pl = sizeof p;

        return getsockname(c->fd, (struct sockaddr *)&l, &ll) == 0 &&
               getpeername(c->fd, (struct sockaddr *)&p, &pl) == 0 && ll == c->local_len &&
               pl == c->peer_len && memcmp(&l, &c->local, ll) == 0 && memcmp(&p, &c->peer, pl) == 0;
}

static void smb_break(struct smb_store *ss) {
        ss->broken = true;
        for (size_t i = 0; i < ss->n_conns; i++)
                if (conn_same(&ss->conns[i]))
                        (void)shutdown(ss->conns[i].fd, SHUT_RD);
        ss->n_conns = 0;
}

/* libsmbclient checks a cached connection before each use; its own check sends an SMB echo (a
 * round trip) the first time and then once per timeout. Ours looks at the socket: our one
 * connection, used within the timeout, still open, nothing unread and no end of file from the
 * server is alive. Anything else (several connections, data waiting, a hangup, a connection
 * idle long enough for a firewall to have forgotten it) is left to libsmbclient's check. */
static int check_server(SMBCCTX *ctx, SMBCSRV *srv) {
        struct smb_store *ss = smbc_getOptionUserData(ctx);
        long long now = now_ms();
        struct pollfd pfd;
        int r;

        if (ss->n_conns == 1 && now - ss->checked_at < 1000LL * ss->s.timeout_s &&
            conn_same(&ss->conns[0])) {
                pfd = (struct pollfd){.fd = ss->conns[0].fd, .events = POLLIN | POLLRDHUP};
                if (poll(&pfd, 1, 0) == 0) {
                        ss->checked_at = now;
                        return 0;
                }
        }
        r = ss->check_default(ctx, srv);
        if (r == 0)
                ss->checked_at = now;
        return r;
}

/* After a failed libsmbclient call: record errno, break the store on a timeout. */
static int smb_fail(struct store *s, const char *rel, const char *what) {
        int e = errno ? errno : EIO;

        if (e == ETIMEDOUT)
                smb_break(SS(s));
        return store_fail(s, -e, rel, "%s", what ? what : "");
}

#define SMB_BEGIN(s, rel)                                                                          \
        do {                                                                                       \
                if (SS(s)->broken)                                                                 \
                        return store_fail((s), -ETIMEDOUT, (rel),                                  \
                                          "the server stopped answering earlier; reconnect");      \
        } while (0)

/* The listing store_open_listing connected with is the caller's for its first call: a listing
 * of the same folder gets it, a mkdirs of it costs nothing; any other call drops it, so nothing
 * ever sees a listing older than a change made through this store. */
static void smb_pre_drop(struct smb_store *ss) {
        store_entries_free(ss->pre_v, ss->pre_n);
        free(ss->pre_rel);
        ss->pre_rel = NULL;
        ss->pre_v = NULL;
        ss->pre_n = 0;
}

static bool smb_pre_is(const struct smb_store *ss, const char *rel) {
        return ss->pre_rel && streq(ss->pre_rel, rel);
}

static int smb_stat_url(struct store *s, const char *url, struct stat *st) {
        errno = 0;
        return smbc_getFunctionStat(SS(s)->ctx)(SS(s)->ctx, url, st);
}

static int smb_mkdirs(struct store *s, const char *rel) {
        _cleanup_free_ char *u = NULL;
        size_t blen = strlen(SS(s)->base);
        int r;

        SMB_BEGIN(s, rel);
        if (smb_pre_is(SS(s), rel))
                return 0; /* just listed: it is a folder */
        smb_pre_drop(SS(s));
        u = smb_path(s, rel, &r);
        if (!u)
                return r;
        /* mkdir every prefix: "a", "a/b", … (EEXIST is fine) */
        for (char *p = u + blen + 1; *rel; p++) {
                if (*p != '/' && *p != 0)
                        continue;
                char c = *p;
                struct stat st;

                *p = 0;
                errno = 0;
                if (smbc_getFunctionMkdir(SS(s)->ctx)(SS(s)->ctx, u, 0700) < 0) {
                        if (errno != EEXIST)
                                return smb_fail(s, rel, "mkdir");
                        if (smb_stat_url(s, u, &st) < 0)
                                return smb_fail(s, rel, NULL);
                        if (!S_ISDIR(st.st_mode))
                                return store_fail(s, -ENOTDIR, rel, NULL);
                }
                *p = c;
                if (!c)
                        break;
        }
        return 0;
}

static int smb_stat(struct store *s, const char *rel, struct store_stat *ret) {
        _cleanup_free_ char *u = NULL;
        struct stat st;
        int r;

        SMB_BEGIN(s, rel);
        smb_pre_drop(SS(s));
        u = smb_path(s, rel, &r);
        if (!u)
                return r;
        if (smb_stat_url(s, u, &st) < 0)
                return smb_fail(s, rel, NULL);
        ret->size = (uint64_t)st.st_size;
        ret->mtime = (int64_t)st.st_mtime;
        ret->is_dir = S_ISDIR(st.st_mode);
        return 0;
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const struct store_entry *)a)->name, ((const struct store_entry *)b)->name);
}

static int smb_list(struct store *s, const char *rel, struct store_entry **ret, size_t *ret_n) {
        SMBCCTX *ctx = SS(s)->ctx;
        _cleanup_free_ char *u = NULL;
        const struct libsmb_file_info *fi;
        struct store_entry *v = NULL;
        size_t n = 0, cap = 0;
        SMBCFILE *dh;
        struct stat st;
        int r = 0;

        SMB_BEGIN(s, rel);
        if (smb_pre_is(SS(s), rel)) {
                *ret = SS(s)->pre_v;
                *ret_n = SS(s)->pre_n;
                SS(s)->pre_v = NULL;
                SS(s)->pre_n = 0;
                smb_pre_drop(SS(s));
                return (int)(*ret_n > INT_MAX ? INT_MAX : *ret_n);
        }
        smb_pre_drop(SS(s));
        u = smb_path(s, rel, &r);
        if (!u)
                return r;
        errno = 0;
        dh = smbc_getFunctionOpendir(ctx)(ctx, u);
        if (!dh)
                return smb_fail(s, rel, NULL);
        for (;;) {
                errno = 0;
                fi = smbc_getFunctionReaddirPlus2(ctx)(ctx, dh, &st);
                if (!fi) {
                        if (errno != 0) /* 0 at the end of the directory */
                                r = smb_fail(s, rel, "readdir");
                        break;
                }
                if (streq(fi->name, ".") || streq(fi->name, ".."))
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct store_entry *nv = reallocarray(v, ncap, sizeof *v);

                        if (!nv) {
                                r = store_fail(s, -ENOMEM, rel, NULL);
                                break;
                        }
                        v = nv;
                        cap = ncap;
                }
                v[n].name = strdup(fi->name);
                if (!v[n].name) {
                        r = store_fail(s, -ENOMEM, rel, NULL);
                        break;
                }
                v[n].size = (uint64_t)st.st_size;
                v[n].mtime = (int64_t)st.st_mtime;
                v[n].mtime_ns = (uint32_t)st.st_mtim.tv_nsec;
                v[n].is_dir = S_ISDIR(st.st_mode);
                n++;
        }
        if (!SS(s)->broken)
                smbc_getFunctionClosedir(ctx)(ctx, dh);
        if (r < 0) {
                store_entries_free(v, n);
                return r;
        }
        if (n > 0)
                qsort(v, n, sizeof *v, entry_cmp);
        *ret = v;
        *ret_n = n;
        return (int)(n > INT_MAX ? INT_MAX : n);
}

static int smb_open_flags(struct store *s, const char *rel, int flags, mode_t mode, bool writing,
                          struct store_file **ret) {
        SMBCCTX *ctx = SS(s)->ctx;
        _cleanup_free_ char *u = NULL;
        struct smb_file *f;
        SMBCFILE *fh;
        int r;

        SMB_BEGIN(s, rel);
        smb_pre_drop(SS(s));
        u = smb_path(s, rel, &r);
        if (!u)
                return r;
        errno = 0;
        fh = smbc_getFunctionOpen(ctx)(ctx, u, flags, mode);
        if (!fh)
                return smb_fail(s, rel, NULL);
        f = calloc(1, sizeof *f);
        if (!f || !(f->f.rel = strdup(rel))) {
                free(f);
                smbc_getFunctionClose(ctx)(ctx, fh);
                return store_fail(s, -ENOMEM, rel, NULL);
        }
        f->f.store = s;
        f->f.writing = writing;
        f->f.size = -1;
        f->fh = fh;
        *ret = &f->f;
        return 0;
}

static int smb_close_file(struct store_file *f);

/* Open, then fstat the handle: two round trips where a stat by name before the open took four.
 * The size is kept so a read asks for no more than there is: libsmbclient would otherwise send
 * one more read past the end to fill the buffer (a round trip per small file). */
static int smb_open_read(struct store *s, const char *rel, struct store_file **ret) {
        SMBCCTX *ctx = SS(s)->ctx;
        struct store_file *f = NULL;
        struct stat st;
        int r = smb_open_flags(s, rel, O_RDONLY, 0, false, &f);

        if (r < 0)
                return r;
        errno = 0;
        if (smbc_getFunctionFstat(ctx)(ctx, ((struct smb_file *)f)->fh, &st) < 0)
                r = smb_fail(s, rel, NULL);
        else if (S_ISDIR(st.st_mode))
                r = store_fail(s, -EISDIR, rel, NULL);
        if (r < 0) {
                (void)smb_close_file(f);
                return r;
        }
        ((struct smb_file *)f)->size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
        f->size = st.st_size > 0 ? (int64_t)st.st_size : 0;
        *ret = f;
        return 0;
}

static int smb_open_write(struct store *s, const char *rel, struct store_file **ret) {
        /* read-write: store_reread reads it back on this handle */
        return smb_open_flags(s, rel, O_RDWR | O_CREAT | O_EXCL, 0600, true, ret);
}

/* The handle's offset is libsmbclient's own (no request): the next read asks from 0, and no
 * further than one byte past what was written: a caller that asks for that byte learns whether
 * the file is longer (the read that finds the end costs one round trip, as a size query would). */
static int smb_reread(struct store_file *f) {
        SMBCCTX *ctx = SS(f->store)->ctx;
        struct smb_file *sf = (struct smb_file *)f;

        SMB_BEGIN(f->store, f->rel);
        errno = 0;
        if (smbc_getFunctionLseek(ctx)(ctx, sf->fh, 0, SEEK_SET) < 0)
                return smb_fail(f->store, f->rel, "seek");
        sf->size = sf->written + 1;
        sf->pos = 0;
        return 0;
}

static int smb_seek(struct store_file *f, uint64_t off) {
        SMBCCTX *ctx = SS(f->store)->ctx;
        struct smb_file *sf = (struct smb_file *)f;

        SMB_BEGIN(f->store, f->rel);
        errno = 0;
        if (smbc_getFunctionLseek(ctx)(ctx, sf->fh, (off_t)off, SEEK_SET) < 0)
                return smb_fail(f->store, f->rel, "seek");
        sf->pos = off;
        return 0;
}

static ssize_t smb_read(struct store_file *f, void *buf, size_t len) {
        SMBCCTX *ctx = SS(f->store)->ctx;
        struct smb_file *sf = (struct smb_file *)f;
        ssize_t n;

        SMB_BEGIN(f->store, f->rel);
        if (sf->reread_end)
                return 0;
        /* Up to the size seen at open, no further: a short read there tells the caller what the
         * end is. Past it, ask the server (the read-back follows a file that is still growing). */
        if (sf->pos < sf->size && len > sf->size - sf->pos)
                len = (size_t)(sf->size - sf->pos);
        /* No more than one request's worth: libsmbclient 4.17 fails a 16 MiB read of Samba's
         * (the file's close then says "Invalid argument"); a caller loops on a short read. */
        if (len > SMB_CHUNK)
                len = SMB_CHUNK;
        errno = 0;
        n = smbc_getFunctionRead(ctx)(ctx, sf->fh, buf, len);
        if (n < 0)
                return smb_fail(f->store, f->rel, NULL);
        sf->pos += (uint64_t)n;
        /* (a written file read back: nobody else writes it, its end stays where it was seen) */
        if (f->rereading && (size_t)n < len)
                sf->reread_end = true;
        return n;
}

static int smb_write(struct store_file *f, const void *buf, size_t len) {
        SMBCCTX *ctx = SS(f->store)->ctx;
        const char *p = buf;

        while (len > 0) {
                size_t chunk = len < SMB_CHUNK ? len : SMB_CHUNK;
                ssize_t n;

                SMB_BEGIN(f->store, f->rel);
                errno = 0;
                n = smbc_getFunctionWrite(ctx)(ctx, ((struct smb_file *)f)->fh, p, chunk);
                if (n < 0)
                        return smb_fail(f->store, f->rel, NULL);
                if (n == 0)
                        return store_fail(f->store, -EIO, f->rel, "short write");
                ((struct smb_file *)f)->written += (uint64_t)n;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int smb_close_file(struct store_file *f) {
        struct smb_store *ss = SS(f->store);
        int r = 0;

        /* On a broken store the handle stays with the context; smbc_free_context drops it. */
        if (!ss->broken) {
                errno = 0;
                if (smbc_getFunctionClose(ss->ctx)(ss->ctx, ((struct smb_file *)f)->fh) < 0)
                        r = smb_fail(f->store, f->rel, "close");
        } else if (f->writing)
                r = store_fail(f->store, -ETIMEDOUT, f->rel,
                               "the server stopped answering; the file is incomplete");
        free(f->rel);
        free(f);
        return r;
}

static int smb_exists(struct store *s, const char *rel) {
        _cleanup_free_ char *u = NULL;
        struct stat st;
        int r;

        u = smb_path(s, rel, &r);
        if (!u)
                return r;
        if (smb_stat_url(s, u, &st) == 0)
                return 1;
        if (errno == ENOENT)
                return 0;
        return smb_fail(s, rel, NULL);
}

static int smb_rename_raw(struct store *s, const char *from, const char *to) {
        SMBCCTX *ctx = SS(s)->ctx;
        _cleanup_free_ char *uf = NULL, *ut = NULL;
        int r;

        uf = smb_path(s, from, &r);
        if (!uf)
                return r;
        ut = smb_path(s, to, &r);
        if (!ut)
                return r;
        errno = 0;
        if (smbc_getFunctionRename(ctx)(ctx, uf, ctx, ut) < 0)
                return smb_fail(s, from, "rename to");
        return 0;
}

static int smb_rename(struct store *s, const char *from, const char *to, bool replace) {
        SMBCCTX *ctx = SS(s)->ctx;
        _cleanup_free_ char *aside = NULL, *ua = NULL;
        char msg[sizeof s->error];
        int r;

        SMB_BEGIN(s, from);
        smb_pre_drop(SS(s));
        r = smb_exists(s, to);
        if (r < 0)
                return r;
        if (r == 0) /* (a `to` created after this check would be replaced: see the top) */
                return smb_rename_raw(s, from, to);
        if (!replace)
                return store_fail(s, -EEXIST, to, NULL);
        r = smb_exists(s, from); /* fail before touching `to` */
        if (r <= 0)
                return r < 0 ? r : store_fail(s, -ENOENT, from, NULL);

        /* Move the old target aside, the new file in, then drop the old one. Nothing is lost
         * wherever this stops: the old version is at `to` or at `aside`, the new one at `from`
         * or at `to`. Readers of `to` find nothing between the first two renames. */
        aside = store_temp_name(to, "replaced");
        if (!aside)
                return store_fail(s, -ENOMEM, to, NULL);
        r = smb_rename_raw(s, to, aside);
        if (r < 0)
                return r;
        r = smb_rename_raw(s, from, to);
        if (r < 0) {
                memcpy(msg, s->error, sizeof msg);
                if (SS(s)->broken || smb_rename_raw(s, aside, to) < 0)
                        snprintf(s->error, sizeof s->error, "%.700s (the previous file is kept as %.200s)",
                                 msg, aside);
                else
                        memcpy(s->error, msg, sizeof msg);
                return r;
        }
        ua = smb_path(s, aside, &r);
        if (ua) {
                errno = 0;
                (void)smbc_getFunctionUnlink(ctx)(ctx, ua); /* a leftover "*.replaced-*" is harmless */
        }
        s->error[0] = 0;
        return 0;
}

static int splice_continue(off_t n, void *priv) { return 1; }

/* Copy from→tmp with a server-side copy (SMB2 copychunk); -EOPNOTSUPP & co. when the server
 * cannot, so the caller falls back to reading and writing. */
static int smb_copy_into(struct store *s, const char *from, const char *tmp, bool server_side) {
        SMBCCTX *ctx = SS(s)->ctx;
        struct store_file *in = NULL, *out = NULL;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        int r;

        r = smb_open_flags(s, from, O_RDONLY, 0, false, &in);
        if (r < 0)
                return r;
        r = smb_open_flags(s, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, true, &out);
        if (r < 0)
                goto out;
        errno = 0;
        if (smbc_getFunctionFstat(ctx)(ctx, ((struct smb_file *)in)->fh, &st) < 0) {
                r = smb_fail(s, from, NULL);
                goto out;
        }
        if (server_side) {
                off_t n;

                errno = 0;
                n = smbc_getFunctionSplice(ctx)(ctx, ((struct smb_file *)in)->fh,
                                                ((struct smb_file *)out)->fh, st.st_size,
                                                splice_continue, NULL);
                if (n < 0)
                        r = smb_fail(s, from, "server-side copy");
                else if (n != st.st_size)
                        r = store_fail(s, -EIO, from, "server-side copy stopped short");
                goto out;
        }
        buf = malloc(SMB_CHUNK);
        if (!buf) {
                r = store_fail(s, -ENOMEM, from, NULL);
                goto out;
        }
        for (;;) {
                ssize_t n = smb_read(in, buf, SMB_CHUNK);

                if (n <= 0) {
                        r = (int)n;
                        break;
                }
                r = smb_write(out, buf, (size_t)n);
                if (r < 0)
                        break;
        }
out:
        if (in)
                smb_close_file(in);
        if (out) {
                int q = smb_close_file(out);

                if (r == 0)
                        r = q;
        }
        return r;
}

static int smb_unlink_quiet(struct store *s, const char *rel) {
        _cleanup_free_ char *u = NULL;
        int r;

        if (SS(s)->broken)
                return -ETIMEDOUT;
        u = smb_path(s, rel, &r);
        if (!u)
                return r;
        return smbc_getFunctionUnlink(SS(s)->ctx)(SS(s)->ctx, u) < 0 ? -errno : 0;
}

static int smb_copy(struct store *s, const char *from, const char *to) {
        _cleanup_free_ char *tmp = NULL;
        int r;

        SMB_BEGIN(s, from);
        smb_pre_drop(SS(s));
        tmp = store_temp_name(to, "copy");
        if (!tmp)
                return store_fail(s, -ENOMEM, to, NULL);
        r = smb_copy_into(s, from, tmp, true);
        if (r < 0 && !SS(s)->broken && r != -ENOENT && r != -EACCES && r != -ENOSPC) {
                smb_unlink_quiet(s, tmp);
                r = smb_copy_into(s, from, tmp, false);
        }
        if (r == 0)
                r = smb_rename(s, tmp, to, false); /* like open_write: never replaces */
        if (r < 0) {
                char msg[sizeof s->error];

                memcpy(msg, s->error, sizeof msg);
                smb_unlink_quiet(s, tmp);
                memcpy(s->error, msg, sizeof msg);
        }
        return r;
}

static int smb_unlink(struct store *s, const char *rel) {
        _cleanup_free_ char *u = NULL;
        int r;

        SMB_BEGIN(s, rel);
        smb_pre_drop(SS(s));
        u = smb_path(s, rel, &r);
        if (!u)
                return r;
        errno = 0;
        if (smbc_getFunctionUnlink(SS(s)->ctx)(SS(s)->ctx, u) < 0)
                return smb_fail(s, rel, NULL);
        return 0;
}

static void smb_close(struct store *s) {
        struct smb_store *ss = SS(s);

        /* Every file is closed (or given up on) by now. The tree disconnect and logoff that
         * smbc_free_context sends need no answer: the server ends the session with the
         * connection. Shut the receiving side first, as on a broken store, so they do not cost a
         * round trip each. shutdown_ctx = 1: close what is still open without asking. */
        if (ss->ctx && !ss->broken)
                smb_break(ss);
        if (ss->ctx)
                smbc_free_context(ss->ctx, 1);
        smb_pre_drop(ss);
        free(ss->base);
        free(ss->server);
        free(ss->user);
        free(ss->domain);
        free(s->url);
        free(ss);
}

static const struct store_ops smb_ops = {
        .mkdirs = smb_mkdirs,
        .stat = smb_stat,
        .list = smb_list,
        .open_read = smb_open_read,
        .open_write = smb_open_write,
        .read = smb_read,
        .write = smb_write,
        .close_file = smb_close_file,
        .reread = smb_reread,
        .seek = smb_seek,
        .rename = smb_rename,
        .copy = smb_copy,
        .unlink = smb_unlink,
        .close = smb_close,
};

static int smb_context_new(struct smb_store *ss, int timeout_ms) {
        SMBCCTX *ctx = smbc_new_context();

        if (!ctx)
                return -ENOMEM;
        smbc_setDebug(ctx, 0);
        smbc_setLogCallback(ctx, NULL, log_cb);
        smbc_setOptionUserData(ctx, ss);
        smbc_setFunctionAuthDataWithContext(ctx, auth_cb);
        ss->check_default = smbc_getFunctionCheckServer(ctx);
        smbc_setFunctionCheckServer(ctx, check_server);
        /* a wrong password must fail, not fall back to a guest session */
        smbc_setOptionNoAutoAnonymousLogin(ctx, *ss->user != 0);
        smbc_setOptionUseKerberos(ctx, 0);
        smbc_setOptionFallbackAfterKerberos(ctx, 1);
        smbc_setOptionUseCCache(ctx, 0);
        smbc_setTimeout(ctx, timeout_ms);
        smbc_setPort(ctx, ss->port);
        if (!smbc_init_context(ctx)) {
                int r = errno ? -errno : -EIO;

                smbc_free_context(ctx, 1);
                return r;
        }
        /* after init, which loads smb.conf: overrides "client min/max protocol" there */
        smbc_setOptionProtocols(ctx, "SMB2_02", "SMB3");
        ss->ctx = ctx;
        return 0;
}

/* After store_open_listing's listing of rel (r its result, the fds recorded): 1 when it is kept
 * for the caller, 0 when the root still needs its stat (which then says what is wrong, or
 * nothing: the caller's own listing does), -errno (ss->s.error set) when the store cannot be
 * used: the server stopped answering, the root is no folder, or the connection or login failed.
 * A failed login leaves no connection behind (libsmbclient shuts it); it is not tried again
 * with a stat (each try counts towards an account's lockout). */
static int smb_open_listed(struct smb_store *ss, const char *rel, int r) {
        if (r >= 0) {
                if (!(ss->pre_rel = strdup(rel))) {
                        smb_pre_drop(ss);
                        return store_fail(&ss->s, -ENOMEM, rel, NULL);
                }
                return 1;
        }
        smb_pre_drop(ss);
        if (ss->broken || !*rel)
                return store_fail(&ss->s, r, NULL, NULL); /* the share's, whatever rel was */
        if (r == -ENOENT || r == -ENOTDIR || ss->n_conns > 0)
                return 0; /* the folder's answer (a missing share is ENOENT too: the stat says) */
        switch (-r) {
        case EACCES: case EPERM: case ECONNREFUSED: case ECONNRESET: case ECONNABORTED:
        case EHOSTUNREACH: case ENETUNREACH: case EPIPE: case EIO:
                return store_fail(&ss->s, r, NULL, NULL); /* no connection: the login's or the network's */
        default:
                return 0;
        }
}

/* creds->password is not copied: libsmbclient asks for it (auth_cb) whenever it (re)connects,
 * so the caller's secret must stay valid until store_close. */
int store_smb_open(const char *url, const struct store_creds *creds, unsigned timeout_s, const char *first_list,
                   struct store **ret, char *err, size_t errlen) {
        struct smb_store *ss;
        _cleanup_free_ char *path = NULL;
        int timeout_ms = timeout_s > INT_MAX / 1000 ? INT_MAX : (int)timeout_s * 1000;
        unsigned char before[FD_SCAN_MAX / 8];
        size_t len, blen = 0;
        struct stat st;
        int r;

        if (creds && ((creds->user && strlen(creds->user) > SMB_AUTH_MAX) ||
                      (creds->domain && strlen(creds->domain) > SMB_AUTH_MAX) ||
                      (creds->password && strlen(creds->password) > SMB_AUTH_MAX)))
                return store_open_fail(err, errlen, -EINVAL, "%s: user, domain or password longer than %d bytes",
                                       url, SMB_AUTH_MAX);
        ss = calloc(1, sizeof *ss);
        if (!ss)
                return store_open_fail(err, errlen, -ENOMEM, "%s: %s", url, strerror(ENOMEM));
        ss->s.ops = &smb_ops;
        ss->s.timeout_s = timeout_s;
        ss->password = creds && creds->password ? creds->password : "";
        ss->s.url = strdup(url);
        ss->user = strdup(creds && creds->user ? creds->user : "");
        ss->domain = creds && creds->domain ? strdup(creds->domain) : NULL;
        if (!ss->s.url || !ss->user || (creds && creds->domain && !ss->domain)) {
                r = store_open_fail(err, errlen, -ENOMEM, "%s: %s", url, strerror(ENOMEM));
                goto fail;
        }
        len = strlen(ss->s.url);
        while (len > 0 && ss->s.url[len - 1] == '/')
                ss->s.url[--len] = 0;

        r = smb_parse_url(ss->s.url, &ss->server, &ss->port, &path, err, errlen);
        if (r < 0)
                goto fail;
        ss->base = strdup("smb://");
        blen = strlen(ss->base);
        if (!ss->base || smb_append_encoded(&ss->base, &blen, ss->server) < 0 ||
            smb_append_encoded(&ss->base, &blen, "/") < 0 || smb_append_encoded(&ss->base, &blen, path) < 0) {
                r = store_open_fail(err, errlen, -ENOMEM, "%s: %s", url, strerror(ENOMEM));
                goto fail;
        }

        r = smb_probe_server(ss->server, ss->port, timeout_ms);
        if (r < 0) {
                r = store_open_fail(err, errlen, r, "%s: cannot reach %s port %s: %s", ss->s.url, ss->server,
                                    ss->port ? "" : "445/139", strerror(-r));
                if (ss->port) /* name the port we tried */
                        store_open_fail(err, errlen, r, "%s: cannot reach %s port %u: %s", ss->s.url,
                                        ss->server, ss->port, strerror(-r));
                goto fail;
        }
        r = smb_context_new(ss, timeout_ms);
        if (r < 0) {
                r = store_open_fail(err, errlen, r, "%s: cannot set up libsmbclient: %s", ss->s.url,
                                    strerror(-r));
                goto fail;
        }
        /* The first request connects and authenticates: the caller's first listing when it names
         * one, else a stat of the root. */
        socket_fds(before);
        r = 0;
        if (first_list && !smb_name_ok(first_list))
                first_list = NULL; /* the caller's listing says why */
        if (first_list) {
                r = smb_list(&ss->s, first_list, &ss->pre_v, &ss->pre_n);
                record_conns(ss, before);
                ss->checked_at = now_ms();
                r = smb_open_listed(ss, first_list, r);
                if (r > 0) { /* listed */
                        *ret = &ss->s;
                        return 0;
                }
                /* r == 0: connected, but whether the root is there the listing could not tell */
        }
        if (r == 0) {
                r = smb_stat_url(&ss->s, ss->base, &st) < 0 ? smb_fail(&ss->s, NULL, NULL) : 0;
                if (!first_list)
                        record_conns(ss, before);
                ss->checked_at = now_ms();
        }
        if (r < 0) {
                store_open_fail(err, errlen, r, "%s%s", ss->s.error,
                                r == -EACCES || r == -EPERM
                                        ? " (wrong user name or password, or no access to the share)"
                                        : "");
                goto fail;
        }
        if (!S_ISDIR(st.st_mode)) {
                r = store_open_fail(err, errlen, -ENOTDIR, "%s: %s", ss->s.url, strerror(ENOTDIR));
                goto fail;
        }
        *ret = &ss->s;
        return 0;
fail:
        smb_close(&ss->s);
        return r;
}
