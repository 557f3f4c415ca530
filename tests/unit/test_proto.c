/* Unit tests of the wire protocol (src/common/proto.c): encoding, every reader's bounds check,
 * framing limits, result rows, and the blocking socket helpers over a socketpair. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"
#include "secret.h"
#include "util.h"

/* A pbuf holding exactly these bytes, for the readers. */
static void pbuf_from(struct pbuf *b, const void *p, size_t n) {
        pbuf_init(b);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(pbuf_put_u8(b, ((const uint8_t *)p)[i]), 0);
}

static void test_integers_big_endian_round_trip(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        static const uint8_t expect[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02,
                                         0x03, 0x04, 0x05, 0x06, 0x07, 0x08};

        pbuf_init(&b);
        assert_int_equal(pbuf_put_u8(&b, 0xab), 0);
        assert_int_equal(pbuf_put_u16(&b, 0x1234), 0);
        assert_int_equal(pbuf_put_u32(&b, 0xdeadbeef), 0);
        assert_int_equal(pbuf_put_u64(&b, 0x0102030405060708ull), 0);
        assert_int_equal(b.len, sizeof expect);
        assert_memory_equal(b.data, expect, sizeof expect);

        assert_int_equal(pbuf_get_u8(&b, &u8), 0);
        assert_int_equal(pbuf_get_u16(&b, &u16), 0);
        assert_int_equal(pbuf_get_u32(&b, &u32), 0);
        assert_int_equal(pbuf_get_u64(&b, &u64), 0);
        assert_int_equal(u8, 0xab);
        assert_int_equal(u16, 0x1234);
        assert_int_equal(u32, 0xdeadbeef);
        assert_true(u64 == 0x0102030405060708ull);
        assert_int_equal(pbuf_expect_end(&b), 0);
}

static void test_every_integer_reader_checks_bounds(void **state) {
        static const uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;

        for (size_t have = 0; have < 8; have++) {
                _cleanup_pbuf_ struct pbuf b;

                pbuf_from(&b, bytes, have);
                if (have < 1)
                        assert_int_equal(pbuf_get_u8(&b, &u8), -EBADMSG);
                if (have < 2)
                        assert_int_equal(pbuf_get_u16(&b, &u16), -EBADMSG);
                if (have < 4)
                        assert_int_equal(pbuf_get_u32(&b, &u32), -EBADMSG);
                assert_int_equal(pbuf_get_u64(&b, &u64), -EBADMSG);
                /* A failed read consumes nothing the next read could trip over. */
                assert_true(b.pos <= b.len);
        }
}

static void test_reads_past_end_after_success_fail(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        uint16_t u16;

        pbuf_init(&b);
        assert_int_equal(pbuf_put_u16(&b, 7), 0);
        assert_int_equal(pbuf_get_u16(&b, &u16), 0);
        assert_int_equal(pbuf_get_u16(&b, &u16), -EBADMSG);
        assert_int_equal(pbuf_expect_end(&b), 0);
}

static void test_string_round_trip_and_empty(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_free_ char *a = NULL, *e = NULL, *n = NULL;

        pbuf_init(&b);
        assert_int_equal(pbuf_put_str(&b, "alice"), 0);
        assert_int_equal(pbuf_put_str(&b, ""), 0);
        assert_int_equal(pbuf_put_str(&b, NULL), 0); /* NULL is sent as "" */
        assert_int_equal(pbuf_get_str(&b, &a, 64), 0);
        assert_int_equal(pbuf_get_str(&b, &e, 64), 0);
        assert_int_equal(pbuf_get_str(&b, &n, 64), 0);
        assert_string_equal(a, "alice");
        assert_string_equal(e, "");
        assert_string_equal(n, "");
        assert_int_equal(pbuf_expect_end(&b), 0);
}

static void test_string_reader_refuses_truncated_body(void **state) {
        /* length 10, only 3 bytes follow */
        static const uint8_t bytes[] = {0, 0, 0, 10, 'a', 'b', 'c'};
        _cleanup_pbuf_ struct pbuf b;
        char *s = NULL;

        pbuf_from(&b, bytes, sizeof bytes);
        assert_int_equal(pbuf_get_str(&b, &s, 64), -EBADMSG);
        assert_null(s);
}

