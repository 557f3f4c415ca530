/* pgSMB: children that run as the user, and the streams between them and the store. */
#include "pgsmb-user.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "pgsmb-inflate.h"
#include "pgsmb-readback.h"
#include "util.h"

/* One store request: SMB3 servers take 8 MiB reads and writes (Samba, Windows), so a 674 MiB
 * profile costs ~85 round trips instead of 674: what a branch office at 10 ms pays. */
#define CHUNK (8 * 1024 * 1024)
/* What the socket pair between the store and the user's child may hold: enough that the child
 * goes on extracting (or compressing) through several store round trips, so transfer and file
 * work overlap instead of taking turns. */
#define STREAM_BUFFER (8 * 1024 * 1024)

/* What a child tells its parent when it ends. */
struct child_report {
        int result;
        struct profile_stats stats;
        char err[512];
};

struct child {
        pid_t pid;
        int report_fd;
};

void pgsmb_hex(const unsigned char sha256[32], char out[65]) {
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", sha256[i]);
}

static int drop_to_user(const struct pgsmb_user *u) {
        if (u->uid == 0 || u->gid == 0)
                return -EPERM; /* never "as the user" with root's ids */
        if (initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
            setresuid(u->uid, u->uid, u->uid) < 0)
                return -errno;
        if (setuid(0) == 0)
                return -EPERM; /* the drop did not stick */
        umask(077);
        if (setenv("HOME", u->home, 1) < 0)
                return -errno;
        return 0;
}

typedef int (*child_fn)(void *arg, struct child_report *rep);

/* Everything above stderr closed but a and b: a process working as the user holds none of the
 * worker's descriptors (its store connections, the parent's end of the stream, which it must not
 * hold or it never sees the stream's end). syslog's socket goes too and is opened again. */
static void close_all_but(int a, int b) {
        int lo = a < b ? a : b, hi = a < b ? b : a;

        log_close_for_fork();
        if (lo < 3)
                lo = hi;
        if (lo >= 3) {
                if (lo > 3)
                        close_range(3, (unsigned)lo - 1, 0);
                if (hi > lo + 1)
                        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
                close_range((unsigned)hi + 1, ~0U, 0);
        } else
                close_range(3, ~0U, 0);
        log_reopen();
}

/* keep_fd: the one descriptor fn uses (-1: none). */
static int child_start(const struct pgsmb_user *u, child_fn fn, void *arg, int keep_fd,
                       struct child *c) {
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0) {
                struct child_report rep = {0};

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGPIPE, SIG_IGN);
                close_all_but(p[1], keep_fd >= 0 ? keep_fd : p[1]);
                rep.result = drop_to_user(u);
                if (rep.result < 0)
                        snprintf(rep.err, sizeof rep.err, "cannot switch to user %s: %s", u->name,
                                 strerror(-rep.result));
                else if (chdir("/") < 0)
                        rep.result = -errno;
                else
                        rep.result = fn(arg, &rep);
                (void)write_all(p[1], &rep, sizeof rep);
                _exit(rep.result == 0 ? 0 : 1);
        }
        close(p[1]);
        c->pid = pid;
        c->report_fd = p[0];
        return 0;
}

