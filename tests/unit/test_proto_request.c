/* Unit tests of the request codec (src/common/proto-request.c): per request type, encode ->
 * decode gives the same request back, every cut of the payload and a trailing byte are refused,
 * and an over-long field is refused; one golden frame pins the wire bytes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgina/plugin.h"
#include "proto-request.h"
#include "secret.h"
#include "util.h"

static struct secret *secret_of(const char *s) {
        struct secret *x = secret_from_cstr(s);

        assert_non_null(x);
        return x;
}

static void assert_str_or_empty(const char *want, const char *got) {
        assert_non_null(got);
        assert_string_equal(want ? want : "", got);
}

static void assert_secret_equal(const struct secret *want, const struct secret *got) {
        if (!want) {
                assert_true(!got || got->len == 0);
                return;
        }
        assert_non_null(got);
        assert_int_equal(want->len, got->len);
        assert_memory_equal(want->data, got->data, want->len);
}

static void assert_request_equal(const struct request *want, const struct request *got) {
        const uint32_t wn[] = {want->type, want->scenario, want->run_gateway, want->pid, want->id,
                               want->argc};
        const uint32_t gn[] = {got->type, got->scenario, got->run_gateway, got->pid, got->id,
                               got->argc};
        const char *ws[] = {want->user, want->service, want->rhost, want->tty, want->session,
                            want->token, want->plugin};
        const char *gs[] = {got->user, got->service, got->rhost, got->tty, got->session,
                            got->token, got->plugin};

        for (size_t i = 0; i < ELEMENTSOF(wn); i++)
                assert_int_equal(wn[i], gn[i]);
        for (size_t i = 0; i < ELEMENTSOF(ws); i++)
                assert_str_or_empty(ws[i], gs[i]);
        for (uint32_t i = 0; i < want->argc; i++)
                assert_string_equal(want->argv[i], got->argv[i]);
        assert_secret_equal(want->password, got->password);
        assert_secret_equal(want->new_password, got->new_password);
}

/* The payload of a whole frame of b (borrowed), after checking its header. */
static void open_frame(const struct pbuf *b, uint16_t want_type, struct pbuf *payload) {
        uint16_t type;

        assert_int_equal(proto_frame_complete(b->data, b->len), (long)b->len);
        assert_int_equal(proto_frame_open(b->data, b->len, &type, payload), 0);
        assert_int_equal(type, want_type);
}

/* encode -> decode -> equal; then every shorter payload, and one byte more, are refused. */
static void round_trip(const struct request *want) {
        _cleanup_pbuf_ struct pbuf b;
        struct pbuf payload, cut;
        struct request got;

        pbuf_init(&b);
        assert_int_equal(request_encode(&b, want), 0);
        open_frame(&b, want->type, &payload);
        assert_int_equal(request_parse(want->type, &payload, &got), 0);
        assert_request_equal(want, &got);
        request_free(&got);

        open_frame(&b, want->type, &payload);
        for (size_t n = 0; n < payload.len; n++) {
                cut = payload;
                cut.len = n;
                assert_int_equal(request_parse(want->type, &cut, &got), -EBADMSG);
                assert_null(got.user);
                assert_null(got.password);
        }

        _cleanup_pbuf_ struct pbuf longer;
        pbuf_init(&longer);
        for (size_t i = 0; i < payload.len; i++)
                assert_int_equal(pbuf_put_u8(&longer, payload.data[i]), 0);
        assert_int_equal(pbuf_put_u8(&longer, 0), 0);
        assert_int_equal(request_parse(want->type, &longer, &got), -EBADMSG);
}

/* Each of reqs encodes, and the decoder refuses what it wrote. */
static void assert_all_refused(const struct request *reqs, size_t n) {
        struct request got;

        for (size_t i = 0; i < n; i++) {
                _cleanup_pbuf_ struct pbuf b;
                struct pbuf payload;

                pbuf_init(&b);
                assert_int_equal(request_encode(&b, &reqs[i]), 0);
                open_frame(&b, reqs[i].type, &payload);
                assert_int_equal(request_parse(reqs[i].type, &payload, &got), -EBADMSG);
        }
}

static void test_login_round_trip(void **state) {
        _cleanup_secret_ struct secret *pw = secret_of("s3cret pass");
        struct request r = {.type = PROTO_REQ_LOGIN, .scenario = PGINA_SCENARIO_CREDUI,
                            .user = "alice", .password = pw, .service = "sshd",
                            .rhost = "10.0.0.1", .tty = "pts/0", .session = "17"};
        round_trip(&r);
}

