/* Archives downloaded ahead, on a second connection to the store, while the worker streams
 * another: a chain restore's deltas arrive during its base (a few round trips each over a slow
 * link: at 10 ms, ~60 ms per delta that the base's seconds hide). The fetching process is a
 * forked copy of the worker, as the read-back's (pgsmb-readback.h); it writes each archive into
 * a memfd the worker made, after checking its size and SHA-256 against the manifest's. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_creds;
struct fetcher;

struct fetch_item {
        const char *rel;    /* in the store */
        const char *name;   /* for messages: the archive's name */
        uint64_t size;      /* the manifest's */
        const char *sha256; /* the manifest's, hex */
};

/* rel of st into fd (from its offset): exactly it->size bytes whose SHA-256 is it->sha256, else
 * -EBADMSG ("damaged or changed"); a store's failure as its -errno. err says why. */
int pgsmb_fetch_verified(struct store *st, const struct fetch_item *it, int fd, char *err, size_t errlen);

/* Fork the fetching process: it connects to url with creds (timeout as store_open) and fetches
 * items[0..n) in order. The items' strings need only last for this call. */
int fetcher_start(const char *url, const struct store_creds *creds, unsigned timeout_s,
                  const struct fetch_item *items, size_t n, struct fetcher **ret);
/* Item i, taken in order (0, 1, ...), waiting for it at most timeout_ms: 0 and *fd (a memfd at
 * offset 0, the caller's), or -errno and err when it could not be fetched (the caller reads it
 * itself). After a wait that timed out the process is stopped: later items fail at once. */
int fetcher_take(struct fetcher *fe, size_t i, int timeout_ms, int *fd, char *err, size_t errlen);
/* Stop the process if it still runs, reap it, close what was not taken; frees fe (NULL: no-op). */
void fetcher_end(struct fetcher *fe);
static inline void fetcher_endp(struct fetcher **fe) { fetcher_end(*fe); }

/* A second reader of one archive: over a slow link a connection has one read (8 MiB) in
 * flight, a round trip each, and a base of hundreds of MiB pays ~one round trip per 8 MiB; two
 * connections halve that. A forked copy of the worker as the fetcher: it connects, opens rel,
 * says so, then reads the parts the worker asks for straight into buf (buf_size bytes of a
 * MAP_SHARED mapping of the worker's, which it inherits: the restore's ring). close_fds (n,
 * -1 ignored): descriptors of the worker's the reader must not hold. */
struct reader;
int reader_start(const char *url, const struct store_creds *creds, unsigned timeout_s, const char *rel,
                 unsigned char *buf, size_t buf_size, const int *close_fds, size_t n_close, struct reader **ret);
/* It is connected and has the file open (never waits). False while it connects, and for good
 * once it failed or was stopped. */
bool reader_ready(struct reader *rd);
/* Read [off, off + len) of the file into buf + at, after the asks before it (at most
 * READER_DEPTH not answered yet), answered in order by reader_wait. -errno when it cannot be
 * asked (not ready, stopped, READER_DEPTH pending). */
#define READER_DEPTH 4
int reader_ask(struct reader *rd, uint64_t off, size_t at, size_t len);
/* The asks not answered yet; the descriptor that becomes readable with an answer (-1: stopped). */
size_t reader_pending(const struct reader *rd);
int reader_fd(const struct reader *rd);
/* The oldest ask's answer, waiting at most timeout_ms: the bytes read, all of len unless the
 * file ends first, or -errno and err. After a failure or a timeout the process is stopped and
 * reaped before this returns (it writes into buf no more; its other asks are void). */
ssize_t reader_wait(struct reader *rd, int timeout_ms, char *err, size_t errlen);
/* How long it took to be seen ready after its start (-1: it was not). */
long long reader_ready_ms(const struct reader *rd);
/* Why it never became ready ("": it did, or it still connects). */
const char *reader_why(const struct reader *rd);
/* Stop and reap it now (it writes into buf no more; reader_end still frees it). */
void reader_kill(struct reader *rd);
/* Stop and reap it; frees rd (NULL: no-op). */
void reader_end(struct reader *rd);
static inline void reader_endp(struct reader **rd) { reader_end(*rd); }
