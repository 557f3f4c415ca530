/* Tree walk of a home (runs as the user): pgsmb_profile_size, and the check after an external
 * extractor. */
#include "pgsmb-userwork-archive-internal.h"

/* ---- tree walk (pgsmb_profile_size, and the check after an external extractor) ---- */

int pgsmb_inode_cmp(const void *a, const void *b) {
        const struct inode_key *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

/* True the first time an inode is seen; hardlinked files count once. */
int pgsmb_inode_first_seen(void **set, const struct stat *st) {
        if (st->st_nlink <= 1)
                return 1;
        struct inode_key *k = malloc(sizeof *k);
        if (!k)
                return -ENOMEM;
        *k = (struct inode_key){ st->st_dev, st->st_ino };
        struct inode_key **found = tsearch(k, set, pgsmb_inode_cmp);
        if (!found) {
                free(k);
                return -ENOMEM;
        }
        if (*found != k) {
                free(k);
                return 0;
        }
        return 1;
}

static void ftsp(FTS **f) {
        if (*f)
                fts_close(*f);
}


int pgsmb_walk_tree(const char *root, char *const *ex, walk_fn fn, void *userdata, char *err,
                     size_t errlen) {
        char *const paths[] = { (char *)root, NULL };
        /* Physical walk, never into another filesystem (a share mounted inside the home), the
         * home itself may be a symlink (COMFOLLOW). */
        _cleanup_(ftsp) FTS *f =
                fts_open(paths, FTS_PHYSICAL | FTS_COMFOLLOW | FTS_XDEV | FTS_NOCHDIR, NULL);
        if (!f)
                return fail(err, errlen, -errno, "cannot walk '%s': %s", root, strerror(errno));
        size_t rootlen = strlen(root);
        FTSENT *ent;
        errno = 0;
        while ((ent = fts_read(f))) {
                if (ent->fts_info == FTS_DP)
                        continue;
                if (ent->fts_info == FTS_DNR || ent->fts_info == FTS_ERR ||
                    ent->fts_info == FTS_NS)
                        return fail(err, errlen, -ent->fts_errno, "cannot read '%s': %s",
                                    ent->fts_path, strerror(ent->fts_errno));
                if (ent->fts_level == 0)
                        continue;
                const char *rel = ent->fts_path + rootlen;
                rel += strspn(rel, "/");
                if (pgsmb_is_excluded(ex, rel)) {
                        fts_set(f, ent, FTS_SKIP);
                        continue;
                }
                int r = fn(ent, rel, userdata, err, errlen);
                if (r < 0)
                        return r;
                errno = 0;
        }
        if (errno != 0)
                return fail(err, errlen, -errno, "cannot walk '%s': %s", root, strerror(errno));
        return 0;
}

struct size_walk {
        uint64_t bytes;
        void *inodes;
};

static int size_one(FTSENT *ent, const char *rel, void *userdata, char *err, size_t errlen) {
        (void)rel;
        struct size_walk *w = userdata;
        if (ent->fts_info != FTS_F)
                return 0;
        int r = pgsmb_inode_first_seen(&w->inodes, ent->fts_statp);
        if (r < 0)
                return fail(err, errlen, r, "out of memory");
        if (r > 0)
                w->bytes += (uint64_t)ent->fts_statp->st_size;
        return 0;
}

int pgsmb_profile_size(const char *home, const char *const *exclude, uint64_t *bytes, char *err,
                       size_t errlen) {
        _cleanup_(strv_freep) char **ex = NULL;
        int r = pgsmb_exclude_normalize(exclude, &ex, err, errlen);
        if (r < 0)
                return r;
        struct size_walk w = { 0 };
        r = pgsmb_walk_tree(home, ex, size_one, &w, err, errlen);
        tdestroy(w.inodes, free);
        if (r < 0)
                return r;
        *bytes = w.bytes;
        return 0;
}
