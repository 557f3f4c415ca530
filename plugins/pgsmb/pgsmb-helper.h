/* pgSMB: work inside a user's home runs in a program of its own (pgsmb-userwork) with the user's
 * uid, gid and groups, never as root. The root side (the plugin in pginad's worker) keeps the store connection and
 * streams the archive to or from the child through a socket pair (a restore with the built-in
 * extractor: through a ring of memory shared with the child, the socket carrying positions),
 * hashing it on the way (a restore of a zstd stream whose frames carry checksums leaves the
 * check to zstd instead). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pgsmb-archive.h"
#include "pgsmb-store.h"
#include <pgina/buf.h>

struct pgsmb_user {
        const char *name;
        uid_t uid;
        gid_t gid;
        const char *home; /* where the profile lives (extract_to) */
};

/* Progress of a transfer, for the PAM conversation (called about once a second). */
typedef void (*pgsmb_progress_fn)(void *userdata, uint64_t bytes, uint64_t total);

#define PGSMB_READERS_MAX 4 /* readers of one archive (pgsmb_extract_opts) */

struct pgsmb_transfer {
        uint64_t bytes; /* compressed bytes moved */
        unsigned char sha256[32];
        struct profile_stats stats; /* what the child archived/extracted */
        char err[512]; /* why it failed */
        bool verified; /* upload: read back behind the writer, and it matched */
        /* restore: sha256 is the download's. False when the stream began with a zstd frame
         * that declares a content checksum and the child extracts it (built in): then the
         * child's stats.checksummed is the integrity check, a SHA-256 of 700 MB costs ~0.4 s of
         * CPU on the critical path of a logon. */
        bool hashed;
        /* now_ms() times for pgina_ctx_metric: the stream's last byte read from the store
         * (restore) or from the archiver (upload), and (upload) the stream's end before the
         * read-back's; 0 when it never got there. Download and extraction, archive and upload
         * overlap: the first figure is the stream, the second what was left after it. */
        long long mid_ms, end_ms;
        /* restore with readers (opts' second_url): the chunks they read of all, and why one
         * stopped or never started ("" when none did) */
        uint64_t second_chunks, chunks;
        char second_err[300];
        /* and where its time went: waiting for room in the ring (the extraction behind), in
         * its own reads, waiting for the readers' */
        long long room_ms, read_ms, second_wait_ms;
        long long ready_ms[PGSMB_READERS_MAX]; /* when each reader was seen ready after its start
                                                * (-1: never, or none) */
};

/* Where an upload's read-back connects (a second connection, see pgsmb-readback.h). */
struct pgsmb_readback_target {
        const char *url;
        const struct store_creds *creds;
        unsigned timeout_s;
};

/* Work as the user: spawn_start pgsmb-userwork (pgsmb-userwork.h) with the user's credentials
 * (the groups getgrouplist gives, gid, uid, umask 077; never uid or gid 0), killed when the
 * worker ends; it does the job and reports. The child
 * holds no descriptor of the worker's but stdin/out/err, data_fd, aux_fd and list_fd (-1: none), and,
 * being a new program, none of its memory. 0 when it started (c to wait for), -errno and err
 * otherwise. */
struct pgsmb_child {
        pid_t pid;
        int ctl_fd; /* the job went out here; the report comes back here */
};
struct userwork_job;
struct userwork_report;
int pgsmb_child_start(const struct pgsmb_user *u, const struct userwork_job *job, int data_fd,
                      int aux_fd, int list_fd, struct pgsmb_child *c, char *err, size_t errlen);
/* Its report (rep->err says why it failed) and its end. 0 when the job succeeded. */
int pgsmb_child_wait(struct pgsmb_child *c, struct userwork_report *rep);
/* The same, but past deadline (now_ms(); -1: none) the program is killed and reported so. */
int pgsmb_child_wait_until(struct pgsmb_child *c, struct userwork_report *rep, long long deadline);
/* Both, for a job with no descriptors. */
int pgsmb_as_user(const struct pgsmb_user *u, const struct userwork_job *job, struct userwork_report *rep);

