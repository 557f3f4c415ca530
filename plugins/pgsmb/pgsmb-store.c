/* The profile store's front: picks the backend from the URL scheme (a table), refuses paths that
 * could leave the store's root before any backend sees them. The backends (pgsmb-store-file.c,
 * pgsmb-store-smb.c) and this front share the helpers of pgsmb-store-util.c; they never call
 * back into this file. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "pgsmb-store-internal.h"
#include <pgina/util.h>

/* The backends, by URL scheme: each opens its store from the URL (the part after the scheme for
 * file://, the whole URL for smb://). */
static const struct {
        const char *scheme;
        int (*open)(const char *url, const struct store_creds *creds, unsigned timeout_s, const char *first_list,
                    struct store **ret, char *err, size_t errlen);
} backends[] = {
        {"file://", store_file_open},
        {"smb://", store_smb_open},
};

int store_open_listing(const char *url, const struct store_creds *creds, unsigned timeout_s,
                       const char *first_list, struct store **ret, char *err, size_t errlen) {
        if (err && errlen)
                err[0] = 0;
        if (!url || !ret)
                return store_open_fail(err, errlen, -EINVAL, "store_open: no URL");
        if (first_list && !store_rel_valid(first_list, true))
                first_list = NULL; /* the caller's own store_list refuses it */
        if (timeout_s == 0)
                timeout_s = 30;
        for (size_t i = 0; i < ELEMENTSOF(backends); i++)
                if (strncmp(url, backends[i].scheme, strlen(backends[i].scheme)) == 0)
                        return backends[i].open(url, creds, timeout_s, first_list, ret, err, errlen);
        return store_open_fail(err, errlen, -EPROTONOSUPPORT,
                               "%s: unsupported store URL (use smb://server[:port]/share[/dir] "
                               "or file:///dir)",
                               url);
}

int store_open(const char *url, const struct store_creds *creds, unsigned timeout_s,
               struct store **ret, char *err, size_t errlen) {
        return store_open_listing(url, creds, timeout_s, NULL, ret, err, errlen);
}

void store_close(struct store *s) {
        if (s)
                s->ops->close(s);
}

const char *store_error(const struct store *s) { return s->error; }

const char *store_url(const struct store *s) { return s->url; }

static int bad_path(struct store *s, const char *rel) {
        return store_fail(s, -EINVAL, NULL,
                          "refusing path \"%s\" (must be relative, without empty, \".\" or "
                          "\"..\" components)",
                          strempty(rel));
}

#define CHECK_REL(s, rel, allow_root)                                                              \
        do {                                                                                       \
                (s)->error[0] = 0;                                                                 \
                if (!store_rel_valid((rel), (allow_root)))                                         \
                        return bad_path((s), (rel));                                               \
        } while (0)

int store_mkdirs(struct store *s, const char *rel) {
        CHECK_REL(s, rel, true);
        return s->ops->mkdirs(s, rel);
}

int store_stat(struct store *s, const char *rel, struct store_stat *st) {
        CHECK_REL(s, rel, true);
        return s->ops->stat(s, rel, st);
}

int store_list(struct store *s, const char *rel, struct store_entry **ret, size_t *n) {
        CHECK_REL(s, rel, true);
        *ret = NULL;
        *n = 0;
        return s->ops->list(s, rel, ret, n);
}

void store_entries_free(struct store_entry *v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
}

int store_open_read(struct store *s, const char *rel, struct store_file **ret) {
        CHECK_REL(s, rel, false);
        return s->ops->open_read(s, rel, ret);
}

int store_open_write(struct store *s, const char *rel, struct store_file **ret) {
        CHECK_REL(s, rel, false);
        return s->ops->open_write(s, rel, ret);
}

ssize_t store_read(struct store_file *f, void *buf, size_t len) {
        f->store->error[0] = 0;
        if (f->writing && !f->rereading)
                return store_fail(f->store, -EBADF, f->rel, "not open for reading");
        return f->store->ops->read(f, buf, len);
}

ssize_t store_read_full(struct store_file *f, void *buf, size_t len) {
        size_t got = 0;

        while (got < len) {
                ssize_t k = store_read(f, (char *)buf + got, len - got);
                if (k < 0)
                        return k;
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        return (ssize_t)got;
}

int store_reread(struct store_file *f) {
        f->store->error[0] = 0;
        if (!f->writing || f->rereading)
                return store_fail(f->store, -EBADF, f->rel, "not a file being written");
        int r = f->store->ops->reread(f);
        if (r == 0)
                f->rereading = true;
        return r;
}

int store_seek(struct store_file *f, uint64_t off) {
        f->store->error[0] = 0;
        if (f->writing)
                return store_fail(f->store, -EBADF, f->rel, "not open for reading");
        if (off > INT64_MAX)
                return store_fail(f->store, -EINVAL, f->rel, "seek");
        return f->store->ops->seek(f, off);
}

int64_t store_file_size(const struct store_file *f) { return f->writing ? -1 : f->size; }

int store_write(struct store_file *f, const void *buf, size_t len) {
        f->store->error[0] = 0;
        if (!f->writing || f->rereading)
                return store_fail(f->store, -EBADF, f->rel, "not open for writing");
        return f->store->ops->write(f, buf, len);
}

int store_close_file(struct store_file *f) {
        if (!f)
                return 0;
        f->store->error[0] = 0;
        return f->store->ops->close_file(f);
}

int store_rename(struct store *s, const char *from, const char *to, bool replace) {
        CHECK_REL(s, from, false);
        CHECK_REL(s, to, false);
        return s->ops->rename(s, from, to, replace);
}

int store_copy(struct store *s, const char *from, const char *to) {
        CHECK_REL(s, from, false);
        CHECK_REL(s, to, false);
        return s->ops->copy(s, from, to);
}

int store_unlink(struct store *s, const char *rel) {
        CHECK_REL(s, rel, false);
        return s->ops->unlink(s, rel);
}
