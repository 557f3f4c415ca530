/* Archives downloaded ahead, on a second connection to the store, while the worker streams
 * another: a chain restore's deltas arrive during its base (a few round trips each over a slow
 * link: at 10 ms, ~60 ms per delta that the base's seconds hide). The fetching process is a
 * forked copy of the worker, as the read-back's (pgsmb-readback.h); it writes each archive into
 * a memfd the worker made, after checking its size and SHA-256 against the manifest's. */
#pragma once

#include <stddef.h>
#include <stdint.h>

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