static void test_authorize_round_trip(void **state) {
        struct request r = {.type = PROTO_REQ_AUTHORIZE, .user = "bob", .service = "login",
                            .rhost = "host.example"};
        round_trip(&r);
}

static void test_open_session_round_trip(void **state) {
        struct request r = {.type = PROTO_REQ_OPEN_SESSION, .user = "carol", .token = "tok-1",
                            .service = "gdm", .tty = "tty1", .rhost = "", .pid = 4242};
        round_trip(&r);
}

static void test_close_session_round_trip(void **state) {
        struct request r = {.type = PROTO_REQ_CLOSE_SESSION, .session = "9", .user = "dave"};
        round_trip(&r);
}

static void test_change_password_round_trip(void **state) {
        _cleanup_secret_ struct secret *old = secret_of("old-pw");
        _cleanup_secret_ struct secret *new = secret_of("new-pw-longer");
        struct request r = {.type = PROTO_REQ_CHANGE_PASSWORD, .user = "erin", .password = old,
                            .new_password = new};
        round_trip(&r);
        r.password = NULL; /* root peers send no old password */
        round_trip(&r);
}

static void test_simulate_round_trip(void **state) {
        _cleanup_secret_ struct secret *pw = secret_of("pw");
        struct request r = {.type = PROTO_REQ_SIMULATE, .scenario = PGINA_SCENARIO_SIMULATE,
                            .user = "frank", .password = pw, .run_gateway = 1};
        round_trip(&r);
}

static void test_plugin_admin_round_trip(void **state) {
        char *argv[] = {"sync", "--force", "", NULL};
        struct request r = {.type = PROTO_REQ_PLUGIN_ADMIN, .plugin = "pgsmb", .user = "gina",
                            .argc = 3, .argv = argv};
        round_trip(&r);
        r.argc = 0;
        round_trip(&r);
}

static void test_wait_jobs_round_trip(void **state) {
        struct request r = {.type = PROTO_REQ_WAIT_JOBS, .user = "hank", .id = 30};
        round_trip(&r);
}

static void test_getpwnam_round_trip(void **state) {
        struct request r = {.type = PROTO_REQ_GETPWNAM, .user = "ivy"};
        round_trip(&r);
        r = (struct request){.type = PROTO_REQ_GETPWNAM, .id = 70001};
        round_trip(&r);
}

static void test_getgrnam_round_trip(void **state) {
        struct request r = {.type = PROTO_REQ_GETGRNAM, .user = "staff"};
        round_trip(&r);
        r = (struct request){.type = PROTO_REQ_GETGRNAM, .id = 70002};
        round_trip(&r);
}

static void test_admin_queries_round_trip(void **state) {
        static const uint16_t types[] = {PROTO_REQ_STATUS, PROTO_REQ_SESSIONS, PROTO_REQ_PLUGINS,
                                         PROTO_REQ_RELOAD, PROTO_REQ_METRICS};

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                struct request r = {.type = types[i]};
                round_trip(&r);
        }
}

/* The bytes pam_pgina sent before the codec existed, written out by hand. */
static void test_login_wire_bytes_unchanged(void **state) {
        _cleanup_secret_ struct secret *pw = secret_of("pw");
        _cleanup_pbuf_ struct pbuf b;
        struct request r = {.type = PROTO_REQ_LOGIN, .scenario = PGINA_SCENARIO_UNLOCK,
                            .user = "al", .password = pw, .service = "s", .rhost = NULL,
                            .tty = "t", .session = ""};
        static const uint8_t expect[] = {
                0, 0, 0, 35, 0, 1, 0, PROTO_REQ_LOGIN, PGINA_SCENARIO_UNLOCK,
                0, 0, 0, 2, 'a', 'l', 0, 0, 0, 2, 'p', 'w', 0, 0, 0, 1, 's',
                0, 0, 0, 0, 0, 0, 0, 1, 't', 0, 0, 0, 0};

        pbuf_init(&b);
        assert_int_equal(request_encode(&b, &r), 0);
        assert_int_equal(b.len, sizeof expect);
        assert_memory_equal(b.data, expect, sizeof expect);
}

static void test_unknown_type_refused(void **state) {
        _cleanup_pbuf_ struct pbuf b;
        struct pbuf empty = {0};
        struct request r = {.type = 99}, got;

        pbuf_init(&b);
        assert_int_equal(request_encode(&b, &r), -EINVAL);
        assert_int_equal(b.len, 0);
        assert_int_equal(request_parse(PROTO_MSG_RESULT, &empty, &got), -EBADMSG);
        assert_int_equal(request_parse(99, &empty, &got), -EBADMSG);
}

