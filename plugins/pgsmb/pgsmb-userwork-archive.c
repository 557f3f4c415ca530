/* Profile archives, the writing side (runs as the user): a home as one streamed pax + zstd archive
 * (pgsmb-userwork-zstd.c) or by the admin's external program (pgsmb-userwork-program.h). */
#include "pgsmb-userwork-archive-internal.h"
#include "pgsmb-userwork-prefetch.h"
#include "pgsmb-userwork-program.h"

/* ---- archive ---- */

/* Write one file's data, gaps as zeros: the pax writer drops what falls in the sparse map's
 * holes, so a sparse file stays sparse in the archive without its holes being read. */
static void changed_note(struct profile_stats *st, const char *rel) {
        if (st->changed++ == 0)
                snprintf(st->first_changed, sizeof st->first_changed, "%s", rel);
}

static int archive_copy_data(struct archive *disk, struct archive *w, const char *rel, la_int64_t size,
                             struct profile_stats *st, char *err, size_t errlen) {
        uint64_t *bytes = &st->bytes;
        static const char zeros[64 * 1024];
        const void *blk;
        size_t len;
        la_int64_t off, progress = 0;
        int r;
        while ((r = archive_read_data_block(disk, &blk, &len, &off)) == ARCHIVE_OK) {
                while (off > progress) {
                        size_t n = (size_t)(off - progress) < sizeof zeros
                                           ? (size_t)(off - progress)
                                           : sizeof zeros;
                        la_ssize_t k = archive_write_data(w, zeros, n);
                        if (k <= 0)
                                goto write_failed;
                        progress += k;
                }
                la_ssize_t k = archive_write_data(w, blk, len);
                if (k < 0)
                        goto write_failed;
                progress += k;
                *bytes += (uint64_t)k;
                if ((size_t)k != len) {
                        /* It grew past the size in its header: what fits is saved, the rest
                         * is the writer's (a retry would meet the same writer). */
                        changed_note(st, rel);
                        return 0;
                }
        }
        if (r != ARCHIVE_EOF)
                return fail(err, errlen, la_errno(disk, EIO), "cannot read '%s': %s", rel,
                            la_error(disk));
        if (progress < size)
                changed_note(st, rel); /* it shrank: the pax writer pads it with zeros */
        return 0;
write_failed:
        return fail(err, errlen, la_errno(w, EIO), "cannot write '%s' to the archive: %s", rel,
                    la_error(w));
}

int pgsmb_archive_write_entry(struct archive *disk, struct archive *w, struct archive_entry *e,
                               const char *rel, struct profile_stats *st, char *err,
                               size_t errlen) {
        int r = archive_write_header(w, e);
        if (r < ARCHIVE_WARN)
                return fail(err, errlen, la_errno(w, EIO), "cannot archive '%s': %s", rel,
                            la_error(w));
        st->files++;
        if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e) &&
            archive_entry_size(e) > 0)
                return archive_copy_data(disk, w, rel, archive_entry_size(e), st, err, errlen);
        return 0;
}

#define PREFETCH_DIR_BYTES (32 * 1024 * 1024)
#define PREFETCH_FILE_BYTES (4 * 1024 * 1024)

static void prefetch_dir(const char *path) {
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return;
        DIR *d = fdopendir(dfd);
        if (!d)
                return;
        TAKE_FD(dfd);
        uint64_t budget = PREFETCH_DIR_BYTES;
        struct dirent *de;
        while (budget > 0 && (de = readdir(d))) {
                if (de->d_type != DT_REG)
                        continue;
                int fd = openat(dirfd(d), de->d_name,
                                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                struct stat st;
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
                        uint64_t n = (uint64_t)st.st_size;
                        if (n > PREFETCH_FILE_BYTES)
                                n = PREFETCH_FILE_BYTES;
                        if (n > budget)
                                n = budget;
                        (void)posix_fadvise(fd, 0, (off_t)n, POSIX_FADV_WILLNEED);
                        budget -= n;
                }
                close(fd);
        }
        closedir(d);
}

/* The ACL, xattrs and sparse map of an entry the lean walk archives (its source path: absolute,
 * as the walk found it; never through a symlink). */
