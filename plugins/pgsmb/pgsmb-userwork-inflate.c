/* The archive stream of a restore, decompressed in a thread (see pgsmb-userwork-inflate.h). */
#include "pgsmb-userwork-inflate.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#define SLOTS 4
#define SLOT_BYTES (1024 * 1024)

static const unsigned char zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

/* Where the compressed bytes come from: a file descriptor read into buf, or (ring mode) a ring
 * the store side writes into, shared with it, whose fill level comes as native 8-byte totals
 * ("produced") on the control socket fd; this side answers with "consumed" totals, so the store
 * side knows what it may overwrite. No copy and no system call per byte of the archive. */
struct input {
        int fd;
        unsigned char *buf; /* fd mode: SLOT_BYTES */
        const unsigned char *ring;
        size_t ring_size;
        uint64_t produced, consumed, acked;
        struct ring_totals totals;
        bool ended; /* ring mode: the control socket is at its end */
};

/* Tell the store side what is free again at least every this many bytes (and whenever all it
 * wrote is consumed, so it never waits for an answer that is not coming). */
#define RING_ACK_BYTES (1024 * 1024)

struct inflate {
        struct input in;
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* Published slots are [tail, tail + count); the consumer holds slot tail (handed to
         * libarchive) until its next read, which releases it. */
        unsigned char *data[SLOTS];
        size_t len[SLOTS];
        size_t tail, count;
        bool held;
        bool eof, stop;
        int error; /* errno of the producer, with msg */
        char msg[256];
        /* Set by the producer before eof: the input was zstd, every frame in it declared a
         * content checksum (which zstd checked at the frame's end), and it ended at a frame's
         * end. */
        bool checksummed;
};

/* ---- producer (the thread) ---- */

static void set_error(struct inflate *z, int error, const char *fmt, const char *detail) {
        pthread_mutex_lock(&z->lock);
        if (!z->error) {
                z->error = error;
                snprintf(z->msg, sizeof z->msg, fmt, detail);
        }
        pthread_cond_broadcast(&z->cond);
        pthread_mutex_unlock(&z->lock);
}

/* The next free slot to fill, or NULL when told to stop. */
static unsigned char *slot_get(struct inflate *z) {
        unsigned char *p = NULL;

        pthread_mutex_lock(&z->lock);
        while (z->count == SLOTS && !z->stop)
                pthread_cond_wait(&z->cond, &z->lock);
        if (!z->stop)
                p = z->data[(z->tail + z->count) % SLOTS];
        pthread_mutex_unlock(&z->lock);
        return p;
}

static void slot_publish(struct inflate *z, size_t len) {
        pthread_mutex_lock(&z->lock);
        z->len[(z->tail + z->count) % SLOTS] = len;
        z->count++;
        pthread_cond_broadcast(&z->cond);
        pthread_mutex_unlock(&z->lock);
}

static ssize_t read_some(int fd, void *buf, size_t len) {
        for (;;) {
                ssize_t k = read(fd, buf, len);
                if (k >= 0 || errno != EINTR)
                        return k < 0 ? -errno : k;
        }
}

/* Ring mode: wait for (at least) one more message from the store side. */
static int ring_more(struct inflate *z) {
        struct input *in = &z->in;
        uint64_t v = 0;
        int r = ring_totals_recv(&in->totals, in->fd, true, &v);

        if (r == -EPIPE) {
                in->ended = true;
                return 0;
        }
        if (r < 0) {
                set_error(z, -r, "cannot read the archive: %s", strerror(-r));
                return r;
        }
        if (r > 0) {
                if (v < in->produced || v - in->consumed > in->ring_size) {
                        set_error(z, EPROTO, "%s", "the store side sent an impossible position");
                        return -EPROTO;
                }
                in->produced = v;
        }
        return 0;
}

