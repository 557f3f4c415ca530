/* The one type a password lives in. Its memory is its own pages: locked (never swapped), left
 * out of core dumps (MADV_DONTDUMP), and wiped with explicit_bzero before it is unmapped. A secret
 * is never copied into a general string; pass the struct or its bytes to the single consumer.
 *
 * Secrets are not inherited: a fork child sees each one as zeros (len 0, data NULL) — pginad's
 * workers, and the processes they start as a user, are forked, and must not carry every password
 * the master holds. A process that forks a child needing one secret hands it over: call
 * secret_inherit(s, true) just before fork() and secret_inherit(s, false) just after, in the
 * parent and in the child (so the child's own children do not get it). */
#pragma once

#include <stdbool.h>
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
/* inherit: the next fork() child gets s; !inherit: children see zeros (the default). 0 or -errno. */
int secret_inherit(const struct secret *s, bool inherit);
void secret_free(struct secret *s);
static inline void secret_freep(struct secret **s) {
        if (*s)
                secret_free(*s);
}
#define _cleanup_secret_ __attribute__((cleanup(secret_freep)))
/* Wipe and free a plain string that held secret bytes (from a PAM conversation, getpass…). */
void free_wiped(char *s);

#define SECRET_MAX 1024
