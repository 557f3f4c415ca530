/* pgSMB's profile store: the folder that holds the compressed profiles, reached through
 * libsmbclient (smb://server[:port]/share[/dir]) or the local file system (file:///dir: a local
 * disk or an already-mounted share; the embedded default of the demo). Every path given to these
 * functions is relative to the store's root, uses '/' and never contains "..".
 *
 * All calls are bounded in time (the timeout given to store_open): a server that hangs costs at
 * most that long per call, then -ETIMEDOUT. Functions return 0 (or a count) on success, -errno on
 * failure, and leave a human-readable reason naming the server/path in store_error(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_file;

struct store_creds {
        const char *user; /* NULL or "" = anonymous/guest */
        const char *domain; /* NULL = default workgroup */
        /* Secret memory owned by the caller, read again at every reconnect: it must stay valid
         * until store_close(). Never copied into logs. */
        const char *password;
};

struct store_stat {
        uint64_t size;
        int64_t mtime; /* unix seconds */
        bool is_dir;
};

struct store_entry {
        char *name; /* file name only */
        uint64_t size;
        int64_t mtime;
        uint32_t mtime_ns; /* as the server gives it (0 when it gives whole seconds) */
        bool is_dir;
};

/* Open (connect to) the store at url. timeout_s bounds every later call too. On failure the
 * reason, naming the server or path, is in err (errlen bytes, STORE_ERROR_MAX is enough). */
#define STORE_ERROR_MAX 1024
int store_open(const char *url, const struct store_creds *creds, unsigned timeout_s,
               struct store **ret, char *err, size_t errlen);
/* store_open, whose connecting request is a listing of first_list (a folder the caller lists
 * next, "" for the root) instead of a stat of the root: the caller's first store_list of it gets
 * that listing, and a store_mkdirs of it costs nothing when it was there. Any other call drops
 * the listing first. Over smb:// this saves the stat's three round trips (and the mkdir's four).
 * Fails as store_open does when the server cannot be reached or refuses the login, or when the
 * root is missing or no folder. */
int store_open_listing(const char *url, const struct store_creds *creds, unsigned timeout_s,
                       const char *first_list, struct store **ret, char *err, size_t errlen);
void store_close(struct store *s);
/* The last error of this store, e.g. "smb://10.0.0.5/profiles/alice/alice.tar.zst: Connection
 * timed out". Valid until the next call. */
const char *store_error(const struct store *s);
/* "smb://server/share" or "file:///srv/profiles": for messages. */
const char *store_url(const struct store *s);

int store_mkdirs(struct store *s, const char *rel); /* mkdir -p */
/* -ENOENT when missing. */
int store_stat(struct store *s, const char *rel, struct store_stat *st);
/* Entries of a directory (without . and ..); free with store_entries_free. */
int store_list(struct store *s, const char *rel, struct store_entry **ret, size_t *n);
void store_entries_free(struct store_entry *v, size_t n);

int store_open_read(struct store *s, const char *rel, struct store_file **ret);
/* Create a new file; -EEXIST if it exists (never truncates an existing file). */
int store_open_write(struct store *s, const char *rel, struct store_file **ret);
/* Returns bytes read, 0 at end of file, -errno. Large reads (1 MiB) are efficient. */
ssize_t store_read(struct store_file *f, void *buf, size_t len);
/* The size a file opened for reading had at its open (what the server said), -1 when unknown.
 * A reader of a file nobody writes any more may stop there: over smb:// the read that would
 * see the end of file costs a round trip. */
int64_t store_file_size(const struct store_file *f);
/* store_read until len bytes or the end of the file: the bytes read (fewer only at the end), or
 * -errno. */
ssize_t store_read_full(struct store_file *f, void *buf, size_t len);
/* A file opened for reading: the next store_read from offset off (no request over smb://). */
int store_seek(struct store_file *f, uint64_t off);
/* Writes all of buf or fails. */
int store_write(struct store_file *f, const void *buf, size_t len);
/* A file created by store_open_write and written, read back from its start on the same
 * handle: store_read then returns what the server holds (ask for a byte past the bytes
 * written to learn whether it holds more), without
 * the open (and, over smb://, the size query and the close) a new reader costs; store_write
 * fails from then on, and store_close_file still flushes and reports as for a written file. */
int store_reread(struct store_file *f);
/* Close; for a written file this flushes it to the server/disk (fsync for file://) and reports
 * any error of that. Always frees f. */
int store_close_file(struct store_file *f);

/* Rename. With replace = true an existing `to` is replaced atomically (readers see the old or the
 * new file, never none) where the store can; -EEXIST when replace = false and `to` exists. */
int store_rename(struct store *s, const char *from, const char *to, bool replace);
/* Copy a file inside the store (server-side where possible: SMB copychunk, copy_file_range). */
int store_copy(struct store *s, const char *from, const char *to);
int store_unlink(struct store *s, const char *rel);
