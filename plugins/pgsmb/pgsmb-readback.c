/* Read-back verification of an upload in a process of its own, behind the writer (see
 * pgsmb-readback.h). The reader runs as root like the upload worker and touches only the store.
 * Writer -> reader: a pipe of 8-byte counts of acknowledged bytes, the last one with
 * READBACK_CLOSED set (or READBACK_ABORT). Reader -> writer: one struct readback_report. */
#include "pgsmb-readback.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "pgsmb-store.h"
#include <pgina/secret.h>
#include <pgina/util.h>

/* One SMB3 read each (Samba's and Windows' largest): every read costs a round trip, and at 10 ms
 * reading back 680 MiB took 8.6 s in 1 MiB reads, 1.8 s in 8 MiB ones. */
#define READBACK_CHUNK (8u << 20)
#define READBACK_CLOSED (1ull << 63)
#define READBACK_ABORT (1ull << 62)
#define READBACK_COUNT (READBACK_ABORT - 1)

struct readback_report {
        int r;
        uint64_t got;
        unsigned char digest[READBACK_DIGEST_LEN];
        char err[512];
};

struct readback {
        pid_t pid;
        int to_reader;   /* write end, non-blocking for advances */
        int from_reader; /* the report */
        char what[600];  /* url/rel, for messages */
};

/* The latest word from the writer, waiting for one only when `wait`. -1 = the pipe is gone. */
static int reader_news(int fd, bool wait, uint64_t *word) {
        uint64_t w;
        int got = 0;
        for (;;) {
                ssize_t k = read(fd, &w, sizeof w);
                if (k == (ssize_t)sizeof w) {
                        *word = w;
                        got = 1;
                        if (w & (READBACK_CLOSED | READBACK_ABORT))
                                return 1;
                        wait = false;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        if (!wait)
                                return got;
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        (void)poll(&p, 1, -1);
                        continue;
                }
                return got ? 1 : -1; /* EOF (writer died) or a torn word */
        }
}

static void reader_run(int in, const char *url, const struct store_creds *creds,
                       unsigned timeout_s, const char *rel, struct readback_report *rep) {
        _cleanup_free_ unsigned char *buf = malloc(READBACK_CHUNK);
        XXH3_state_t *md = XXH3_createState();
        struct store *st = NULL;
        struct store_file *f = NULL;
        char why[STORE_ERROR_MAX];
        uint64_t word = 0;

        if (!buf || !md) {
                rep->r = -ENOMEM;
                snprintf(rep->err, sizeof rep->err, "read-back: out of memory");
                goto out;
        }
        XXH3_128bits_reset(md);
        if ((rep->r = store_open(url, creds, timeout_s, &st, why, sizeof why)) < 0) {
                snprintf(rep->err, sizeof rep->err, "read-back: %s", why);
                goto out;
        }
        if ((rep->r = store_open_read(st, rel, &f)) < 0) {
                snprintf(rep->err, sizeof rep->err, "read-back: %s", store_error(st));
                goto out;
        }
        for (;;) {
                /* Read a whole chunk at a time, and only what the server acknowledged. */
                while (!(word & (READBACK_CLOSED | READBACK_ABORT)) &&
                       (word & READBACK_COUNT) - rep->got < READBACK_CHUNK)
                        if (reader_news(in, true, &word) < 0) {
                                word |= READBACK_ABORT;
                                break;
                        }
                if (word & READBACK_ABORT) {
                        rep->r = -ECANCELED;
                        snprintf(rep->err, sizeof rep->err, "read-back: the upload stopped");
                        goto out;
                }
                ssize_t k = store_read(f, buf, READBACK_CHUNK);
                if (k < 0) {
                        rep->r = (int)k;
                        snprintf(rep->err, sizeof rep->err, "read-back: %s", store_error(st));
                        goto out;
                }
                if (k == 0 && (word & READBACK_CLOSED))
                        break; /* the end of the finished file */
                if (k == 0) { /* short of what the server acknowledged: finish says so */
                        (void)reader_news(in, true, &word);
                        if (!(word & READBACK_CLOSED))
                                continue;
                }
                XXH3_128bits_update(md, buf, (size_t)k);
                rep->got += (uint64_t)k;
                (void)reader_news(in, false, &word);
        }
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(md));
        memcpy(rep->digest, c.digest, sizeof rep->digest);
out:
        if (f)
                (void)store_close_file(f);
        if (st)
                store_close(st);
        XXH3_freeState(md);
}

