/* pgSMB store format 2 in a store: finding the current version of a profile, committing the next
 * one, pruning (pgsmb_core: the store and the manifest only, no plugin context, so the unit tests
 * drive it against a file:// store).
 *
 * A profile of format 2 in folder D of the store, for the archive name F (pgsmb's `filename`):
 *   D/F.m00000001 ...   manifests (pgsmb-manifest.h), each created once, exclusively
 *   D/F.a-HOST-ID       archives (base and deltas), each created once under a unique name
 *   D/F.c-HOST-STAMP    a conflict copy: a manifest that is not a version (never current)
 * and of format 1, read until the first logoff of format 2 moves them aside:
 *   D/F, D/F.meta, D/F.v-VERSION, D/F.conflict-HOST-STAMP
 *
 * The commit: the delta is uploaded and verified under its unique name, then manifest N+1 is
 * created exclusively. A crash at any point leaves the store readable: before the manifest, an
 * archive nothing names (pruned later); during it, a manifest whose checksum fails (ignored). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pgsmb-manifest.h"
#include "pgsmb-store.h"

struct v2_profile {
        const char *dir; /* the profile's folder in the store ("" = the root) */
        const char *filename; /* F */
};

/* What the store holds for one profile. */
struct v2_state {
        uint64_t top; /* the highest manifest number present, valid or not (0: none) */
        struct manifest cur; /* the current version (cur.number 0: none) */
        uint64_t cur_file_size; /* its file's size (the re-logon's check) */
        unsigned damaged; /* manifests above the current one that failed to parse */
        char damaged_why[300]; /* the first one's reason, naming the file */
        bool have_v1; /* D/F exists: a profile of format 1 */
        struct store_entry *ents; /* the folder's listing */
        size_t nents;
};

void v2_state_free(struct v2_state *s);

/* "D/NAME" (or "NAME" at the root) of a file of the profile. */
int v2_rel(const struct v2_profile *p, const char *name, char *out, size_t len);

/* List the folder and read the manifests from the top down to the first valid one. A missing
 * folder is an empty profile. Fails (-errno, err) only when the store does. */
int v2_load(struct store *st, const struct v2_profile *p, struct v2_state *s, char *err, size_t errlen);
/* Only the listing: the top number, the v1 archive (s->cur stays empty). */
int v2_list(struct store *st, const struct v2_profile *p, struct v2_state *s, char *err, size_t errlen);
/* After v2_list: read the manifests from the top down to the first valid one (v2_load's rest). */
int v2_load_listed(struct store *st, const struct v2_profile *p, struct v2_state *s, char *err, size_t errlen);
/* The listed size of manifest `number` (0: not listed). */
uint64_t v2_listed_size(const struct v2_profile *p, const struct v2_state *s, uint64_t number);
/* Its listed mtime in nanoseconds, as a fingerprint (unsigned: a hostile time wraps; 0: not
 * listed). A slot written again has another. */
uint64_t v2_listed_mtime(const struct v2_profile *p, const struct v2_state *s, uint64_t number);
/* Read and check manifest `number`. -ENOENT, -EBADMSG (err says why), -errno. */
int v2_read_manifest(struct store *st, const struct v2_profile *p, uint64_t number, struct manifest *m,
                     char *err, size_t errlen);
/* Read and check a manifest by its file name (a conflict copy). */
int v2_read_manifest_file(struct store *st, const struct v2_profile *p, const char *name, struct manifest *m,
                          char *err, size_t errlen);

/* Create m (m->number set by the caller) exclusively, write it, read it back. -EEXIST: another
 * machine holds that number (nothing of ours is left); other -errno with err (a half-written file
 * may be left: readers ignore it; when the read-back failed, the commit may have landed whole).
 * *size gets the file's size once it is written. */
int v2_commit(struct store *st, const struct v2_profile *p, const struct manifest *m, uint64_t *size, char *err,
              size_t errlen);
/* v2_commit, saying in *created whether the exclusive create succeeded: when it did not, nothing
 * of m is in the store whatever the failure; when it did, m may be there whole. */
int v2_commit_created(struct store *st, const struct v2_profile *p, const struct manifest *m, uint64_t *size,
                      bool *created, char *err, size_t errlen);
/* Write m under a new conflict-copy name (F.c-HOST-STAMP); its name in name. */
int v2_write_conflict(struct store *st, const struct v2_profile *p, const struct manifest *m, const char *host,
                      char *name, size_t namelen, char *err, size_t errlen);

/* This machine's copy of the manifest its home holds, state_dir/<user>.manifest (0600, written
 * atomically): a machine away for more than keep_versions versions still knows what its home
 * holds, so it catches up (and merges a logoff) after the store pruned that version. */
int v2_local_save(const char *dir, const char *user, const struct manifest *m);
/* -ENOENT when there is none, -ESTALE when it is another version (number or id differ),
 * -EBADMSG when damaged. */
int v2_local_load(const char *dir, const char *user, uint64_t number, const char *id, struct manifest *m);
void v2_local_remove(const char *dir, const char *user);

