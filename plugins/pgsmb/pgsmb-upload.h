/* pgSMB logoff internals shared by pgsmb-upload.c (format 1, the single archive, and the logoff
 * itself) and pgsmb-upload-v2.c (format 2, delta profiles). */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "pgsmb-helper.h"
#include "pgsmb-scan.h"
#include "pgsmb-state.h"
#include "pgsmb-v2.h"
#include "pgsmb.h"

struct upload {
        struct pgina_ctx *ctx;
        struct pgina_user *u;
        struct pgsmb_cfg cfg;
        struct pgsmb_user pu;
        struct pgsmb_state state;
        const char *state_dir;
        char host[256]; /* pgsmb_host_short's */
        char self[V2_SELF_MAX]; /* v2_self's: the archives' name for this machine */
        char why[600];
        bool admin; /* pginactl profile upload: progress to the admin */
        /* the record of state.version as loaded before the connect, for the format-2 upload to
         * take (record_loaded) */
        struct scan record;
        bool record_loaded;
        /* the delta against that record, started before the connect (NULL: none), and when
         * its walk began */
        struct pgsmb_early *early;
        struct timespec early_walk_start;
        long long early_ms;
        bool format1; /* pgsmb_upload_v2's -EOPNOTSUPP: this profile is saved as format 1 */
};

/* Progress of the upload (userdata: the upload), to the admin or the debug log. */
void pgsmb_upload_progress(void *userdata, uint64_t bytes, uint64_t total);

/* One try of a format-2 upload (pgsmb-upload-v2.c): 1 when saved (up->state.version is the new
 * version) or kept as a conflict copy, -errno with up->why otherwise. -EOPNOTSUPP with
 * up->format1 set: this profile cannot be of format 2 here (the caller saves it as format 1). */
int pgsmb_upload_v2(struct upload *up, struct store *st);
