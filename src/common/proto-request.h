/* The client requests of proto.h as one typed struct, with the one encoder (clients: pam_pgina,
 * pginactl, libnss_pgina) and the one decoder (pginad, the fuzz targets) of every request type. */
#pragma once

#include <stdint.h>

#include "proto.h"
#include "secret.h"

/* A request, as proto.h lays it out per type. Strings are never NULL after request_parse(); for
 * request_encode() they may be NULL (sent as "") and are only read (clients lend theirs). */
struct request {
        uint16_t type;
        uint8_t scenario;
        uint8_t run_gateway;
        uint32_t pid;
        uint32_t id; /* GETPWNAM by uid, GETGRNAM by gid (user = ""); WAIT_JOBS: seconds */
        char *user; /* GETGRNAM: the group's name */
        char *service, *rhost, *tty, *session, *token;
        char *plugin; /* PLUGIN_ADMIN */
        uint32_t argc;
        char **argv;
        struct secret *password; /* LOGIN, SIMULATE, CHANGE_PASSWORD (old) */
        struct secret *new_password; /* CHANGE_PASSWORD */
};

void request_free(struct request *r);
/* Decode the payload of a frame of `type` into r (r->type = type). -EBADMSG for an unknown type,
 * a short, over-long or invalid field, or trailing bytes; r is then freed. */
int request_parse(uint16_t type, struct pbuf *p, struct request *r);
/* Append r as one whole frame of type r->type to b. A buffer that gets a password (LOGIN,
 * CHANGE_PASSWORD, SIMULATE) should be pbuf_init_secret. -EINVAL for an unknown type or a field
 * the wire cannot carry; b is then reset. */
int request_encode(struct pbuf *b, const struct request *r);