/* The next piece of input: *p and its length, 0 at the end of the stream, or -errno. */
static ssize_t input_get(struct inflate *z, const unsigned char **p) {
        struct input *in = &z->in;

        if (!in->ring) {
                ssize_t k = read_some(in->fd, in->buf, SLOT_BYTES);
                if (k < 0)
                        set_error(z, (int)-k, "cannot read the archive: %s", strerror((int)-k));
                *p = in->buf;
                return k;
        }
        while (in->consumed == in->produced && !in->ended) {
                int r = ring_more(z);
                if (r < 0)
                        return r;
        }
        if (in->consumed == in->produced)
                return 0;
        size_t off = (size_t)(in->consumed % in->ring_size);
        uint64_t len = in->produced - in->consumed;
        if (len > in->ring_size - off)
                len = in->ring_size - off;
        *p = in->ring + off;
        return (ssize_t)len;
}

/* The last piece input_get gave (len bytes) is used up: the store side may overwrite it. */
static void input_done(struct inflate *z, size_t len) {
        struct input *in = &z->in;

        if (!in->ring)
                return;
        in->consumed += len;
        if (in->consumed - in->acked >= RING_ACK_BYTES || in->consumed == in->produced) {
                uint64_t v = in->consumed;
                /* Best effort: a store side that is gone has closed its end, which we see. */
                (void)send(in->fd, &v, sizeof v, MSG_NOSIGNAL);
                in->acked = v;
        }
}

/* One step of zstd into the current slot (taking a free one first, publishing it when full).
 * Returns zstd's hint (0 at the end of a frame) or -errno; *progress: output was made. */
static int64_t zstd_step(struct inflate *z, ZSTD_DStream *ds, ZSTD_outBuffer *out,
                         ZSTD_inBuffer *in, bool *progress) {
        size_t before, hint;

        if (!out->dst) {
                if (!(out->dst = slot_get(z)))
                        return -ECANCELED;
                out->size = SLOT_BYTES;
                out->pos = 0;
        }
        before = out->pos;
        hint = ZSTD_decompressStream(ds, out, in);
        if (ZSTD_isError(hint)) {
                set_error(z, EBADMSG, "the archive's zstd stream is damaged: %s",
                          ZSTD_getErrorName(hint));
                return -EBADMSG;
        }
        *progress = out->pos > before;
        if (out->pos == out->size) {
                slot_publish(z, out->pos);
                out->dst = NULL;
        }
        return (int64_t)hint;
}

/* The first bytes of each frame, seen as the input goes by (a header may straddle two reads):
 * the magic and the frame header descriptor, whose bit 2 is Content_Checksum_flag (RFC 8878
 * 3.1.1.1.1). A skippable frame has another magic and no checksum. */
#define FRAME_HEAD 5
struct frames {
        uint64_t start; /* stream offset of the current frame's first byte */
        unsigned char head[FRAME_HEAD];
        bool all_checksummed;
};

static void frames_see(struct frames *f, uint64_t in_off, const ZSTD_inBuffer *ib) {
        for (uint64_t o = f->start; o < f->start + FRAME_HEAD; o++)
                if (o >= in_off && o < in_off + ib->size)
                        f->head[o - f->start] = ((const unsigned char *)ib->src)[o - in_off];
}

/* A frame ended (zstd checked its checksum if it had one); the next starts at `next`. */
static void frames_end(struct frames *f, uint64_t next) {
        if (memcmp(f->head, zstd_magic, sizeof zstd_magic) != 0 || !(f->head[4] & 0x04))
                f->all_checksummed = false;
        f->start = next;
        memset(f->head, 0, sizeof f->head);
}