pid_t store_fork(const struct store_creds *creds, struct store_creds *own) {
        /* A fork child does not inherit the worker's secrets (secret.h): the child gets this
         * copy of the store password, and no other. */
        _cleanup_secret_ struct secret *pass =
                creds && creds->password ? secret_from_cstr(creds->password) : NULL;
        pid_t parent = getpid(), pid;

        if ((creds && creds->password && !pass) || secret_inherit(pass, true) < 0)
                return -ENOMEM;
        pid = fork();
        (void)secret_inherit(pass, false);
        if (pid < 0)
                return -errno;
        *own = creds ? *creds : (struct store_creds){0};
        if (pid == 0) {
                /* gone with the worker; a worker that died before this line is already gone */
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(1);
                if (pass) {
                        (void)mlock(pass, pass->map_len); /* a fork does not inherit the lock */
                        own->password = pass->data;
                        pass = NULL; /* the child's until it exits */
                }
        }
        return pid;
}

int readback_start(const char *url, const struct store_creds *creds, unsigned timeout_s,
                   const char *rel, int close_fd, struct readback **ret) {
        int down[2], up[2];
        struct readback *rb = calloc(1, sizeof *rb);

        if (!rb)
                return -ENOMEM;
        /* Writer -> reader: 8-byte words as packets, sent with MSG_NOSIGNAL: a reader that has
         * ended (a missing file) must not kill the writer with SIGPIPE. */
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, down) < 0) {
                free(rb);
                return -errno;
        }
        if (pipe2(up, O_CLOEXEC) < 0) {
                int r = -errno;
                close(down[0]);
                close(down[1]);
                free(rb);
                return r;
        }
        struct store_creds own;
        rb->pid = store_fork(creds, &own);
        if (rb->pid < 0) {
                int r = (int)rb->pid;
                close(down[0]);
                close(down[1]);
                close(up[0]);
                close(up[1]);
                free(rb);
                return r;
        }
        if (rb->pid == 0) {
                struct readback_report rep = { 0 };
                signal(SIGPIPE, SIG_IGN);
                close(down[1]);
                close(up[0]);
                if (close_fd >= 0)
                        close(close_fd);
                (void)fcntl(down[0], F_SETFL, O_NONBLOCK);
                reader_run(down[0], url, creds ? &own : NULL, timeout_s, rel, &rep);
                (void)write_all(up[1], &rep, sizeof rep);
                _exit(rep.r == 0 ? 0 : 1);
        }
        close(down[0]);
        close(up[1]);
        (void)fcntl(down[1], F_SETFL, O_NONBLOCK);
        snprintf(rb->what, sizeof rb->what, "%s/%s", url, rel);
        rb->to_reader = down[1];
        rb->from_reader = up[0];
        *ret = rb;
        return 0;
}

void readback_advance(struct readback *rb, uint64_t written) {
        uint64_t w = written & READBACK_COUNT;
        /* A full socket only means the reader has older news to read first: it asks again. */
        (void)send(rb->to_reader, &w, sizeof w, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int readback_finish(struct readback *rb, bool ok, uint64_t size,
                    const unsigned char digest[READBACK_DIGEST_LEN], char *err, size_t errlen) {
        uint64_t w = ok ? (size & READBACK_COUNT) | READBACK_CLOSED : READBACK_ABORT;
        struct readback_report rep = { 0 };
        int status = 0, r;
        ssize_t k;

        (void)fcntl(rb->to_reader, F_SETFL, 0);
        while (send(rb->to_reader, &w, sizeof w, MSG_NOSIGNAL) < 0 && errno == EINTR)
                ;
        close(rb->to_reader);
        do
                k = read(rb->from_reader, &rep, sizeof rep);
        while (k < 0 && errno == EINTR);
        close(rb->from_reader);
        while (waitpid(rb->pid, &status, 0) < 0 && errno == EINTR)
                ;
        _cleanup_free_ struct readback *done = rb;
        rep.err[sizeof rep.err - 1] = 0;
        if (k != (ssize_t)sizeof rep) {
                snprintf(err, errlen, "read-back: the reading process %s",
                         WIFSIGNALED(status) ? "was killed" : "ended without a report");
                return -EIO;
        }
        if (!ok)
                return -ECANCELED;
        if ((r = rep.r) < 0)
                snprintf(err, errlen, "%s", rep.err);
        else if (rep.got != size || memcmp(rep.digest, digest, READBACK_DIGEST_LEN) != 0) {
                snprintf(err, errlen, "%s: read back %llu bytes that do not match the %llu bytes written",
                         done->what, (unsigned long long)rep.got, (unsigned long long)size);
                r = -EIO;
        }
        return r;
}
