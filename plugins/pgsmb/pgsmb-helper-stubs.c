/* Placeholders of the format-2 helper API until its implementation lands (removed then). */
#include <errno.h>
#include <stdio.h>

#include "pgsmb-helper.h"
#include "pgsmb-scan.h"

int pgsmb_delta_stream(struct store *st, const char *rel, const struct pgsmb_user *u, const char *const *exclude,
                       const struct profile_compress *c, const struct scan *record,
                       const struct pgsmb_readback_target *rt, pgsmb_progress_fn progress, void *pud,
                       struct pgsmb_transfer *t, struct scan *scan) {
        (void)st, (void)rel, (void)u, (void)exclude, (void)c, (void)record, (void)rt, (void)progress, (void)pud;
        scan_init(scan);
        snprintf(t->err, sizeof t->err, "delta profiles are not built in");
        return -EOPNOTSUPP;
}