/* This machine's name in the archives it uploads: TAG-HOST, where TAG (8 hex digits) is this
 * install in this boot (state_dir/install-id, made at the first call, mixed with the kernel's
 * boot id) and HOST at most 32 bytes of the short host name. A prune takes only archives named
 * exactly so (v2_archive_name's) as this machine's own (an unmarked one is an upload of this
 * machine that died: removed at once); any other waits for the grace period. Host names are not
 * unique (cloned lab images, a default "debian" or "localhost"), nor is an install id (a cloned
 * state dir), but a boot id is; two machines that share both (containers on one kernel from one
 * image, VMs forked from one running memory image under one name) see each other's archives as
 * their own. The tag comes first so that an older pgina (which took F.a-HOST- for its own) on a
 * clone of the same name does not take this one's. -errno when the install id or the boot id
 * cannot be read or made: then TAG is random, nothing counts as this machine's but this
 * process's (safe: only slower to clean up); self is set either way. */
#define V2_SELF_MAX 48
int v2_self(const char *state_dir, const char *host, char self[V2_SELF_MAX]);

/* A new archive name F.a-SELF-ID (self: v2_self's, this machine in this boot; ID 16 hex digits);
 * -ENAMETOOLONG past len or MANIFEST_NAME_MAX. */
int v2_archive_name(const struct v2_profile *p, const char *host, char *out, size_t len);

/* This machine's uploads in progress (a logoff's delta, a compaction's base: either may run while
 * the other prunes): the mark MARKS.up.NAME (marks: state_dir/USER), flock'ed while its
 * descriptor is open. v2_upload_mark returns that descriptor (-errno); v2_upload_unmark removes
 * the mark and closes it (fd < 0: nothing). A mark nobody holds (its process died) is stale. */
int v2_upload_mark(const char *marks, const char *name);
void v2_upload_unmark(int fd, const char *marks, const char *name);
/* Is an upload of name in progress here? A stale mark is removed (and says no). */
bool v2_upload_marked(const char *marks, const char *name);
/* MARKS.prune, locked (flock, exclusive, waits): held by a prune from its listing (v2_list) to
 * its end, and taken by v2_upload_unmark, so that an archive committed after a prune listed the
 * store keeps its mark until that prune is done. The descriptor (close it to release), -errno.
 * Never taken twice in one process at a time (flock: it would wait for itself). */
int v2_prune_lock(const char *marks);

/* Keep the current version and keep_versions before it (by number); remove older manifests,
 * damaged manifests below the current one, and archives no kept manifest or conflict copy names:
 * this machine's at once (host: v2_self's name, as its archives carry it) unless marked as an
 * upload in progress here (marks: v2_upload_mark's; NULL: none), any other when older than
 * grace_s (another machine's, or this one's before a reboot, or an older pgina's: it may be
 * an upload in progress). Calls log for each removal or failure (may be NULL). s is the state
 * the listing to go by (v2_list's, taken under the prune lock), and `cur` the current version as
 * the caller knows it (a commit's, or v2_load's: one committed since only keeps more). */
typedef void (*v2_log_fn)(void *ud, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void v2_prune(struct store *st, const struct v2_profile *p, const struct v2_state *s, const struct manifest *cur,
              unsigned keep_versions, const char *host, const char *marks, int64_t now, int64_t grace_s, v2_log_fn log,
              void *ud);
/* The same, with a kept manifest the caller holds already (e.g. the version a logoff built on,
 * as its listing showed it; NULL: none): its archives count as kept without reading its file
 * again, and a candidate archive it names needs no other manifest read. */
void v2_prune_known(struct store *st, const struct v2_profile *p, const struct v2_state *s, const struct manifest *cur,
                    const struct manifest *known, unsigned keep_versions, const char *host, const char *marks,
                    int64_t now, int64_t grace_s, v2_log_fn log, void *ud);

/* A prune from a listing of its own, under the prune lock (taken and released here; failures
 * through log): the logon's and a logoff's backstop. known as for v2_prune_known, used only
 * when the listing shows its manifest at known_size bytes (may be NULL). */
void v2_prune_now(struct store *st, const struct v2_profile *p, const struct manifest *cur,
                  const struct manifest *known, uint64_t known_size, unsigned keep_versions, const char *host,
                  const char *marks, int64_t grace_s, v2_log_fn log, void *ud);
/* The manifests of the listing s older than keep_versions keep with cur current: what makes a
 * prune due (the archives only they name go with them; one an upload of this machine left goes
 * at the next). Reads nothing. */
unsigned v2_prune_due(const struct v2_profile *p, const struct v2_state *s, const struct manifest *cur,
                      unsigned keep_versions);

/* state.version of a format-2 home: "2:N:ID" */
void v2_version_string(const struct manifest *m, char *out, size_t len);
/* Parse it: 0 and *number, id (MANIFEST_ID_LEN + 1), -EINVAL when it is not of format 2. */
int v2_version_parse(const char *v, uint64_t *number, char *id);