static void test_string_reader_refuses_truncated_length(void **state) {
        static const uint8_t bytes[] = {0, 0, 1};
        _cleanup_pbuf_ struct pbuf b;
        char *s = NULL;

        pbuf_from(&b, bytes, sizeof bytes);
        assert_int_equal(pbuf_get_str(&b, &s, 64), -EBADMSG);
        assert_null(s);
}

static void test_string_reader_refuses_embedded_nul(void **state) {
        static const uint8_t bytes[] = {0, 0, 0, 5, 'r', 'o', 0, 't', 'x'};
        _cleanup_pbuf_ struct pbuf b;
        char *s = NULL;

        pbuf_from(&b, bytes, sizeof bytes);
        assert_int_equal(pbuf_get_str(&b, &s, 64), -EBADMSG);
        assert_null(s);
}

static void test_string_reader_enforces_caller_max(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_free_ char *ok = NULL;
        char *s = NULL;

        pbuf_init(&b);
        assert_int_equal(pbuf_put_str(&b, "12345678"), 0);
        assert_int_equal(pbuf_get_str(&b, &s, 7), -EBADMSG);
        assert_null(s);
        b.pos = 0;
        assert_int_equal(pbuf_get_str(&b, &ok, 8), 0);
        assert_string_equal(ok, "12345678");
}

static void test_string_reader_enforces_protocol_max(void **state) {
        /* A header announcing PROTO_STR_MAX + 1 bytes is refused even when the caller's max is
         * larger, before anything is allocated. */
        uint8_t hdr[4];
        uint32_t n = PROTO_STR_MAX + 1;
        _cleanup_pbuf_ struct pbuf b;
        char *s = NULL;

        hdr[0] = (uint8_t)(n >> 24);
        hdr[1] = (uint8_t)(n >> 16);
        hdr[2] = (uint8_t)(n >> 8);
        hdr[3] = (uint8_t)n;
        pbuf_from(&b, hdr, sizeof hdr);
        for (uint32_t i = 0; i < n; i++)
                assert_int_equal(pbuf_put_u8(&b, 'x'), 0);
        assert_int_equal(pbuf_get_str(&b, &s, SIZE_MAX), -EBADMSG);
        assert_null(s);
}

static void test_string_writer_refuses_nul_and_oversize(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_free_ char *big = malloc(PROTO_STR_MAX + 2);

        pbuf_init(&b);
        assert_int_equal(pbuf_put_bytes_str(&b, "a\0b", 3), -EINVAL);
        assert_non_null(big);
        memset(big, 'x', PROTO_STR_MAX + 1);
        big[PROTO_STR_MAX + 1] = 0;
        assert_int_equal(pbuf_put_str(&b, big), -EINVAL);
        big[PROTO_STR_MAX] = 0;
        assert_int_equal(pbuf_put_str(&b, big), 0);
}

static void test_secret_round_trip_and_limit(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_secret_ struct secret *in = secret_from_cstr("s3cr3t pw");
        _cleanup_secret_ struct secret *out = NULL, *empty = NULL;
        struct secret *big_out = NULL;
        char big[SECRET_MAX + 1];

        pbuf_init(&b);
        assert_non_null(in);
        assert_int_equal(pbuf_put_secret(&b, in), 0);
        assert_int_equal(pbuf_put_secret(&b, NULL), 0);
        assert_int_equal(pbuf_get_secret(&b, &out), 0);
        assert_int_equal(pbuf_get_secret(&b, &empty), 0);
        assert_int_equal(out->len, 9);
        assert_string_equal(out->data, "s3cr3t pw");
        assert_int_equal(empty->len, 0);
        assert_string_equal(empty->data, "");

        /* A password longer than SECRET_MAX is a malformed field. */
        pbuf_reset(&b);
        memset(big, 'p', sizeof big);
        assert_int_equal(pbuf_put_bytes_str(&b, big, sizeof big), 0);
        assert_int_equal(pbuf_get_secret(&b, &big_out), -EBADMSG);
        assert_null(big_out);
}

