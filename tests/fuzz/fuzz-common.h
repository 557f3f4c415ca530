/* Helpers shared by the libFuzzer targets of tests/fuzz: an input as a file, and invariants that
 * abort (so libFuzzer keeps the input) when the code under test breaks a promise of its header. */
#pragma once

#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_ASSERT(cond)                                                                          \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* Write all of data to fd; aborts on failure (the harness, not the code under test, is broken). */
static inline void fuzz_write_all(int fd, const uint8_t *data, size_t size) {
        while (size > 0) {
                ssize_t k = write(fd, data, size);
                FUZZ_ASSERT(k > 0);
                data += k;
                size -= (size_t)k;
        }
}

/* A stream socket whose other end has sent `data` and then closed its write side: what a client
 * reads from a daemon that said exactly this. Returns the reading end; *peer is the other end
 * (requests written to the reader land there unread). Inputs are far below the socket buffer. */
static inline int fuzz_stream_of(const uint8_t *data, size_t size, int *peer) {
        int sv[2];
        int bufsz = 4 * 1024 * 1024;

        FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
        (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
        fuzz_write_all(sv[1], data, size);
        FUZZ_ASSERT(shutdown(sv[1], SHUT_WR) == 0);
        *peer = sv[1];
        return sv[0];
}

static inline int fuzz_remove_one(const char *path, const struct stat *st, int flag,
                                  struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

/* rm -rf path (no symlink followed). */
static inline int fuzz_remove_tree(const char *path) {
        return nftw(path, fuzz_remove_one, 16, FTW_PHYS | FTW_DEPTH);
}
