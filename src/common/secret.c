/* Secret memory: own mapping, locked, not dumped, wiped on free. */
#include "secret.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>

struct secret *secret_new(const char *s, size_t len) {
        long page = sysconf(_SC_PAGESIZE);
        size_t need = sizeof(struct secret) + len + 1, map_len;
        struct secret *sec;
        void *p;

        if (len > SECRET_MAX) {
                errno = E2BIG;
                return NULL;
        }
        map_len = (need + (size_t)page - 1) & ~((size_t)page - 1);
        p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        (void)madvise(p, map_len, MADV_DONTDUMP);
        (void)mlock(p, map_len); /* best effort: RLIMIT_MEMLOCK may refuse an unprivileged caller */
        sec = p;
        sec->len = len;
        sec->map_len = map_len;
        sec->data = (char *)p + sizeof(struct secret);
        if (len)
                memcpy(sec->data, s, len);
        sec->data[len] = 0;
        return sec;
}

struct secret *secret_from_cstr(const char *s) { return secret_new(s, s ? strlen(s) : 0); }

struct secret *secret_dup(const struct secret *s) { return s ? secret_new(s->data, s->len) : NULL; }

void secret_free(struct secret *s) {
        size_t map_len;

        if (!s)
                return;
        map_len = s->map_len;
        explicit_bzero(s, map_len);
        (void)munlock(s, map_len);
        munmap(s, map_len);
}

void free_wiped(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}
