/* Internal to the profile archive code (pgsmb-userwork-*.c, runs as the user): the helpers and
 * the steps the archive, extract and walk files share. The API is pgsmb-archive.h. */
#pragma once

#include "pgsmb-archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <inttypes.h>
#include <limits.h>
#include <search.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "pgsmb-userwork-inflate.h"
#include "pgsmb-userwork-unpack.h"
#include "pgsmb-scan.h"
#include <pgina/util.h>

#define ARCHIVE_BLOCK_BYTES (1024 * 1024)

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static inline int fail(char *err, size_t errlen, int r, const char *fmt, ...) {
        if (err && errlen > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

static inline void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}
static inline void archive_write_freep(struct archive **a) {
        if (*a)
                archive_write_free(*a);
}
static inline void unpack_freep(struct unpack **u) { unpack_free(*u); }
static inline void inflate_freep(struct inflate **z) { inflate_free(*z); }

/* libarchive's own message, or a fallback when it has none. */
static inline const char *la_error(struct archive *a) {
        const char *s = archive_error_string(a);
        return s ? s : "unknown libarchive error";
}

static inline int la_errno(struct archive *a, int fallback) {
        int e = archive_errno(a);
        return e > 0 ? -e : -fallback;
}

static inline void archive_entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}
static inline void strv_freep(char ***v) {
        if (!*v)
                return;
        for (char **p = *v; *p; p++)
                free(*p);
        free(*v);
}
static inline void linkresolver_freep(struct archive_entry_linkresolver **l) {
        if (*l)
                archive_entry_linkresolver_free(*l);
}
/* Return to the directory we came from; extraction works relative to the target. */
static inline void fchdir_backp(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void)!fchdir(*fd);
                close(*fd);
                errno = saved;
        }
}

/* ---- path rules (pgsmb-userwork-paths.c) ---- */
bool pgsmb_path_is_inside(const char *p);
bool pgsmb_symlink_stays_inside(const char *linkpath, const char *target);
int pgsmb_exclude_normalize(const char *const *exclude, char ***ret, char *err, size_t errlen);
bool pgsmb_is_excluded(char *const *ex, const char *rel);
int pgsmb_entry_keep_user_xattrs(struct archive_entry *e);

/* ---- tree walk (pgsmb-userwork-walk.c) ---- */
/* A set of inodes (tsearch; tdestroy with free). */
struct inode_key {
        dev_t dev;
        ino_t ino;
};
int pgsmb_inode_cmp(const void *a, const void *b);
int pgsmb_inode_first_seen(void **set, const struct stat *st);
/* Called for each entry below root (not root itself) that is not excluded; rel is relative. */
typedef int (*walk_fn)(FTSENT *ent, const char *rel, void *userdata, char *err, size_t errlen);
int pgsmb_walk_tree(const char *root, char *const *ex, walk_fn fn, void *userdata, char *err,
                    size_t errlen);

/* ---- the archive's walk (pgsmb-userwork-archive.c) ---- */
struct delta_walk;
/* The home less ex to out_fd as one archive (d NULL); with d, the walk of a delta or a scan
 * (out_fd < 0: no archive), pgsmb-userwork-delta.c deciding what goes in. */
int pgsmb_archive_walk(const char *home, char *const *ex, const struct profile_compress *c, int out_fd,
                       struct delta_walk *d, struct profile_stats *st, char *err, size_t errlen);

/* ---- delta profiles (pgsmb-userwork-delta.c) ---- */
/* What a delta (store format 2) adds to the walk: the record it compares with (NULL: none, every
 * entry is new), the scan it writes (to scan_out, a line per kept entry), and whether the archive
 * is wanted at all (a scan only: out_fd < 0, every flag '='). */
struct delta_later;
struct delta_walk {
        const struct scan *record;
        FILE *scan_out;
        bool scan_only;
        off_t scan_start; /* scan_out's offset at the start; -1: not seekable */
        struct pbuf line;
        uint64_t entries, bytes; /* of the scan so far: root refuses one past its bounds */
        void *archived; /* inodes of hardlinked files this delta archives */
        struct delta_later *later; /* unchanged hardlinked files, until the end says */
        size_t nlater, caplater;
};
/* One entry of the walk, kept (not excluded, not left out): its scan line; *archive_it says
 * whether it goes into the delta. */
int pgsmb_delta_note(struct delta_walk *d, struct archive_entry *e, const char *rel, bool *archive_it,
                     char *err, size_t errlen);
/* After the walk, before the archive ends: unchanged hardlinked paths to an inode the delta
 * archived go in as hardlinks to it, and their scan lines say '+'. */
int pgsmb_delta_finish(struct delta_walk *d, struct archive *disk, struct archive *w,
                       struct archive_entry_linkresolver *lr, struct profile_stats *st, char *err,
                       size_t errlen);

/* ---- archive entries (pgsmb-userwork-archive.c) ---- */
int pgsmb_archive_write_entry(struct archive *disk, struct archive *w, struct archive_entry *e,
                              const char *rel, struct profile_stats *st, char *err, size_t errlen);

/* ---- archive output (pgsmb-userwork-zstd.c) ---- */
struct zstd_out {
        ZSTD_CCtx *cctx;
        int fd;
        unsigned char *buf; /* compressed bytes waiting for the fd */
        size_t cap;
};
void pgsmb_zstd_out_done(struct zstd_out *z);
int pgsmb_zstd_out_init(struct zstd_out *z, const struct profile_compress *c, int fd, char *err,
                        size_t errlen);
int pgsmb_archive_open_writer(struct archive **ret, struct zstd_out *z, char *err, size_t errlen);
