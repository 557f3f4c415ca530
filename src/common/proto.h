/* pgina wire protocol: pam_pgina.so, pginactl and libnss_pgina <-> pginad, and pginad's master <->
 * its workers. This header is the spec; proto.c is the only code that touches raw bytes.
 *
 * Transport: UNIX stream socket (default /run/pgina/pginad.sock, 0666, the daemon checks every
 * peer with SO_PEERCRED). One connection may carry several requests, one at a time.
 * Each request layout below has one encoder and one decoder, over struct request, in
 * proto-request.c; clients and pginad use only those.
 *
 * Frame:   u32 length | u16 version | u16 type | payload
 *          All integers big-endian. `length` counts version+type+payload, and is checked against
 *          PROTO_FRAME_MAX before anything is allocated. An unknown version or type, a short or
 *          over-long field, trailing bytes, or a string with an embedded NUL closes the
 *          connection (that connection only).
 * Fields:  u8, u16, u32, u64; str = u32 length + bytes (no NUL inside, at most PROTO_STR_MAX);
 *          secret = str whose bytes are a password: read into a struct secret, the frame buffer
 *          wiped when freed.
 *
 * Conversation: the client sends one request frame; the daemon answers with zero or more
 * PROTO_MSG_INFO frames (text for the PAM conversation, progress) and then exactly one
 * PROTO_MSG_RESULT frame. A client treats silence longer than its timeout between two frames as
 * "daemon unavailable".
 *
 * PROTO_MSG_RESULT: u32 status (enum proto_status) | str message | u32 nrows | rows
 *          row = u32 nfields | nfields × (str key, str value)
 *          Rows carry structured answers (sessions, plugins, simulator steps, environment for
 *          the session); which keys appear is documented at each request type below.
 * The wire carries pgina's own statuses, never libpam's numbers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pgina/buf.h>

#include "secret.h"

#define PROTO_VERSION 1u
#define PROTO_FRAME_MAX (64u * 1024u)
#define PROTO_HEADER_LEN 8u /* u32 length + u16 version + u16 type */
#define PROTO_STR_MAX PBUF_STR_MAX /* 8192 */
#define PROTO_ROWS_MAX 4096u
#define PROTO_FIELDS_MAX 2048u
#define PROTO_ARGS_MAX 64u
#define PGINA_SOCKET_DEFAULT "/run/pgina/pginad.sock"

enum proto_type {
        /* LOGIN: u8 scenario (enum pgina_scenario) | str user | secret password | str service |
         *        str rhost | str tty | str session (the caller's PGINA_SESSION, may be "")
         * logon  : authentication, authorization, gateway. Result rows: one row with
         *          "token" (for OPEN_SESSION), "user", "uid", "authorized" = "yes"/"no" and
         *          "password_expired" = "yes"/"no" (right password, to be changed before the
         *          logon goes on: acct_mgmt answers PAM_NEW_AUTHTOK_REQD).
         *          Status OK also when authorization denied: then authorized=no, and message says
         *          why (pam_pgina's acct_mgmt reports it).
         * unlock : authentication only, and only for the session's own user (non-root peers: the
         *          user must be the peer's uid).
         * credui : authentication + authorization; appended to the session named by `session`. */
        PROTO_REQ_LOGIN = 1,
        /* AUTHORIZE: str user | str service | str rhost — authorization alone, for a user another
         * PAM module authenticated. */
        PROTO_REQ_AUTHORIZE = 2,
        /* OPEN_SESSION: str user | str token ("" if none) | str service | str tty | str rhost |
         *        u32 leader pid. Result row: "session" = id, then any "env:NAME" = value to export. */
        PROTO_REQ_OPEN_SESSION = 3,
        /* CLOSE_SESSION: str session | str user */
        PROTO_REQ_CLOSE_SESSION = 4,
        /* CHANGE_PASSWORD: str user | secret old (empty = none; root peers only) | secret new */
        PROTO_REQ_CHANGE_PASSWORD = 5,

        /* Admin requests: root peers only. */
        PROTO_REQ_STATUS = 16, /* rows: kind=daemon|plugin|job, … */
        PROTO_REQ_SESSIONS = 17, /* rows: session, user, uid, service, tty, rhost, opened, credui,
                                  * phases (of the logon that opened it, "" when not known) */
        PROTO_REQ_PLUGINS = 18, /* rows: name, version, description, stages, abi, path, health,
                                 * reason, order ("authentication:1 gateway:2"), options (one line
                                 * per option: key TAB type TAB default TAB help) */
        /* SIMULATE: str user | secret password | u8 run_gateway. rows: stage, plugin, result,
         * message; last row: stage=final. */
        PROTO_REQ_SIMULATE = 19,
        PROTO_REQ_RELOAD = 20, /* re-read the config; refused (old kept) when it is bad */
        /* PLUGIN_ADMIN: str plugin | str user ("" = none) | u32 argc | argc × str — a plugin's
         * admin command; its output comes as INFO frames (kind TEXT), then the RESULT. */
        PROTO_REQ_PLUGIN_ADMIN = 21,
        /* WAIT_JOBS: str user ("" = any user) | u32 seconds (0 = no limit) — answered OK once no
         * logoff job (of user) is queued or running, UNAVAILABLE when seconds pass first;
         * keepalives meanwhile. For shutdown scripts and benchmarks: no polling. */
        PROTO_REQ_WAIT_JOBS = 22,
        /* METRICS: no fields. pginad's metrics in Prometheus' text format (version 0.0.4) come
         * as INFO frames (kind TEXT: whole lines, without the last one's newline, each at most
         * PROTO_STR_MAX), then an empty OK RESULT; what pginactl metrics prints. */
        PROTO_REQ_METRICS = 23,

