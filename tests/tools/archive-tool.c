/* archive-tool: pgSMB's archive code (pgsmb-archive.h) alone, without a store or a logon, for the
 * benchmarks (what archiving and extraction cost by themselves) and for poking at an archive.
 *   archive-tool create HOME   >ARCHIVE   (built-in pax + zstd, level 3, threads automatic)
 *   archive-tool extract DIR   <ARCHIVE   (DIR: an existing empty directory; no size limits)
 *   archive-tool delta HOME RECORD SCAN >ARCHIVE   (a logoff's delta: the entries of HOME that
 *                                      differ from the scan RECORD ("-": none, a scan only,
 *                                      no archive); HOME's new scan to the file SCAN)
 * Prints "N files, N bytes" on stderr. Exit status: 0 done, 1 failed (why on stderr), 2 usage. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pgsmb-archive.h"
#include "pgsmb-scan.h"

int main(int argc, char **argv) {
        struct profile_compress c = {.level = 3};
        struct profile_limits none = {0};
        struct profile_stats st = {0};
        char err[1024] = "";
        int r;

        if (argc == 5 && strcmp(argv[1], "delta") == 0) {
                struct scan rec;
                int scan_fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                bool have = strcmp(argv[3], "-") != 0;
                int rfd = have ? open(argv[3], O_RDONLY | O_CLOEXEC) : -1;
                scan_init(&rec);
                if (scan_fd < 0 || (have && (rfd < 0 || pgsmb_profile_record_read(rfd, argv[2], &rec, err,
                                                                                   sizeof err) < 0))) {
                        fprintf(stderr, "archive-tool: %s\n", err[0] ? err : "cannot open the record or the scan");
                        return 1;
                }
                r = pgsmb_profile_delta(argv[2], NULL, &c, &rec, have ? 1 : -1, scan_fd, &st, err, sizeof err);
                scan_free(&rec);
                close(scan_fd);
                if (rfd >= 0)
                        close(rfd);
                if (r < 0) {
                        fprintf(stderr, "archive-tool: %s\n", err[0] ? err : strerror(-r));
                        return 1;
                }
                fprintf(stderr, "%" PRIu64 " files, %" PRIu64 " bytes\n", st.files, st.bytes);
                return 0;
        }
        if (argc != 3 || (strcmp(argv[1], "create") && strcmp(argv[1], "extract"))) {
                fprintf(stderr, "usage: archive-tool create HOME >ARCHIVE | extract DIR <ARCHIVE | "
                                "delta HOME RECORD|- SCAN >ARCHIVE\n");
                return 2;
        }
        if (strcmp(argv[1], "create") == 0)
                r = pgsmb_profile_archive(argv[2], NULL, &c, 1, &st, err, sizeof err);
        else
                r = pgsmb_profile_extract(0, argv[2], &none, &c, &st, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "archive-tool: %s\n", err[0] ? err : strerror(-r));
                return 1;
        }
        fprintf(stderr, "%" PRIu64 " files, %" PRIu64 " bytes\n", st.files, st.bytes);
        return 0;
}