/* Download `rel` from the store and extract it, as the user, into the empty directory `target`. */
int pgsmb_restore_stream(struct store *st, const char *rel, uint64_t size_hint,
                         const struct pgsmb_user *u, const char *target,
                         const struct profile_limits *lim, const struct profile_compress *c,
                         pgsmb_progress_fn progress, void *pud, struct pgsmb_transfer *t);

/* Archive the user's home (as the user) straight into the new store file `rel`. With rt, the file
 * is also read back through a second connection while it is written, and t->verified says the
 * read-back matched (a failed read-back fails the upload); without rt, or when the second
 * connection cannot start, t->verified stays false and the caller verifies afterwards. */
int pgsmb_upload_stream(struct store *st, const char *rel, const struct pgsmb_user *u,
                        const char *const *exclude, const struct profile_compress *c,
                        const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress,
                        void *pud, struct pgsmb_transfer *t);

/* Read `rel` back and compare size and sha256 (the upload's verification). */
int pgsmb_verify(struct store *st, const char *rel, uint64_t size, const unsigned char sha256[32],
                 char *err, size_t errlen);

/* ---- delta profiles (store format 2, pgsmb-manifest.h; the scan format is pgsmb-scan.h) ---- */

/* How a format-2 restore extracts one archive of a chain (pgsmb_restore_stream is
 * pgsmb_restore_stream_opts with NULL). */
struct pgsmb_extract_opts {
        const struct pbuf *want; /* a path list (pgsmb-scan.h): only these entries; NULL: all */
        bool in_place; /* target is a home: an entry replaces what is there (catch-up) */
        bool no_dirfix; /* directories keep 0700 until pgsmb_fix_dirs (the chain's later archives
                         * may still write into them) */
        bool always_hash; /* t->sha256 is the stream's even when zstd's checksums would do */
        const struct scan *expect; /* pgsmb_extract_fd in place: the paths as the caller saw them
                                    * (a path it lacks was absent); one changed since stops the
                                    * extraction, -EBUSY (pgsmb-userwork-expect.h); NULL: none */
        /* pgsmb_restore_stream_opts of an archive of size_hint >= PGSMB_SECOND_MIN bytes: two
         * readers on connections of their own to second_url (smb:// only; the store's, with
         * second_creds and second_timeout_s as store_open's) read it 8 MiB at a time, several
         * reads in flight (pgsmb-fetch.h); NULL: this connection alone */
        const char *second_url;
        const struct store_creds *second_creds;
        unsigned second_timeout_s;
        unsigned readers; /* how many (at most PGSMB_READERS_MAX; 0: none) */
};
#define PGSMB_SECOND_MIN (64u << 20)
int pgsmb_restore_stream_opts(struct store *st, const char *rel, uint64_t size_hint,
                              const struct pgsmb_user *u, const char *target,
                              const struct profile_limits *lim, const struct profile_compress *c,
                              const struct pgsmb_extract_opts *o, pgsmb_progress_fn progress, void *pud,
                              struct pgsmb_transfer *t);
/* The same from a local descriptor (an archive downloaded and verified first: the catch-up
 * applies nothing it has not checked). fd is read from offset 0 to its end. */
int pgsmb_extract_fd(int fd, const struct pgsmb_user *u, const char *target, const struct profile_limits *lim,
                     const struct pgsmb_extract_opts *o, struct pgsmb_transfer *t);
/* The same in two halves, so that several run at once (o, fd and its lists may go once it
 * started; t gets the stats and the error at the wait, which must follow every start that
 * returned 0). */
int pgsmb_extract_fd_start(int fd, const struct pgsmb_user *u, const char *target, const struct profile_limits *lim,
                           const struct pgsmb_extract_opts *o, struct pgsmb_child *ch, struct pgsmb_transfer *t);