/* Wait for the child; its report lands in rep. Returns 0 when it succeeded. */
static int child_wait(struct child *c, struct child_report *rep) {
        int status = 0;
        ssize_t k;

        memset(rep, 0, sizeof *rep);
        do
                k = read(c->report_fd, rep, sizeof *rep);
        while (k < 0 && errno == EINTR);
        close(c->report_fd);
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (k != (ssize_t)sizeof *rep) {
                snprintf(rep->err, sizeof rep->err, "the process working as the user %s",
                         WIFSIGNALED(status) ? "was killed" : "ended without a report");
                if (WIFSIGNALED(status))
                        snprintf(rep->err + strlen(rep->err), sizeof rep->err - strlen(rep->err),
                                 " (%s)", strsignal(WTERMSIG(status)));
                return -EIO;
        }
        rep->err[sizeof rep->err - 1] = 0;
        if (rep->result == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
                return -EIO;
        return rep->result < 0 ? rep->result : rep->result > 0 ? -EIO : 0;
}

struct fn_wrap {
        pgsmb_user_fn fn;
        void *arg;
};

static int wrap_fn(void *arg, struct child_report *rep) {
        struct fn_wrap *w = arg;
        return w->fn(w->arg, rep->err, sizeof rep->err);
}

int pgsmb_as_user(const struct pgsmb_user *u, int keep_fd, pgsmb_user_fn fn, void *arg, char *err,
                  size_t errlen) {
        struct fn_wrap w = {fn, arg};
        struct child_report rep;
        struct child c;
        int r = child_start(u, wrap_fn, &w, keep_fd, &c);

        if (r < 0) {
                snprintf(err, errlen, "cannot start a process as %s: %s", u->name, strerror(-r));
                return r;
        }
        r = child_wait(&c, &rep);
        /* On success the text is the function's answer (profile_bytes reads a number there). */
        if (r < 0)
                snprintf(err, errlen, "%s", rep.err[0] ? rep.err : strerror(-r));
        else
                snprintf(err, errlen, "%s", rep.err);
        return r;
}

/* ---- streams ---- */

/* What an external archive program gets in its environment besides PATH (spawn-program.h). */
struct program_env {
        char home[PATH_MAX + 8], user[300], logname[300];
        const char *v[4];
        struct profile_compress c;
};

static const struct profile_compress *program_env_add(struct program_env *pe, const struct profile_compress *c,
                                                      const struct pgsmb_user *u) {
        if (!c->archive_argv && !c->extract_argv)
                return c;
        snprintf(pe->home, sizeof pe->home, "HOME=%s", u->home);
        snprintf(pe->user, sizeof pe->user, "USER=%s", u->name);
        snprintf(pe->logname, sizeof pe->logname, "LOGNAME=%s", u->name);
        pe->v[0] = pe->home;
        pe->v[1] = pe->user;
        pe->v[2] = pe->logname;
        pe->v[3] = NULL;
        pe->c = *c;
        pe->c.program_env = pe->v;
        return &pe->c;
}

struct extract_arg {
        int fd;
        const char *target;
        const struct profile_limits *lim;
        const struct profile_compress *c;
        const void *ring; /* built-in extraction: the shared ring, fd carries positions */
        size_t ring_size;
};

static int extract_child(void *arg, struct child_report *rep) {
        struct extract_arg *a = arg;
        if (a->ring)
                return profile_extract_ring(a->fd, a->ring, a->ring_size, a->target, a->lim,
                                            &rep->stats, rep->err, sizeof rep->err);
        return profile_extract(a->fd, a->target, a->lim, a->c, &rep->stats, rep->err, sizeof rep->err);
}

struct archive_arg {
        int fd;
        const char *home;
        const char *const *exclude;
        const struct profile_compress *c;
};

static int archive_child(void *arg, struct child_report *rep) {
        struct archive_arg *a = arg;
        int r = profile_archive(a->home, a->exclude, a->c, a->fd, &rep->stats, rep->err,
                                sizeof rep->err);
        close(a->fd);
        return r;
}

static void progress_tick(pgsmb_progress_fn fn, void *ud, uint64_t bytes, uint64_t total,
                          long long *last) {
        long long now = now_ms();

        if (fn && now - *last >= 1000) {
                *last = now;
                fn(ud, bytes, total);
        }
}

static int send_all(int fd, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

/* A unix stream socket's data waits on the peer's queue but counts against the sender's
 * buffer. We are root: FORCE goes past net.core.wmem_max. Best effort: smaller only costs time. */
static void stream_buffer_grow(int fd) {
        int size = STREAM_BUFFER;

        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

/* One transfer: a store file, a socket pair to a child working as the user, a running sha256. */
struct stream {
        struct store_file *f;
        EVP_MD_CTX *md;
        unsigned char *buf;
        int fd; /* our end */
        struct child ch;
};

/* Open rel (to read or to create), then start fn as the user with the other end of the pair in
 * *child_fd. On failure nothing is left open and t->err says why. */
static int stream_begin(struct store *st, const char *rel, bool create, const struct pgsmb_user *u,
                        child_fn fn, void *arg, int *child_fd, struct pgsmb_transfer *t,
                        struct stream *s) {
        int sv[2], r;

        memset(t, 0, sizeof *t);
        memset(s, 0, sizeof *s);
        s->fd = -1;
        s->buf = malloc(CHUNK);
        s->md = EVP_MD_CTX_new();
        if (!s->buf || !s->md) {
                r = -ENOMEM;
                goto fail;
        }
        r = create ? store_open_write(st, rel, &s->f) : store_open_read(st, rel, &s->f);
        if (r < 0) {
                snprintf(t->err, sizeof t->err, "%s", store_error(st));
                goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = -errno;
                goto fail;
        }
        stream_buffer_grow(sv[0]);
        stream_buffer_grow(sv[1]);
        *child_fd = sv[1];
        r = child_start(u, fn, arg, sv[1], &s->ch);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                snprintf(t->err, sizeof t->err, "cannot start a process as %s: %s", u->name, strerror(-r));
                goto fail;
        }
        s->fd = sv[0];
        EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
        return 0;
fail:
        if (s->f)
                store_close_file(s->f);
        EVP_MD_CTX_free(s->md);
        free(s->buf);
        return r;
}

/* Close everything, wait for the child; the first failure (r, the file's close, the child's)
 * is returned and described in t->err. */
static int stream_end(struct store *st, struct stream *s, int r, const char *what,
                      struct pgsmb_transfer *t) {
        struct child_report rep;
        int rc;

        close(s->fd); /* a child still writing gets EPIPE and stops; one reading sees the end */
        rc = store_close_file(s->f);
        if (r == 0 && rc < 0) {
                r = rc;
                snprintf(t->err, sizeof t->err, "%s", store_error(st));
        }
        EVP_DigestFinal_ex(s->md, t->sha256, NULL);
        EVP_MD_CTX_free(s->md);
        free(s->buf);
        rc = child_wait(&s->ch, &rep);
        t->stats = rep.stats;
        if (r == 0 && rc < 0) {
                r = rc;
                snprintf(t->err, sizeof t->err, "%s", rep.err[0] ? rep.err : what);
        }
        return r;
}

/* The stream starts with a zstd frame that declares a content checksum (RFC 8878 3.1.1.1.1:
 * the magic, then the frame header descriptor, bit 2). */
static bool zstd_checksummed_start(const unsigned char *p, size_t len) {
        static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

        return len > 4 && memcmp(p, magic, sizeof magic) == 0 && (p[4] & 0x04);
}

/* ---- restore through a shared ring ----
 * With the built-in extractor, the store's bytes are read straight into memory shared with the
 * child (mmap MAP_SHARED before the fork), and the socket pair carries only positions: 8-byte
 * totals written, answered with totals consumed (pgsmb-inflate.c's ring mode). That saves
 * copying every byte into a socket and out again (~8% of a restore's CPU on two cores). The
 * child can write to the ring too: it can only spoil its own restore (and what we hash of it). */
#define RING (2 * CHUNK)

/* Take the child's "consumed" totals from fd (waiting for one when `wait`): *acked grows, never
 * past `produced`. -EPIPE when the child closed its end, -EPROTO for an impossible total. */
static int ring_acks(int fd, struct ring_totals *rt, uint64_t *acked, uint64_t produced, bool wait) {
        uint64_t v = 0;
        int r = ring_totals_recv(rt, fd, wait, &v);

        if (r <= 0)
                return r;
        if (v < *acked || v > produced)
                return -EPROTO;
        *acked = v;
        return 0;
}

static int restore_ring(struct store *st, struct stream *s, unsigned char *ring, uint64_t size_hint,
                        pgsmb_progress_fn progress, void *pud, struct pgsmb_transfer *t) {
        uint64_t produced = 0, acked = 0;
        struct ring_totals totals = {0};
        long long last = now_ms();
        int r = 0;

        for (;;) {
                size_t off = (size_t)(produced % RING), want = RING - off < CHUNK ? RING - off : CHUNK;

                while (produced + want - acked > RING)
                        if ((r = ring_acks(s->fd, &totals, &acked, produced, true)) < 0)
                                goto child;
                ssize_t k = store_read(s->f, ring + off, want);
                if (k < 0) {
                        snprintf(t->err, sizeof t->err, "%s", store_error(st));
                        return (int)k;
                }
                if (k == 0) {
                        /* The end: the child sees it, finishes, answers what it consumed and
                         * closes. Its answers are read to that end: a socket closed with
                         * unread data would reset the child's side instead of ending it. */
                        shutdown(s->fd, SHUT_WR);
                        while ((r = ring_acks(s->fd, &totals, &acked, produced, true)) == 0)
                                ;
                        goto child;
                }
                if (t->bytes == 0)
                        t->hashed = !zstd_checksummed_start(ring, (size_t)k);
                if (t->hashed)
                        EVP_DigestUpdate(s->md, ring + off, (size_t)k);
                produced += (uint64_t)k;
                t->bytes += (uint64_t)k;
                progress_tick(progress, pud, t->bytes, size_hint, &last);
                if (send_all(s->fd, &produced, sizeof produced) < 0)
                        return 0; /* the child stopped reading: its report says why */
                if ((r = ring_acks(s->fd, &totals, &acked, produced, false)) < 0)
                        goto child;
        }
child:
        if (r == -EPROTO) {
                snprintf(t->err, sizeof t->err, "the process extracting as the user sent an impossible position");
                return r;
        }
        return 0; /* it ended or closed its end: its report says why */
}

int pgsmb_restore_stream(struct store *st, const char *rel, uint64_t size_hint,
                         const struct pgsmb_user *u, const char *target,
                         const struct profile_limits *lim, const struct profile_compress *c,
                         pgsmb_progress_fn progress, void *pud, struct pgsmb_transfer *t) {
        struct program_env pe;
        struct extract_arg a = {.target = target, .lim = lim, .c = program_env_add(&pe, c, u)};
        struct stream s;
        long long last = now_ms();
        unsigned char *ring = NULL;
        int r;

        if (!c->extract_argv) {
                ring = mmap(NULL, RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                if (ring == MAP_FAILED)
                        ring = NULL; /* the socket stream then */
                a.ring = ring;
                a.ring_size = RING;
        }
        r = stream_begin(st, rel, false, u, extract_child, &a, &a.fd, t, &s);
        if (r < 0) {
                if (ring)
                        munmap(ring, RING);
                return r;
        }
        if (ring) {
                r = restore_ring(st, &s, ring, size_hint, progress, pud, t);
                r = stream_end(st, &s, r, "extraction failed", t);
                munmap(ring, RING);
                if (progress)
                        progress(pud, t->bytes, size_hint);
                return r;
        }
        for (;;) {
                ssize_t k = store_read(s.f, s.buf, CHUNK);
                if (k < 0) {
                        r = (int)k;
                        snprintf(t->err, sizeof t->err, "%s", store_error(st));
                        break;
                }
                if (k == 0)
                        break;
                if (t->bytes == 0)
                        t->hashed = c->extract_argv || !zstd_checksummed_start(s.buf, (size_t)k);
                if (t->hashed)
                        EVP_DigestUpdate(s.md, s.buf, (size_t)k);
                t->bytes += (uint64_t)k;
                progress_tick(progress, pud, t->bytes, size_hint, &last);
                if (send_all(s.fd, s.buf, (size_t)k) < 0)
                        break; /* the child stopped reading: its report says why */
        }
        r = stream_end(st, &s, r, "extraction failed", t);
        if (progress)
                progress(pud, t->bytes, size_hint);
        return r;
}

int pgsmb_upload_stream(struct store *st, const char *rel, const struct pgsmb_user *u,
                        const char *const *exclude, const struct profile_compress *c,
                        const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress,
                        void *pud, struct pgsmb_transfer *t) {
        struct program_env pe;
        struct archive_arg a = {.home = u->home, .exclude = exclude, .c = program_env_add(&pe, c, u)};
        struct readback *rb = NULL;
        XXH3_state_t *xs = NULL;
        struct stream s;
        long long last = now_ms();
        int r = stream_begin(st, rel, true, u, archive_child, &a, &a.fd, t, &s);

        if (r < 0)
                return r;
        /* The file exists now: the reader may open it. Without a reader the caller verifies. */
        if (rt && (xs = XXH3_createState()) && readback_start(rt->url, rt->creds, rt->timeout_s, rel, s.fd, &rb) < 0)
                rb = NULL;
        if (xs)
                XXH3_128bits_reset(xs);
        for (;;) {
                size_t have = 0;

                /* Fill whole blocks: every store request costs a round trip. */
                while (have < CHUNK) {
                        ssize_t k = read(s.fd, s.buf + have, CHUNK - have);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                break;
                        have += (size_t)k;
                }
                if (have == 0)
                        break;
                EVP_DigestUpdate(s.md, s.buf, have);
                if (rb)
                        XXH3_128bits_update(xs, s.buf, have);
                r = store_write(s.f, s.buf, have);
                if (r < 0) {
                        snprintf(t->err, sizeof t->err, "%s", store_error(st));
                        break;
                }
                t->bytes += have;
                if (rb)
                        readback_advance(rb, t->bytes);
                progress_tick(progress, pud, t->bytes, 0, &last);
                if (have < CHUNK)
                        break;
        }
        r = stream_end(st, &s, r, "archiving failed", t);
        if (rb) {
                XXH128_canonical_t digest;

                XXH128_canonicalFromHash(&digest, XXH3_128bits_digest(xs));
                int k = readback_finish(rb, r == 0, t->bytes, digest.digest, t->err, sizeof t->err);
                if (r == 0 && k < 0)
                        r = k;
                t->verified = r == 0;
        }
        XXH3_freeState(xs);
        return r;
}

int pgsmb_verify(struct store *st, const char *rel, uint64_t size, const unsigned char sha256[32],
                 char *err, size_t errlen) {
        struct store_file *f = NULL;
        _cleanup_free_ unsigned char *buf = malloc(CHUNK);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char got[32];
        uint64_t total = 0;
        int r;

        if (!buf || !md) {
                EVP_MD_CTX_free(md);
                return -ENOMEM;
        }
        r = store_open_read(st, rel, &f);
        if (r < 0) {
                snprintf(err, errlen, "%s", store_error(st));
                EVP_MD_CTX_free(md);
                return r;
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        for (;;) {
                ssize_t k = store_read(f, buf, CHUNK);
                if (k < 0) {
                        r = (int)k;
                        snprintf(err, errlen, "%s", store_error(st));
                        break;
                }
                if (k == 0)
                        break;
                EVP_DigestUpdate(md, buf, (size_t)k);
                total += (uint64_t)k;
        }
        store_close_file(f);
        EVP_DigestFinal_ex(md, got, NULL);
        EVP_MD_CTX_free(md);
        if (r < 0)
                return r;
        if (total != size || memcmp(got, sha256, 32) != 0) {
                snprintf(err, errlen, "%s/%s: read back %llu bytes that do not match the %llu bytes written",
                         store_url(st), rel, (unsigned long long)total, (unsigned long long)size);
                return -EIO;
        }
        return 0;
}
