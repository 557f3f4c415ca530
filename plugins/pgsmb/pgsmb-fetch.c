/* Archives downloaded ahead on a second connection (see pgsmb-fetch.h). */
#include "pgsmb-fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <pgina/util.h>

#include "pgsmb-helper.h"
#include "pgsmb-readback.h"
#include "pgsmb-store.h"

#define FETCH_CHUNK (8u << 20) /* one SMB3 read each, as the restore's */

struct fetch_report {
        int r;
        char err[512];
};

struct fetcher {
        pid_t pid;
        int from; /* the reports, one per item, in order */
        size_t n, next;
        int *fds;
        bool stopped; /* killed: nothing more comes */
};

int pgsmb_fetch_verified(struct store *st, const struct fetch_item *it, int fd, char *err, size_t errlen) {
        _cleanup_free_ unsigned char *buf = malloc(FETCH_CHUNK);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        struct store_file *f = NULL;
        unsigned char sum[32];
        uint64_t total = 0;
        char hex[65];
        int k = 0;

        if (!buf || !md) {
                EVP_MD_CTX_free(md);
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        if ((k = store_open_read(st, it->rel, &f)) < 0) {
                snprintf(err, errlen, "%s", store_error(st));
                EVP_MD_CTX_free(md);
                return k;
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        /* Done at the manifest's size when the server gave that size at the open: an archive is
         * written once, under a name of its own, and the read that would see its end costs a
         * round trip (one in five of a small delta's). Any other size: to the end of the file. */
        int64_t open_size = store_file_size(f);
        bool sized = open_size >= 0 && (uint64_t)open_size == it->size;
        for (;;) {
                if (sized && total == it->size)
                        break;
                /* one byte past the manifest's size: a longer file is refused, not cut */
                uint64_t want = it->size - total + 1;
                ssize_t n = store_read(f, buf, want < FETCH_CHUNK ? (size_t)want : FETCH_CHUNK);
                if (n < 0) {
                        k = (int)n;
                        snprintf(err, errlen, "%s", store_error(st));
                        break;
                }
                if (n == 0)
                        break;
                if ((total += (uint64_t)n) > it->size) {
                        k = -EBADMSG;
                        break;
                }
                EVP_DigestUpdate(md, buf, (size_t)n);
                if (write_all(fd, buf, (size_t)n) < 0) {
                        k = -errno;
                        snprintf(err, errlen, "cannot hold %s in memory: %s", it->name, strerror(errno));
                        break;
                }
        }
        store_close_file(f);
        EVP_DigestFinal_ex(md, sum, NULL);
        EVP_MD_CTX_free(md);
        pgsmb_hex(sum, hex);
        if (k == 0 && (total != it->size || strcmp(hex, it->sha256) != 0))
                k = -EBADMSG;
        if (k == -EBADMSG)
                snprintf(err, errlen, "archive %s: its size or checksum does not match the manifest's: damaged or "
                         "changed", it->name);
        return k;
}

/* The fetching process: one report per item, in order; after a failed connect every item's
 * report is that failure. */
static void fetch_run(int out, const char *url, const struct store_creds *creds, unsigned timeout_s,
                      const struct fetch_item *items, const int *fds, size_t n) {
        struct store *st = NULL;
        char why[STORE_ERROR_MAX];
        int open_r = store_open(url, creds, timeout_s, &st, why, sizeof why);

        for (size_t i = 0; i < n; i++) {
                struct fetch_report rep = {.r = open_r};
                if (open_r < 0)
                        snprintf(rep.err, sizeof rep.err, "%s", why);
                else
                        rep.r = pgsmb_fetch_verified(st, &items[i], fds[i], rep.err, sizeof rep.err);
                /* its memory is the worker's to free once it has taken it */
                close(fds[i]);
                if (write_all(out, &rep, sizeof rep) < 0)
                        break;
        }
        if (st)
                store_close(st);
}

int fetcher_start(const char *url, const struct store_creds *creds, unsigned timeout_s,
                  const struct fetch_item *items, size_t n, struct fetcher **ret) {
        struct fetcher *fe = calloc(1, sizeof *fe);
        int p[2] = {-1, -1}, r;

        if (!fe || !(fe->fds = malloc(n * sizeof *fe->fds))) {
                free(fe);
                return -ENOMEM;
        }
        fe->n = n;
        fe->pid = -1;
        fe->from = -1;
        for (size_t i = 0; i < n; i++)
                fe->fds[i] = -1;
        for (size_t i = 0; i < n; i++)
                if ((fe->fds[i] = memfd_create("pgsmb-ahead", MFD_CLOEXEC)) < 0) {
                        r = -errno;
                        goto fail;
                }
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        struct store_creds own;
        pid_t pid = store_fork(creds, &own);
        if (pid < 0) {
                r = (int)pid;
                goto fail;
        }
        if (pid == 0) {
                signal(SIGPIPE, SIG_IGN);
                close(p[0]);
                fetch_run(p[1], url, creds ? &own : NULL, timeout_s, items, fe->fds, n);
                _exit(0);
        }
        close(p[1]);
        fe->pid = pid;
        fe->from = p[0];
        *ret = fe;
        return 0;
fail:
        if (p[0] >= 0) {
                close(p[0]);
                close(p[1]);
        }
        fetcher_end(fe);
        return r;
}

int fetcher_take(struct fetcher *fe, size_t i, int timeout_ms, int *fd, char *err, size_t errlen) {
        struct fetch_report rep;
        struct pollfd pfd = {.fd = fe->from, .events = POLLIN};
        long long until = now_ms() + timeout_ms;
        ssize_t k;
        int p;

        if (i != fe->next || i >= fe->n) {
                snprintf(err, errlen, "archive %zu taken out of order", i);
                return -EINVAL;
        }
        fe->next++;
        if (fe->stopped) {
                snprintf(err, errlen, "the fetching process was stopped");
                return -ECANCELED;
        }
        /* a server that answers the second connection slowly costs at most timeout_ms here:
         * then the rest is streamed */
        while ((p = poll(&pfd, 1, (int)(until > now_ms() ? until - now_ms() : 0))) < 0 && errno == EINTR)
                ;
        if (p == 0) {
                (void)kill(fe->pid, SIGKILL);
                fe->stopped = true;
                snprintf(err, errlen, "not fetched within %d s", timeout_ms / 1000);
                return -ETIMEDOUT;
        }
        do
                k = read(fe->from, &rep, sizeof rep);
        while (k < 0 && errno == EINTR);
        if (k != (ssize_t)sizeof rep) {
                snprintf(err, errlen, "the fetching process ended without a report");
                return -EIO;
        }
        rep.err[sizeof rep.err - 1] = 0;
        if (rep.r < 0) {
                snprintf(err, errlen, "%s", rep.err);
                return rep.r;
        }
        if (lseek(fe->fds[i], 0, SEEK_SET) < 0) {
                snprintf(err, errlen, "memfd: %s", strerror(errno));
                return -errno;
        }
        *fd = fe->fds[i];
        fe->fds[i] = -1;
        return 0;
}

void fetcher_end(struct fetcher *fe) {
        int status;

        if (!fe)
                return;
        if (fe->from >= 0)
                close(fe->from);
        if (fe->pid > 0) {
                (void)kill(fe->pid, SIGKILL);
                while (waitpid(fe->pid, &status, 0) < 0 && errno == EINTR)
                        ;
        }
        for (size_t i = 0; fe->fds && i < fe->n; i++)
                if (fe->fds[i] >= 0)
                        close(fe->fds[i]);
        free(fe->fds);
        free(fe);
}

/* ---- a second reader of one archive ---- */

struct reader_ask_msg {
        uint64_t off, at, len;
};

struct reader_report {
        int64_t n; /* the ready report: 0 or -errno; an answer: bytes or -errno */
        char err[256];
};

struct reader {
        pid_t pid;
        int to, from;
        bool ready;
        uint64_t asked_len[READER_DEPTH]; /* the asks not answered yet, oldest first */
        size_t asked;
        char why[256]; /* why it could not connect or open */
        long long t_start, t_ready; /* now_ms() at its start and when it was seen ready */
};

static void reader_run(int in, int out, const char *url, const struct store_creds *creds, unsigned timeout_s,
                       const char *rel, unsigned char *buf, size_t buf_size) {
        struct store *st = NULL;
        struct store_file *f = NULL;
        struct reader_report rep = {0};
        struct reader_ask_msg a;
        char why[STORE_ERROR_MAX];

        if ((rep.n = store_open(url, creds, timeout_s, &st, why, sizeof why)) < 0)
                snprintf(rep.err, sizeof rep.err, "%s", why);
        else if ((rep.n = store_open_read(st, rel, &f)) < 0)
                snprintf(rep.err, sizeof rep.err, "%s", store_error(st));
        if (write_all(out, &rep, sizeof rep) < 0 || rep.n < 0)
                goto out;
        for (;;) {
                ssize_t k;
                do
                        k = read(in, &a, sizeof a);
                while (k < 0 && errno == EINTR);
                if (k != (ssize_t)sizeof a)
                        break; /* the worker is done */
                memset(&rep, 0, sizeof rep);
                if (a.at > buf_size || a.len > buf_size - a.at) {
                        rep.n = -EINVAL;
                        snprintf(rep.err, sizeof rep.err, "an ask outside the buffer");
                } else if ((rep.n = store_seek(f, a.off)) < 0)
                        snprintf(rep.err, sizeof rep.err, "%s", store_error(st));
                else if ((rep.n = store_read_full(f, buf + a.at, (size_t)a.len)) < 0)
                        snprintf(rep.err, sizeof rep.err, "%s", store_error(st));
                if (write_all(out, &rep, sizeof rep) < 0 || rep.n < 0)
                        break;
        }
out:
        store_close_file(f);
        if (st)
                store_close(st);
}

int reader_start(const char *url, const struct store_creds *creds, unsigned timeout_s, const char *rel,
                 unsigned char *buf, size_t buf_size, const int *close_fds, size_t n_close, struct reader **ret) {
        struct reader *rd = calloc(1, sizeof *rd);
        int to[2] = {-1, -1}, from[2] = {-1, -1}, r;
        struct store_creds own;

        if (!rd)
                return -ENOMEM;
        if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        pid_t pid = store_fork(creds, &own);
        if (pid < 0) {
                r = (int)pid;
                goto fail;
        }
        if (pid == 0) {
                signal(SIGPIPE, SIG_IGN);
                close(to[1]);
                close(from[0]);
                /* The worker's other descriptors stay open here, as in the fetcher and the
                 * read-back: libsmbclient's process-wide state (its tdb caches) came with the
                 * fork, and closing what it holds could let a new socket take a tdb's number.
                 * The process dies with the worker and is killed at the restore's end. */
                for (size_t i = 0; i < n_close; i++)
                        if (close_fds[i] >= 0)
                                close(close_fds[i]);
                reader_run(to[0], from[1], url, creds ? &own : NULL, timeout_s, rel, buf, buf_size);
                _exit(0);
        }
        close(to[0]);
        close(from[1]);
        *rd = (struct reader){.pid = pid, .to = to[1], .from = from[0], .t_start = now_ms()};
        *ret = rd;
        return 0;
fail:
        for (int i = 0; i < 2; i++) {
                if (to[i] >= 0)
                        close(to[i]);
                if (from[i] >= 0)
                        close(from[i]);
        }
        free(rd);
        return r;
}

/* Stopped for good: killed and reaped, so nothing more lands in the buffer. */
static void reader_stop(struct reader *rd) {
        int status;

        if (rd->pid > 0) {
                (void)kill(rd->pid, SIGKILL);
                while (waitpid(rd->pid, &status, 0) < 0 && errno == EINTR)
                        ;
                rd->pid = -1;
        }
        rd->ready = false;
        rd->asked = 0;
}

static int reader_report_read(struct reader *rd, int timeout_ms, struct reader_report *rep, char *err,
                              size_t errlen) {
        struct pollfd pfd = {.fd = rd->from, .events = POLLIN};
        long long until = now_ms() + timeout_ms;
        ssize_t k;
        int p;

        while ((p = poll(&pfd, 1, (int)(until > now_ms() ? until - now_ms() : 0))) < 0 && errno == EINTR)
                ;
        if (p == 0) {
                snprintf(err, errlen, "no answer within %d ms", timeout_ms);
                return -ETIMEDOUT;
        }
        if (p < 0) {
                snprintf(err, errlen, "poll: %s", strerror(errno));
                return -EIO;
        }
        do
                k = read(rd->from, rep, sizeof *rep);
        while (k < 0 && errno == EINTR);
        if (k != (ssize_t)sizeof *rep) {
                snprintf(err, errlen, "the reading process ended without an answer");
                return -EIO;
        }
        rep->err[sizeof rep->err - 1] = 0;
        return 0;
}

bool reader_ready(struct reader *rd) {
        struct reader_report rep;
        char err[64];
        int k;

        if (rd->ready || rd->pid < 0)
                return rd->ready;
        if ((k = reader_report_read(rd, 0, &rep, err, sizeof err)) == -ETIMEDOUT)
                return false; /* still connecting */
        if (k < 0 || rep.n < 0) {
                snprintf(rd->why, sizeof rd->why, "%s", k < 0 ? err : rep.err);
                reader_stop(rd);
                return false;
        }
        rd->t_ready = now_ms();
        return rd->ready = true;
}

void reader_kill(struct reader *rd) { reader_stop(rd); }

long long reader_ready_ms(const struct reader *rd) { return rd->t_ready ? rd->t_ready - rd->t_start : -1; }

int reader_ask(struct reader *rd, uint64_t off, size_t at, size_t len) {
        struct reader_ask_msg a = {.off = off, .at = at, .len = len};

        if (!rd->ready || rd->asked == READER_DEPTH)
                return -EINVAL;
        if (write_all(rd->to, &a, sizeof a) < 0) {
                reader_stop(rd);
                return -EPIPE;
        }
        rd->asked_len[rd->asked++] = len;
        return 0;
}

size_t reader_pending(const struct reader *rd) { return rd->asked; }

int reader_fd(const struct reader *rd) { return rd->pid > 0 ? rd->from : -1; }

ssize_t reader_wait(struct reader *rd, int timeout_ms, char *err, size_t errlen) {
        struct reader_report rep;
        int k;

        if (!rd->asked) {
                snprintf(err, errlen, "nothing asked");
                return -EINVAL;
        }
        uint64_t len = rd->asked_len[0];
        memmove(rd->asked_len, rd->asked_len + 1, --rd->asked * sizeof *rd->asked_len);
        if ((k = reader_report_read(rd, timeout_ms, &rep, err, errlen)) < 0) {
                reader_stop(rd);
                return k;
        }
        if (rep.n < 0 || (uint64_t)rep.n > len) {
                if (rep.n < 0)
                        snprintf(err, errlen, "%s", rep.err);
                else
                        snprintf(err, errlen, "the reading process answered more than it was asked");
                reader_stop(rd);
                return rep.n < 0 ? (ssize_t)rep.n : -EPROTO;
        }
        return (ssize_t)rep.n;
}

const char *reader_why(const struct reader *rd) { return rd->why; }

void reader_end(struct reader *rd) {
        if (!rd)
                return;
        reader_stop(rd);
        close(rd->to);
        close(rd->from);
        free(rd);
}