static int lean_metadata(struct archive *meta, struct archive_entry *e, const char *rel, char *err,
                         size_t errlen) {
        mode_t type = archive_entry_filetype(e);
        const char *path = archive_entry_sourcepath(e);
        _cleanup_close_ int fd = -1;
        struct stat sb = *archive_entry_stat(e);

        if (type == AE_IFLNK)
                return 0; /* no ACL; Linux allows no user.* xattr on a symlink */
        if (!path || path[0] != '/')
                return fail(err, errlen, -EIO, "cannot read '%s': no path", rel);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC |
                                (type == AE_IFDIR ? O_DIRECTORY : 0));
        if (fd < 0)
                return errno == ENOENT ? 0 : fail(err, errlen, -errno, "cannot read '%s': %s", rel, strerror(errno));
        struct stat now;
        if (fstat(fd, &now) < 0 || now.st_ino != sb.st_ino || now.st_dev != sb.st_dev)
                return 0; /* replaced as we walked: what the walk saw is archived, without them */
        if (archive_read_disk_entry_from_file(meta, e, fd, &sb) < ARCHIVE_WARN)
                return fail(err, errlen, la_errno(meta, EIO), "cannot read '%s': %s", rel, la_error(meta));
        archive_entry_copy_pathname(e, rel);
        return 0;
}

