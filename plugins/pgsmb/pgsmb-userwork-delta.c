/* Delta profiles, the writing side (runs as the user): which entries of the archive's walk
 * (pgsmb-userwork-archive.c) go into a delta, the scan line of each, and the record read first.
 *
 * Hardlinks: the paths of one inode are current in the same archive of a chain, always. A chain
 * restore asks each archive only for the paths the manifest says are current there; a hardlink
 * entry whose first path is current elsewhere (its directory renamed: a new path, the inode and so
 * the other path's stat unchanged) would name a file the restore never made. So when a delta
 * archives an inode with several links, the unchanged paths to it go in too, as hardlinks (at the
 * archive's end for those the walk met first: their scan lines are turned to '+' in place). What
 * this cannot keep together is a path that an exclusion added later leaves out of the walk. */
#include "pgsmb-userwork-archive-internal.h"

struct delta_later {
        struct inode_key key;
        uint64_t off; /* of its scan line, from scan_start */
        unsigned nlink;
        uid_t uid;
        gid_t gid;
        struct scan_entry se; /* se.path owned */
};

static bool inode_set_has(void *const *set, const struct stat *sb) {
        const struct inode_key k = { sb->st_dev, sb->st_ino };
        return tfind(&k, set, pgsmb_inode_cmp) != NULL;
}

static bool multi_linked(const struct stat *sb) { return S_ISREG(sb->st_mode) && sb->st_nlink > 1; }

static int later_add(struct delta_walk *d, const struct stat *sb, uint64_t off, struct scan_entry *se) {
        if (d->nlater == d->caplater) {
                size_t cap = d->caplater ? 2 * d->caplater : 64;
                struct delta_later *v = realloc(d->later, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                d->later = v;
                d->caplater = cap;
        }
        d->later[d->nlater++] = (struct delta_later){ .key = { sb->st_dev, sb->st_ino }, .off = off,
                                                      .nlink = (unsigned)sb->st_nlink, .uid = sb->st_uid,
                                                      .gid = sb->st_gid, .se = *se };
        se->path = NULL;
        return 0;
}

int pgsmb_delta_note(struct delta_walk *d, struct archive_entry *e, const char *rel, bool *archive_it,
                     char *err, size_t errlen) {
        const struct stat *sb = archive_entry_stat(e);
        const struct scan_entry *prev;
        struct scan_entry se;
        bool later = false;
        int r;

        if (!sb)
                return fail(err, errlen, -ENOMEM, "out of memory");
        prev = d->record ? scan_find(d->record, rel) : NULL;
        *archive_it = !d->scan_only && !(prev && scan_entry_matches(prev, sb));
        if (!d->scan_only && multi_linked(sb)) {
                /* unchanged, but its inode is in this delta already (or cannot be told later) */
                if (!*archive_it && (d->scan_start < 0 || inode_set_has(&d->archived, sb)))
                        *archive_it = true;
                else if (!*archive_it)
                        later = true;
                else if ((r = pgsmb_inode_first_seen(&d->archived, sb)) < 0)
                        return fail(err, errlen, r, "out of memory");
        }
        if ((r = scan_entry_from_stat(&se, *archive_it ? '+' : '=', rel, sb)) < 0)
                return fail(err, errlen, r, "cannot describe '%s': %s", rel, strerror(-r));
        pbuf_reset(&d->line);
        r = scan_format(&se, &d->line);
        if (r == 0 && later)
                r = later_add(d, sb, d->bytes, &se);
        free(se.path);
        if (r < 0)
                return fail(err, errlen, r, "cannot describe '%s': %s", rel, strerror(-r));
        /* Said here, in words, rather than as a scan root cannot read. */
        if (++d->entries > SCAN_ENTRIES_MAX || (d->bytes += d->line.len) > SCAN_BYTES_MAX)
                return fail(err, errlen, -E2BIG,
                            "the home holds more than %u entries or their list passes %u MiB: too many for a "
                            "delta profile (exclude some, or use store_format = 1)",
                            SCAN_ENTRIES_MAX, SCAN_BYTES_MAX >> 20);
        if (fwrite(d->line.data, 1, d->line.len, d->scan_out) != d->line.len)
                return fail(err, errlen, -EIO, "cannot write the scan: %s", strerror(errno));
        return 0;
}

/* One path the walk met before the delta archived its inode: a hardlink entry to the archived
 * path, and '+' over the '=' of its scan line. */
static int later_link(struct delta_walk *d, const struct delta_later *l, struct archive *disk, struct archive *w,
                      struct archive_entry_linkresolver *lr, struct profile_stats *st, char *err,
                      size_t errlen) {
        _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
        struct archive_entry *cur, *spare = NULL;

        if (!e)
                return fail(err, errlen, -ENOMEM, "out of memory");
        archive_entry_copy_pathname(e, l->se.path);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, (mode_t)l->se.mode);
        archive_entry_set_dev(e, l->key.dev);
        archive_entry_set_ino64(e, (la_int64_t)l->key.ino);
        archive_entry_set_nlink(e, l->nlink);
        archive_entry_set_uid(e, l->uid);
        archive_entry_set_gid(e, l->gid);
        archive_entry_set_mtime(e, l->se.mtime_s, l->se.mtime_ns);
        archive_entry_set_size(e, (la_int64_t)l->se.size);
        cur = e;
        archive_entry_linkify(lr, &cur, &spare);
        if (spare)
                archive_entry_free(spare); /* not for pax; never a second entry */
        /* The resolver no longer knows the inode (its link count changed while we walked): the
         * path stays '=', in the archive that holds it. */
        if (!cur || !archive_entry_hardlink(cur))
                return 0;
        int r = pgsmb_archive_write_entry(disk, w, cur, l->se.path, st, err, errlen);
        if (r < 0)
                return r;
        if (pwrite(fileno(d->scan_out), "+", 1, d->scan_start + (off_t)l->off) != 1)
                return fail(err, errlen, errno ? -errno : -EIO, "cannot write the scan: %s", strerror(errno));
        return 0;
}

