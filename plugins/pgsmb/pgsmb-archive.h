/* Profile archives: a home directory as one streamed tar (pax) + zstd archive, written by
 * libarchive, or by an external program the admin names (pGina's `program`/`compress_command`).
 * These functions run in a child process that already runs as the user (pgsmb-run.c drops
 * privileges first): they never chown, and every file they create belongs to the user.
 *
 * Extraction is for hostile archives: it refuses absolute paths, "..", links leading outside the
 * target, device files, FIFOs and sockets, setuid/setgid/sticky bits (stripped), entries above
 * max_entry_bytes, and stops once the total passes max_total_bytes or the entry count passes
 * max_entries ("archive bomb"), with a clear message naming the entry. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct profile_limits {
        uint64_t max_total_bytes; /* sum of entry sizes (uncompressed); 0 = no limit */
        uint64_t max_entries; /* 0 = no limit */
        uint64_t max_entry_bytes; /* 0 = no limit */
};

struct profile_stats {
        uint64_t files; /* entries written or read */
        uint64_t bytes; /* uncompressed payload bytes */
        uint64_t skipped_links; /* archive: symlinks leading outside the home, not saved */
        /* archive: regular files whose size changed while they were read (a process still
         * writing): saved as read, like GNU tar's "file changed as we read it" (the entry's
         * size is fixed in its header first: a longer file is cut there, a shorter one padded
         * with zeros). The first one's name, for the log. */
        uint64_t changed;
        char first_changed[256];
        /* extract (built in): the input was zstd, read to its end, and every frame of it
         * carried a content checksum that matched. The restore then trusts the stream without
         * hashing it again (pgsmb-helper.c). */
        bool checksummed;
};

struct profile_compress {
        int level; /* zstd level, 1..19 */
        int threads; /* zstd worker threads, 0 = one per online CPU (at most 4) */
        /* External program instead of libarchive: argv (NULL-terminated), run with no shell.
         * Archive: run with cwd = the home, its stdout is the archive. Extract: run with cwd = the
         * target, the archive on its stdin. NULL = built in. */
        char *const *archive_argv;
        char *const *extract_argv;
        /* Its environment besides PATH: "NAME=value" (HOME, USER, LOGNAME), NULL-terminated. It
         * gets nothing else of ours, and no descriptor but 0, 1 and 2 (spawn-program.h). */
        const char *const *program_env;
};

/* Archive `home` (everything but the relative paths in `exclude`, NULL-terminated) to out_fd.
 * Keeps modes, times, symlinks, hardlinks, sparse files, POSIX ACLs and user xattrs. */
int pgsmb_profile_archive(const char *home, const char *const *exclude, const struct profile_compress *c,
                          int out_fd, struct profile_stats *stats, char *err, size_t errlen);

/* Store format 2 (built in only): as pgsmb_profile_archive, but an entry goes into the archive
 * only when its stat differs from its line in `record` (pgsmb-scan.h; NULL: every entry); every
 * entry kept (the same ones the archive would hold) gets a scan line on scan_fd, '+' archived or
 * '=' not. The stat is taken before the data is read: a file changed while it was archived is
 * seen as changed next time. The paths of a hardlinked file are archived together or not at all
 * (a path unchanged itself goes in as a hardlink when another path to its inode changed, and its
 * line says '+'), so a chain restore never meets a link to a path current in another archive.
 * scan_fd should be seekable (a memfd: those lines are fixed at the end); when it is not, every
 * hardlinked file is archived. out_fd < 0: no archive, the scan only (every flag '='). */
struct scan;
int pgsmb_profile_delta(const char *home, const char *const *exclude, const struct profile_compress *c,
                        const struct scan *record, int out_fd, int scan_fd, struct profile_stats *stats,
                        char *err, size_t errlen);
/* The record a delta compares with, read from fd (from its offset to its end) and checked line by
 * line, as hostile: err names the line at fault, or says it passes PROFILE_RECORD_MAX. */
#define PROFILE_RECORD_MAX (512u * 1024 * 1024) /* PBUF_LARGE_MAX: what the writers may make */
int pgsmb_profile_record_read(int fd, const char *home, struct scan *record, char *err, size_t errlen);

/* Extract the archive read from in_fd into `target` (an existing, empty directory owned by the
 * caller). Reads in_fd to its end even after an error is found only when that is cheap; the
 * caller treats any failure as "nothing usable in target". */
int pgsmb_profile_extract(int in_fd, const char *target, const struct profile_limits *lim,
                          const struct profile_compress *c, struct profile_stats *stats, char *err,
                          size_t errlen);

/* pgsmb_profile_extract (built in only) of an archive that arrives in a ring of ring_size bytes
 * shared with the writer, which reports on ctl_fd how far it wrote (pgsmb-userwork-inflate.h,
 * inflate_open_ring): the restore's path, with no copy through a socket. */
int pgsmb_profile_extract_ring(int ctl_fd, const void *ring, size_t ring_size, const char *target,
                               const struct profile_limits *lim, struct profile_stats *stats, char *err,
                               size_t errlen);

/* Store format 2: how one archive of a chain is extracted (built in only). */
struct expect;
struct extract_opts {
        char *const *want; /* sorted path list (pgsmb-scan.h pathlist_parse): only these entries
                            * (NULL: all); each must be found, or the archive is damaged */
        size_t nwant;
        bool in_place; /* target is a home holding an older version: replace (pgsmb-userwork-unpack.h) */
        bool no_dirfix; /* directories stay 0700 (later archives write into them; the caller
                         * sets their modes and times at the end) */
        struct expect *expect; /* in place: what the caller saw at the paths (NULL: not looked) */
};
/* pgsmb_profile_extract (ring NULL: from fd) or pgsmb_profile_extract_ring (ring: fd is the
 * control socket) with those options. */
int pgsmb_profile_extract_opts(int fd, const void *ring, size_t ring_size, const char *target,
                               const struct profile_limits *lim, const struct extract_opts *o,
                               struct profile_stats *stats, char *err, size_t errlen);

/* Remove the paths (valid relative paths, reordered here: deepest first) below dir: a directory
 * once empty (one holding something else stays), a symlink as itself, never through a symlink;
 * one already gone, or not below dir as a directory, is skipped. x (may be NULL): what the caller
 * saw at the paths; a file that is no longer so stops it, -EBUSY (pgsmb-userwork-expect.h).
 * *removed: how many were there. */
int pgsmb_profile_delete(const char *dir, char **paths, size_t n, struct expect *x, uint64_t *removed, char *err,
                         size_t errlen);
/* The 'd' entries of s (reordered here: deepest first) get their mode (permission bits only) and
 * mtime (atime too) below dir, never through a symlink; *missing: directories not found. */
/* The scan lines ('=') of those of paths (n) below dir that exist, to fd; what is missing, or
 * not below dir as a directory, is left out. */
int pgsmb_profile_stat(const char *dir, char **paths, size_t n, int fd, char *err, size_t errlen);
int pgsmb_profile_fix_dirs(const char *dir, struct scan *s, uint64_t *missing, char *err, size_t errlen);

/* Bytes of `home` less `exclude` (what max_storage_kb limits): apparent sizes of regular files. */
int pgsmb_profile_size(const char *home, const char *const *exclude, uint64_t *bytes, char *err,
                       size_t errlen);
