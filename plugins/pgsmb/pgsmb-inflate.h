/* The archive stream of a restore, decompressed in a thread of its own (child process, as the
 * user): the thread reads the socket and runs zstd while the main thread creates files, so on
 * two cores decompression hides behind file creation instead of taking turns with it. A stream
 * that does not start with a zstd frame is passed on as it is (an uncompressed tar). */
#pragma once

#include <archive.h>

struct inflate;

/* Start reading fd (until EOF) in a thread and open archive a on the decompressed bytes.
 * 0 or -errno (a's error says why when it was libarchive's open that failed). */
int inflate_open(struct archive *a, int fd, struct inflate **ret);
/* Stop the thread (it may be blocked on fd: the read side is shut down) and free. */
void inflate_free(struct inflate *z);
