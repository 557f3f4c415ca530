/* libpgina-plugin: a growable byte buffer with a bounded reader, the one way pgina reads and
 * writes its byte formats (the wire protocol, a plugin's messages to a helper program of its own,
 * state files). Integers are big-endian; a string is a u32 length and its bytes, with no NUL
 * inside and at most PBUF_STR_MAX of them; a blob is a u32 length and any bytes. Every read
 * checks bounds and returns -EBADMSG instead of reading past the end. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pgina/secret.h>

/* A pbuf never grows past this (state files); protocol frames are held to less. */
#define PBUF_MAX (16u * 1024u * 1024u)
/* ... except one made with pbuf_init_large: a listing that grows with a home (a profile's
 * manifest, a scan, a path list), read back under the same bound. */
#define PBUF_LARGE_MAX (512u * 1024u * 1024u)
#define PBUF_STR_MAX 8192u /* bytes of a string field */

/* The buffer and its read cursor; the memory is wiped on free (it may hold a password). */
struct pbuf {
        uint8_t *data;
        size_t len; /* bytes written */
        size_t cap;
        size_t pos; /* read cursor */
        bool secret; /* pbuf_init_secret: its memory is not inherited by a fork child */
        bool large; /* pbuf_init_large: grows to PBUF_LARGE_MAX */
};

void pbuf_init(struct pbuf *b);
/* A buffer that may hold passwords as they arrive (pginad's connection input): its memory is
 * its own mapping, out of core dumps, and zeros in a fork child (MADV_WIPEONFORK), like a
 * struct secret. Stays so through pbuf_free and pbuf_reset. */
void pbuf_init_secret(struct pbuf *b);
/* A buffer for a listing that grows with a home: up to PBUF_LARGE_MAX. Stays so through
 * pbuf_free and pbuf_reset. */
void pbuf_init_large(struct pbuf *b);
void pbuf_free(struct pbuf *b);
static inline void pbuf_freep(struct pbuf *b) { pbuf_free(b); }
#define _cleanup_pbuf_ __attribute__((cleanup(pbuf_freep)))
void pbuf_reset(struct pbuf *b); /* wipe, len = pos = 0, keeps the allocation */
/* Room for `more` bytes after len (to be read into data + len): -EMSGSIZE past PBUF_MAX
 * (PBUF_LARGE_MAX). */
int pbuf_reserve(struct pbuf *b, size_t more);

int pbuf_put_u8(struct pbuf *b, uint8_t v);
int pbuf_put_u16(struct pbuf *b, uint16_t v);
int pbuf_put_u32(struct pbuf *b, uint32_t v);
int pbuf_put_u64(struct pbuf *b, uint64_t v);
int pbuf_put_str(struct pbuf *b, const char *s); /* NULL is sent as "" */
int pbuf_put_bytes_str(struct pbuf *b, const char *s, size_t len);
int pbuf_put_secret(struct pbuf *b, const struct secret *s); /* NULL is sent as "" */
int pbuf_put_blob(struct pbuf *b, const void *p, uint32_t len); /* u32 length + any bytes */

int pbuf_get_u8(struct pbuf *b, uint8_t *v);
int pbuf_get_u16(struct pbuf *b, uint16_t *v);
int pbuf_get_u32(struct pbuf *b, uint32_t *v);
int pbuf_get_u64(struct pbuf *b, uint64_t *v);
/* A malloc'd copy; -EBADMSG when longer than max, truncated, or containing a NUL. */
int pbuf_get_str(struct pbuf *b, char **ret, size_t max);
int pbuf_get_secret(struct pbuf *b, struct secret **ret);
/* A blob's bytes where they lie in b (borrowed); -EBADMSG when longer than max or truncated. */
int pbuf_get_blob(struct pbuf *b, const void **ret, uint32_t *len, size_t max);
/* -EBADMSG when unread bytes remain. */
int pbuf_expect_end(const struct pbuf *b);

/* Append what one read() of fd gives (up to `max` bytes) to b: returns the bytes read, 0 at EOF,
 * -EAGAIN/-errno. */
ssize_t pbuf_read_fd(struct pbuf *b, int fd, size_t max);
/* Drop the first n bytes (wiped), e.g. a frame that was handled. */
void pbuf_consume(struct pbuf *b, size_t n);
