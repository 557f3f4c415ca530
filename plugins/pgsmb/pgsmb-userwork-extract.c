/* Profile archives, the reading side (runs as the user): extraction of archives that may be
 * hostile. Every entry is checked here before libarchive's own SECURE_* checks see it. */
#include "pgsmb-userwork-archive-internal.h"
#include "pgsmb-userwork-program.h"

/* ---- extract ---- */

struct extract_state {
        const struct profile_limits *lim;
        bool in_place; /* an existing path is replaced, not "appears twice" */
        uint64_t entries;
        uint64_t declared; /* sum of header sizes */
        uint64_t written;  /* sum of data actually written */
        size_t taken; /* entries of the want list found */
};

static int too_big_total(char *err, size_t errlen, const struct profile_limits *lim,
                         const char *name) {
        return fail(err, errlen, -EFBIG,
                    "profile exceeds max_profile_size (%" PRIu64 " bytes) at entry '%s'",
                    lim->max_total_bytes, name);
}

static int too_big_entry(char *err, size_t errlen, const struct profile_limits *lim,
                         const char *name, uint64_t size) {
        return fail(err, errlen, -EFBIG,
                    "archive entry '%s': %" PRIu64 " bytes exceeds the per-file limit (%" PRIu64
                    " bytes)",
                    name, size, lim->max_entry_bytes);
}

/* Everything checked about an entry before libarchive may create anything for it. */
/* fast: the entry goes to unpack_begin, whose O_EXCL creation and no-follow hardlink check do
 * what the two fstatat() checks here do for libarchive's writer (which would replace a path). */
static int extract_check_entry(struct extract_state *s, struct archive_entry *e, bool fast,
                               char *err, size_t errlen) {
        const struct profile_limits *lim = s->lim;
        const char *name = archive_entry_pathname(e);
        if (!name || !*name)
                return fail(err, errlen, -EPERM, "archive entry %" PRIu64 " has no name",
                            s->entries);
        if (lim->max_entries && s->entries > lim->max_entries)
                return fail(err, errlen, -E2BIG,
                            "archive has more than %" PRIu64 " entries (max_entries) at entry '%s'",
                            lim->max_entries, name);
        if (!pgsmb_path_is_inside(name))
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': path leads outside the profile", name);

        const char *hardlink = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        if (hardlink) {
                struct stat st;
                if (!pgsmb_path_is_inside(hardlink))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': hardlink to '%s' leads outside the "
                                    "profile",
                                    name, hardlink);
                /* A hardlink to a symlink would carry the link's relative target to another
                 * directory, where it may point elsewhere. */
                if (!fast && fstatat(AT_FDCWD, hardlink, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    !S_ISREG(st.st_mode))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': hardlink to '%s', which is not a "
                                    "regular file",
                                    name, hardlink);
        } else if (type == AE_IFLNK) {
                if (!pgsmb_symlink_stays_inside(name, archive_entry_symlink(e)))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': symlink to '%s' leads outside the "
                                    "profile",
                                    name, strempty(archive_entry_symlink(e)));
        } else if (type != AE_IFREG && type != AE_IFDIR)
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': device files, FIFOs and sockets are refused",
                            name);

        /* One entry per path (directories may repeat, e.g. "./"): a later entry never replaces
         * what an earlier one made. */
        struct stat st;
        if (!fast && !s->in_place && fstatat(AT_FDCWD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !(S_ISDIR(st.st_mode) && type == AE_IFDIR && !hardlink))
                return fail(err, errlen, -EPERM, "archive entry '%s' appears twice", name);

        uint64_t size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0
                                ? (uint64_t)archive_entry_size(e)
                                : 0;
        if (lim->max_entry_bytes && size > lim->max_entry_bytes)
                return too_big_entry(err, errlen, lim, name, size);
        if (!hardlink) {
                s->declared += size;
                if (lim->max_total_bytes && s->declared > lim->max_total_bytes)
                        return too_big_total(err, errlen, lim, name);
        }

        /* Plain permissions only: no setuid, setgid or sticky bit survives. */
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
        if (pgsmb_entry_keep_user_xattrs(e) < 0)
                return fail(err, errlen, -ENOMEM, "out of memory");
        return 0;
}

