/* Between the store's front (pgsmb-store.c: path checks, the backend table), its backends
 * (pgsmb-store-file.c, pgsmb-store-smb.c) and their helpers (pgsmb-store-util.c). Not for users
 * of pgsmb-store.h. */
#pragma once

#include <stdarg.h>

#include "pgsmb-store.h"

struct store_ops {
        int (*mkdirs)(struct store *s, const char *rel);
        int (*stat)(struct store *s, const char *rel, struct store_stat *st);
        int (*list)(struct store *s, const char *rel, struct store_entry **ret, size_t *n);
        int (*open_read)(struct store *s, const char *rel, struct store_file **ret);
        int (*open_write)(struct store *s, const char *rel, struct store_file **ret);
        ssize_t (*read)(struct store_file *f, void *buf, size_t len);
        int (*write)(struct store_file *f, const void *buf, size_t len);
        int (*close_file)(struct store_file *f); /* frees f */
        int (*reread)(struct store_file *f); /* a written file from its start, same handle */
        int (*seek)(struct store_file *f, uint64_t off); /* a file opened for reading */
        int (*rename)(struct store *s, const char *from, const char *to, bool replace);
        int (*copy)(struct store *s, const char *from, const char *to);
        int (*unlink)(struct store *s, const char *rel);
        void (*close)(struct store *s); /* frees s */
};

/* The first member of every backend's store. */
struct store {
        const struct store_ops *ops;
        char *url; /* as given, without a trailing '/' and without any user part */
        unsigned timeout_s;
        char error[1024];
};

/* The first member of every backend's open file. */
struct store_file {
        struct store *store;
        char *rel;
        bool writing;
        bool rereading; /* written, now read back on the same handle (store_reread) */
        int64_t size; /* opened for reading: its size then; -1 unknown (store_file_size) */
};

/* Set s->error to "URL/REL: <fmt…>: strerror(-r)" (REL may be NULL or "" for the root; fmt may
 * be NULL) and return r. */
int store_fail(struct store *s, int r, const char *rel, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* The message of a failed store_open, into err (errlen bytes; none when err is NULL). r. */
int store_open_fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A path relative to the root: non-empty components separated by single '/', none of them
 * "." or "..", no leading '/', no NUL; "" (the root itself) only when allow_root. */
bool store_rel_valid(const char *rel, bool allow_root);
/* A name for a temporary sibling of rel: "<rel>.<tag>-<16 hex>" (random). NULL on ENOMEM. */
char *store_temp_name(const char *rel, const char *tag);

/* The backends (the table in pgsmb-store.c): url with its scheme. */
int store_file_open(const char *url, const struct store_creds *creds, unsigned timeout_s, const char *first_list,
                    struct store **ret, char *err, size_t errlen);
int store_smb_open(const char *url, const struct store_creds *creds, unsigned timeout_s, const char *first_list,
                   struct store **ret, char *err, size_t errlen);
