/* pgSMB catch-up (runs as the user): what the caller saw at the paths a job changes, checked
 * right before each change. A process that outlived the last session may write to a path between
 * the catch-up's look at it and the extraction's rename over it; that write must stop the job,
 * not vanish under the new version's file.
 *
 * The expectation is a scan (pgsmb-scan.h) of the paths as the caller last saw them, on
 * USERWORK_FD_AUX (USERWORK_F_EXPECT); a path the job changes that the scan does not list was
 * absent. A target matches when type, mode, inode, size, mtime and ctime are the scan's; two
 * differences are the catch-up's own doing and pass: a path this job made itself (listed
 * twice: its inode and ctime as made), and a ctime alone that moved on an inode with another
 * name among the paths the catch-up changes (a hardlink's ctime moves with its link count when
 * any of its jobs replaces or removes the other name).
 * What remains is a window of a few system calls between the check and the rename; a write
 * through a descriptor the process still holds on the old file reaches the old, unlinked file. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/stat.h>

#include "pgsmb-scan.h"

struct expect_made {
        uint64_t ino; /* 0: a free slot */
        int64_t ctime_s;
        uint32_t ctime_ns;
};

struct expect {
        struct scan seen; /* sorted */
        uint64_t *linked; /* sorted: inodes that seen lists under more than one path */
        size_t nlinked;
        struct expect_made *made; /* what this job made: open addressing by inode */
        size_t nmade, capmade;
        char busy[PATH_MAX]; /* the path found changed (for the report) */
};

/* Read the scan from fd (at most max bytes). *line_no names a bad line. */
int expectation_read_fd(struct expect *x, int fd, size_t max, size_t *line_no);
void expectation_free(struct expect *x);
/* Is base in dirfd (path: the same, relative to the target) as the caller saw it? 0, -EBUSY
 * (x->busy names it), -errno when it cannot be looked at. dirfd < 0: path is not there (a
 * directory of it is missing). x NULL: always 0. */
int expectation_check(struct expect *x, int dirfd, const char *base, const char *path);
/* The job made st's inode (it may find it again at a path listed twice). */
int expectation_made(struct expect *x, const struct stat *st);