/* Copy the entry's data, counting what is actually written: headers may lie (a sparse map can
 * carry more data than the size it declares). */
/* Where an entry's data goes: libarchive's disk writer, or a file unpack_begin made. */
struct data_sink {
        struct archive *w; /* or NULL */
        int fd; /* or -1: the data is read, counted and dropped (a hardlink's) */
        uint64_t end; /* highest offset written to fd */
};

static int extract_copy_data(struct extract_state *s, struct archive *a, struct data_sink *sink,
                             struct archive_entry *e, uint64_t *bytes, char *err, size_t errlen) {
        const char *name = archive_entry_pathname(e);
        uint64_t declared = archive_entry_size_is_set(e) && archive_entry_size(e) > 0
                                    ? (uint64_t)archive_entry_size(e)
                                    : 0;
        const struct profile_limits *lim = s->lim;
        const void *blk;
        size_t len;
        la_int64_t off;
        int r;
        while ((r = archive_read_data_block(a, &blk, &len, &off)) == ARCHIVE_OK) {
                if (off < 0)
                        return fail(err, errlen, -EBADMSG,
                                    "archive entry '%s': negative data offset", name);
                uint64_t end = (uint64_t)off + len;
                if (end > declared)
                        return fail(err, errlen, -EBADMSG,
                                    "archive entry '%s': data beyond its declared size (%" PRIu64
                                    " bytes)",
                                    name, declared);
                if (lim->max_entry_bytes && end > lim->max_entry_bytes)
                        return too_big_entry(err, errlen, lim, name, end);
                s->written += len;
                if (lim->max_total_bytes && s->written > lim->max_total_bytes)
                        return too_big_total(err, errlen, lim, name);
                if (len == 0)
                        continue;
                if (sink->w && archive_write_data_block(sink->w, blk, len, off) != ARCHIVE_OK)
                        return fail(err, errlen, la_errno(sink->w, EIO),
                                    "cannot write archive entry '%s': %s", name,
                                    la_error(sink->w));
                if (sink->fd >= 0) {
                        r = unpack_data(sink->fd, blk, len, off);
                        if (r < 0)
                                return fail(err, errlen, r, "cannot write archive entry '%s': %s",
                                            name, strerror(-r));
                        if (end > sink->end)
                                sink->end = end;
                }
                *bytes += len;
        }
        if (r != ARCHIVE_EOF)
                return fail(err, errlen, la_errno(a, EBADMSG),
                            "archive is damaged at entry '%s': %s", name, la_error(a));
        return 0;
}

/* An entry's path as the scan and manifest spell it: without "./" and a trailing '/'. */
static void entry_rel(const char *name, char out[PATH_MAX]) {
        while (name[0] == '.' && name[1] == '/')
                name += 2 + strspn(name + 2, "/");
        snprintf(out, PATH_MAX, "%s", name);
        for (size_t n = strlen(out); n > 0 && out[n - 1] == '/'; n--)
                out[n - 1] = 0;
}

/* In place, a target found changed since the caller looked (pgsmb-userwork-expect.h). */
static int changed_here(char *err, size_t errlen, struct unpack *u) {
        return fail(err, errlen, -EBUSY, "'%s' changed here during the catch-up", unpack_busy(u));
}

/* Most entries: our own writer (pgsmb-userwork-unpack.c), a few system calls per file. */
static int extract_entry_fast(struct extract_state *s, struct archive *a, struct unpack *u,
                              struct archive_entry *e, uint64_t *bytes, char *err, size_t errlen) {
        const char *name = archive_entry_pathname(e);
        const char *hardlink = archive_entry_hardlink(e);
        struct data_sink sink = { .fd = -1 };
        int r = unpack_begin(u, e, &sink.fd);
        if (r == -EBUSY)
                return changed_here(err, errlen, u);
        if (r == -EEXIST)
                return fail(err, errlen, -EPERM, "archive entry '%s' appears twice", name);
        if (r == -EPERM && hardlink)
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': hardlink to '%s', which is not a regular file",
                            name, hardlink);
        if (r == -E2BIG)
                return fail(err, errlen, -E2BIG,
                            "the archive lists more directories than a profile can hold "
                            "(at entry '%s')", name);
        if (r == -ELOOP || r == -ENOTDIR)
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': a directory of its path is a symlink or a file",
                            name);
        if (r < 0)
                return fail(err, errlen, r, "cannot extract archive entry '%s': %s", name,
                            strerror(-r));
        r = extract_copy_data(s, a, &sink, e, bytes, err, errlen);
        if (sink.fd >= 0) {
                int k = unpack_end(u, e, sink.fd, sink.end);
                if (r == 0 && k == -EBUSY)
                        r = changed_here(err, errlen, u);
                else if (r == 0 && k < 0)
                        r = fail(err, errlen, k, "cannot write archive entry '%s': %s", name,
                                 strerror(-k));
        }
        return r;
}

