/* The disk side of a built-in extraction (child process, runs as the user): creates the entries
 * of a checked archive inside an empty target directory with about as few system calls as GNU
 * tar, without ever following a symlink. Every path is resolved one component at a time with
 * O_NOFOLLOW from the target's descriptor, and the directories of the current path stay open, so
 * an archive in directory order costs one openat per directory, not per file. A new object is
 * created with O_EXCL (or mkdirat/symlinkat/linkat, which never replace): an entry can never
 * replace or write through what an earlier entry made. Directory modes and times are set at the
 * end, deepest first, so a read-only directory can still be filled.
 *
 * Entries with POSIX ACLs or extended attributes are not for this writer (unpack_wants): the
 * caller gives them to libarchive's disk writer with its SECURE_* checks. */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct unpack;

/* Writer for the directory target_fd (kept open by the caller until unpack_free). Sets the
 * process umask to 0 until unpack_free: modes come from the archive, exactly. */
int unpack_new(int target_fd, struct unpack **ret);
/* In place (a catch-up in a home that holds an older version): an entry replaces what is at its
 * path. A file, hardlink or symlink is made under a temporary name in its directory and renamed
 * over the path (atomic per file; a directory there is removed first, with what it holds); a
 * directory entry keeps a directory that is there (a file there is removed). A directory of the
 * path without write permission gets u+rwx (the caller sets its mode afterwards). Still never
 * through a symlink. */
void unpack_set_in_place(struct unpack *u, bool on);
struct expect;
/* In place: before a path is replaced, what is there must be what x says the caller saw
 * (pgsmb-userwork-expect.h); -EBUSY otherwise (x->busy names the path). x stays the caller's. */
void unpack_set_expect(struct unpack *u, struct expect *x);
/* The path the last -EBUSY was about. */
const char *unpack_busy(const struct unpack *u);
/* The same check for an entry another writer (libarchive's) is about to write (dir: a
 * directory entry, which keeps a directory that is there). */
int unpack_may_replace_path(struct unpack *u, const char *path, bool dir);
/* Remove name in dirfd, a directory with everything it holds, never following a symlink (a
 * symlink is removed as itself). 0 when it is gone (or never was). */
int unpack_remove_tree(int dirfd, const char *name);
/* Restores the umask; closes the directories it opened. */
void unpack_free(struct unpack *u);

/* Can this writer create e? False for ACLs and xattrs (libarchive's writer does those). */
bool unpack_wants(struct archive_entry *e);

/* Create e (a checked entry: relative path without "..", a regular file, directory, symlink or
 * hardlink) and return, for a regular file with data, its open descriptor in *fd (else -1).
 * -EEXIST when the path exists already ("appears twice"), -ENOTDIR/-ELOOP when a parent is not
 * a directory (or is a symlink), other -errno. */
int unpack_begin(struct unpack *u, struct archive_entry *e, int *fd);
/* Write a data block of the file begun (pwrite at off). */
int unpack_data(int fd, const void *blk, size_t len, int64_t off);
/* Finish the regular file whose data ended at `end` (the highest offset written): its size
 * (a hole at the end), times, close. */
int unpack_end(struct unpack *u, struct archive_entry *e, int fd, uint64_t end);
/* Directory modes and times, deepest first. */
int unpack_finish(struct unpack *u);
