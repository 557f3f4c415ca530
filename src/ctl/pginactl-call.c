/* pginactl's side of the conversation with pginad: connect, one request, its INFO frames, the
 * answer, and the one place a wire status becomes an exit code. */
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

/* The one place a wire status becomes an exit code. Failures of the client itself (connect,
 * timeout, malformed reply) reach it as the wire status they amount to (status_from_errno). */
int exit_code(uint32_t status) {
        switch (status) {
        case PROTO_OK:
                return EXIT_OK;
        case PROTO_AUTH_FAILED:
        case PROTO_DENIED:
        case PROTO_GATEWAY_FAILED:
        case PROTO_CHANGE_FAILED:
        case PROTO_CONFIG_INVALID:
                return EXIT_REFUSED;
        case PROTO_UNAVAILABLE:
        case PROTO_SHUTTING_DOWN:
                return EXIT_UNAVAILABLE;
        case PROTO_PERMISSION:
                return EXIT_PERMISSION;
        case PROTO_NOT_FOUND:
                return EXIT_NOT_FOUND;
        case PROTO_BAD_REQUEST:
        default: /* a status this client does not know is a protocol mismatch */
                return EXIT_PROTOCOL;
        }
}

/* A transport error as the status it amounts to: cannot talk to the daemon = unavailable, the
 * daemon's socket refuses us = permission, a reply we cannot parse = bad request. */
static uint32_t status_from_errno(int r) {
        switch (-r) {
        case EACCES:
        case EPERM:
                return PROTO_PERMISSION;
        case EBADMSG:
        case EPROTO:
        case EMSGSIZE:
                return PROTO_BAD_REQUEST;
        default:
                return PROTO_UNAVAILABLE;
        }
}

/* ---- talking to pginad ------------------------------------------------------------------- */

static void on_info(void *userdata, uint8_t kind, const char *text) {
        /* A plugin command's output (userdata set) is the command's own: stdout, as is. */
        if (userdata && kind == PROTO_INFO_TEXT) {
                print_text(stdout, "", text);
                fflush(stdout);
                return;
        }
        print_text(stderr, kind == PROTO_INFO_ERROR ? "pginad: error: " : "pginad: ", text);
}

/* Returns a connected fd, or minus an exit code after saying why the daemon cannot be reached. */
int ctl_connect(const struct ctl *ctl) {
        int timeout_ms = (int)ctl->timeout_s * 1000;
        int fd = proto_connect(ctl->socket_path,
                               timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS);

        if (fd < 0) {
                fprintf(stderr,
                        "pginactl: cannot reach pginad at %s: %s (is pginad running? systemctl "
                        "status pginad)\n",
                        ctl->socket_path, fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
                return -exit_code(status_from_errno(fd));
        }
        return fd;
}

/* One request on a connected fd. Returns 0 with *res filled (any status), or an exit code (> 0)
 * after printing why no answer came. */
int ctl_call_fd_output(const struct ctl *ctl, int fd, const struct pbuf *req,
                       struct proto_result *res, bool output) {
        int r = proto_call(fd, req, (int)ctl->timeout_s * 1000, on_info, output ? (void *)1 : NULL,
                           res);

        if (r == -ETIMEDOUT)
                fprintf(stderr, "pginactl: pginad at %s did not answer within %u s\n",
                        ctl->socket_path, ctl->timeout_s);
        else if (r == -ECONNRESET || r == -EPIPE)
                fprintf(stderr, "pginactl: pginad at %s closed the connection without an answer\n",
                        ctl->socket_path);
        else if (r < 0)
                fprintf(stderr, "pginactl: bad reply from pginad at %s: %s\n", ctl->socket_path,
                        strerror(-r));
        if (r < 0)
                return exit_code(status_from_errno(r));
        return 0;
}

int ctl_call_fd(const struct ctl *ctl, int fd, const struct pbuf *req,
                struct proto_result *res) {
        return ctl_call_fd_output(ctl, fd, req, res, false);
}

int ctl_call(const struct ctl *ctl, const struct pbuf *req, struct proto_result *res) {
        _cleanup_close_ int fd = ctl_connect(ctl);

        if (fd < 0)
                return -fd;
        return ctl_call_fd(ctl, fd, req, res);
}

/* A request without fields (the admin queries). */
int ctl_simple(const struct ctl *ctl, uint16_t type, struct proto_result *res) {
        _cleanup_pbuf_ struct pbuf req;
        int r;

        pbuf_init(&req);
        if ((r = request_encode(&req, &(struct request){.type = type})) < 0) {
                fprintf(stderr, "pginactl: cannot build request: %s\n", strerror(-r));
                return EXIT_PROTOCOL;
        }
        return ctl_call(ctl, &req, res);
}

/* A non-OK answer: say what the daemon said and return its exit code. */
int report_status(const char *what, const struct proto_result *res) {
        _cleanup_free_ char *msg = sanitize(res->message, true);
        const char *status = proto_status_to_string(res->status);

        if (msg && strcasecmp(msg, status) == 0)
                msg = (free(msg), NULL); /* nothing beyond the status */
        if (res->status == PROTO_PERMISSION)
                fprintf(stderr, "pginactl: %s: permission denied by pginad%s%s (admin requests "
                        "need root)\n", what, msg && *msg ? ": " : "", strempty(msg));
        else
                fprintf(stderr, "pginactl: %s: %s%s%s\n", what, status, msg && *msg ? ": " : "",
                        strempty(msg));
        return exit_code(res->status);
}
