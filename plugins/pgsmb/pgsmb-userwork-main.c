/* pgsmb-userwork: pgSMB's work as the user (pgsmb-userwork.h). Started by pginad's worker only,
 * already running as the user, with its job on descriptor 3; not a command for people. */
#include <stdio.h>
#include <sys/stat.h>

#include "pgsmb-userwork.h"

int main(int argc, char **argv) {
        struct stat st;

        if (argc != 1 || fstat(USERWORK_FD_CTL, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                fprintf(stderr, "%s: started by pginad's pgsmb plugin only, with its job on descriptor %d "
                                "(see pgina.conf(5), [pgsmb])\n",
                        argc > 0 ? argv[0] : USERWORK_PROGRAM, USERWORK_FD_CTL);
                return 2;
        }
        return userwork_main();
}
