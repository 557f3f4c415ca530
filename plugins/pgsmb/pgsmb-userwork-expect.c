/* What a catch-up saw at the paths it changes (see pgsmb-userwork-expect.h). */
#include "pgsmb-userwork-expect.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* x->linked: the inodes seen more than once. */
static int linked_index(struct expect *x) {
        uint64_t *v;
        size_t n = 0;

        if (x->seen.n < 2)
                return 0;
        if (!(v = malloc(x->seen.n * sizeof *v)))
                return -ENOMEM;
        for (size_t i = 0; i < x->seen.n; i++)
                if (x->seen.v[i].type != 'd')
                        v[n++] = x->seen.v[i].ino;
        qsort(v, n, sizeof *v, cmp_u64);
        size_t j = 0;
        for (size_t i = 0; i + 1 < n; i++)
                if (v[i] == v[i + 1] && (j == 0 || v[j - 1] != v[i]))
                        v[j++] = v[i];
        x->linked = v;
        x->nlinked = j;
        return 0;
}

int expectation_read_fd(struct expect *x, int fd, size_t max, size_t *line_no) {
        int r;

        memset(x, 0, sizeof *x);
        if ((r = scan_read_fd(&x->seen, fd, max, line_no)) < 0)
                return r;
        if ((r = scan_sort(&x->seen)) < 0 || (r = linked_index(x)) < 0)
                expectation_free(x);
        return r;
}

void expectation_free(struct expect *x) {
        if (!x)
                return;
        scan_free(&x->seen);
        free(x->linked);
        free(x->made);
        x->linked = NULL;
        x->made = NULL;
        x->nlinked = x->nmade = x->capmade = 0;
}

static size_t slot_of(uint64_t ino, size_t cap) {
        uint64_t h = ino * 0x9e3779b97f4a7c15ull;
        return (size_t)(h >> 17) & (cap - 1);
}

static struct expect_made *made_find(const struct expect *x, uint64_t ino) {
        if (!x->capmade || !ino)
                return NULL;
        for (size_t i = slot_of(ino, x->capmade);; i = (i + 1) & (x->capmade - 1)) {
                if (x->made[i].ino == ino)
                        return &x->made[i];
                if (x->made[i].ino == 0)
                        return NULL;
        }
}

static int made_put(struct expect *x, uint64_t ino, int64_t cs, uint32_t cns) {
        struct expect_made *m;

        if (!ino)
                return 0;
        if ((m = made_find(x, ino))) {
                m->ctime_s = cs;
                m->ctime_ns = cns;
                return 0;
        }
        if (2 * (x->nmade + 1) > x->capmade) {
                size_t cap = x->capmade ? 2 * x->capmade : 256;
                struct expect_made *old = x->made, *v = calloc(cap, sizeof *v);
                size_t oldcap = x->capmade;
                if (!v)
                        return -ENOMEM;
                x->made = v;
                x->capmade = cap;
                x->nmade = 0;
                for (size_t i = 0; i < oldcap; i++)
                        if (old[i].ino)
                                (void)made_put(x, old[i].ino, old[i].ctime_s, old[i].ctime_ns);
                free(old);
        }
        for (size_t i = slot_of(ino, x->capmade);; i = (i + 1) & (x->capmade - 1))
                if (x->made[i].ino == 0) {
                        x->made[i] = (struct expect_made){.ino = ino, .ctime_s = cs, .ctime_ns = cns};
                        x->nmade++;
                        return 0;
                }
}

int expectation_made(struct expect *x, const struct stat *st) {
        return x ? made_put(x, (uint64_t)st->st_ino, st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec) : 0;
}

/* e and st differ in their ctime alone. */
static bool but_ctime(const struct scan_entry *e, const struct stat *st) {
        struct scan_entry t = *e;

        t.ctime_s = st->st_ctim.tv_sec;
        t.ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
        return scan_entry_matches(&t, st);
}

static bool linked(const struct expect *x, uint64_t ino) {
        return x->nlinked && bsearch(&ino, x->linked, x->nlinked, sizeof *x->linked, cmp_u64);
}

int expectation_check(struct expect *x, int dirfd, const char *base, const char *path) {
        const struct scan_entry *e;
        const struct expect_made *m;
        struct stat st;

        if (!x)
                return 0;
        e = scan_find(&x->seen, path);
        if (dirfd < 0 || fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (dirfd >= 0 && errno != ENOENT)
                        return -errno;
                if (!e)
                        return 0;
                /* removed here since */
        } else if ((e && scan_entry_matches(e, &st)) ||
                   (e && but_ctime(e, &st) && linked(x, (uint64_t)st.st_ino)) ||
                   ((m = made_find(x, (uint64_t)st.st_ino)) && m->ctime_s == st.st_ctim.tv_sec &&
                    m->ctime_ns == (uint32_t)st.st_ctim.tv_nsec))
                return 0;
        snprintf(x->busy, sizeof x->busy, "%s", path);
        return -EBUSY;
}