static void test_secret_reader_refuses_nul_and_truncation(void **state) {
        static const uint8_t nul[] = {0, 0, 0, 3, 'a', 0, 'b'};
        static const uint8_t shortb[] = {0, 0, 0, 4, 'a', 'b'};
        _cleanup_pbuf_ struct pbuf b1, b2;
        struct secret *s = NULL;

        pbuf_from(&b1, nul, sizeof nul);
        assert_int_equal(pbuf_get_secret(&b1, &s), -EBADMSG);
        pbuf_from(&b2, shortb, sizeof shortb);
        assert_int_equal(pbuf_get_secret(&b2, &s), -EBADMSG);
        assert_null(s);
}

static void test_expect_end_refuses_trailing_bytes(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        uint8_t v;

        pbuf_init(&b);
        assert_int_equal(pbuf_put_u8(&b, 1), 0);
        assert_int_equal(pbuf_put_u8(&b, 2), 0);
        assert_int_equal(pbuf_get_u8(&b, &v), 0);
        assert_int_equal(pbuf_expect_end(&b), -EBADMSG);
}

static void test_reset_wipes_and_keeps_allocation(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        uint8_t *data;

        pbuf_init(&b);
        assert_int_equal(pbuf_put_str(&b, "password"), 0);
        data = b.data;
        pbuf_reset(&b);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.pos, 0);
        assert_ptr_equal(b.data, data);
        for (size_t i = 0; i < b.cap; i++)
                assert_int_equal(b.data[i], 0);
}

/* ---- framing ---------------------------------------------------------------------------- */

