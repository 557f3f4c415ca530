/* pginactl simulate: the password read from the terminal (echo off, restored on a signal) or
 * stdin, the SIMULATE request, and the chain's steps as a table. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "config.h"
#include "host.h"
#include "log.h"
#include "pgina-build.h"
#include "proto.h"
#include "proto-request.h"
#include "secret.h"
#include "util.h"

#include "pginactl.h"

/* ---- the password ------------------------------------------------------------------------ */

/* Restoring the terminal from a signal handler needs these two at file scope. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_echo_off;

static void restore_tty_and_die(int sig) {
        if (tty_echo_off)
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Reads one line from stdin byte by byte (no stdio buffer keeps a copy) into buf. Returns its
 * length, -ENODATA on EOF before any byte, -E2BIG when it does not fit. */
static ssize_t read_line(char *buf, size_t size) {
        size_t n = 0;

        for (;;) {
                char c;
                ssize_t k = read(STDIN_FILENO, &c, 1);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0) {
                        if (n == 0)
                                return -ENODATA;
                        break;
                }
                if (c == '\n')
                        break;
                if (n + 1 >= size) {
                        /* Drain the rest of the line so it does not reach a shell later. */
                        while (read(STDIN_FILENO, &c, 1) == 1 && c != '\n')
                                ;
                        return -E2BIG;
                }
                buf[n++] = c;
        }
        buf[n] = 0;
        return (ssize_t)n;
}

/* The terminal (echo off) when stdin is one, else the first line of stdin. */
static int read_password(const char *user, struct secret **ret) {
        char buf[SECRET_MAX + 2];
        bool tty = isatty(STDIN_FILENO);
        struct sigaction sa = {.sa_handler = restore_tty_and_die}, old[4];
        static const int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP};
        ssize_t n;
        int r = 0;

        if (tty) {
                struct termios t;

                if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
                        return -errno;
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        sigaction(sigs[i], &sa, &old[i]);
                t = saved_tty;
                t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
                t.c_lflag |= ECHONL | ICANON;
                fprintf(stderr, "Password for %s: ", user);
                fflush(stderr);
                if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
                        r = -errno;
                else
                        tty_echo_off = 1;
        }
        n = r < 0 ? r : read_line(buf, sizeof buf);
        if (tty) {
                if (tty_echo_off)
                        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
                tty_echo_off = 0;
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        sigaction(sigs[i], &old[i], NULL);
        }
        if (n >= 0) {
                *ret = secret_new(buf, (size_t)n);
                if (!*ret)
                        n = -ENOMEM;
        }
        explicit_bzero(buf, sizeof buf);
        return n < 0 ? (int)n : 0;
}

/* ---- simulate ---------------------------------------------------------------------------- */

/* The daemon may answer OK with a refusal in the final row; the verdict is the row's. */
static uint32_t simulate_status(const struct proto_result *res, const struct proto_row *final) {
        if (res->status != PROTO_OK || !final)
                return res->status;
        if (streq(row_get(final, "result"), "success"))
                return PROTO_OK;
        if (!streq(row_get(final, "authenticated"), "yes"))
                return PROTO_AUTH_FAILED;
        if (!streq(row_get(final, "authorized"), "yes"))
                return PROTO_DENIED;
        return PROTO_GATEWAY_FAILED;
}

static int print_simulation(const char *user, const struct proto_result *res) {
        const struct proto_row *final = NULL;
        struct table t = {.ncols = 4};
        _cleanup_free_ char *u = sanitize(user, false);
        uint32_t status;

        table_add(&t, (const char *[]){"STAGE", "PLUGIN", "RESULT", "MESSAGE"});
        for (size_t i = 0; i < res->nrows; i++) {
                const struct proto_row *row = &res->rows[i];

                if (streq(row_get(row, "stage"), "final")) {
                        final = row;
                        continue;
                }
                table_add(&t, (const char *[]){row_get(row, "stage"), row_get(row, "plugin"),
                                               row_get(row, "result"), row_get(row, "message")});
        }
        if (t.nrows > 1)
                table_print(&t, stdout);
        else
                printf("No plugin ran.\n");
        table_free(&t);
        printf("\n");

        status = simulate_status(res, final);
        if (status == PROTO_OK)
                printf("Result: user %s would be allowed to log on\n", strempty(u));
        else if (exit_code(status) == EXIT_REFUSED) {
                _cleanup_free_ char *m = sanitize(
                        final && *row_get(final, "message") ? row_get(final, "message") : res->message,
                        false);
                printf("Result: user %s would be refused: %s\n", strempty(u),
                       m && *m ? m : proto_status_to_string(status));
        } else
                return report_status("simulate", res);
        if (final) {
                _cleanup_free_ char *g = sanitize(row_get(final, "groups"), false);

                printf("Authenticated: %s, authorized: %s, gateway: %s\n",
                       *row_get(final, "authenticated") ? row_get(final, "authenticated") : "-",
                       *row_get(final, "authorized") ? row_get(final, "authorized") : "-",
                       *row_get(final, "gateway") ? row_get(final, "gateway") : "-");
                printf("Groups: %s\n", g && *g ? g : "(none)");
        }
        return exit_code(status);
}

int cmd_simulate(const struct ctl *ctl, int argc, char **argv) {
        _cleanup_(proto_result_free) struct proto_result res = {0};
        _cleanup_secret_ struct secret *pw = NULL;
        _cleanup_pbuf_ struct pbuf req;
        _cleanup_close_ int fd = -1;
        const char *user = argv[0];
        int r;

        pbuf_init_secret(&req);
        if (!*user || strlen(user) > PGINA_NAME_MAX) {
                fprintf(stderr, "pginactl: simulate: invalid user name\n");
                return EXIT_USAGE;
        }
        /* Connect first: no point asking for a password when nobody will check it. */
        fd = ctl_connect(ctl);
        if (fd < 0)
                return -fd;
        r = read_password(user, &pw);
        if (r == -ENODATA) {
                fprintf(stderr, "pginactl: simulate: no password on standard input\n");
                return EXIT_USAGE;
        }
        if (r == -E2BIG) {
                fprintf(stderr, "pginactl: simulate: password longer than %d bytes\n", SECRET_MAX);
                return EXIT_USAGE;
        }
        if (r < 0) {
                fprintf(stderr, "pginactl: simulate: cannot read the password: %s\n", strerror(-r));
                return EXIT_USAGE;
        }
        r = request_encode(&req, &(struct request){.type = PROTO_REQ_SIMULATE, .user = (char *)user,
                                                    .password = pw, .run_gateway = ctl->gateway});
        if (r < 0) {
                fprintf(stderr, "pginactl: simulate: cannot build request: %s\n", strerror(-r));
                return EXIT_PROTOCOL;
        }
        pw = (secret_free(pw), NULL); /* the frame holds it now, and wipes it when freed */
        if ((r = ctl_call_fd(ctl, fd, &req, &res)) > 0)
                return r;
        if (res.nrows == 0 && res.status != PROTO_OK)
                return report_status("simulate", &res);
        return print_simulation(user, &res);
}
