/* Secret memory: own mapping, locked, not dumped, wiped on free, and not inherited: a fork child
 * sees zeros (MADV_WIPEONFORK) unless the secret was handed over for that fork. */
#include <pgina/secret.h>

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
        /* Workers and processes run as a user are forked: none of them may carry every
         * password pginad holds. Without the kernel's support (Linux < 4.14) no secret is made. */
        if (madvise(p, map_len, MADV_WIPEONFORK) < 0) {
                int e = errno;
                munmap(p, map_len);
                errno = e;
                return NULL;
        }
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

int secret_inherit(const struct secret *s, bool inherit) {
        /* A secret seen from a child it was not handed to is all zeros: nothing to mark. */
        if (!s || s->map_len == 0)
                return 0;
        return madvise((void *)s, s->map_len, inherit ? MADV_KEEPONFORK : MADV_WIPEONFORK) < 0 ? -errno : 0;
}

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