/* A field longer than the decoder allows is refused, though the wire could carry it. */
static void test_oversize_fields_refused(void **state) {
        _cleanup_free_ char *name = malloc(PGINA_NAME_MAX + 2);
        _cleanup_free_ char *field = malloc(1026);
        _cleanup_free_ char *plugin = malloc(66);
        char *argv[1] = {field};
        struct request reqs[] = {
                {.type = PROTO_REQ_AUTHORIZE, .user = name},
                {.type = PROTO_REQ_AUTHORIZE, .user = "u", .service = field},
                {.type = PROTO_REQ_GETPWNAM, .user = name},
                {.type = PROTO_REQ_PLUGIN_ADMIN, .plugin = plugin, .user = "u"},
                {.type = PROTO_REQ_PLUGIN_ADMIN, .plugin = "p", .user = "u", .argc = 1, .argv = argv},
        };
        assert_non_null(name);
        assert_non_null(field);
        assert_non_null(plugin);
        memset(name, 'n', PGINA_NAME_MAX + 1);
        name[PGINA_NAME_MAX + 1] = 0;
        memset(field, 'f', 1025);
        field[1025] = 0;
        memset(plugin, 'p', 65);
        plugin[65] = 0;
        assert_all_refused(reqs, ELEMENTSOF(reqs));
}

/* Values the decoder judges beyond their length: scenario, new password, argc, plugin name. */
static void test_invalid_values_refused(void **state) {
        _cleanup_secret_ struct secret *pw = secret_of("pw");
        char *argv[1] = {"x"};
        struct request reqs[] = {
                {.type = PROTO_REQ_LOGIN, .scenario = 77, .user = "u", .password = pw},
                {.type = PROTO_REQ_CHANGE_PASSWORD, .user = "u", .password = pw},
                {.type = PROTO_REQ_PLUGIN_ADMIN, .plugin = "../evil", .user = "u", .argc = 1,
                 .argv = argv},
        };
        struct request got;

        assert_all_refused(reqs, ELEMENTSOF(reqs));

        /* PLUGIN_ADMIN announcing more arguments than PROTO_ARGS_MAX. */
        _cleanup_pbuf_ struct pbuf p;
        pbuf_init(&p);
        assert_int_equal(pbuf_put_str(&p, "p"), 0);
        assert_int_equal(pbuf_put_str(&p, "u"), 0);
        assert_int_equal(pbuf_put_u32(&p, PROTO_ARGS_MAX + 1), 0);
        assert_int_equal(request_parse(PROTO_REQ_PLUGIN_ADMIN, &p, &got), -EBADMSG);
}

/* A string the wire cannot carry is refused by the encoder, and the buffer left empty. */
static void test_encoder_refuses_oversize_string(void **state) {
        _cleanup_free_ char *huge = malloc(PROTO_STR_MAX + 2);
        _cleanup_pbuf_ struct pbuf b;

        assert_non_null(huge);
        memset(huge, 'h', PROTO_STR_MAX + 1);
        huge[PROTO_STR_MAX + 1] = 0;
        pbuf_init(&b);
        assert_int_equal(request_encode(&b, &(struct request){.type = PROTO_REQ_CLOSE_SESSION,
                                                              .session = huge}),
                         -EINVAL);
        assert_int_equal(b.len, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_login_round_trip),
                cmocka_unit_test(test_authorize_round_trip),
                cmocka_unit_test(test_open_session_round_trip),
                cmocka_unit_test(test_close_session_round_trip),
                cmocka_unit_test(test_change_password_round_trip),
                cmocka_unit_test(test_simulate_round_trip),
                cmocka_unit_test(test_plugin_admin_round_trip),
                cmocka_unit_test(test_wait_jobs_round_trip),
                cmocka_unit_test(test_getpwnam_round_trip),
                cmocka_unit_test(test_getgrnam_round_trip),
                cmocka_unit_test(test_admin_queries_round_trip),
                cmocka_unit_test(test_login_wire_bytes_unchanged),
                cmocka_unit_test(test_unknown_type_refused),
                cmocka_unit_test(test_oversize_fields_refused),
                cmocka_unit_test(test_invalid_values_refused),
                cmocka_unit_test(test_encoder_refuses_oversize_string),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