int pgsmb_archive_walk(const char *home, char *const *ex, const struct profile_compress *c, int out_fd,
                       struct delta_walk *d, struct profile_stats *st, char *err, size_t errlen) {
        _cleanup_free_ char *root = strdup(home);
        if (!root)
                return fail(err, errlen, -ENOMEM, "out of memory");
        size_t rootlen = strlen(root);
        while (rootlen > 1 && root[rootlen - 1] == '/')
                root[--rootlen] = 0;

        _cleanup_(pgsmb_zstd_out_done) struct zstd_out z = { .fd = -1 };
        int r = 0;
        if (out_fd >= 0 && (r = pgsmb_zstd_out_init(&z, c, out_fd, err, errlen)) < 0)
                return r;
        /* Declared after z: freed (and closed) before the compressor it writes to. */
        _cleanup_(archive_write_freep) struct archive *w = NULL;
        if (out_fd >= 0 && (r = pgsmb_archive_open_writer(&w, &z, err, errlen)) < 0)
                return r;

        _cleanup_(archive_read_freep) struct archive *disk = archive_read_disk_new();
        _cleanup_(linkresolver_freep) struct archive_entry_linkresolver *lr =
                archive_entry_linkresolver_new();
        _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
        if (!disk || !lr || !e)
                return fail(err, errlen, -ENOMEM, "out of memory");
        archive_entry_linkresolver_set_strategy(lr, w ? archive_format(w) : ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
        /* Never follow links below the home; do not descend into other filesystems; record ACLs,
         * xattrs and sparse maps (the defaults); do not touch atimes (no RESTORE_ATIME). File
         * flags (chattr) are not restored, and recording them (ext4's "e" on every file) would
         * cost a pax header per entry. */
        /* A delta against a record, or a scan, reads the metadata of what it archives only:
         * the walk itself lstats (an unchanged entry then costs one call, not a dozen: its ACL,
         * xattrs and sparse map are not read), and `meta` reads the rest of a changed one. Its
         * data is then read whole, holes as zeros, and the pax writer drops what falls in the
         * sparse map's holes. */
        bool lean = d && (d->scan_only || (d->record && d->record->n > 0));
        _cleanup_(archive_read_freep) struct archive *meta = lean ? archive_read_disk_new() : NULL;
        archive_read_disk_set_symlink_hybrid(disk);
        if (archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_FFLAGS |
                                                         (lean ? ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
                                                                         ARCHIVE_READDISK_NO_SPARSE
                                                               : 0)) != ARCHIVE_OK ||
            archive_read_disk_set_standard_lookup(disk) != ARCHIVE_OK)
                return fail(err, errlen, -EIO, "libarchive: %s", la_error(disk));
        if (lean && (!meta || archive_read_disk_set_symlink_physical(meta) != ARCHIVE_OK ||
                     archive_read_disk_set_behavior(meta, ARCHIVE_READDISK_NO_FFLAGS) != ARCHIVE_OK ||
                     archive_read_disk_set_standard_lookup(meta) != ARCHIVE_OK))
                return fail(err, errlen, -EIO, "libarchive: %s", meta ? la_error(meta) : "out of memory");
        if (archive_read_disk_open(disk, root) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(disk, EIO), "cannot read home '%s': %s", home,
                            la_error(disk));
        /* The lean walk reads metadata mostly: threads ahead of it keep the disk busy. Stopped
         * (cleanup) before anything it reads is freed. */
        _cleanup_(prefetch_stopp) struct prefetch *ahead =
                lean ? pgsmb_prefetch_start(root, ex, d->scan_only ? NULL : d->record) : NULL;

        for (;;) {
                archive_entry_clear(e);
                r = archive_read_next_header2(disk, e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return fail(err, errlen, la_errno(disk, EIO), "cannot read home '%s': %s",
                                    home, la_error(disk));
                const char *path = archive_entry_pathname(e);
                if (!path || strncmp(path, root, rootlen) != 0)
                        return fail(err, errlen, -EIO, "unexpected path '%s' below '%s'",
                                    strempty(path), home);
                const char *rel = path + rootlen;
                rel += strspn(rel, "/");
                /* Reading ahead is for files that will be read: a delta reads only what changed
                 * (against an empty record, all of it). */
                bool prefetch = !d || (!d->scan_only && (!d->record || d->record->n == 0));
                if (!*rel) { /* the home itself: its contents, not its own entry */
                        if (prefetch)
                                prefetch_dir(path);
                        archive_read_disk_descend(disk);
                        continue;
                }
                if (pgsmb_is_excluded(ex, rel))
                        continue; /* not descended either */

                mode_t type = archive_entry_filetype(e);
                /* Sockets, FIFOs and devices are not profile data, and extraction refuses them. */
                if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
                        continue;
                if (type == AE_IFDIR) {
                        if (prefetch)
                                prefetch_dir(path);
                        archive_read_disk_descend(disk);
                }
                _cleanup_free_ char *relcopy = strdup(rel);
                if (!relcopy)
                        return fail(err, errlen, -ENOMEM, "out of memory");
                archive_entry_copy_pathname(e, relcopy);
                /* A restore refuses links leading outside the profile; such links (wine's
                 * dosdevices, links into /usr/share) are left out and counted, so one of them
                 * never costs the whole upload. */
                if (type == AE_IFLNK && !pgsmb_symlink_stays_inside(relcopy, archive_entry_symlink(e))) {
                        st->skipped_links++;
                        continue;
                }
                if (d) {
                        bool archive_it = false;
                        if ((r = pgsmb_delta_note(d, e, relcopy, &archive_it, err, errlen)) < 0)
                                return r;
                        if (!archive_it)
                                continue; /* unchanged since the record (directories: descended) */
                        if (lean && (r = lean_metadata(meta, e, relcopy, err, errlen)) < 0)
                                return r;
                }
                if (pgsmb_entry_keep_user_xattrs(e) < 0)
                        return fail(err, errlen, -ENOMEM, "out of memory");

                struct archive_entry *cur = e, *spare = NULL;
                archive_entry_linkify(lr, &cur, &spare);
                if (cur) {
                        r = pgsmb_archive_write_entry(disk, w, cur, relcopy, st, err, errlen);
                        if (r < 0)
                                return r;
                }
                if (spare) { /* only for strategies that defer links; not pax, kept for safety */
                        r = pgsmb_archive_write_entry(disk, w, spare, archive_entry_pathname(spare), st,
                                                err, errlen);
                        archive_entry_free(spare);
                        if (r < 0)
                                return r;
                }
        }
        pgsmb_prefetch_stop(TAKE_PTR(ahead));
        /* A delta's unchanged paths to an inode it archived join it, as hardlinks. */
        if (d && w && (r = pgsmb_delta_finish(d, disk, w, lr, st, err, errlen)) < 0)
                return r;
        if (w && archive_write_close(w) != ARCHIVE_OK)
                return fail(err, errlen, la_errno(w, EIO), "cannot finish the archive: %s",
                            la_error(w));
        if (d && fflush(d->scan_out) != 0)
                return fail(err, errlen, -EIO, "cannot write the scan: %s", strerror(errno));
        return 0;
}

int pgsmb_profile_archive(const char *home, const char *const *exclude, const struct profile_compress *c,
                          int out_fd, struct profile_stats *stats, char *err, size_t errlen) {
        struct profile_stats dummy;
        struct profile_stats *st = stats ? stats : &dummy;
        *st = (struct profile_stats){ 0 };
        if (err && errlen)
                err[0] = 0;
        if (c && c->archive_argv)
                /* The program sees the whole home; exclusions are its own arguments' business. */
                return pgsmb_run_program(c->archive_argv, c->program_env, home, -1, out_fd, err, errlen);

        _cleanup_(strv_freep) char **ex = NULL;
        int r = pgsmb_exclude_normalize(exclude, &ex, err, errlen);
        if (r < 0)
                return r;
        return pgsmb_archive_walk(home, ex, c, out_fd, NULL, st, err, errlen);
}
