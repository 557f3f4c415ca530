/* pgSMB bookkeeping: what this machine knows about a user's profile (local state, root-only, in
 * the plugin's state dir) and what the store says about it (the archive's .meta file). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pgsmb-scan.h"
#include "pgsmb-store.h"

#define PGSMB_VERSION_MAX 64

/* Local: state_dir/<user>.state */
struct pgsmb_state {
        char version[PGSMB_VERSION_MAX]; /* the store version this home came from ("" = none) */
        bool upload_failed; /* the last logoff could not upload: this home is the newest copy */
        bool over_limit; /* the last logoff found the profile over max_storage_kb */
        bool temporary; /* this home is a temporary profile: never uploaded */
        /* format 2: the size of the manifest of `version` (a re-logon's listing shows it is
         * still the current one without reading it) */
        uint64_t manifest_size;
        uint64_t manifest_mtime; /* and its listed mtime (v2_listed_mtime; 0: unknown): a slot
                                  * written again (a store rolled back) is not taken for it */
        /* format 2: a commit this machine made but could not see land (its read-back failed),
         * "2:N:ID": when the store holds it, the next logoff builds on it ("" = none) */
        char pending[PGSMB_VERSION_MAX];
};

int pgsmb_state_load(const char *dir, const char *user, struct pgsmb_state *s);
/* state_dir/<user>.lock, held (flock, exclusive; waits) by whoever reads the state to write it
 * back later: a logoff from its load to its save, a compaction while it follows the home to its
 * new version. The descriptor (close it to release), or -errno. */
int pgsmb_state_lock(const char *dir, const char *user);
int pgsmb_state_save(const char *dir, const char *user, const struct pgsmb_state *s);

/* Remote: <archive>.meta, "key=value" lines. */
struct pgsmb_meta {
        char version[PGSMB_VERSION_MAX];
        char sha256[65];
        uint64_t size;
        char host[256];
        int64_t time;
};

/* 0 and *m filled, -ENOENT when the store has no meta file, -EBADMSG when it is damaged. */
int pgsmb_meta_read(struct store *st, const char *rel, struct pgsmb_meta *m);
/* Write atomically: a temporary name, then a replacing rename. */
int pgsmb_meta_write(struct store *st, const char *rel, const struct pgsmb_meta *m);
/* A new random version id. */
void pgsmb_version_new(char out[PGSMB_VERSION_MAX]);

/* This machine's short host name, for people (a manifest's host, conflict copies, messages);
 * "localhost" when it has none. */
void pgsmb_host_short(char *buf, size_t len);

/* Format 2: state_dir/<user>.record, the scan of the home as it was last saved or restored as
 * `version` ("version VERSION" on its first line), what the next logoff compares the home with.
 * -ENOENT when there is none, -ESTALE when it is another version's, -EBADMSG when damaged. */
#define RECORD_MAX_BYTES (512 * 1024 * 1024) /* PBUF_LARGE_MAX */
int pgsmb_record_load(const char *dir, const char *user, const char *version, struct scan *s);
/* Its scan as text, not parsed (the first line checked): *data malloc'd, *len bytes. */
int pgsmb_record_read(const char *dir, const char *user, const char *version, char **data, size_t *len);
/* Atomically (temporary file, fsync, rename), 0600. */
int pgsmb_record_save(const char *dir, const char *user, const char *version, const struct scan *s);
void pgsmb_record_remove(const char *dir, const char *user);
/* The record's version while the home is no version of the store (state version "": its last
 * logoff saved a conflict copy or a merge): the home as that logoff left it, so that the next
 * logon can tell whether something changed it since (a process that outlived the session)
 * before it replaces the home. */
#define PGSMB_RECORD_NO_VERSION "none"
