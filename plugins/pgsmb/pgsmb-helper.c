/* pgSMB, root side (pginad's worker) of the work done as the user: starts pgsmb-userwork as the
 * user (pgsmb-helper.h), streams between it and the store, and takes its report. */
#include "pgsmb-helper.h"
#include "pgsmb-scan.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "pgsmb-fetch.h"
#include "pgsmb-readback.h"
#include "pgsmb-userwork.h"
#include <pgina/spawn.h>
#include <pgina/util.h>

/* One store request: SMB3 servers take 8 MiB reads and writes (Samba, Windows), so a 674 MiB
 * profile costs ~85 round trips instead of 674: what a branch office at 10 ms pays. */
#define CHUNK (8 * 1024 * 1024)
/* What the socket pair between the store and the user's child may hold: enough that the child
 * goes on extracting (or compressing) through several store round trips, so transfer and file
 * work overlap instead of taking turns. */
#define STREAM_BUFFER (8 * 1024 * 1024)

void pgsmb_hex(const unsigned char sha256[32], char out[65]) {
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", sha256[i]);
}

/* The user's supplementary groups, as initgroups would set them: getgrouplist reads NSS, which
 * cannot be called in a forked child, so it is looked up here. *ret is malloc'd. */
static int user_groups(const struct pgsmb_user *u, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *g = NULL;
        int n = 32;

        for (;;) {
                int want = n;
                gid_t *ng = realloc(g, (size_t)n * sizeof *g);

                if (!ng)
                        return -ENOMEM;
                g = ng;
                if (getgrouplist(u->name, u->gid, g, &want) >= 0) {
                        *ret_n = (size_t)want;
                        *ret = TAKE_PTR(g);
                        return 0;
                }
                if (want <= n || want > SPAWN_GROUPS_MAX)
                        return -EIO; /* no growth asked for, or more than the kernel takes */
                n = want;
        }
}

/* pgsmb-userwork lies next to the plugin (the plugin directory is root's, checked when the plugin
 * was loaded), and must be root's and writable by no one else, like the plugin. */
static int userwork_path(char *path, size_t len, char *err, size_t errlen) {
        Dl_info info;
        struct stat st;
        const char *slash;

        if (!dladdr((void *)userwork_path, &info) || !info.dli_fname || !(slash = strrchr(info.dli_fname, '/'))) {
                snprintf(err, errlen, "cannot find the directory of the pgsmb plugin");
                return -ENOENT;
        }
        if (snprintf(path, len, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname, USERWORK_PROGRAM) >= (int)len)
                return -ENAMETOOLONG;
        if (stat(path, &st) < 0) {
                int r = -errno;
                snprintf(err, errlen, "%s: %s (it is installed with the pgsmb plugin)", path, strerror(errno));
                return r;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) || !(st.st_mode & 0100)) {
                snprintf(err, errlen, "%s must be a program owned by root and writable by no one else", path);
                return -EPERM;
        }
        return 0;
}

/* The program's environment (on SPAWN_ENV_USER's PATH): the user's HOME, USER and LOGNAME, and a
 * sanitizer's options when the worker has them (a test build); nothing else of the worker's. */
struct child_env {
        char home[PATH_MAX + 8], user[300], logname[300];
        const char *v[8];
};

static const char *const *child_env(struct child_env *e, const struct pgsmb_user *u) {
        static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
        size_t n = 0;

        snprintf(e->home, sizeof e->home, "HOME=%s", u->home);
        snprintf(e->user, sizeof e->user, "USER=%s", u->name);
        snprintf(e->logname, sizeof e->logname, "LOGNAME=%s", u->name);
        e->v[n++] = e->home;
        e->v[n++] = e->user;
        e->v[n++] = e->logname;
        for (size_t i = 0; i < ELEMENTSOF(pass); i++) {
                const char *v = getenv(pass[i]);
                if (v)
                        e->v[n++] = v - strlen(pass[i]) - 1; /* "NAME=value" as it lies in environ */
        }
        e->v[n] = NULL;
        return e->v;
}

/* One of the worker's standard descriptors for the program, or /dev/null (-1) when it is closed. */
static int worker_std(int fd) {
        return fcntl(fd, F_GETFD) < 0 ? -1 : fd;
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

int pgsmb_child_start(const struct pgsmb_user *u, const struct userwork_job *job, int data_fd,
                      int aux_fd, int list_fd, struct pgsmb_child *c, char *err, size_t errlen) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_free_ gid_t *groups = NULL;
        char path[PATH_MAX];
        struct child_env env;
        size_t n_groups = 0;
        pid_t pid;
        int ctl[2], r;

        pbuf_init(&b);
        if (u->uid == 0 || u->gid == 0) {
                snprintf(err, errlen, "cannot start a process as %s: it has root's uid or gid", u->name);
                return -EPERM; /* never "as the user" with root's ids */
        }
        if ((r = userwork_path(path, sizeof path, err, errlen)) < 0)
                return r;
        if ((r = userwork_encode(job, &b)) < 0) {
                snprintf(err, errlen, "cannot describe the work for %s: %s", u->name, strerror(-r));
                return r;
        }
        if ((r = user_groups(u, &groups, &n_groups)) < 0) {
                snprintf(err, errlen, "cannot look up the groups of %s: %s", u->name, strerror(-r));
                return r;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
                r = -errno;
                snprintf(err, errlen, "socketpair: %s", strerror(errno));
                return r;
        }
        /* Its descriptors: 0-2 the worker's, 3-6 as pgsmb-userwork.h says, no other. Its own
         * process group: a worker killed at request_timeout takes it along by the death signal. */
        const int fds[] = {worker_std(0), worker_std(1), worker_std(2), ctl[1], data_fd, aux_fd, list_fd};
        const char *const argv[] = {USERWORK_PROGRAM, NULL};
        const struct spawn_creds creds = {.uid = u->uid, .gid = u->gid, .groups = groups,
                                          .n_groups = n_groups, .umask = 077, .die_with_parent = true};
        const struct spawn sp = {.path = path, .argv = argv, .env_base = SPAWN_ENV_USER,
                                 .env = child_env(&env, u), .fds = fds, .n_fds = ELEMENTSOF(fds),
                                 .cwd = "/", .creds = &creds};
        _Static_assert(ELEMENTSOF(fds) == USERWORK_FD_LIST + 1, "the map ends at USERWORK_FD_LIST");
        r = spawn_start(&sp, &pid);
        close(ctl[1]);
        if (r < 0) {
                close(ctl[0]);
                snprintf(err, errlen, "cannot start %s as %s: %s", path, u->name, strerror(-r));
                return r;
        }
        c->pid = pid;
        c->ctl_fd = ctl[0];
        /* The job fits the socket's buffer or waits for the program to read it; a program that
         * died first leaves its report (or none) for pgsmb_child_wait. */
        (void)send_all(ctl[0], b.data, b.len);
        return 0;
}

