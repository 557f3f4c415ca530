/* archive-tool: pgSMB's archive code (pgsmb-archive.h) alone, without a store or a logon, for the
 * benchmarks (what archiving and extraction cost by themselves) and for poking at an archive.
 *   archive-tool create HOME   >ARCHIVE   (built-in pax + zstd, level 3, threads automatic)
 *   archive-tool extract DIR   <ARCHIVE   (DIR: an existing empty directory; no size limits)
 * Prints "N files, N bytes" on stderr. Exit status: 0 done, 1 failed (why on stderr), 2 usage. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pgsmb-archive.h"

int main(int argc, char **argv) {
        struct profile_compress c = {.level = 3};
        struct profile_limits none = {0};
        struct profile_stats st = {0};
        char err[1024] = "";
        int r;

        if (argc != 3 || (strcmp(argv[1], "create") && strcmp(argv[1], "extract"))) {
                fprintf(stderr, "usage: archive-tool create HOME >ARCHIVE | extract DIR <ARCHIVE\n");
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
