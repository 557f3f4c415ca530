/* Read-back verification of an upload, overlapped with it: a process of its own opens a second
 * connection to the store and reads the new file behind the writer, hashing what the server
 * returns. When the writer has closed the file, the rest is read to its end and size and sha256
 * are compared with what was written (XXH3-128 of the stream: ~30 GB/s, where a SHA-256 cost
 * the reader ~0.4 s of CPU per 700 MB on two cores; the .meta keeps the writer's SHA-256). Every byte is still read back from the server after its
 * write was acknowledged; only the waiting is gone (the read-back used to be a second full
 * transfer after the upload). A process, not a thread: libsmbclient 4.17 keeps global state
 * (talloc stack frames) that two threads may not share. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

struct store_creds;
struct readback;

/* fork() for a process that opens a second connection to the store with creds: it inherits a
 * copy of the password (locked in memory) and no other secret of the worker's, and dies with the
 * worker (PR_SET_PDEATHSIG). The child (0) finds in *own creds with that copy as the password
 * (valid until it exits); the parent gets its pid, or -errno. */
pid_t store_fork(const struct store_creds *creds, struct store_creds *own);

/* What writer and reader compare: XXH3-128 (xxhash.h) in canonical byte order. */
#define READBACK_DIGEST_LEN 16

/* Fork the reader: it connects to `url` with creds (timeout as store_open) and opens `rel`, which
 * the writer has created already. close_fd (or -1): a descriptor of the writer's that the reader
 * must not hold open (the end of a stream whose other side waits for it to close). */
int readback_start(const char *url, const struct store_creds *creds, unsigned timeout_s,
                   const char *rel, int close_fd, struct readback **ret);

/* The writer: `written` bytes are now acknowledged by the server. Never blocks. */
void readback_advance(struct readback *rb, uint64_t written);

/* The writer closed the file (ok), or gave up (!ok: the reader stops). Waits for the reader;
 * returns 0 when the file holds exactly `size` bytes whose XXH3-128 is `digest`, -EIO when it
 * does not, another -errno when reading failed (err says why). Frees rb. */
int readback_finish(struct readback *rb, bool ok, uint64_t size,
                    const unsigned char digest[READBACK_DIGEST_LEN], char *err, size_t errlen);
