/* libFuzzer target: the wire protocol as pginad reads it from a client (frames, then each
 * request's decoder, request_parse), as the master reads it from a worker (PLUGIN_BEGIN, INFO,
 * RESULT), and as a client reads the daemon's answer (proto_call on a socket: INFO frames, then
 * the RESULT). The input is the byte stream. */
#include <errno.h>
#include <string.h>

#include "fuzz-common.h"
#include "log.h"
#include "proto.h"
#include "proto-request.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        log_set_level(-1); /* the decoders' warnings are not the finding */
        return 0;
}

/* A parsed request keeps the promises of proto-request.h: no NULL string, argv as long as argc. */
static void check_request(const struct request *r) {
        const char *f[] = {r->user, r->service, r->rhost, r->tty, r->session, r->token, r->plugin};

        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                FUZZ_ASSERT(f[i]);
        FUZZ_ASSERT(r->argc <= PROTO_ARGS_MAX);
        for (uint32_t i = 0; i < r->argc; i++)
                FUZZ_ASSERT(r->argv && r->argv[i] && strlen(r->argv[i]) <= 1024);
        if (r->type == PROTO_REQ_LOGIN || r->type == PROTO_REQ_SIMULATE ||
            r->type == PROTO_REQ_CHANGE_PASSWORD)
                FUZZ_ASSERT(r->password);
        if (r->type == PROTO_REQ_CHANGE_PASSWORD)
                FUZZ_ASSERT(r->new_password && r->new_password->len > 0);
}

/* The clients' encoder writes what the daemon's decoder read, byte for byte (SIMULATE's
 * run_gateway is sent as 0/1, so any other byte there comes back as 1). */
static void check_reencode(const struct request *r, const uint8_t *data, size_t len) {
        _cleanup_pbuf_ struct pbuf b = {0};
        struct pbuf payload;
        struct request again;
        uint16_t type;

        FUZZ_ASSERT(request_encode(&b, r) == 0);
        FUZZ_ASSERT(proto_frame_open(b.data, b.len, &type, &payload) == 0 && type == r->type);
        FUZZ_ASSERT(payload.len == len);
        if (r->type != PROTO_REQ_SIMULATE)
                FUZZ_ASSERT(len == 0 || memcmp(payload.data, data, len) == 0);
        FUZZ_ASSERT(request_parse(type, &payload, &again) == 0);
        FUZZ_ASSERT(again.run_gateway == !!r->run_gateway && again.argc == r->argc);
        request_free(&again);
}

static void check_result(const struct proto_result *res) {
        FUZZ_ASSERT(res->message && res->nrows <= PROTO_ROWS_MAX);
        for (size_t i = 0; i < res->nrows; i++) {
                const struct proto_row *row = &res->rows[i];
                FUZZ_ASSERT(row->n <= PROTO_FIELDS_MAX);
                for (size_t k = 0; k < row->n; k++)
                        FUZZ_ASSERT(row->keys[k] && row->values[k]);
                if (row->n > 0)
                        FUZZ_ASSERT(proto_row_get(row, row->keys[0]));
        }
}

/* Every decoder the master has for one frame's payload. */
static void decode_payload(uint16_t type, const uint8_t *data, size_t len) {
        /* Its own exactly sized copy: a read past the payload is a read past the block. */
        _cleanup_free_ uint8_t *copy = malloc(len ? len : 1);
        struct pbuf p = {.data = copy, .len = len, .cap = len};
        struct proto_result res;
        struct request req;

        FUZZ_ASSERT(copy);
        memcpy(copy, data, len);

        if (request_parse(type, &p, &req) == 0) {
                FUZZ_ASSERT(p.pos == p.len);
                check_request(&req);
                check_reencode(&req, data, len);
                request_free(&req);
        }
        /* worker -> master, pginad-manager.c worker_frames() */
        p.pos = 0;
        if (type == PROTO_W_PLUGIN_BEGIN) {
                _cleanup_free_ char *plugin = NULL, *stage = NULL;
                if (pbuf_get_str(&p, &plugin, 64) == 0 && pbuf_get_str(&p, &stage, 31) == 0)
                        FUZZ_ASSERT(strlen(plugin) <= 64 && strlen(stage) <= 31);
        }
        p.pos = 0;
        if (proto_result_parse(&p, &res) == 0) {
                check_result(&res);
                proto_result_free(&res);
        }
}

/* pginad-manager.c conn_process()/worker_frames(): frames at the start of a buffer, one after
 * the other, until one is incomplete or malformed. */
static void server_side(const uint8_t *data, size_t size) {
        struct pbuf in;
        long n;

        /* A copy in a pbuf as the event loop holds it (exactly sized: ASan sees any overread), so
         * pbuf_consume runs too. */
        pbuf_init(&in);
        in.data = malloc(size ? size : 1);
        FUZZ_ASSERT(in.data);
        memcpy(in.data, data, size);
        in.len = in.cap = size;
        while ((n = proto_frame_complete(in.data, in.len)) > 0) {
                struct pbuf payload;
                uint16_t type;

                FUZZ_ASSERT((size_t)n <= in.len && (size_t)n >= PROTO_HEADER_LEN &&
                            (size_t)n <= PROTO_FRAME_MAX + 4);
                FUZZ_ASSERT(proto_frame_open(in.data, (size_t)n, &type, &payload) == 0);
                FUZZ_ASSERT(payload.len == (size_t)n - PROTO_HEADER_LEN);
                decode_payload(type, payload.data, payload.len);
                pbuf_consume(&in, (size_t)n);
        }
        FUZZ_ASSERT(n == 0 || n == -EMSGSIZE || n == -EBADMSG || n == -EPROTO);
        pbuf_free(&in);
}

static void on_info(void *userdata, uint8_t kind, const char *text) {
        FUZZ_ASSERT(text && kind != PROTO_INFO_KEEPALIVE);
        (*(size_t *)userdata) += strlen(text);
}

/* pam_pgina/pginactl: proto_call() against a daemon that sent exactly the input. */
static void client_side(const uint8_t *data, size_t size) {
        _cleanup_pbuf_ struct pbuf req = {0};
        _cleanup_close_ int peer = -1;
        _cleanup_close_ int fd = fuzz_stream_of(data, size, &peer);
        struct proto_result res;
        size_t info_bytes = 0;

        pbuf_init(&req);
        FUZZ_ASSERT(proto_frame_begin(&req, PROTO_REQ_STATUS) == 0 && proto_frame_end(&req) == 0);
        if (proto_call(fd, &req, 5000, on_info, &info_bytes, &res) == 0) {
                check_result(&res);
                proto_result_free(&res);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        server_side(data, size);
        client_side(data, size);
        return 0;
}
