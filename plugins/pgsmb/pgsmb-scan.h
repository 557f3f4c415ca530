/* pgSMB delta profiles: a home's scan, the one text format both sides share (pgsmb_core, linked
 * into the plugin and into pgsmb-userwork).
 *
 * A scan lists the entries below a home (never the home itself), one line each:
 *
 *   <flag> <type> <mode> <ino> <size> <mtime> <ctime> <path>\n
 *
 *   flag   '+' the entry is in the archive written with this scan (new or changed), '=' it is
 *          not (unchanged since the record the job was given). A stored record ignores it.
 *   type   'f' regular file, 'd' directory, 'l' symlink
 *   mode   permission bits, octal (07777 at most)
 *   ino    inode number, decimal; size: bytes (st_size), decimal
 *   mtime, ctime  seconds.nanoseconds (nanoseconds: 9 digits), seconds may be negative
 *   path   relative to the home, '/'-separated, escaped with pgsmb_path_escape (no byte <= 0x20,
 *          no 0x7f, no '%' is left raw), never empty, never absolute, never a ".." component
 *
 * The local record of what was last saved (state_dir/<user>.record, root's) is a scan; the delta
 * job reads one and writes the next; the plugin turns it into the store's manifest. Either side
 * may be hostile to the other (the user's process writes the scan root parses): every line is
 * checked, and a bad one fails the whole scan with its line number. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/stat.h>

#include <pgina/buf.h>

#define SCAN_LINE_MAX (3 * 4096 + 256) /* an escaped PATH_MAX path and its fields */
#define SCAN_ENTRIES_MAX (16u * 1024 * 1024) /* a scan never holds more entries than this */
#define SCAN_BYTES_MAX (1024u * 1024 * 1024) /* nor more bytes */

struct scan_entry {
        char flag; /* '+' or '=' */
        char type; /* 'f', 'd', 'l' */
        uint32_t mode;
        uint64_t ino, size;
        int64_t mtime_s, ctime_s;
        uint32_t mtime_ns, ctime_ns;
        char *path; /* unescaped, NUL-terminated (owned by the scan) */
};

struct scan {
        struct scan_entry *v;
        size_t n, cap;
        bool sorted; /* scan_sort was called: scan_find works */
};

/* Escape `in` for a line: bytes <= 0x20, 0x7f and '%' as %XX (upper-case hex). -ENAMETOOLONG
 * when out (outlen bytes, NUL included) is too small. */
int pgsmb_path_escape(const char *in, char *out, size_t outlen);
/* Undo it: len bytes of in into out; -EBADMSG for a bad escape, a raw byte that should have
 * been escaped, or a NUL; -ENAMETOOLONG. */
int pgsmb_path_unescape(const char *in, size_t len, char *out, size_t outlen);
/* A relative path a scan or manifest may name: not empty, not absolute, no "", "." or ".."
 * component, no trailing '/', shorter than PATH_MAX, components shorter than NAME_MAX+1. */
bool pgsmb_path_valid(const char *path);

/* An entry from a stat of it (flag given). The path is copied. */
int scan_entry_from_stat(struct scan_entry *e, char flag, const char *path, const struct stat *st);
/* Does st still match what e recorded? (type, mode, ino, size, mtime, ctime) */
bool scan_entry_matches(const struct scan_entry *e, const struct stat *st);
/* Do two entries record the same stat? (type, mode, ino, size, mtime, ctime; not the path) */
bool scan_entry_same(const struct scan_entry *a, const struct scan_entry *b);
/* Racily clean entries (git's rule): a file changed in the clock tick the walk saw it in can
 * change again within that tick and keep its mtime and ctime (file times come from a coarse
 * clock: a jiffy on ext4; whole seconds on some filesystems). Entries whose ctime is less than
 * SCAN_RACY_NS before walk_start (realtime), or later, or within a second of it on a filesystem
 * without sub-second times, get ctime 0, which no file matches: the next walk archives them. */
#define SCAN_RACY_NS (50 * 1000 * 1000LL)
void scan_mark_racy(struct scan *s, const struct timespec *walk_start);

/* Append e's line to b. */
int scan_format(const struct scan_entry *e, struct pbuf *b);
/* Parse one line (without its '\n', len bytes) into e (e->path malloc'd). -EBADMSG. */
int scan_parse_line(const char *line, size_t len, struct scan_entry *e);

void scan_init(struct scan *s);
void scan_free(struct scan *s);
/* Append (takes e->path). */
int scan_add(struct scan *s, struct scan_entry *e);
/* Parse a whole scan of len bytes (every line '\n'-terminated). On failure *line_no (may be NULL)
 * says which line, s is left empty. A path listed twice fails too (after scan_sort; *line_no
 * names its second line). -E2BIG past SCAN_ENTRIES_MAX entries. */
int scan_parse(struct scan *s, const char *data, size_t len, size_t *line_no);
/* All of fd from its current offset to EOF, at most max bytes (-E2BIG past them), malloc'd in
 * *ret (NULL when empty). */
int pgsmb_read_all(int fd, size_t max, char **ret, size_t *len);
/* Read a whole scan from fd (from its current offset to EOF, at most max bytes: -E2BIG with
 * *line_no 0 past that). */
int scan_read_fd(struct scan *s, int fd, size_t max, size_t *line_no);
/* Sort by path (strcmp order) and refuse duplicates (-EBADMSG). */
int scan_sort(struct scan *s);
/* The entry for path, or NULL (after scan_sort). */
const struct scan_entry *scan_find(const struct scan *s, const char *path);
/* The whole scan as text. */
int scan_format_all(const struct scan *s, struct pbuf *b);

/* A path list (the want list of an extraction, the delete list of a catch-up): one escaped path
 * per line. */
int pathlist_add(struct pbuf *b, const char *path);
/* Parse into a sorted, duplicate-free array of malloc'd paths (free with pathlist_free).
 * -EBADMSG (with *line_no) for an invalid path or one listed twice (its second line). */
int pathlist_parse(const char *data, size_t len, char ***ret, size_t *n, size_t *line_no);
void pathlist_free(char **v, size_t n);
/* Is path in the sorted list? */
bool pathlist_has(char *const *v, size_t n, const char *path);