static void test_frame_header_layout(void **state) {
        _cleanup_pbuf_ struct pbuf b;

        pbuf_init(&b);
        assert_int_equal(proto_frame_begin(&b, PROTO_REQ_STATUS), 0);
        assert_int_equal(pbuf_put_u32(&b, 0x01020304), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        assert_int_equal(b.len, PROTO_HEADER_LEN + 4);
        /* length counts version + type + payload */
        assert_int_equal(b.data[0], 0);
        assert_int_equal(b.data[1], 0);
        assert_int_equal(b.data[2], 0);
        assert_int_equal(b.data[3], 8);
        assert_int_equal((b.data[4] << 8) | b.data[5], PROTO_VERSION);
        assert_int_equal((b.data[6] << 8) | b.data[7], PROTO_REQ_STATUS);
}

static void test_frame_complete_needs_whole_frame(void **state) {
        _cleanup_pbuf_ struct pbuf b;

        pbuf_init(&b);
        assert_int_equal(proto_frame_begin(&b, PROTO_REQ_LOGIN), 0);
        assert_int_equal(pbuf_put_str(&b, "alice"), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        for (size_t n = 0; n < b.len; n++)
                assert_int_equal(proto_frame_complete(b.data, n), 0);
        assert_int_equal(proto_frame_complete(b.data, b.len), (long)b.len);
        /* more bytes behind it (the next frame) do not change the answer */
        assert_int_equal(pbuf_put_u8(&b, 0xff), 0);
        assert_int_equal(proto_frame_complete(b.data, b.len), (long)b.len - 1);
}

static void test_frame_complete_refuses_oversized_length(void **state) {
        uint32_t body = PROTO_FRAME_MAX + 1;
        uint8_t hdr[PROTO_HEADER_LEN] = {(uint8_t)(body >> 24), (uint8_t)(body >> 16),
                                         (uint8_t)(body >> 8), (uint8_t)body, 0, PROTO_VERSION,
                                         0, PROTO_REQ_STATUS};
        uint8_t max[PROTO_HEADER_LEN] = {0xff, 0xff, 0xff, 0xff, 0, PROTO_VERSION, 0, 16};

        assert_int_equal(proto_frame_complete(hdr, sizeof hdr), -EMSGSIZE);
        assert_int_equal(proto_frame_complete(max, sizeof max), -EMSGSIZE);
        body = PROTO_FRAME_MAX; /* exactly the maximum is allowed: needs more bytes */
        hdr[0] = (uint8_t)(body >> 24);
        hdr[1] = (uint8_t)(body >> 16);
        hdr[2] = (uint8_t)(body >> 8);
        hdr[3] = (uint8_t)body;
        assert_int_equal(proto_frame_complete(hdr, sizeof hdr), 0);
}

static void test_frame_complete_refuses_version_mismatch(void **state) {
        uint8_t hdr[PROTO_HEADER_LEN] = {0, 0, 0, 4, 0, PROTO_VERSION + 1, 0, PROTO_REQ_STATUS};
        uint8_t hdr0[PROTO_HEADER_LEN] = {0, 0, 0, 4, 0, 0, 0, PROTO_REQ_STATUS};
        uint16_t type;
        struct pbuf p;

        assert_int_equal(proto_frame_complete(hdr, sizeof hdr), -EPROTO);
        assert_int_equal(proto_frame_complete(hdr0, sizeof hdr0), -EPROTO);
        assert_int_equal(proto_frame_open(hdr, sizeof hdr, &type, &p), -EPROTO);
}

static void test_frame_complete_refuses_length_below_header(void **state) {
        uint8_t hdr[PROTO_HEADER_LEN] = {0, 0, 0, 3, 0, PROTO_VERSION, 0, PROTO_REQ_STATUS};

        assert_int_equal(proto_frame_complete(hdr, sizeof hdr), -EBADMSG);
}

static void test_frame_open_gives_type_and_payload(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_free_ char *s = NULL;
        struct pbuf p;
        uint16_t type = 0;

        pbuf_init(&b);
        assert_int_equal(proto_frame_begin(&b, PROTO_REQ_CLOSE_SESSION), 0);
        assert_int_equal(pbuf_put_str(&b, "sess-1"), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        assert_int_equal(proto_frame_open(b.data, b.len, &type, &p), 0);
        assert_int_equal(type, PROTO_REQ_CLOSE_SESSION);
        assert_int_equal(pbuf_get_str(&p, &s, 64), 0);
        assert_string_equal(s, "sess-1");
        assert_int_equal(pbuf_expect_end(&p), 0);
        /* truncated frame */
        assert_int_equal(proto_frame_open(b.data, b.len - 1, &type, &p), -EBADMSG);
}

static void test_frame_end_refuses_oversized_frame_with_emsgsize(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_free_ char *chunk = malloc(PROTO_STR_MAX + 1);

        assert_non_null(chunk);
        memset(chunk, 'x', PROTO_STR_MAX);
        chunk[PROTO_STR_MAX] = 0;
        pbuf_init(&b);
        assert_int_equal(proto_frame_begin(&b, PROTO_MSG_RESULT), 0);
        while (b.len <= PROTO_FRAME_MAX + 4)
                assert_int_equal(pbuf_put_str(&b, chunk), 0);
        assert_int_equal(proto_frame_end(&b), -EMSGSIZE);
}

static void test_frame_of_exactly_max_is_accepted(void **state) {
        _cleanup_pbuf_ struct pbuf b;

        pbuf_init(&b);
        assert_int_equal(proto_frame_begin(&b, PROTO_MSG_RESULT), 0);
        while (b.len - 4 < PROTO_FRAME_MAX)
                assert_int_equal(pbuf_put_u8(&b, 0), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        assert_int_equal(proto_frame_complete(b.data, b.len), (long)b.len);
        assert_int_equal(pbuf_put_u8(&b, 0), 0);
        assert_int_equal(proto_frame_end(&b), -EMSGSIZE);
}

static void test_status_names(void **state) {
        assert_string_equal(proto_status_to_string(PROTO_OK), "ok");
        for (uint32_t s = 0; s < _PROTO_STATUS_MAX; s++)
                assert_string_not_equal(proto_status_to_string(s), "unknown status");
        assert_string_equal(proto_status_to_string(_PROTO_STATUS_MAX), "unknown status");
        assert_string_equal(proto_status_to_string(UINT32_MAX), "unknown status");
}

/* ---- result frames ---------------------------------------------------------------------- */

static void build_result(struct pbuf *b) {
        assert_int_equal(proto_result_begin(b, PROTO_DENIED, "not in group", 2), 0);
        assert_int_equal(proto_row_begin(b, 2), 0);
        assert_int_equal(proto_row_field(b, "stage", "authorization"), 0);
        assert_int_equal(proto_row_field(b, "plugin", "localmachine"), 0);
        assert_int_equal(proto_row_begin(b, 0), 0);
        assert_int_equal(proto_frame_end(b), 0);
}

static void test_result_rows_round_trip(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        struct proto_result r;
        struct pbuf p;
        uint16_t type;

        pbuf_init(&b);
        build_result(&b);
        assert_int_equal(proto_frame_open(b.data, b.len, &type, &p), 0);
        assert_int_equal(type, PROTO_MSG_RESULT);
        assert_int_equal(proto_result_parse(&p, &r), 0);
        assert_int_equal(r.status, PROTO_DENIED);
        assert_string_equal(r.message, "not in group");
        assert_int_equal(r.nrows, 2);
        assert_int_equal(r.rows[0].n, 2);
        assert_string_equal(proto_row_get(&r.rows[0], "stage"), "authorization");
        assert_string_equal(proto_row_get(&r.rows[0], "plugin"), "localmachine");
        assert_null(proto_row_get(&r.rows[0], "missing"));
        assert_int_equal(r.rows[1].n, 0);
        assert_null(proto_row_get(&r.rows[1], "stage"));
        proto_result_free(&r);
        assert_null(r.rows);
        assert_null(r.message);
}

static void test_result_parse_refuses_every_truncation(void **state) {
        _cleanup_pbuf_ struct pbuf b;

        pbuf_init(&b);
        build_result(&b);
        /* Every cut of the payload fails cleanly (ASan/LSan catch leaks on the error paths). */
        for (size_t cut = PROTO_HEADER_LEN; cut < b.len; cut++) {
                struct pbuf p;
                struct proto_result r;

                pbuf_init(&p);
                p.data = b.data + PROTO_HEADER_LEN;
                p.len = p.cap = cut - PROTO_HEADER_LEN;
                assert_int_equal(proto_result_parse(&p, &r), -EBADMSG);
                assert_null(r.rows);
                assert_null(r.message);
        }
}

static void test_result_parse_refuses_trailing_bytes(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        struct proto_result r;
        struct pbuf p;
        uint16_t type;

        pbuf_init(&b);
        assert_int_equal(proto_result_begin(&b, PROTO_OK, "", 0), 0);
        assert_int_equal(pbuf_put_u8(&b, 0), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        assert_int_equal(proto_frame_open(b.data, b.len, &type, &p), 0);
        assert_int_equal(proto_result_parse(&p, &r), -EBADMSG);
}

static void test_result_parse_refuses_too_many_rows_and_fields(void **state) {
        _cleanup_pbuf_ struct pbuf b, c;
        struct proto_result r;
        struct pbuf p;
        uint16_t type;

        pbuf_init(&b);
        assert_int_equal(proto_result_begin(&b, PROTO_OK, "", PROTO_ROWS_MAX + 1), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        assert_int_equal(proto_frame_open(b.data, b.len, &type, &p), 0);
        assert_int_equal(proto_result_parse(&p, &r), -EBADMSG);

        pbuf_init(&c);
        assert_int_equal(proto_result_begin(&c, PROTO_OK, "", 1), 0);
        assert_int_equal(proto_row_begin(&c, PROTO_FIELDS_MAX + 1), 0);
        assert_int_equal(proto_frame_end(&c), 0);
        assert_int_equal(proto_frame_open(c.data, c.len, &type, &p), 0);
        assert_int_equal(proto_result_parse(&p, &r), -EBADMSG);
}

static void test_row_field_refuses_overlong_value(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        _cleanup_free_ char *big = malloc(PROTO_STR_MAX + 2);

        assert_non_null(big);
        memset(big, 'v', PROTO_STR_MAX + 1);
        big[PROTO_STR_MAX + 1] = 0;
        pbuf_init(&b);
        assert_int_equal(proto_result_begin(&b, PROTO_OK, "", 1), 0);
        assert_int_equal(proto_row_begin(&b, 1), 0);
        assert_int_equal(proto_row_field(&b, "k", big), -EINVAL);
}

/* ---- sockets ---------------------------------------------------------------------------- */

static void test_send_recv_over_socketpair(void **state) {
        _cleanup_pbuf_ struct pbuf b, in;
        _cleanup_free_ char *s = NULL;
        int sv[2];
        uint16_t type;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pbuf_init(&b);
        pbuf_init(&in);
        assert_int_equal(proto_frame_begin(&b, PROTO_REQ_SESSIONS), 0);
        assert_int_equal(pbuf_put_str(&b, "hello"), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        assert_int_equal(proto_send(sv[0], &b), 0);
        assert_int_equal(proto_recv(sv[1], 1000, &type, &in), 0);
        assert_int_equal(type, PROTO_REQ_SESSIONS);
        assert_int_equal(pbuf_get_str(&in, &s, 64), 0);
        assert_string_equal(s, "hello");
        assert_int_equal(pbuf_expect_end(&in), 0);
        close(sv[0]);
        close(sv[1]);
}

static void test_recv_times_out_on_partial_frame(void **state) {
        static const uint8_t part[] = {0, 0, 0, 20, 0, PROTO_VERSION, 0, PROTO_REQ_STATUS, 1};
        _cleanup_pbuf_ struct pbuf in;
        int sv[2];
        uint16_t type;
        long long t0;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pbuf_init(&in);
        assert_int_equal(write(sv[0], part, sizeof part), (ssize_t)sizeof part);
        t0 = now_ms();
        assert_int_equal(proto_recv(sv[1], 200, &type, &in), -ETIMEDOUT);
        assert_true(now_ms() - t0 >= 150);
        assert_true(now_ms() - t0 < 5000);
        close(sv[0]);
        close(sv[1]);
}

static void test_recv_reports_eof_and_oversize(void **state) {
        uint8_t big[PROTO_HEADER_LEN] = {0x7f, 0xff, 0xff, 0xff, 0, PROTO_VERSION, 0, 16};
        uint8_t badv[PROTO_HEADER_LEN] = {0, 0, 0, 4, 0x12, 0x34, 0, 16};
        _cleanup_pbuf_ struct pbuf in;
        int sv[2];
        uint16_t type;

        pbuf_init(&in);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(write(sv[0], big, sizeof big), (ssize_t)sizeof big);
        assert_int_equal(proto_recv(sv[1], 1000, &type, &in), -EMSGSIZE);
        assert_int_equal(write(sv[0], badv, sizeof badv), (ssize_t)sizeof badv);
        assert_int_equal(proto_recv(sv[1], 1000, &type, &in), -EPROTO);
        close(sv[0]);
        assert_int_equal(proto_recv(sv[1], 1000, &type, &in), -ECONNRESET);
        close(sv[1]);
}

struct infos {
        int n;
        char text[2][64];
        uint8_t kind[2];
};

static void collect_info(void *userdata, uint8_t kind, const char *text) {
        struct infos *i = userdata;
        if (i->n < 2) {
                snprintf(i->text[i->n], sizeof i->text[0], "%s", text);
                i->kind[i->n] = kind;
        }
        i->n++;
}

static void test_call_relays_info_then_parses_result(void **state) {
        _cleanup_pbuf_ struct pbuf req, reply;
        struct proto_result r;
        struct infos infos = {0};
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pbuf_init(&req);
        pbuf_init(&reply);
        /* The "daemon" side is written ahead into the socket buffer. */
        assert_int_equal(proto_frame_begin(&reply, PROTO_MSG_INFO), 0);
        assert_int_equal(pbuf_put_u8(&reply, PROTO_INFO_PROGRESS), 0);
        assert_int_equal(pbuf_put_str(&reply, "Restoring profile"), 0);
        assert_int_equal(proto_frame_end(&reply), 0);
        assert_int_equal(proto_send(sv[1], &reply), 0);
        assert_int_equal(proto_frame_begin(&reply, PROTO_MSG_INFO), 0);
        assert_int_equal(pbuf_put_u8(&reply, PROTO_INFO_ERROR), 0);
        assert_int_equal(pbuf_put_str(&reply, "Almost out of quota"), 0);
        assert_int_equal(proto_frame_end(&reply), 0);
        assert_int_equal(proto_send(sv[1], &reply), 0);
        pbuf_reset(&reply);
        build_result(&reply);
        assert_int_equal(proto_send(sv[1], &reply), 0);

        assert_int_equal(proto_frame_begin(&req, PROTO_REQ_STATUS), 0);
        assert_int_equal(proto_frame_end(&req), 0);
        assert_int_equal(proto_call(sv[0], &req, 1000, collect_info, &infos, &r), 0);
        assert_int_equal(infos.n, 2);
        assert_string_equal(infos.text[0], "Restoring profile");
        assert_int_equal(infos.kind[0], PROTO_INFO_PROGRESS);
        assert_string_equal(infos.text[1], "Almost out of quota");
        assert_int_equal(infos.kind[1], PROTO_INFO_ERROR);
        assert_int_equal(r.status, PROTO_DENIED);
        assert_int_equal(r.nrows, 2);
        proto_result_free(&r);
        close(sv[0]);
        close(sv[1]);
}

static void test_call_refuses_unexpected_frame_type(void **state) {
        _cleanup_pbuf_ struct pbuf req, reply;
        struct proto_result r;
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pbuf_init(&req);
        pbuf_init(&reply);
        assert_int_equal(proto_frame_begin(&reply, PROTO_REQ_LOGIN), 0);
        assert_int_equal(proto_frame_end(&reply), 0);
        assert_int_equal(proto_send(sv[1], &reply), 0);
        assert_int_equal(proto_frame_begin(&req, PROTO_REQ_STATUS), 0);
        assert_int_equal(proto_frame_end(&req), 0);
        assert_int_equal(proto_call(sv[0], &req, 1000, NULL, NULL, &r), -EBADMSG);
        close(sv[0]);
        close(sv[1]);
}

static void test_connect_to_missing_socket_fails(void **state) {
        int fd = proto_connect("/nonexistent/pgina-test.sock", 200);
        assert_true(fd < 0);
        assert_int_equal(fd, -ENOENT);
        char longp[200];
        memset(longp, 'a', sizeof longp - 1);
        longp[sizeof longp - 1] = 0;
        longp[0] = '/';
        assert_int_equal(proto_connect(longp, 200), -ENAMETOOLONG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_integers_big_endian_round_trip),
                cmocka_unit_test(test_every_integer_reader_checks_bounds),
                cmocka_unit_test(test_reads_past_end_after_success_fail),
                cmocka_unit_test(test_string_round_trip_and_empty),
                cmocka_unit_test(test_string_reader_refuses_truncated_body),
                cmocka_unit_test(test_string_reader_refuses_truncated_length),
                cmocka_unit_test(test_string_reader_refuses_embedded_nul),
                cmocka_unit_test(test_string_reader_enforces_caller_max),
                cmocka_unit_test(test_string_reader_enforces_protocol_max),
                cmocka_unit_test(test_string_writer_refuses_nul_and_oversize),
                cmocka_unit_test(test_secret_round_trip_and_limit),
                cmocka_unit_test(test_secret_reader_refuses_nul_and_truncation),
                cmocka_unit_test(test_expect_end_refuses_trailing_bytes),
                cmocka_unit_test(test_reset_wipes_and_keeps_allocation),
                cmocka_unit_test(test_frame_header_layout),
                cmocka_unit_test(test_frame_complete_needs_whole_frame),
                cmocka_unit_test(test_frame_complete_refuses_oversized_length),
                cmocka_unit_test(test_frame_complete_refuses_version_mismatch),
                cmocka_unit_test(test_frame_complete_refuses_length_below_header),
                cmocka_unit_test(test_frame_open_gives_type_and_payload),
                cmocka_unit_test(test_frame_end_refuses_oversized_frame_with_emsgsize),
                cmocka_unit_test(test_frame_of_exactly_max_is_accepted),
                cmocka_unit_test(test_status_names),
                cmocka_unit_test(test_result_rows_round_trip),
                cmocka_unit_test(test_result_parse_refuses_every_truncation),
                cmocka_unit_test(test_result_parse_refuses_trailing_bytes),
                cmocka_unit_test(test_result_parse_refuses_too_many_rows_and_fields),
                cmocka_unit_test(test_row_field_refuses_overlong_value),
                cmocka_unit_test(test_send_recv_over_socketpair),
                cmocka_unit_test(test_recv_times_out_on_partial_frame),
                cmocka_unit_test(test_recv_reports_eof_and_oversize),
                cmocka_unit_test(test_call_relays_info_then_parses_result),
                cmocka_unit_test(test_call_refuses_unexpected_frame_type),
                cmocka_unit_test(test_connect_to_missing_socket_fails),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
