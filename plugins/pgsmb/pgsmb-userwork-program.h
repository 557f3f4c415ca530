/* The admin's external archive program (pGina's `program` + commands), run as the user with a
 * fixed argv and no shell, through libpgina-plugin's pgina_run. */
#pragma once

#include <stddef.h>

/* Run argv (argv[0] an absolute path) with env, in cwd, stdin from in_fd and stdout to out_fd;
 * 0 when it exits 0, else -errno/-EPROTO with its first line of stderr in err. */
int pgsmb_run_program(char *const *argv, const char *const *env, const char *cwd, int in_fd,
                      int out_fd, char *err, size_t errlen);
