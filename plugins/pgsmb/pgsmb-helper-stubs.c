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

int pgsmb_restore_stream_opts(struct store *st, const char *rel, uint64_t size_hint, const struct pgsmb_user *u,
                              const char *target, const struct profile_limits *lim, const struct profile_compress *c,
                              const struct pgsmb_extract_opts *o, pgsmb_progress_fn progress, void *pud,
                              struct pgsmb_transfer *t) {
        (void)st, (void)rel, (void)size_hint, (void)u, (void)target, (void)lim, (void)c, (void)o, (void)progress;
        (void)pud;
        snprintf(t->err, sizeof t->err, "delta profiles are not built in");
        return -EOPNOTSUPP;
}

int pgsmb_extract_fd(int fd, const struct pgsmb_user *u, const char *target, const struct profile_limits *lim,
                     const struct pgsmb_extract_opts *o, struct pgsmb_transfer *t) {
        (void)fd, (void)u, (void)target, (void)lim, (void)o;
        snprintf(t->err, sizeof t->err, "delta profiles are not built in");
        return -EOPNOTSUPP;
}

int pgsmb_scan_home(const struct pgsmb_user *u, const char *dir, const char *const *exclude, struct scan *scan,
                    char *err, size_t errlen) {
        (void)u, (void)dir, (void)exclude;
        scan_init(scan);
        snprintf(err, errlen, "delta profiles are not built in");
        return -EOPNOTSUPP;
}

int pgsmb_delete_paths(const struct pgsmb_user *u, const char *dir, const struct pbuf *list, char *err,
                       size_t errlen) {
        (void)u, (void)dir, (void)list;
        snprintf(err, errlen, "delta profiles are not built in");
        return -EOPNOTSUPP;
}

int pgsmb_fix_dirs(const struct pgsmb_user *u, const char *dir, const struct scan *dirs, char *err, size_t errlen) {
        (void)u, (void)dir, (void)dirs;
        snprintf(err, errlen, "delta profiles are not built in");
        return -EOPNOTSUPP;
}
