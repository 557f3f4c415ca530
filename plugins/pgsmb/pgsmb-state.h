/* pgSMB bookkeeping: what this machine knows about a user's profile (local state, root-only, in
 * the plugin's state dir) and what the store says about it (the archive's .meta file). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pgsmb-store.h"

#define PGSMB_VERSION_MAX 64

/* Local: state_dir/<user>.state */
struct pgsmb_state {
        char version[PGSMB_VERSION_MAX]; /* the store version this home came from ("" = none) */
        bool upload_failed; /* the last logoff could not upload: this home is the newest copy */
        bool over_limit; /* the last logoff found the profile over max_storage_kb */
        bool temporary; /* this home is a temporary profile: never uploaded */
};

int pgsmb_state_load(const char *dir, const char *user, struct pgsmb_state *s);
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
