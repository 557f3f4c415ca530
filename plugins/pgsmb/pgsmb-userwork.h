/* pgSMB: the work done as the user, in a program of its own. pgsmb-helper.c starts pgsmb-userwork
 * (installed next to pgsmb.so) with the user's credentials through spawn_start (a fork that drops
 * to the user, then the exec); it reads one job from descriptor 3, does it and writes its report
 * there. The exec is the point: a forked child would carry every copy of a password the worker
 * ever held (the store's service account inside libsmbclient, the user's own in the request,
 * freed heap included) into a process that parses the user's own, possibly hostile, archive. The
 * new program holds nothing but its job.
 *
 * Descriptors of the program: 0-2 as the worker's (/dev/null where it has none), USERWORK_FD_CTL
 * the job and the report (a socket), USERWORK_FD_DATA the archive stream (extract, archive),
 * USERWORK_FD_AUX the restore's ring (a memfd) or the login script's output (a pipe), or (DELTA)
 * the record to compare with, or (USERWORK_F_EXPECT) what the caller saw at the paths; USERWORK_FD_LIST a list the job reads (EXTRACT's want list, DELETE's
 * paths, FIXDIRS' directories) or the scan it writes (DELTA, SCAN), a memfd (pgsmb-scan.h);
 * /dev/null where the job has none. Nothing else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgina/buf.h>

#include "pgsmb-archive.h"

#define USERWORK_PROGRAM "pgsmb-userwork"
#define USERWORK_FD_CTL 3
#define USERWORK_FD_DATA 4
#define USERWORK_FD_AUX 5
#define USERWORK_FD_LIST 6
#define USERWORK_JOB_MAX (4 * 1024 * 1024) /* a job's encoding, at most (a script is <= 1 MiB) */

enum userwork_kind {
        USERWORK_EXTRACT = 1, /* the archive on FD_DATA (or in the ring on FD_AUX) into dir */
        USERWORK_ARCHIVE, /* dir, less exclude, to FD_DATA */
        USERWORK_SIZE, /* bytes of dir less exclude: the report's text */
        USERWORK_RM_CONTENTS, /* everything inside dir (dir stays) */
        USERWORK_SCRIPT, /* run the login script, its output to FD_AUX; its status in code */
        /* Delta profiles (pgsmb-scan.h): */
        USERWORK_DELTA, /* dir less exclude, the entries that differ from the record on FD_AUX
                         * (none, or USERWORK_F_FULL: all), to FD_DATA; the scan to FD_LIST */
        USERWORK_SCAN, /* the scan of dir less exclude to FD_LIST (every flag '=') */
        USERWORK_DELETE, /* remove the paths listed on FD_LIST below dir (deepest first; a
                          * directory only once empty, never through a symlink) */
        USERWORK_FIXDIRS, /* the directories of the scan on FD_LIST get its mode and mtime */
        USERWORK_STAT, /* the entries of the paths listed on FD_AUX below dir that exist (lstat,
                        * never through a symlink) as a scan to FD_LIST (every flag '=') */
};

/* userwork_job.flags */
enum {
        USERWORK_F_FULL = 1 << 0, /* DELTA: every entry, whatever the record says */
        USERWORK_F_WANT = 1 << 1, /* EXTRACT: only the entries in the path list on FD_LIST */
        USERWORK_F_IN_PLACE = 1 << 2, /* EXTRACT: dir is a home; replace what is there */
        USERWORK_F_NO_DIRFIX = 1 << 3, /* EXTRACT: directories stay 0700 (FIXDIRS comes later) */
        USERWORK_F_EXPECT = 1 << 4, /* EXTRACT (in place, not from a ring), DELETE: FD_AUX holds a
                                     * scan of the paths as the caller saw them; a path changed
                                     * since stops the job, -EBUSY (pgsmb-userwork-expect.h) */
};

struct userwork_job {
        enum userwork_kind kind;
        const char *name, *home; /* the user: USER, LOGNAME, HOME */
        const char *dir;
        const char *const *exclude; /* ARCHIVE, SIZE */
        struct profile_limits lim; /* EXTRACT */
        int level, threads; /* EXTRACT, ARCHIVE: struct profile_compress */
        const char *const *archive_argv, *const *extract_argv;
        uint64_t ring_size; /* EXTRACT: > 0 when the archive arrives in the ring */
        /* SCRIPT: the file to run, or the script's text (written to a private file in the home
         * first); its time limit; PGINA_HOME_SHARE and PGINA_HOME_MOUNT when not NULL. */
        const char *script_path;
        const void *script_data;
        uint32_t script_len;
        uint32_t timeout_s;
        const char *home_share, *home_mount;
        uint32_t flags; /* USERWORK_F_* */
};

/* What the program writes back when it ends. */
struct userwork_report {
        int result; /* 0 ok, -errno */
        int code; /* SCRIPT: the script's exit status, 128 + signal, or -1 killed at its limit */
        struct profile_stats stats;
        char err[512]; /* why it failed; SIZE: the byte count */
};

/* Root side: the job as bytes (u32 length first), for FD_CTL. */
int userwork_encode(const struct userwork_job *j, struct pbuf *b);

/* The restore ring's positions (pgsmb-helper.c <-> pgsmb-userwork-inflate.c). */
/* The positions of ring mode travel as native 8-byte totals on a stream socket, where one may
 * arrive in two reads: `part` carries the start of a cut one. Both sides keep only the latest. */
struct ring_totals {
        unsigned char part[8];
        size_t npart;
};
/* Read what fd has (waiting for something when `wait`): 1 with *latest set when at least one
 * whole total came, 0 when none did, -EPIPE at the end of the stream, -errno. */
int ring_totals_recv(struct ring_totals *rt, int fd, bool wait, uint64_t *latest);

/* A decoded job and everything it points to, freed together (pgsmb-userwork-job.c). */
struct userwork_decoded {
        struct userwork_job j;
        char *str[8];
        char **list[3];
        void *script;
};

/* The program's side: one job's bytes (after the length) into d; free d either way. */
int userwork_decode(struct pbuf *b, struct userwork_decoded *d);
void userwork_decoded_free(struct userwork_decoded *d);

/* The program's side (pgsmb-userwork-apply.c): the path list on fd (read from offset 0),
 * checked; err names the bad line. */
int userwork_want_list(int fd, char ***ret, size_t *n, char *err, size_t errlen);

/* The program's side: read the job from FD_CTL, do it, write the report. The exit status. */
int userwork_main(void);
