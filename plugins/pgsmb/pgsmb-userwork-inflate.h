/* The archive stream of a restore, decompressed in a thread of its own (child process, as the
 * user): the thread reads the socket and runs zstd while the main thread creates files, so on
 * two cores decompression hides behind file creation instead of taking turns with it. A stream
 * that does not start with a zstd frame is passed on as it is (an uncompressed tar). */
#pragma once

#include <archive.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgsmb-userwork.h" /* struct ring_totals */

struct inflate;

/* Start reading fd (until EOF) in a thread and open archive a on the decompressed bytes.
 * 0 or -errno (a's error says why when it was libarchive's open that failed). */
int inflate_open(struct archive *a, int fd, struct inflate **ret);
/* The same, reading a ring of ring_size bytes that the store side fills (shared memory): on
 * ctl_fd it sends native 8-byte totals of what it wrote, and reads back totals of what is
 * consumed (and may be overwritten); the end of ctl_fd is the end of the stream. */
int inflate_open_ring(struct archive *a, int ctl_fd, const void *ring, size_t ring_size,
                      struct inflate **ret);
/* After the archive's end: read (and drop) the rest of the stream to its end, so that a damaged
 * or cut zstd stream is seen even past the tar end marker. 0 when the whole stream was good;
 * *checksummed: it was zstd whose every frame carried a content checksum, all of them checked
 * (false for an uncompressed stream). -errno otherwise, inflate_error() says why. */
int inflate_finish(struct inflate *z, bool *checksummed);
const char *inflate_error(struct inflate *z);
/* Stop the thread (it may be blocked on fd: the read side is shut down) and free. */
void inflate_free(struct inflate *z);