int pgsmb_delta_finish(struct delta_walk *d, struct archive *disk, struct archive *w,
                       struct archive_entry_linkresolver *lr, struct profile_stats *st, char *err,
                       size_t errlen) {
        if (d->nlater == 0)
                return 0;
        if (fflush(d->scan_out) != 0) /* the lines are in the file before a flag changes in it */
                return fail(err, errlen, -EIO, "cannot write the scan: %s", strerror(errno));
        for (size_t i = 0; i < d->nlater; i++) {
                const struct delta_later *l = &d->later[i];
                const struct stat sb = { .st_dev = l->key.dev, .st_ino = l->key.ino };
                if (!inode_set_has(&d->archived, &sb))
                        continue; /* its inode is unchanged and not in this delta: it stays '=' */
                int r = later_link(d, l, disk, w, lr, st, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void delta_walk_done(struct delta_walk *d) {
        for (size_t i = 0; i < d->nlater; i++)
                free(d->later[i].se.path);
        free(d->later);
        tdestroy(d->archived, free);
        pbuf_free(&d->line);
}

int pgsmb_profile_delta(const char *home, const char *const *exclude, const struct profile_compress *c,
                        const struct scan *record, int out_fd, int scan_fd, struct profile_stats *stats,
                        char *err, size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = stats ? stats : &dummy;
        *st = (struct profile_stats){ 0 };
        if (err && errlen)
                err[0] = 0;
        if (c && c->archive_argv)
                return fail(err, errlen, -EOPNOTSUPP,
                            "an external program (compress_command) cannot write a delta");

        _cleanup_(strv_freep) char **ex = NULL;
        int r = pgsmb_exclude_normalize(exclude, &ex, err, errlen);
        if (r < 0)
                return r;
        int fd = dup(scan_fd);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
                if (fd >= 0)
                        close(fd);
                return fail(err, errlen, -errno, "cannot write the scan: %s", strerror(errno));
        }
        /* Not seekable (a pipe): an unchanged hardlinked file is archived whenever it is met. */
        struct delta_walk d = { .record = record, .scan_out = f, .scan_only = out_fd < 0,
                                .scan_start = lseek(fd, 0, SEEK_CUR) };
        pbuf_init(&d.line);
        r = pgsmb_archive_walk(home, ex, c, out_fd, &d, st, err, errlen);
        delta_walk_done(&d);
        if (fclose(f) != 0 && r == 0)
                r = fail(err, errlen, -EIO, "cannot write the scan: %s", strerror(errno));
        return r;
}

int pgsmb_profile_record_read(int fd, const char *home, struct scan *record, char *err, size_t errlen) {
        size_t line = 0;
        int r = scan_read_fd(record, fd, PROFILE_RECORD_MAX, &line);

        if (r == -E2BIG && line == 0)
                return fail(err, errlen, r, "the record to compare %s with is larger than %u MiB", home,
                            PROFILE_RECORD_MAX >> 20);
        if (r < 0)
                return fail(err, errlen, r, "the record to compare %s with is invalid at line %zu: %s", home, line,
                            r == -EBADMSG ? "not a scan line, a bad path, or a path listed twice" : strerror(-r));
        return 0;
}
