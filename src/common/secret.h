/* The one type a password lives in. Its memory is its own pages: locked (never swapped), left
 * out of core dumps (MADV_DONTDUMP), and wiped with explicit_bzero before it is unmapped. A secret
 * is never copied into a general string; pass the struct or its bytes to the single consumer. */
#pragma once

#include <stddef.h>

struct secret {
        size_t len; /* bytes, without the terminating NUL */
        size_t map_len;
        char *data; /* NUL-terminated */
};

/* Copy len bytes of s into a new secret. NULL on ENOMEM or when len > SECRET_MAX. */
struct secret *secret_new(const char *s, size_t len);
struct secret *secret_from_cstr(const char *s);
struct secret *secret_dup(const struct secret *s);
void secret_free(struct secret *s);
static inline void secret_freep(struct secret **s) {
        if (*s)
                secret_free(*s);
}
#define _cleanup_secret_ __attribute__((cleanup(secret_freep)))
/* Wipe and free a plain string that held secret bytes (from a PAM conversation, getpass…). */
void free_wiped(char *s);

#define SECRET_MAX 1024