/* Entries with ACLs or xattrs: libarchive's disk writer, with its SECURE_* checks. */
static int extract_entry_libarchive(struct extract_state *s, struct archive *a, struct archive *w,
                                    struct unpack *u, struct archive_entry *e, uint64_t *bytes,
                                    char *err, size_t errlen) {
        const char *name = archive_entry_pathname(e);
        struct data_sink sink = { .w = w, .fd = -1 };
        char rel[PATH_MAX];
        int r;

        entry_rel(name, rel);
        if (s->in_place && (r = unpack_may_replace_path(u, rel, archive_entry_filetype(e) == AE_IFDIR)) < 0)
                return r == -EBUSY ? changed_here(err, errlen, u)
                                   : fail(err, errlen, r, "cannot look at '%s': %s", rel, strerror(-r));
        r = archive_write_header(w, e);
        if (r < ARCHIVE_WARN)
                return fail(err, errlen, la_errno(w, EIO), "cannot extract archive entry '%s': %s",
                            name, la_error(w));
        r = extract_copy_data(s, a, &sink, e, bytes, err, errlen);
        if (r < 0)
                return r;
        /* WARN here is an ACL, xattr or time the filesystem would not take: the data is there,
         * and refusing the whole profile for it would lose more. */
        if (archive_write_finish_entry(w) < ARCHIVE_WARN)
                return fail(err, errlen, la_errno(w, EIO), "cannot finish archive entry '%s': %s",
                            name, la_error(w));
        return 0;
}

/* What extract_builtin reads: fd, or (ring != NULL) a shared ring and its control socket fd. */
struct extract_source {
        int fd;
        const void *ring;
        size_t ring_size;
};