int pgsmb_child_wait_until(struct pgsmb_child *c, struct userwork_report *rep, long long deadline) {
        char *p = (char *)rep;
        size_t got = 0;
        int status = 0;

        memset(rep, 0, sizeof *rep);
        while (got < sizeof *rep) {
                if (deadline >= 0) {
                        /* A program that stops mid-report (the user can ptrace it) must not
                         * hold us past the deadline. */
                        struct pollfd pfd = {.fd = c->ctl_fd, .events = POLLIN};
                        long long left = deadline - now_ms();
                        /* past it: what is there already still counts (a job waited for late) */
                        int n = poll(&pfd, 1, left > 0 ? (int)(left < 1000 ? left : 1000) : 0);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n == 0 && left > 1000)
                                continue;
                        if (n <= 0) {
                                kill(c->pid, SIGKILL);
                                break;
                        }
                }
                ssize_t k = read(c->ctl_fd, p + got, sizeof *rep - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t)k;
        }
        close(c->ctl_fd);
        c->ctl_fd = -1;
        /* Its end, within the deadline too: the user can stop it between its report and its
         * exit. */
        while (deadline >= 0) {
                pid_t w = waitpid(c->pid, &status, WNOHANG);
                if (w == c->pid || (w < 0 && errno != EINTR))
                        break;
                if (w == 0 && now_ms() >= deadline) {
                        kill(c->pid, SIGKILL);
                        deadline = -1; /* reaped below */
                        continue;
                }
                if (w == 0)
                        usleep(2000);
        }
        if (deadline < 0)
                while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
                        ;
        if (got != sizeof *rep) {
                memset(rep, 0, sizeof *rep);
                snprintf(rep->err, sizeof rep->err, "the process working as the user %s",
                         WIFSIGNALED(status) ? "was killed" : "ended without a report");
                if (WIFSIGNALED(status))
                        snprintf(rep->err + strlen(rep->err), sizeof rep->err - strlen(rep->err),
                                 " (%s)", strsignal(WTERMSIG(status)));
                rep->result = -EIO;
                return -EIO;
        }
        rep->err[sizeof rep->err - 1] = 0;
        rep->stats.first_changed[sizeof rep->stats.first_changed - 1] = 0;
        if (rep->result > 0)
                rep->result = -EIO;
        if (rep->result == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
                rep->result = -EIO;
        return rep->result;
}

int pgsmb_child_wait(struct pgsmb_child *c, struct userwork_report *rep) {
        return pgsmb_child_wait_until(c, rep, -1);
}

int pgsmb_as_user(const struct pgsmb_user *u, const struct userwork_job *job, struct userwork_report *rep) {
        struct pgsmb_child c;
        int r;

        memset(rep, 0, sizeof *rep);
        r = pgsmb_child_start(u, job, -1, -1, -1, &c, rep->err, sizeof rep->err);
        if (r < 0) {
                rep->result = r;
                return r;
        }
        return pgsmb_child_wait(&c, rep);
}

/* ---- streams ---- */

static void progress_tick(pgsmb_progress_fn fn, void *ud, uint64_t bytes, uint64_t total,
                          long long *last) {
        long long now = now_ms();

        if (fn && now - *last >= 1000) {
                *last = now;
                fn(ud, bytes, total);
        }
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
        struct pgsmb_child ch;
};

static void stream_free(struct stream *s) {
        EVP_MD_CTX_free(s->md);
        free(s->buf);
        s->md = NULL;
        s->buf = NULL;
}

/* The buffer and the running sha256; no file, no child yet. */
static int stream_init(struct stream *s) {
        memset(s, 0, sizeof *s);
        s->fd = -1;
        s->buf = malloc(CHUNK);
        s->md = EVP_MD_CTX_new();
        if (!s->buf || !s->md || !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL)) {
                stream_free(s);
                return -ENOMEM;
        }
        return 0;
}

/* Start the job as the user with the other end of a socket pair as its data (and aux_fd,
 * list_fd, -1: none). */
static int stream_child(const struct pgsmb_user *u, const struct userwork_job *job, int aux_fd, int list_fd,
                        struct pgsmb_transfer *t, struct stream *s) {
        int sv[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        stream_buffer_grow(sv[0]);
        stream_buffer_grow(sv[1]);
        r = pgsmb_child_start(u, job, sv[1], aux_fd, list_fd, &s->ch, t->err, sizeof t->err);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                return r;
        }
        s->fd = sv[0];
        return 0;
}

/* A stream with its child and no file given up on: the child killed and reaped (its report is
 * not waited for: the user may hold its socket elsewhere). */
static void stream_abort(struct stream *s) {
        struct userwork_report rep;

        kill(s->ch.pid, SIGKILL);
        close(s->fd);
        s->fd = -1;
        (void)pgsmb_child_wait_until(&s->ch, &rep, now_ms());
        stream_free(s);
}

/* Open rel (to read or to create), then start the job as the user with the other end of the pair
 * as its data (and aux_fd, list_fd, -1: none). On failure nothing is left open and t->err says
 * why. */
