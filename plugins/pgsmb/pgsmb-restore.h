/* pgSMB logon internals shared by pgsmb-restore.c (the gateway, format 1) and pgsmb-restore-v2.c
 * (format 2, delta profiles). */
#pragma once

#include <stdbool.h>

#include <pgina/account.h>

#include "pgsmb-helper.h"
#include "pgsmb-state.h"
#include "pgsmb.h"

struct restore {
        struct pgina_ctx *ctx;
        struct pgina_user *u;
        struct pgsmb_cfg cfg;
        struct pgsmb_user pu;
        struct pgina_account acc;
        struct pgsmb_state state;
        const char *state_dir;
        unsigned tries;
        char why[600];
};

void pgsmb_restore_progress(void *userdata, uint64_t bytes, uint64_t total);
/* Remove a directory we made inside the home's parent (contents as the user). */
void pgsmb_restore_remove_tree(struct restore *r, const char *dir);
/* A new name next to the home: <parent>/.pgina-KIND-USER-RANDOM. */
int pgsmb_restore_staging_dir(struct restore *r, const char *kind, char *out, size_t len);
/* A new home from /etc/skel when there is none. */
int pgsmb_restore_home_from_skel(struct restore *r);
/* The staging directory becomes the home (the old one moved aside first, then removed): a crash
 * leaves one or the other whole. On failure the staging directory is gone and r->why says why. */
int pgsmb_restore_swap(struct restore *r, const char *staging, bool have_home, long long *t_swap);

/* Format 2 (pgsmb-restore-v2.c): 1 when the home is in place (current already, caught up, or
 * restored), 0 when the store holds no profile of format 2 (the caller tries format 1), -errno
 * with r->why. */
int pgsmb_restore_v2(struct restore *r, struct store *st);
/* The chain of version m into the empty directory dir (the user's), checked against m; *scan is
 * what it holds. For the compaction (pgsmb-compact.c). */
struct manifest;
int pgsmb_restore_v2_chain(struct restore *r, struct store *st, const struct manifest *m, const char *dir,
                           struct scan *scan);
