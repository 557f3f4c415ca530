/* Helpers of the profile store's front and backends (pgsmb-store-internal.h): the messages of a
 * failed request and of a failed open, path checks, temporary names. Root, in the worker. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "pgsmb-store-internal.h"
#include <pgina/util.h>

int store_open_fail(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;

        if (!err || !errlen)
                return r;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return r;
}

int store_fail(struct store *s, int r, const char *rel, const char *fmt, ...) {
        char what[512] = "";
        va_list ap;

        if (fmt) {
                va_start(ap, fmt);
                vsnprintf(what, sizeof what, fmt, ap);
                va_end(ap);
        }
        snprintf(s->error, sizeof s->error, "%s%s%s: %s%s%s", s->url, rel && *rel ? "/" : "",
                 rel ? rel : "", what, *what ? ": " : "", strerror(-r));
        return r;
}

bool store_rel_valid(const char *rel, bool allow_root) {
        const char *p = rel;

        if (!rel)
                return false;
        if (!*rel)
                return allow_root;
        for (;;) {
                size_t n = strcspn(p, "/");

                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false; /* leading '/', "//", trailing '/', ".", ".." */
                if (!p[n])
                        return true;
                p += n + 1;
        }
}

char *store_temp_name(const char *rel, const char *tag) {
        uint64_t rnd;
        char *t;

        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                rnd = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
        if (asprintf(&t, "%s.%s-%016" PRIx64, rel, tag, rnd) < 0)
                return NULL;
        return t;
}

