/* Small helpers every pgina process uses, plugins included (libpgina-plugin, installed): cleanup
 * attributes (systemd style), string checks, whole writes, the monotonic clock. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand ownership on: returns the pointer and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p = (p);                                                            \
                (p) = NULL;                                                                        \
                _p;                                                                                \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd = (fd);                                                                    \
                (fd) = -1;                                                                         \
                _fd;                                                                               \
        })

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
static inline const char *strempty(const char *s) { return s ? s : ""; }

/* A Linux user or group name we accept: [a-z_][a-z0-9_.-]*[$]?, at most 32 bytes, the rule of
 * shadow-utils' default NAME_REGEX, minus anything a shell or a path could misread. */
bool valid_user_name(const char *name);
/* What a user may type at a logon: a user name, or user@domain (an Active Directory
 * userPrincipalName: a user name, "@", lowercase DNS labels). A plugin must then name the
 * account (pgina_user_set_name), or the logon fails. */
bool valid_logon_name(const char *name);
/* A plugin name: [a-z0-9_]+, at most 64 bytes. */
bool valid_plugin_name(const char *name);
/* Parse a config boolean; returns 0/1 or -EINVAL. */
int parse_bool(const char *v);
/* Write a whole buffer; retries on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);
/* Atomically replace path with data: tmp, fsync, rename, fsync(dir). Mode of the new file. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Monotonic clock in milliseconds. */
long long now_ms(void);
/* Control characters in line as \n, \t, \r, \xHH (in place, at most len bytes): one line each
 * (what pgina's log does to every line; for text a server sends that is shown to a user). */
void log_escape(char *line, size_t len);
