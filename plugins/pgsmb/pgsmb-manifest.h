/* pgSMB store format 2 (delta profiles): the manifest of one version of a profile.
 *
 * A version is a manifest over a chain of archives (a base, then deltas: tar + zstd, each written
 * once under a unique name and never changed). The manifest names every path of the profile and
 * the archive holding its current content; a path it does not name is not in the version, so an
 * archive alone never deletes anything. Manifest N is the store file "<filename>.m<N, 8 digits>",
 * created exclusively (O_CREAT|O_EXCL, FILE_CREATE): two machines cannot both write version N, and
 * nothing is ever renamed over anything. Readers take the highest N whose checksum is valid.
 *
 * Text, one field set per line, '\n' ends every line:
 *
 *   pgina-profile-manifest 2
 *   number N                      this version
 *   parent P                      the version it was made from (0: none)
 *   id HEX                        32 random hex digits: this version, wherever it is copied
 *   user NAME                     escaped like a path
 *   host HOST                     the machine that wrote it (escaped)
 *   time SECONDS
 *   a INDEX NAME SIZE SHA256      the chain, INDEX 0, 1, ... in order; NAME a plain file name
 *   e INDEX TYPE MODE SIZE MTIME ORIGIN PATH   one per path, sorted (strcmp), TYPE f/d/l, MODE
 *                                 octal, MTIME seconds.nanoseconds, ORIGIN 16 hex digits (the
 *                                 archiving that wrote this content: see manifest_entry), PATH
 *                                 escaped (pgsmb-scan.h). A line without ORIGIN (a manifest of
 *                                 an earlier pgina) reads as origin 0, unknown.
 *   sha256 HEX                    of every byte before this line
 *
 * Everything read from a store is hostile: parse checks every field, the order, the indexes and
 * the checksum, and says which line is wrong. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgina/buf.h>

#include "pgsmb-scan.h"

#define MANIFEST_MAGIC "pgina-profile-manifest 2"
#define MANIFEST_MAX_BYTES (512u * 1024 * 1024) /* a manifest is never read past this */
#define MANIFEST_ARCHIVES_MAX 4096
#define MANIFEST_NAME_MAX 255
#define MANIFEST_ID_LEN 32

struct manifest_archive {
        char name[MANIFEST_NAME_MAX + 1];
        uint64_t size;
        char sha256[65];
};

struct manifest_entry {
        char *path;
        uint32_t archive; /* index into arch */
        char type; /* 'f', 'd', 'l' */
        uint32_t mode;
        uint64_t size;
        int64_t mtime_s;
        uint32_t mtime_ns;
        /* Which archiving wrote this content: random, new for each logoff that archives the
         * entry again, kept by everything that only moves it (a compaction, a merge). Two
         * entries of one path with different origins hold different content as far as anyone
         * can tell, whatever their size and mtime say (a change that kept both: touch -r, a tag
         * editor). 0: unknown (then size and mtime decide). */
        uint64_t origin;
};

struct manifest {
        uint64_t number, parent;
        char id[MANIFEST_ID_LEN + 1];
        char user[256], host[256];
        int64_t time;
        struct manifest_archive *arch;
        size_t narch;
        struct manifest_entry *v;
        size_t n, cap;
};

void manifest_init(struct manifest *m);
void manifest_free(struct manifest *m);

/* A deep copy. */
int manifest_copy(struct manifest *dst, const struct manifest *src);

/* Parse len bytes. -EBADMSG with err naming the line ("line 12: ...") for anything wrong,
 * including a checksum that does not match (a half-written or damaged manifest);
 * -EPROTONOSUPPORT for a manifest of a later format ("pgina-profile-manifest 3" or more, its
 * last line the checksum line every format keeps), which is not damage: whoever meets one stops
 * (no commit over it, no prune of it). */
int manifest_parse(struct manifest *m, const char *data, size_t len, char *err, size_t errlen);
/* The manifest as text, its checksum line included. */
int manifest_format(const struct manifest *m, struct pbuf *b);

/* The entry for path, or NULL. */
const struct manifest_entry *manifest_find(const struct manifest *m, const char *path);
/* Sum of the sizes of the regular files (what a restore writes). */
uint64_t manifest_bytes(const struct manifest *m);
/* The index of the archive named name, or -1. */
int manifest_archive_index(const struct manifest *m, const char *name);

/* The next version from a home's scan: every path of the scan; '+' entries in the new archive
 * `added` (appended to the chain) with a new origin, '=' entries where `old` has them (-ESTALE when old lacks one:
 * the record and the store disagree, the caller uploads everything instead). old NULL: every
 * entry must be '+' (a new base). Archives no entry refers to any more leave the chain. The
 * header fields (number, parent, id, user, host, time) are the caller's to set. */
int manifest_from_scan(struct manifest *out, const struct manifest *old, const struct scan *scan,
                       const struct manifest_archive *added);

/* What changed from a to b: paths whose entry differs (type, mode, size, mtime, and the origin
 * where both know it; not the archive: a compaction changes no content) or that b added, into
 * *changed; paths b no longer has, into *deleted (both sorted, malloc'd strings, free with
 * pathlist_free). */
int manifest_diff(const struct manifest *a, const struct manifest *b, char ***changed, size_t *nchanged,
                  char ***deleted, size_t *ndeleted);

/* Another machine committed `theirs` on top of `base` while this one made `ours` from `base`
 * too. When the two touch different paths (a directory both changed is not a clash; the later,
 * ours, wins) *out is theirs with our changes applied (ours' new archives appended) and 0 is
 * returned; -EBUSY when they clash (*why names the first path both changed). */
int manifest_rebase(struct manifest *out, const struct manifest *base, const struct manifest *ours,
                    const struct manifest *theirs, char *why, size_t whylen);

/* The path list (pgsmb-scan.h) of the entries archive `index` provides. 0 when it provides none
 * is not an error: *count says how many. With `only` (sorted, may be NULL), only those paths. */
int manifest_want(const struct manifest *m, uint32_t index, char *const *only, size_t nonly, struct pbuf *b,
                  size_t *count);
/* The directories of m as a scan (type 'd', mode, mtime) for pgsmb_fix_dirs. */
int manifest_dirs(const struct manifest *m, struct scan *s);

/* "<filename>.m00000042" */
int manifest_file_name(const char *filename, uint64_t number, char *out, size_t len);
/* The number of a manifest file name of filename's, or 0 when name is not one. */
uint64_t manifest_name_number(const char *filename, const char *name);
/* A new random id (MANIFEST_ID_LEN hex digits). */
void manifest_new_id(char out[MANIFEST_ID_LEN + 1]);
/* A new random origin (never 0). */
uint64_t manifest_new_origin(void);