static int stream_begin(struct store *st, const char *rel, bool create, const struct pgsmb_user *u,
                        const struct userwork_job *job, int aux_fd, int list_fd, struct pgsmb_transfer *t,
                        struct stream *s) {
        int r;

        memset(t, 0, sizeof *t);
        if ((r = stream_init(s)) < 0)
                return r;
        r = create ? store_open_write(st, rel, &s->f) : store_open_read(st, rel, &s->f);
        if (r < 0) {
                snprintf(t->err, sizeof t->err, "%s", store_error(st));
                stream_free(s);
                return r;
        }
        if ((r = stream_child(u, job, aux_fd, list_fd, t, s)) < 0) {
                store_close_file(s->f);
                stream_free(s);
        }
        return r;
}

/* Close everything, wait for the child; the first failure (r, the file's close, the child's)
 * is returned and described in t->err. */
static int stream_end(struct store *st, struct stream *s, int r, const char *what,
                      struct pgsmb_transfer *t) {
        struct userwork_report rep;
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
        rc = pgsmb_child_wait(&s->ch, &rep);
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
 * child (a memfd it maps too), and the socket pair carries only positions: 8-byte
 * totals written, answered with totals consumed (pgsmb-userwork-inflate.c's ring mode). That saves
 * copying every byte into a socket and out again (~8% of a restore's CPU on two cores). The
 * child can write to the ring too: it can only spoil its own restore (and what we hash of it).
 * Four chunks: the reader runs up to three ahead, so a slow round trip (a WAN, a busy server)
 * does not stall the extraction behind it. */
#define RING (4 * CHUNK)

/* The end of a ring restore: the child sees it, finishes, answers what it consumed and closes.
 * Its answers are read to that end (a socket closed with unread data would reset the child's
 * side instead of ending it). ring_acks' last result. */
static int ring_drain(int fd, struct ring_totals *rt, uint64_t *acked, uint64_t produced);

/* What a ring restore returns once the child ended or failed (r: ring_acks'): 0 (its report
 * says why), or -EPROTO for an impossible position, said in t->err. */
static int ring_result(int r, struct pgsmb_transfer *t) {
        if (r == -EPROTO) {
                snprintf(t->err, sizeof t->err, "the process extracting as the user sent an impossible position");
                return r;
        }
        return 0;
}

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

static int ring_drain(int fd, struct ring_totals *rt, uint64_t *acked, uint64_t produced) {
        int r;

        shutdown(fd, SHUT_WR);
        while ((r = ring_acks(fd, rt, acked, produced, true)) == 0)
                ;
        return r;
}

static int restore_ring(struct store *st, struct stream *s, unsigned char *ring, uint64_t size_hint,
                        bool always_hash, pgsmb_progress_fn progress, void *pud, struct pgsmb_transfer *t) {
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
                        t->mid_ms = now_ms();
                        r = ring_drain(s->fd, &totals, &acked, produced);
                        goto child;
                }
                if (t->bytes == 0)
                        t->hashed = always_hash || !zstd_checksummed_start(ring, (size_t)k);
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
        return ring_result(r, t); /* it ended or closed its end: its report says why */
}

/* restore_ring with readers on connections of their own (rd[0..nr), pgsmb-fetch.h): the file in
 * whole chunks, chunk c at (c % 4) * CHUNK of the ring, each read by a reader (at most 2 asks
 * each, as far ahead as the ring has room) or, while none is ready and after they failed, by
 * this process. Chunks are hashed and handed to the child in order, whoever read them. A reader
 * that fails or does not answer within timeout_ms is stopped: its chunks are read here. */
#define RING_SLOTS 4
#define READER_ASKS 2

struct ring_multi {
        struct reader **rd;
        size_t nr;
        int owner[RING_SLOTS]; /* chunk next - k's reader, -1: this process */
        uint64_t next;         /* chunks below it are asked of a reader or done */
        uint64_t size_hint;
        int child_r;           /* the child's end failed (ring_acks' -errno): nothing more from it */
};

/* Ask the readers for what the ring has room for (acked: what the child consumed). */
static void ring_assign(struct ring_multi *m, uint64_t c, uint64_t acked) {
        if (m->next < c)
                m->next = c;
        while (m->next < c + RING_SLOTS && m->next * CHUNK <= m->size_hint && (m->next + 1) * CHUNK - acked <= RING) {
                struct reader *best = NULL;
                int bi = -1;
                for (size_t i = 0; i < m->nr; i++)
                        if (reader_ready(m->rd[i]) && reader_pending(m->rd[i]) < READER_ASKS &&
                            (!best || reader_pending(m->rd[i]) < reader_pending(best))) {
                                best = m->rd[i];
                                bi = (int)i;
                        }
                if (!best || reader_ask(best, m->next * CHUNK, (size_t)(m->next % RING_SLOTS) * CHUNK, CHUNK) < 0)
                        return;
                m->owner[m->next % RING_SLOTS] = bi;
                m->next++;
        }
}

/* Chunk c from its reader i: its answer (bytes), taking the child's totals and asking for more
 * meanwhile; -errno when the reader failed (stopped: its chunks fall to this process). */
static ssize_t ring_take(struct ring_multi *m, struct stream *s, struct ring_totals *totals, uint64_t *acked,
                         uint64_t produced, uint64_t c, int timeout_ms, struct pgsmb_transfer *t) {
        int i = m->owner[c % RING_SLOTS];
        struct reader *rd = m->rd[i];
        long long until = now_ms() + timeout_ms;
        ssize_t k;

        /* (a reader stopped at an ask: its chunks are ours; the child's end failed: the restore
         * stops, the caller sees child_r) */
        for (k = -ECANCELED; reader_fd(rd) >= 0 && !m->child_r;) {
                struct pollfd p[2] = {{.fd = reader_fd(rd), .events = POLLIN}, {.fd = s->fd, .events = POLLIN}};
                long long left = until - now_ms();
                int n = left > 0 ? poll(p, 2, (int)left) : 0; /* (a child that keeps its end readable
                                                                * does not stretch the wait) */
                if (n < 0 && errno == EINTR)
                        continue;
                if (n > 0 && p[1].revents) {
                        int a = ring_acks(s->fd, totals, acked, produced, false);
                        if (a < 0)
                                m->child_r = a; /* its report says why, after this chunk */
                        else
                                ring_assign(m, c, *acked);
                }
                if (n <= 0 || p[0].revents) {
                        k = reader_wait(rd, n <= 0 ? 0 : timeout_ms, t->second_err, sizeof t->second_err);
                        if (k == -ETIMEDOUT)
                                snprintf(t->second_err, sizeof t->second_err, "a reader did not answer within %d s",
                                         (timeout_ms + 999) / 1000);
                        break;
                }
        }
        if (k >= 0 && (size_t)k < CHUNK && c * CHUNK + (uint64_t)k < m->size_hint) {
                /* an end of file before the manifest's size: this connection reads it again (a
                 * share that lies to one connection does not make a temporary profile alone) */
                snprintf(t->second_err, sizeof t->second_err, "a reader saw the end at %" PRIu64 " of %" PRIu64 " bytes",
                         c * CHUNK + (uint64_t)k, m->size_hint);
                reader_kill(rd);
                k = -EIO;
        }
        if (k < 0) /* stopped: what it had is read here */
                for (uint64_t x = c; x < m->next; x++)
                        if (m->owner[x % RING_SLOTS] == i)
                                m->owner[x % RING_SLOTS] = -1;
        return k;
}

static int restore_ring_multi(struct store *st, struct stream *s, unsigned char *ring, struct reader **rd, size_t nr,
                              int timeout_ms, uint64_t size_hint, bool always_hash, pgsmb_progress_fn progress,
                              void *pud, struct pgsmb_transfer *t) {
        struct ring_multi m = {.rd = rd, .nr = nr, .size_hint = size_hint};
        uint64_t produced = 0, acked = 0, pos = 0, c = 0;
        struct ring_totals totals = {0};
        long long last = now_ms();
        int r = 0;

        for (;; c++) {
                unsigned char *slot = ring + (c % RING_SLOTS) * CHUNK;
                ssize_t k = -1;
                long long t0 = now_ms();

                ring_assign(&m, c, acked);
                if (c < m.next && m.owner[c % RING_SLOTS] >= 0) {
                        if ((k = ring_take(&m, s, &totals, &acked, produced, c, timeout_ms, t)) >= 0)
                                t->second_chunks++;
                        t->second_wait_ms += now_ms() - t0;
                        if ((r = m.child_r) < 0)
                                goto child;
                }
                if (k < 0) { /* this process reads it */
                        t0 = now_ms();
                        while (produced + CHUNK - acked > RING)
                                if ((r = ring_acks(s->fd, &totals, &acked, produced, true)) < 0)
                                        goto child;
                        long long t1 = now_ms();
                        t->room_ms += t1 - t0;
                        if (m.next <= c)
                                m.next = c + 1;
                        if ((pos != c * CHUNK && (k = store_seek(s->f, c * CHUNK)) < 0) ||
                            (k = store_read_full(s->f, slot, CHUNK)) < 0) {
                                snprintf(t->err, sizeof t->err, "%s", store_error(st));
                                return (int)k;
                        }
                        pos = c * CHUNK + (uint64_t)k;
                        t->read_ms += now_ms() - t1;
                }
                if (k == 0 && c > 0)
                        break; /* (an empty file is a chunk of 0 bytes, hashed below: nothing) */
                if (t->bytes == 0)
                        t->hashed = always_hash || !zstd_checksummed_start(slot, (size_t)k);
                if (t->hashed)
                        EVP_DigestUpdate(s->md, slot, (size_t)k);
                produced += (uint64_t)k;
                t->bytes += (uint64_t)k;
                progress_tick(progress, pud, t->bytes, size_hint, &last);
                if (k > 0 && send_all(s->fd, &produced, sizeof produced) < 0)
                        return 0; /* the child stopped reading: its report says why */
                if ((r = ring_acks(s->fd, &totals, &acked, produced, false)) < 0)
                        goto child;
                if ((size_t)k < CHUNK)
                        break;
        }
        t->mid_ms = now_ms();
        t->chunks = c + 1;
        for (size_t i = 0; i < nr; i++)
                reader_kill(rd[i]); /* (nothing more is read: no connection held for the drain) */
        for (size_t i = 0; i < PGSMB_READERS_MAX; i++)
                t->ready_ms[i] = i < nr ? reader_ready_ms(rd[i]) : -1;
        for (size_t i = 0; i < nr && !t->second_err[0]; i++)
                if (reader_why(rd[i])[0])
                        snprintf(t->second_err, sizeof t->second_err, "%s", reader_why(rd[i]));
        r = ring_drain(s->fd, &totals, &acked, produced);
child:
        return ring_result(r, t);
}

/* The ring: a memfd mapped here, its size sealed (a child that could shrink it would crash us
 * with SIGBUS); the child gets a descriptor that can only read. Returns that descriptor. */
static int ring_new(unsigned char **ret) {
        _cleanup_close_ int fd = memfd_create("pgina-restore-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        char self[64];
        void *p;

        if (fd < 0 || ftruncate(fd, RING) < 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return -errno;
        p = mmap(NULL, RING, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        int ro = open(self, O_RDONLY | O_CLOEXEC);
        if (ro < 0) {
                int r = -errno;
                munmap(p, RING);
                return r;
        }
        *ret = p;
        return ro;
}

int pgsmb_restore_stream(struct store *st, const char *rel, uint64_t size_hint,
                         const struct pgsmb_user *u, const char *target,
                         const struct profile_limits *lim, const struct profile_compress *c,
                         pgsmb_progress_fn progress, void *pud, struct pgsmb_transfer *t) {
        return pgsmb_restore_stream_opts(st, rel, size_hint, u, target, lim, c, NULL, progress, pud, t);
}

static int memfd_of(const char *name, const void *data, size_t len);

/* The scan as a memfd (USERWORK_F_EXPECT). */
static int expect_memfd(const struct scan *s) {
        struct pbuf b;
        int fd;

        pbuf_init_large(&b);
        fd = scan_format_all(s, &b) < 0 ? -ENOMEM : memfd_of("pgsmb-expect", b.data, b.len);
        pbuf_free(&b);
        return fd;
}

/* The job's flags and its want list (a memfd on list_fd) for the options of a format-2 restore;
 * -1 and no flags without them. */
static int extract_opts_job(const struct pgsmb_extract_opts *o, struct userwork_job *job, struct pgsmb_transfer *t) {
        int fd;

        if (!o)
                return -1;
        job->flags = (o->want ? USERWORK_F_WANT : 0) | (o->in_place ? USERWORK_F_IN_PLACE : 0) |
                     (o->no_dirfix ? USERWORK_F_NO_DIRFIX : 0);
        if (!o->want)
                return -1;
        if ((fd = memfd_of("pgsmb-want", o->want->data, o->want->len)) < 0)
                snprintf(t->err, sizeof t->err, "memfd: %s", strerror(-fd));
        return fd;
}

/* A reader's store timeout: the store's (1 s to 1 h) for each reader sharing the link. */
static unsigned reader_timeout_s(const struct pgsmb_extract_opts *o) {
        unsigned s = o->second_timeout_s < 1 ? 1 : o->second_timeout_s > 3600 ? 3600 : o->second_timeout_s;
        return s * (o->readers < 1 ? 1 : o->readers > PGSMB_READERS_MAX ? PGSMB_READERS_MAX : o->readers);
}

int pgsmb_restore_stream_opts(struct store *st, const char *rel, uint64_t size_hint,
                              const struct pgsmb_user *u, const char *target,
                              const struct profile_limits *lim, const struct profile_compress *c,
                              const struct pgsmb_extract_opts *o, pgsmb_progress_fn progress, void *pud,
                              struct pgsmb_transfer *t) {
        struct userwork_job job = {.kind = USERWORK_EXTRACT, .name = u->name, .home = u->home,
                                   .dir = target, .lim = *lim, .level = c->level, .threads = c->threads,
                                   .extract_argv = (const char *const *)c->extract_argv};
        bool always_hash = o && o->always_hash;
        struct stream s;
        long long last = now_ms();
        unsigned char *ring = NULL;
        struct reader *rd[PGSMB_READERS_MAX];
        size_t nr = 0;
        char second_why[300] = "";
        int r, ring_fd = -1, list_fd;

        memset(t, 0, sizeof *t);
        if (o && c->extract_argv) {
                snprintf(t->err, sizeof t->err, "an external program (uncompress_command) cannot extract a delta profile");
                return -EOPNOTSUPP;
        }
        list_fd = extract_opts_job(o, &job, t);
        if (o && o->want && list_fd < 0)
                return list_fd;
        if (!c->extract_argv && (ring_fd = ring_new(&ring)) >= 0)
                job.ring_size = RING; /* else the socket stream */
        /* (before the stream: the readers hold none of its descriptors) */
        if (ring && o && o->second_url && size_hint >= PGSMB_SECOND_MIN && strncmp(o->second_url, "smb://", 6) == 0)
                for (size_t i = 0; i < o->readers && i < PGSMB_READERS_MAX; i++) {
                        int mine[2] = {ring_fd, list_fd};
                        /* the link is shared: a reader's 8 MiB may take as long as the readers'
                         * 8 MiB each on one connection */
                        int k = reader_start(o->second_url, o->second_creds, reader_timeout_s(o), rel, ring, RING,
                                             mine, 2, &rd[nr]);
                        if (k < 0)
                                snprintf(second_why, sizeof second_why, "cannot start: %s", strerror(-k));
                        else
                                nr++;
                }
        r = stream_begin(st, rel, false, u, &job, ring_fd, list_fd, t, &s);
        if (ring_fd >= 0)
                close(ring_fd); /* the mapping stays */
        if (list_fd >= 0)
                close(list_fd);
        if (r < 0) {
                for (size_t i = 0; i < nr; i++)
                        reader_end(rd[i]);
                if (ring)
                        munmap(ring, RING);
                return r;
        }
        if (ring) {
                if (nr)
                        r = restore_ring_multi(st, &s, ring, rd, nr, (int)reader_timeout_s(o) * 1000 + 1000,
                                               size_hint, always_hash, progress, pud, t);
                else
                        r = restore_ring(st, &s, ring, size_hint, always_hash, progress, pud, t);
                for (size_t i = 0; i < nr; i++)
                        reader_end(rd[i]); /* stopped: they write into the ring no more */
                if (second_why[0])
                        snprintf(t->second_err, sizeof t->second_err, "%s", second_why);
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
                if (k == 0) {
                        t->mid_ms = now_ms();
                        break;
                }
                if (t->bytes == 0)
                        t->hashed = always_hash || c->extract_argv || !zstd_checksummed_start(s.buf, (size_t)k);
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

int pgsmb_extract_fd_start(int fd, const struct pgsmb_user *u, const char *target, const struct profile_limits *lim,
                           const struct pgsmb_extract_opts *o, struct pgsmb_child *ch, struct pgsmb_transfer *t) {
        struct userwork_job job = {.kind = USERWORK_EXTRACT, .name = u->name, .home = u->home, .dir = target,
                                   .lim = *lim};
        _cleanup_close_ int data = -1, list_fd = -1, aux = -1;
        char self[64];
        int r;

        memset(t, 0, sizeof *t);
        list_fd = extract_opts_job(o, &job, t);
        if (o && o->want && list_fd < 0)
                return list_fd;
        if (o && o->expect) {
                if ((aux = expect_memfd(o->expect)) < 0) {
                        snprintf(t->err, sizeof t->err, "memfd: %s", strerror(-aux));
                        return aux;
                }
                job.flags |= USERWORK_F_EXPECT;
        }
        /* its own open file description, read from the start */
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        if ((data = open(self, O_RDONLY | O_CLOEXEC)) < 0) {
                r = -errno;
                snprintf(t->err, sizeof t->err, "cannot reopen the archive: %s", strerror(errno));
                return r;
        }
        /* the child has its own copies of the descriptors: ours close here */
        return pgsmb_child_start(u, &job, data, aux, list_fd, ch, t->err, sizeof t->err);
}

int pgsmb_extract_fd_wait(struct pgsmb_child *ch, struct pgsmb_transfer *t) {
        struct userwork_report rep;
        int r = pgsmb_child_wait(ch, &rep);

        t->stats = rep.stats;
        if (r < 0)
                snprintf(t->err, sizeof t->err, "%s", rep.err[0] ? rep.err : "extraction failed");
        return r;
}

int pgsmb_extract_fd(int fd, const struct pgsmb_user *u, const char *target, const struct profile_limits *lim,
                     const struct pgsmb_extract_opts *o, struct pgsmb_transfer *t) {
        struct pgsmb_child ch;
        int r = pgsmb_extract_fd_start(fd, u, target, lim, o, &ch, t);

        return r < 0 ? r : pgsmb_extract_fd_wait(&ch, t);
}

/* A job on dir with a list on FD_LIST (and, with expect, USERWORK_F_EXPECT's scan on FD_AUX). */
static int list_job(const struct pgsmb_user *u, enum userwork_kind kind, const char *dir, const void *data, size_t len,
                    const struct scan *expect, struct userwork_report *rep, char *err, size_t errlen) {
        struct userwork_job job = {.kind = kind, .name = u->name, .home = u->home, .dir = dir};
        _cleanup_close_ int fd = memfd_of("pgsmb-list", data, len), aux = -1;
        struct pgsmb_child ch;
        int r;

        if (fd < 0 || (expect && (aux = expect_memfd(expect)) < 0)) {
                r = fd < 0 ? fd : aux;
                snprintf(err, errlen, "memfd: %s", strerror(-r));
                return r;
        }
        if (expect)
                job.flags |= USERWORK_F_EXPECT;
        if ((r = pgsmb_child_start(u, &job, -1, aux, fd, &ch, err, errlen)) < 0)
                return r;
        if ((r = pgsmb_child_wait(&ch, rep)) < 0)
                snprintf(err, errlen, "%s", rep->err);
        return r;
}

int pgsmb_delete_paths(const struct pgsmb_user *u, const char *dir, const struct pbuf *list,
                       const struct scan *expect, char *err, size_t errlen) {
        struct userwork_report rep;
        return list_job(u, USERWORK_DELETE, dir, list->data, list->len, expect, &rep, err, errlen);
}

int pgsmb_fix_dirs(const struct pgsmb_user *u, const char *dir, const struct scan *dirs, char *err, size_t errlen) {
        struct userwork_report rep;
        struct pbuf b;
        int r = 0;

        pbuf_init_large(&b);
        for (size_t i = 0; i < dirs->n && r == 0; i++)
                if (dirs->v[i].type == 'd')
                        r = scan_format(&dirs->v[i], &b);
        if (r < 0) {
                snprintf(err, errlen, "the list of directories is too large: %s", strerror(-r));
                pbuf_free(&b);
                return r;
        }
        r = list_job(u, USERWORK_FIXDIRS, dir, b.data, b.len, NULL, &rep, err, errlen);
        pbuf_free(&b);
        return r;
}

/* What f (written, bytes long) holds, read back on its own handle (store_reread) into buf
 * (CHUNK), to one byte past bytes (a longer file shows): its SHA-256 and length, 0; -errno
 * when it cannot be read (the caller's verify by name decides then). */
static int reread_hashed(struct store_file *f, unsigned char *buf, uint64_t bytes, unsigned char sha256[32],
                         uint64_t *got) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int r;

        *got = 0;
        if (!md)
                return -ENOMEM;
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        if ((r = store_reread(f)) == 0)
                while (*got <= bytes) {
                        ssize_t k = store_read(f, buf, CHUNK);
                        if (k <= 0) {
                                r = (int)k; /* 0: shorter than written, which the caller sees */
                                break;
                        }
                        EVP_DigestUpdate(md, buf, (size_t)k);
                        *got += (uint64_t)k;
                }
        EVP_DigestFinal_ex(md, sha256, NULL);
        EVP_MD_CTX_free(md);
        return r;
}

/* An archiving job's stream to the new store file rel (aux_fd, list_fd: the job's other
 * descriptors, -1: none), read back behind the writer through rt when it can. */
/* The archive from the child to the stream's file (created: rel), then stream_end. */
static int upload_pump(struct store *st, const char *rel, struct stream *sp, const struct pgsmb_readback_target *rt,
                       pgsmb_progress_fn progress, void *pud, struct pgsmb_transfer *t) {
        struct readback *rb = NULL;
        XXH3_state_t *xs = NULL;
        struct stream s = *sp;
        long long last = now_ms();
        int r = 0;

        /* The file exists now: the reader may open it, once the archive is larger than one block
         * (a smaller one is read back on this handle below, sooner than a reader could
         * connect); when the reader cannot start, the same. */
        if (rt && (xs = XXH3_createState()))
                XXH3_128bits_reset(xs);
        for (;;) {
                size_t have = 0;

                /* Fill whole blocks: every store request costs a round trip. */
                while (have < CHUNK) {
                        ssize_t k = read(s.fd, s.buf + have, CHUNK - have);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k == 0 && !t->mid_ms)
                                t->mid_ms = now_ms(); /* the archiver's end */
                        if (k <= 0)
                                break;
                        have += (size_t)k;
                }
                if (have == 0)
                        break;
                EVP_DigestUpdate(s.md, s.buf, have);
                if (xs)
                        XXH3_128bits_update(xs, s.buf, have);
                if (xs && !rb && have == CHUNK &&
                    readback_start(rt->url, rt->creds, rt->timeout_s, rel, s.fd, &rb) < 0) {
                        rb = NULL; /* the caller verifies */
                        XXH3_freeState(xs);
                        xs = NULL;
                }
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
        /* No reader behind the writer (a small archive): read back on this handle before its
         * close, which flushes and reports as ever; the caller's verify by name would cost an
         * open, a size query and a close more. */
        unsigned char back_sha[32];
        uint64_t back_bytes = 0;
        long long stored = now_ms();
        bool back = r == 0 && !rb && t->bytes > 0 && reread_hashed(s.f, s.buf, t->bytes, back_sha, &back_bytes) == 0;
        r = stream_end(st, &s, r, "archiving failed", t);
        t->end_ms = back ? stored : now_ms(); /* (the read-back is the verify's time) */
        if (back && r == 0) {
                if (back_bytes != t->bytes || memcmp(back_sha, t->sha256, sizeof back_sha) != 0) {
                        snprintf(t->err, sizeof t->err, "%s/%s: read back %llu bytes that do not match the %llu bytes "
                                 "written", store_url(st), rel, (unsigned long long)back_bytes,
                                 (unsigned long long)t->bytes);
                        r = -EIO;
                } else
                        t->verified = true;
        }
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

static int upload_job(struct store *st, const char *rel, const struct pgsmb_user *u, const struct userwork_job *job,
                      int aux_fd, int list_fd, const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress,
                      void *pud, struct pgsmb_transfer *t) {
        struct stream s;
        int r = stream_begin(st, rel, true, u, job, aux_fd, list_fd, t, &s);

        return r < 0 ? r : upload_pump(st, rel, &s, rt, progress, pud, t);
}

int pgsmb_upload_stream(struct store *st, const char *rel, const struct pgsmb_user *u,
                        const char *const *exclude, const struct profile_compress *c,
                        const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress,
                        void *pud, struct pgsmb_transfer *t) {
        struct userwork_job job = {.kind = USERWORK_ARCHIVE, .name = u->name, .home = u->home,
                                   .dir = u->home, .exclude = exclude, .level = c->level,
                                   .threads = c->threads,
                                   .archive_argv = (const char *const *)c->archive_argv};

        return upload_job(st, rel, u, &job, -1, -1, rt, progress, pud, t);
}

/* ---- delta profiles ---- */

/* A memfd holding b (from offset 0), sealed against writes: a descriptor to give a child. */
static int memfd_of(const char *name, const void *data, size_t len) {
        int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        const char *p = data;

        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int r = k < 0 ? -errno : -EIO;
                        close(fd);
                        return r;
                }
                p += k;
                len -= (size_t)k;
        }
        if (lseek(fd, 0, SEEK_SET) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* What a child wrote into the memfd fd: a scan, checked. */
static int scan_from_memfd(int fd, const char *dir, struct scan *scan, char *err, size_t errlen) {
        size_t line = 0;
        int r;

        if (lseek(fd, 0, SEEK_SET) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot read the scan of %s: %s", dir, strerror(errno));
                return r;
        }
        /* The user's processes may still hold it (the job can pass it on before it ends): sealed
         * first, so that what is checked is what is used. A writable mapping left elsewhere
         * makes the seal fail: refused. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
                r = -errno;
                snprintf(err, errlen, "the scan of %s cannot be sealed (%s): another process of the user still "
                         "writes to it", dir, strerror(errno));
                return r == -EBUSY ? -EBADMSG : r;
        }
        /* Written by the user's process: as hostile as any input (bounded, every line checked). */
        r = scan_read_fd(scan, fd, SCAN_BYTES_MAX, &line);
        if (r == -E2BIG && line == 0)
                snprintf(err, errlen, "the scan of %s is invalid: larger than %u MiB", dir, SCAN_BYTES_MAX >> 20);
        else if (r == -EBADMSG)
                snprintf(err, errlen, "the scan of %s is invalid at line %zu: not a scan line, a bad path, or a path "
                         "listed twice", dir, line);
        else if (r < 0)
                snprintf(err, errlen, "the scan of %s is invalid at line %zu: %s", dir, line, strerror(-r));
        return r;
}

struct pgsmb_early {
        struct stream s; /* its child started, no file yet */
        int scan_fd;
        const char *home; /* the user's, for messages */
};

int pgsmb_delta_early_start(const struct pgsmb_user *u, const char *const *exclude, const struct profile_compress *c,
                            const char *record, size_t record_len, struct pgsmb_early **ret, char *err,
                            size_t errlen) {
        struct userwork_job job = {.kind = USERWORK_DELTA, .name = u->name, .home = u->home,
                                   .dir = u->home, .exclude = exclude, .level = c->level,
                                   .threads = c->threads, .flags = record ? 0 : USERWORK_F_FULL};
        _cleanup_close_ int rec_fd = -1;
        struct pgsmb_transfer t = {0};
        struct pgsmb_early *e;
        int r;

        *ret = NULL;
        if (c->archive_argv) {
                snprintf(err, errlen, "an external program (compress_command) cannot write a delta");
                return -EOPNOTSUPP;
        }
        if (!(e = calloc(1, sizeof *e))) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        e->home = u->home;
        e->scan_fd = -1;
        rec_fd = record ? memfd_of("pgsmb-record", record, record_len) : -1;
        e->scan_fd = memfd_create("pgsmb-scan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if ((record && rec_fd < 0) || e->scan_fd < 0) {
                r = rec_fd < 0 && record ? rec_fd : -errno;
                snprintf(err, errlen, "memfd: %s", strerror(-r));
                goto fail;
        }
        if ((r = stream_init(&e->s)) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
        }
        if ((r = stream_child(u, &job, rec_fd, e->scan_fd, &t, &e->s)) < 0) {
                snprintf(err, errlen, "%s", t.err[0] ? t.err : strerror(-r));
                stream_free(&e->s);
                goto fail;
        }
        *ret = e;
        return 0;
fail:
        if (e->scan_fd >= 0)
                close(e->scan_fd);
        free(e);
        return r;
}

void pgsmb_delta_early_abort(struct pgsmb_early *e) {
        if (!e)
                return;
        stream_abort(&e->s);
        close(e->scan_fd);
        free(e);
}

int pgsmb_delta_early_finish(struct pgsmb_early *e, struct store *st, const char *rel,
                             const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress, void *pud,
                             struct pgsmb_transfer *t, struct scan *scan) {
        int r;

        scan_init(scan);
        memset(t, 0, sizeof *t);
        if ((r = store_open_write(st, rel, &e->s.f)) < 0) {
                snprintf(t->err, sizeof t->err, "%s", store_error(st));
                pgsmb_delta_early_abort(e);
                return r;
        }
        r = upload_pump(st, rel, &e->s, rt, progress, pud, t);
        if (r == 0)
                r = scan_from_memfd(e->scan_fd, e->home, scan, t->err, sizeof t->err);
        close(e->scan_fd);
        free(e);
        return r;
}

int pgsmb_delta_stream(struct store *st, const char *rel, const struct pgsmb_user *u, const char *const *exclude,
                       const struct profile_compress *c, const struct scan *record,
                       const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress, void *pud,
                       struct pgsmb_transfer *t, struct scan *scan) {
        struct pgsmb_early *e;
        int r;

        struct pbuf b;

        scan_init(scan);
        memset(t, 0, sizeof *t);
        pbuf_init_large(&b);
        if (record && (r = scan_format_all(record, &b)) < 0) {
                snprintf(t->err, sizeof t->err, "the record is too large to hand over: %s", strerror(-r));
                pbuf_free(&b);
                return r;
        }
        r = pgsmb_delta_early_start(u, exclude, c, record ? (b.data ? (const char *)b.data : "") : NULL, b.len, &e, t->err,
                                    sizeof t->err);
        pbuf_free(&b);
        if (r < 0)
                return r;
        return pgsmb_delta_early_finish(e, st, rel, rt, progress, pud, t, scan);
}

int pgsmb_scan_home(const struct pgsmb_user *u, const char *dir, const char *const *exclude, struct scan *scan,
                    char *err, size_t errlen) {
        struct userwork_job job = {.kind = USERWORK_SCAN, .name = u->name, .home = u->home, .dir = dir,
                                   .exclude = exclude};
        _cleanup_close_ int scan_fd = memfd_create("pgsmb-scan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        struct userwork_report rep;
        struct pgsmb_child ch;
        int r;

        scan_init(scan);
        if (scan_fd < 0) {
                r = -errno;
                snprintf(err, errlen, "memfd: %s", strerror(errno));
                return r;
        }
        if ((r = pgsmb_child_start(u, &job, -1, -1, scan_fd, &ch, err, errlen)) < 0)
                return r;
        if ((r = pgsmb_child_wait(&ch, &rep)) < 0) {
                snprintf(err, errlen, "%s", rep.err);
                return r;
        }
        return scan_from_memfd(scan_fd, dir, scan, err, errlen);
}

int pgsmb_stat_paths_start(const struct pgsmb_user *u, const char *dir, const struct pbuf *list,
                           struct pgsmb_stat_job *sj, char *err, size_t errlen) {
        struct userwork_job job = {.kind = USERWORK_STAT, .name = u->name, .home = u->home, .dir = dir};
        _cleanup_close_ int list_fd = memfd_of("pgsmb-paths", list->data, list->len);
        int r;

        sj->scan_fd = memfd_create("pgsmb-scan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (list_fd < 0 || sj->scan_fd < 0) {
                r = list_fd < 0 ? list_fd : -errno;
                snprintf(err, errlen, "memfd: %s", strerror(-r));
                if (sj->scan_fd >= 0)
                        close(sj->scan_fd);
                sj->scan_fd = -1;
                return r;
        }
        /* A look at a few paths: the user's own process must not hold the logon past a
         * deadline of its own (stopped, or traced). */
        sj->npaths = 0;
        for (size_t i = 0; i < list->len; i++)
                sj->npaths += ((const char *)list->data)[i] == '\n';
        sj->limit_ms = STAT_PATHS_BASE_MS + (long long)sj->npaths * STAT_PATHS_PER_PATH_MS;
        sj->deadline = now_ms() + sj->limit_ms;
        if ((r = pgsmb_child_start(u, &job, -1, list_fd, sj->scan_fd, &sj->ch, err, errlen)) < 0) {
                close(sj->scan_fd);
                sj->scan_fd = -1;
        }
        return r;
}

int pgsmb_stat_paths_wait(struct pgsmb_stat_job *sj, const char *dir, struct scan *scan, char *err, size_t errlen) {
        struct userwork_report rep;
        int r;

        scan_init(scan);
        if ((r = pgsmb_child_wait_until(&sj->ch, &rep, sj->deadline)) < 0) {
                if (now_ms() >= sj->deadline)
                        snprintf(err, errlen, "the look at %zu path(s) as the user did not end within %lld s: stopped",
                                 sj->npaths, sj->limit_ms / 1000);
                else
                        snprintf(err, errlen, "%s", rep.err);
        } else
                r = scan_from_memfd(sj->scan_fd, dir, scan, err, errlen);
        close(sj->scan_fd);
        sj->scan_fd = -1;
        return r;
}

int pgsmb_stat_paths(const struct pgsmb_user *u, const char *dir, const struct pbuf *list, struct scan *scan,
                     char *err, size_t errlen) {
        struct pgsmb_stat_job sj;
        int r;

        scan_init(scan);
        if ((r = pgsmb_stat_paths_start(u, dir, list, &sj, err, errlen)) < 0)
                return r;
        return pgsmb_stat_paths_wait(&sj, dir, scan, err, errlen);
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
        /* Done at the size the server gave at the open when that is the size written: nobody
         * writes the file any more, and the read that would see its end costs a round trip.
         * Any other size, to the end of the file. */
        int64_t open_size = store_file_size(f);
        for (;;) {
                if (open_size >= 0 && (uint64_t)open_size == size && total == size)
                        break;
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