/* Decompress the stream, whose first piece (`have` bytes at in) is already read, to its end. */
static int run_zstd(struct inflate *z, const unsigned char *in, size_t have) {
        ZSTD_DStream *ds = ZSTD_createDStream();
        ZSTD_outBuffer out = {0};
        struct frames fr = {.all_checksummed = true};
        uint64_t in_off = 0; /* stream offset of in[0] */
        int64_t last = 0;
        bool progress;
        int r = 0;

        if (!ds) {
                set_error(z, ENOMEM, "%s", "out of memory for the zstd decoder");
                return -ENOMEM;
        }
        for (;;) {
                ZSTD_inBuffer ib = {in, have, 0};

                while (ib.pos < ib.size) {
                        frames_see(&fr, in_off, &ib);
                        if ((last = zstd_step(z, ds, &out, &ib, &progress)) < 0) {
                                r = (int)last;
                                goto out;
                        }
                        if (last == 0)
                                frames_end(&fr, in_off + ib.pos);
                }
                input_done(z, have);
                in_off += have;
                ssize_t k = input_get(z, &in);
                if (k < 0) {
                        r = (int)k;
                        goto out;
                }
                if (k == 0)
                        break;
                have = (size_t)k;
        }
        /* What zstd still holds: it stopped because a slot was full. */
        while (last > 0) {
                ZSTD_inBuffer none = {in, 0, 0};

                if ((last = zstd_step(z, ds, &out, &none, &progress)) < 0) {
                        r = (int)last;
                        goto out;
                }
                if (last == 0)
                        frames_end(&fr, in_off);
                if (!progress && out.dst)
                        break; /* nothing more without input */
        }
        /* The end of the input must also be the end of a frame: otherwise it was cut short. */
        if (last != 0) {
                set_error(z, EBADMSG, "%s", "the archive's zstd stream ends in the middle of a frame");
                r = -EBADMSG;
        } else {
                if (out.dst && out.pos > 0)
                        slot_publish(z, out.pos);
                pthread_mutex_lock(&z->lock);
                z->checksummed = fr.all_checksummed;
                pthread_mutex_unlock(&z->lock);
        }
out:
        ZSTD_freeDStream(ds);
        return r;
}

/* Not zstd: the bytes as they are. */
static int run_plain(struct inflate *z, const unsigned char *in, size_t have) {
        for (;;) {
                for (size_t done = 0; done < have;) {
                        unsigned char *slot = slot_get(z);
                        size_t n = have - done < SLOT_BYTES ? have - done : SLOT_BYTES;
                        if (!slot)
                                return -ECANCELED;
                        memcpy(slot, in + done, n);
                        slot_publish(z, n);
                        done += n;
                }
                input_done(z, have);
                ssize_t k = input_get(z, &in);
                if (k <= 0)
                        return (int)k;
                have = (size_t)k;
        }
}

/* The first piece of the stream, holding at least the magic's length unless the stream is
 * shorter: *p, its length (0: empty stream), or -errno. */
static ssize_t input_first(struct inflate *z, const unsigned char **p) {
        struct input *in = &z->in;
        size_t have = 0;

        if (in->ring) {
                while (in->produced < sizeof zstd_magic && !in->ended) {
                        int r = ring_more(z);
                        if (r < 0)
                                return r;
                }
                return input_get(z, p); /* from offset 0: contiguous */
        }
        while (have < sizeof zstd_magic) {
                ssize_t k = read_some(in->fd, in->buf + have, SLOT_BYTES - have);
                if (k < 0) {
                        set_error(z, (int)-k, "cannot read the archive: %s", strerror((int)-k));
                        return k;
                }
                if (k == 0)
                        break;
                have += (size_t)k;
        }
        *p = in->buf;
        return (ssize_t)have;
}

static void *producer(void *arg) {
        struct inflate *z = arg;
        const unsigned char *p = NULL;
        ssize_t have = input_first(z, &p);

        /* Failures are in z->error already. */
        if (have >= (ssize_t)sizeof zstd_magic && memcmp(p, zstd_magic, sizeof zstd_magic) == 0)
                (void)run_zstd(z, p, (size_t)have);
        else if (have > 0)
                (void)run_plain(z, p, (size_t)have);
        pthread_mutex_lock(&z->lock);
        z->eof = true;
        pthread_cond_broadcast(&z->cond);
        pthread_mutex_unlock(&z->lock);
        return NULL;
}