int pgsmb_extract_fd_wait(struct pgsmb_child *ch, struct pgsmb_transfer *t);

struct scan;
/* Delta upload: as pgsmb_upload_stream, but only the entries of the home that differ from
 * `record` (NULL: all of them) go into the archive; *scan (initialized here) receives the home's
 * new scan, whose '+' entries are the archive's. */
int pgsmb_delta_stream(struct store *st, const char *rel, const struct pgsmb_user *u,
                       const char *const *exclude, const struct profile_compress *c,
                       const struct scan *record, const struct pgsmb_readback_target *rt,
                       pgsmb_progress_fn progress, void *pud, struct pgsmb_transfer *t, struct scan *scan);
/* pgsmb_delta_stream in two steps, so that the home's walk and its compression run while the
 * worker connects to the store: the child starts now (-errno and err when it cannot) and its
 * stream waits in the socket's buffer (8 MiB; past it the child waits); _finish creates rel and
 * uploads the stream as pgsmb_delta_stream does, _abort kills the child. Either frees e. The
 * record is the scan's text (scan_format_all, a record file's: the child parses it), NULL for a
 * full walk. */
struct pgsmb_early;
int pgsmb_delta_early_start(const struct pgsmb_user *u, const char *const *exclude, const struct profile_compress *c,
                            const char *record, size_t record_len, struct pgsmb_early **ret, char *err,
                            size_t errlen);
int pgsmb_delta_early_finish(struct pgsmb_early *e, struct store *st, const char *rel,
                             const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress, void *pud,
                             struct pgsmb_transfer *t, struct scan *scan);
void pgsmb_delta_early_abort(struct pgsmb_early *e); /* NULL: nothing */
static inline void pgsmb_delta_early_abortp(struct pgsmb_early **e) { pgsmb_delta_early_abort(*e); }
/* The scan of dir (less exclude) as the user: what a restore leaves becomes the record. */
int pgsmb_scan_home(const struct pgsmb_user *u, const char *dir, const char *const *exclude,
                    struct scan *scan, char *err, size_t errlen);
/* The entries of the paths of the path list `list` below dir that exist, as the user, into
 * *scan (sorted; initialized here). Within STAT_PATHS_BASE_MS + STAT_PATHS_PER_PATH_MS a path,
 * or the job is killed (the user can stop or trace a process of theirs). */
#define STAT_PATHS_BASE_MS 10000LL
#define STAT_PATHS_PER_PATH_MS 10LL
int pgsmb_stat_paths(const struct pgsmb_user *u, const char *dir, const struct pbuf *list, struct scan *scan,
                     char *err, size_t errlen);
/* The same in two halves (the look runs while the caller downloads); the wait must follow a
 * start that returned 0. The deadline counts from the start. */
struct pgsmb_stat_job {
        struct pgsmb_child ch;
        int scan_fd;
        size_t npaths;
        long long deadline, limit_ms;
};
int pgsmb_stat_paths_start(const struct pgsmb_user *u, const char *dir, const struct pbuf *list,
                           struct pgsmb_stat_job *sj, char *err, size_t errlen);
int pgsmb_stat_paths_wait(struct pgsmb_stat_job *sj, const char *dir, struct scan *scan, char *err, size_t errlen);
/* Remove the paths of the path list `list` below dir, as the user. */
int pgsmb_delete_paths(const struct pgsmb_user *u, const char *dir, const struct pbuf *list,
                       const struct scan *expect, char *err,
                       size_t errlen);
/* Give the directories of `dirs` (its 'd' entries; others are ignored) below dir their mode and
 * mtime, deepest first, as the user. */
int pgsmb_fix_dirs(const struct pgsmb_user *u, const char *dir, const struct scan *dirs, char *err,
                   size_t errlen);

/* Hex of a digest (65 bytes). */
void pgsmb_hex(const unsigned char sha256[32], char out[65]);