        /* NSS lookups, any peer: str user ("" = by uid) | u32 uid. Result row: user, uid, gid,
         * gecos, home, shell; NOT_FOUND when no plugin knows the user; UNAVAILABLE when one could
         * not tell. pginad remembers answers briefly (found 60 s, not found 10 s). */
        PROTO_REQ_GETPWNAM = 32,
        /* GETGRNAM: str group ("" = by gid) | u32 gid. Result row: group, gid, member (repeated,
         * at most 1000); statuses and memory as GETPWNAM. */
        PROTO_REQ_GETGRNAM = 33,

        /* Daemon -> client. */
        PROTO_MSG_INFO = 100, /* u8 kind (enum proto_info_kind) | str text */
        PROTO_MSG_RESULT = 101,

        /* Worker -> master (pipe). */
        PROTO_W_PLUGIN_BEGIN = 200, /* str plugin | str stage: which plugin runs now */
        PROTO_W_HEALTH = 201, /* str plugin | u8 ok | str reason */
};

enum proto_info_kind {
        PROTO_INFO_TEXT = 0, /* PAM_TEXT_INFO */
        PROTO_INFO_ERROR = 1, /* PAM_ERROR_MSG */
        PROTO_INFO_PROGRESS = 2, /* PAM_TEXT_INFO, may be rate-limited by the client */
        /* Nothing to show: the request is still being worked on (pginad sends one every
         * PROTO_KEEPALIVE_MS while a worker runs), so a client's silence timeout only fires when
         * pginad itself is stuck. request_timeout bounds the work. proto_call() swallows it. */
        PROTO_INFO_KEEPALIVE = 3,
};
#define PROTO_KEEPALIVE_MS 10000

enum proto_status {
        PROTO_OK = 0,
        PROTO_AUTH_FAILED = 1, /* wrong password and unknown user alike */
        PROTO_DENIED = 2, /* authorization refused */
        PROTO_GATEWAY_FAILED = 3, /* the logon could not be completed */
        PROTO_UNAVAILABLE = 4, /* no plugin, plugin crashed or timed out, internal error */
        PROTO_PERMISSION = 5, /* the peer may not make this request */
        PROTO_BAD_REQUEST = 6,
        PROTO_NOT_FOUND = 7, /* session or user unknown (admin requests, NSS) */
        PROTO_CHANGE_FAILED = 8, /* change password refused */
        PROTO_SHUTTING_DOWN = 9,
        PROTO_CONFIG_INVALID = 10, /* reload refused */
        _PROTO_STATUS_MAX,
};

const char *proto_status_to_string(uint32_t status);

/* Framing. frame_begin writes a header with a placeholder length; frame_end fills it and fails
 * with -EMSGSIZE over PROTO_FRAME_MAX. */
int proto_frame_begin(struct pbuf *b, uint16_t type);
int proto_frame_end(struct pbuf *b);
/* Is there a whole frame at the start of buf? 0 = need more, >0 = its total length,
 * -EMSGSIZE = announced length over the maximum, -EPROTO = bad version. */
long proto_frame_complete(const uint8_t *buf, size_t len);
/* Parse the header of a complete frame: type, and a pbuf reading its payload (borrowed memory:
 * do not pbuf_free it; wipe the source buffer instead). */
int proto_frame_open(const uint8_t *buf, size_t len, uint16_t *type, struct pbuf *payload);

/* Blocking helpers for clients. send: MSG_NOSIGNAL. recv: waits at most timeout_ms for the whole
 * frame (-ETIMEDOUT), -ECONNRESET on EOF; *payload owns its memory. */
int proto_send(int fd, const struct pbuf *frame);
int proto_recv(int fd, int timeout_ms, uint16_t *type, struct pbuf *payload);

/* Connect to the daemon's socket with a timeout; returns fd or -errno. */
int proto_connect(const char *path, int timeout_ms);

/* Result frames. */
struct proto_row {
        size_t n;
        char **keys;
        char **values;
};
struct proto_result {
        uint32_t status;
        char *message;
        size_t nrows;
        struct proto_row *rows;
};
void proto_result_free(struct proto_result *r);
int proto_result_parse(struct pbuf *payload, struct proto_result *r);
const char *proto_row_get(const struct proto_row *row, const char *key);

/* Build a result frame: begin, then rows (row_begin + fields), then end. */
int proto_result_begin(struct pbuf *b, uint32_t status, const char *message, uint32_t nrows);
int proto_row_begin(struct pbuf *b, uint32_t nfields);
int proto_row_field(struct pbuf *b, const char *key, const char *value);

/* Client side of one request: send the frame, pass each INFO to on_info, parse the RESULT.
 * Returns 0 with *result filled, or -errno (ETIMEDOUT, ECONNRESET, EBADMSG…). */
typedef void (*proto_info_fn)(void *userdata, uint8_t kind, const char *text);
int proto_call(int fd, const struct pbuf *request, int timeout_ms, proto_info_fn on_info,
               void *userdata, struct proto_result *result);