/* ---- consumer (libarchive's read callback, main thread) ---- */

static ssize_t consume(struct archive *a, void *ud, const void **buf) {
        struct inflate *z = ud;
        ssize_t r;

        pthread_mutex_lock(&z->lock);
        if (z->held) { /* libarchive is done with the block it had */
                z->held = false;
                z->tail = (z->tail + 1) % SLOTS;
                z->count--;
                pthread_cond_broadcast(&z->cond);
        }
        while (z->count == 0 && !z->eof && !z->error)
                pthread_cond_wait(&z->cond, &z->lock);
        if (z->error) {
                archive_set_error(a, z->error, "%s", z->msg);
                r = -1;
        } else if (z->count == 0)
                r = 0; /* end of the stream */
        else {
                *buf = z->data[z->tail];
                r = (ssize_t)z->len[z->tail];
                z->held = true;
        }
        pthread_mutex_unlock(&z->lock);
        return r;
}

int inflate_finish(struct inflate *z, bool *checksummed) {
        int r;

        pthread_mutex_lock(&z->lock);
        for (;;) {
                if (z->held) {
                        z->held = false;
                        z->tail = (z->tail + 1) % SLOTS;
                        z->count--;
                        pthread_cond_broadcast(&z->cond);
                }
                if (z->error || (z->eof && z->count == 0))
                        break;
                if (z->count > 0)
                        z->held = true; /* discarded: the archive's end marker came before */
                else
                        pthread_cond_wait(&z->cond, &z->lock);
        }
        r = z->error ? -z->error : 0;
        *checksummed = !z->error && z->checksummed;
        pthread_mutex_unlock(&z->lock);
        return r;
}

const char *inflate_error(struct inflate *z) { return z->msg; }

void inflate_free(struct inflate *z) {
        if (!z)
                return;
        if (z->started) {
                pthread_mutex_lock(&z->lock);
                z->stop = true;
                pthread_cond_broadcast(&z->cond);
                pthread_mutex_unlock(&z->lock);
                /* a thread blocked reading the socket wakes up to EOF (a file never blocks) */
                (void)shutdown(z->in.fd, SHUT_RD);
                pthread_join(z->thread, NULL);
        }
        for (size_t i = 0; i < SLOTS; i++)
                free(z->data[i]);
        free(z->in.buf);
        pthread_cond_destroy(&z->cond);
        pthread_mutex_destroy(&z->lock);
        free(z);
}

static int inflate_start(struct archive *a, int fd, const void *ring, size_t ring_size,
                         struct inflate **ret) {
        struct inflate *z = calloc(1, sizeof *z);
        int r;

        if (!z)
                return -ENOMEM;
        z->in.fd = fd;
        z->in.ring = ring;
        z->in.ring_size = ring_size;
        pthread_mutex_init(&z->lock, NULL);
        pthread_cond_init(&z->cond, NULL);
        if (!ring && !(z->in.buf = malloc(SLOT_BYTES))) {
                inflate_free(z);
                return -ENOMEM;
        }
        for (size_t i = 0; i < SLOTS; i++)
                if (!(z->data[i] = malloc(SLOT_BYTES))) {
                        inflate_free(z);
                        return -ENOMEM;
                }
        r = pthread_create(&z->thread, NULL, producer, z);
        if (r != 0) {
                inflate_free(z);
                return -r;
        }
        z->started = true;
        if (archive_read_open(a, z, NULL, consume, NULL) != ARCHIVE_OK) {
                inflate_free(z);
                return -EBADMSG;
        }
        *ret = z;
        return 0;
}

int inflate_open(struct archive *a, int fd, struct inflate **ret) {
        return inflate_start(a, fd, NULL, 0, ret);
}

int inflate_open_ring(struct archive *a, int ctl_fd, const void *ring, size_t ring_size,
                      struct inflate **ret) {
        if (!ring || ring_size == 0)
                return -EINVAL;
        return inflate_start(a, ctl_fd, ring, ring_size, ret);
}