static int extract_builtin(const struct extract_source *src, const char *target,
                           const struct profile_limits *lim, const struct extract_opts *o,
                           struct profile_stats *st, char *err, size_t errlen) {
        static const struct extract_opts none = { 0 };
        if (!o)
                o = &none;
        /* archive_write_disk works relative to the working directory: its SECURE_* checks refuse
         * absolute paths, so the target must be ".". */
        _cleanup_(fchdir_backp) int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (here < 0)
                return fail(err, errlen, -errno, "cannot open the working directory: %s",
                            strerror(errno));
        _cleanup_close_ int tfd = open(target, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tfd < 0 || fchdir(tfd) < 0)
                return fail(err, errlen, -errno, "cannot enter extraction target '%s': %s", target,
                            strerror(errno));

        _cleanup_(archive_read_freep) struct archive *a = archive_read_new();
        _cleanup_(archive_write_freep) struct archive *w = archive_write_disk_new();
        if (!a || !w)
                return fail(err, errlen, -ENOMEM, "out of memory");
        /* tar (pax, ustar, GNU) only; zstd (undone by pgsmb-userwork-inflate.c's thread) or uncompressed
         * only: nothing else is ours. */
        if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_support_filter_none(a) != ARCHIVE_OK)
                return fail(err, errlen, -EOPNOTSUPP, "libarchive cannot read tar + zstd: %s",
                            la_error(a));
        /* No OWNER: we run as the user, and everything we create is the user's. No SPARSE: the
         * holes of a sparse file come from its pax sparse map (data blocks at offsets, seeked
         * over); SPARSE would scan all data for zeros and write it 4 KiB at a time. */
        archive_write_disk_set_options(
                w, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                           ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_TIME |
                           ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_XATTR);
        /* ACL entries name users and groups: map the names to this machine's ids. */
        archive_write_disk_set_standard_lookup(w);
        _cleanup_(inflate_freep) struct inflate *z = NULL;
        int r = src->ring ? inflate_open_ring(a, src->fd, src->ring, src->ring_size, &z)
                          : inflate_open(a, src->fd, &z);
        if (r < 0)
                return fail(err, errlen, r, "cannot read the archive: %s",
                            r == -EBADMSG ? la_error(a) : strerror(-r));

        _cleanup_(unpack_freep) struct unpack *u = NULL;
        r = unpack_new(tfd, &u);
        if (r < 0)
                return fail(err, errlen, r, "out of memory");
        unpack_set_in_place(u, o->in_place);
        unpack_set_expect(u, o->expect);
        struct extract_state s = { .lim = lim, .in_place = o->in_place };
        for (;;) {
                struct archive_entry *e;
                r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return fail(err, errlen, la_errno(a, EBADMSG),
                                    "archive is damaged after %" PRIu64 " entries: %s", s.entries,
                                    la_error(a));
                s.entries++;
                if (o->want) {
                        /* A chain's archive: only the entries the manifest says are current here.
                         * The rest is read past, never written. */
                        char rel[PATH_MAX];
                        entry_rel(strempty(archive_entry_pathname(e)), rel);
                        if (!*rel || !pathlist_has(o->want, o->nwant, rel)) {
                                if (lim->max_entries && s.entries > lim->max_entries)
                                        return fail(err, errlen, -E2BIG,
                                                    "archive has more than %" PRIu64 " entries (max_entries)",
                                                    lim->max_entries);
                                if (archive_read_data_skip(a) != ARCHIVE_OK)
                                        return fail(err, errlen, la_errno(a, EBADMSG),
                                                    "archive is damaged after %" PRIu64 " entries: %s",
                                                    s.entries, la_error(a));
                                continue;
                        }
                        s.taken++;
                }
                bool fast = unpack_wants(e);
                /* Later archives of a chain may still write into a directory: it stays 0700
                 * until the caller gives it its mode (FIXDIRS). */
                if (o->no_dirfix && archive_entry_filetype(e) == AE_IFDIR && !fast)
                        archive_entry_set_perm(e, 0700);
                r = extract_check_entry(&s, e, fast, err, errlen);
                if (r < 0)
                        return r;
                r = fast ? extract_entry_fast(&s, a, u, e, &st->bytes, err, errlen)
                         : extract_entry_libarchive(&s, a, w, u, e, &st->bytes, err, errlen);
                if (r < 0)
                        return r;
                st->files++;
        }
        /* The rest of the stream after the end marker (tar padding, the zstd frame's end and
         * checksum): read and checked, or a damaged end would go unseen. */
        r = inflate_finish(z, &st->checksummed);
        if (r < 0)
                return fail(err, errlen, r, "archive is damaged after its last entry: %s",
                            inflate_error(z));
        if (o->want && s.taken != o->nwant)
                return fail(err, errlen, -EBADMSG,
                            "the archive lacks %zu of the %zu entries it should provide (damaged chain?)",
                            o->nwant - s.taken, o->nwant);
        /* Directory modes and times are applied here, after their contents. */
        r = o->no_dirfix ? 0 : unpack_finish(u);
        if (r < 0)
                return fail(err, errlen, r, "cannot set the modes and times of directories: %s",
                            strerror(-r));
        if (archive_write_close(w) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(w, EIO), "cannot finish extraction: %s",
                            la_error(w));
        return 0;
}

/* After an external extractor: the same rules, checked on what it left (limits can only be
 * enforced afterwards there; setuid/setgid/sticky bits are stripped). */
struct check_walk {
        struct extract_state s;
        struct profile_stats *st;
        void *inodes;
        const char *target;
};

