/* What a catch-up saw at the paths it changes (see pgsmb-userwork-expect.h). */
#include "pgsmb-userwork-expect.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int expectation_read_fd(struct expect *x, int fd, size_t max, size_t *line_no) {
        int r;

        memset(x, 0, sizeof *x);
        if ((r = scan_read_fd(&x->seen, fd, max, line_no)) < 0)
                return r;
        if ((r = scan_sort(&x->seen)) < 0)
                scan_free(&x->seen);
        return r;
}

void expectation_free(struct expect *x) {
        if (!x)
                return;
        scan_free(&x->seen);
        free(x->ours);
        x->ours = NULL;
        x->nours = x->capours = 0;
}

static int ours_add(struct expect *x, uint64_t ino, bool made) {
        if (x->nours == x->capours) {
                size_t cap = x->capours ? 2 * x->capours : 64;
                struct expect_ino *v = realloc(x->ours, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                x->ours = v;
                x->capours = cap;
        }
        x->ours[x->nours++] = (struct expect_ino){.ino = ino, .made = made};
        return 0;
}

/* Looked up only when a target differs (rare: hardlinks, a path listed twice), so a list. */
static bool ours_has(const struct expect *x, uint64_t ino, bool made) {
        for (size_t i = x->nours; i-- > 0;)
                if (x->ours[i].ino == ino && x->ours[i].made == made)
                        return true;
        return false;
}

int expectation_made(struct expect *x, uint64_t ino) { return x ? ours_add(x, ino, true) : 0; }

/* e and st differ in their ctime alone. */
static bool but_ctime(const struct scan_entry *e, const struct stat *st) {
        struct scan_entry t = *e;

        t.ctime_s = st->st_ctim.tv_sec;
        t.ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
        return scan_entry_matches(&t, st);
}

int expectation_check(struct expect *x, int dirfd, const char *base, const char *path) {
        const struct scan_entry *e;
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
        } else if (ours_has(x, (uint64_t)st.st_ino, true) ||
                   (e && (scan_entry_matches(e, &st) ||
                          (but_ctime(e, &st) && ours_has(x, (uint64_t)st.st_ino, false)))))
                return ours_add(x, (uint64_t)st.st_ino, false);
        snprintf(x->busy, sizeof x->busy, "%s", path);
        return -EBUSY;
}