static int check_one(FTSENT *ent, const char *rel, void *userdata, char *err, size_t errlen) {
        struct check_walk *c = userdata;
        const struct profile_limits *lim = c->s.lim;
        const struct stat *sb = ent->fts_statp;
        c->s.entries++;
        c->st->files++;
        if (lim->max_entries && c->s.entries > lim->max_entries)
                return fail(err, errlen, -E2BIG,
                            "archive has more than %" PRIu64 " entries (max_entries) at entry '%s'",
                            lim->max_entries, rel);
        if (S_ISLNK(sb->st_mode)) {
                char buf[PATH_MAX];
                ssize_t n = readlink(ent->fts_path, buf, sizeof buf - 1);
                if (n < 0)
                        return fail(err, errlen, -errno, "cannot read symlink '%s': %s", rel,
                                    strerror(errno));
                buf[n] = 0;
                if (!pgsmb_symlink_stays_inside(rel, buf))
                        return fail(err, errlen, -EPERM,
                                    "archive entry '%s': symlink to '%s' leads outside the "
                                    "profile",
                                    rel, buf);
                return 0;
        }
        if (!S_ISREG(sb->st_mode) && !S_ISDIR(sb->st_mode))
                return fail(err, errlen, -EPERM,
                            "archive entry '%s': device files, FIFOs and sockets are refused", rel);
        if ((sb->st_mode & 07000) && fchmodat(AT_FDCWD, ent->fts_path, sb->st_mode & 0777, 0) < 0)
                return fail(err, errlen, -errno, "cannot clear setuid/setgid bits of '%s': %s",
                            rel, strerror(errno));
        if (!S_ISREG(sb->st_mode))
                return 0;
        uint64_t size = (uint64_t)sb->st_size;
        if (lim->max_entry_bytes && size > lim->max_entry_bytes)
                return too_big_entry(err, errlen, lim, rel, size);
        int r = pgsmb_inode_first_seen(&c->inodes, sb);
        if (r < 0)
                return fail(err, errlen, r, "out of memory");
        if (r > 0) {
                c->s.written += size;
                c->st->bytes += size;
                if (lim->max_total_bytes && c->s.written > lim->max_total_bytes)
                        return too_big_total(err, errlen, lim, rel);
        }
        return 0;
}

/* What both entries do first: no limits, no stats wanted and no error yet are all allowed. */
static struct profile_stats *extract_begin(const struct profile_limits **lim,
                                           struct profile_stats *stats, struct profile_stats *dummy,
                                           char *err, size_t errlen) {
        static const struct profile_limits none = { 0 };
        struct profile_stats *st = stats ? stats : dummy;
        *st = (struct profile_stats){ 0 };
        if (err && errlen)
                err[0] = 0;
        if (!*lim)
                *lim = &none;
        return st;
}

int pgsmb_profile_extract(int in_fd, const char *target, const struct profile_limits *lim,
                          const struct profile_compress *c, struct profile_stats *stats, char *err,
                          size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = extract_begin(&lim, stats, &dummy, err, errlen);
        if (!(c && c->extract_argv))
                return extract_builtin(&(struct extract_source){.fd = in_fd}, target, lim, NULL, st, err,
                                       errlen);

        int r = pgsmb_run_program(c->extract_argv, c->program_env, target, in_fd, -1, err, errlen);
        if (r < 0)
                return r;
        struct check_walk cw = { .s = { .lim = lim }, .st = st, .target = target };
        r = pgsmb_walk_tree(target, NULL, check_one, &cw, err, errlen);
        tdestroy(cw.inodes, free);
        return r;
}

int pgsmb_profile_extract_ring(int ctl_fd, const void *ring, size_t ring_size, const char *target,
                               const struct profile_limits *lim, struct profile_stats *stats, char *err,
                               size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = extract_begin(&lim, stats, &dummy, err, errlen);
        return extract_builtin(&(struct extract_source){ .fd = ctl_fd, .ring = ring, .ring_size = ring_size },
                               target, lim, NULL, st, err, errlen);
}

int pgsmb_profile_extract_opts(int fd, const void *ring, size_t ring_size, const char *target,
                               const struct profile_limits *lim, const struct extract_opts *o,
                               struct profile_stats *stats, char *err, size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = extract_begin(&lim, stats, &dummy, err, errlen);
        return extract_builtin(&(struct extract_source){ .fd = fd, .ring = ring, .ring_size = ring_size },
                               target, lim, o, st, err, errlen);
}
