/* Client requests on the wire: one encoder and one decoder per request type (layouts in proto.h),
 * every field read and written through proto.c and validated here, once. */
#include "proto-request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pgina/plugin.h"
#include "util.h"

#define FIELD_MAX 1024u
#define PLUGIN_NAME_WIRE_MAX 64u

void request_free(struct request *r) {
        free(r->user);
        free(r->service);
        free(r->rhost);
        free(r->tty);
        free(r->session);
        free(r->token);
        for (uint32_t i = 0; r->argv && i < r->argc; i++)
                free(r->argv[i]);
        free(r->argv);
        free(r->plugin);
        secret_free(r->password);
        secret_free(r->new_password);
        memset(r, 0, sizeof *r);
}

/* ---- decoders ---- */

static int get_name(struct pbuf *p, char **ret) {
        /* An impossible name is still answered like a wrong password: kept, judged later. */
        return pbuf_get_str(p, ret, PGINA_NAME_MAX);
}

/* Fields of at most FIELD_MAX bytes, in this order. */
static int get_fields(struct pbuf *p, char **const *v, size_t n) {
        int k;

        for (size_t i = 0; i < n; i++)
                if ((k = pbuf_get_str(p, v[i], FIELD_MAX)) < 0)
                        return k;
        return 0;
}
#define FIELDS(...) (char **const[]){__VA_ARGS__}
#define GET_FIELDS(p, ...) \
        get_fields(p, FIELDS(__VA_ARGS__), sizeof FIELDS(__VA_ARGS__) / sizeof(char **))

static int decode_login(struct pbuf *p, struct request *r) {
        int k;

        if ((k = pbuf_get_u8(p, &r->scenario)) < 0 || (k = get_name(p, &r->user)) < 0 ||
            (k = pbuf_get_secret(p, &r->password)) < 0 ||
            (k = GET_FIELDS(p, &r->service, &r->rhost, &r->tty, &r->session)) < 0)
                return k;
        if (r->scenario != PGINA_SCENARIO_LOGON && r->scenario != PGINA_SCENARIO_UNLOCK &&
            r->scenario != PGINA_SCENARIO_CREDUI)
                return -EBADMSG;
        return 0;
}

static int decode_authorize(struct pbuf *p, struct request *r) {
        int k = get_name(p, &r->user);

        return k < 0 ? k : GET_FIELDS(p, &r->service, &r->rhost);
}

static int decode_open_session(struct pbuf *p, struct request *r) {
        int k;

        if ((k = get_name(p, &r->user)) < 0 ||
            (k = GET_FIELDS(p, &r->token, &r->service, &r->tty, &r->rhost)) < 0)
                return k;
        return pbuf_get_u32(p, &r->pid);
}

static int decode_close_session(struct pbuf *p, struct request *r) {
        int k = GET_FIELDS(p, &r->session);

        return k < 0 ? k : get_name(p, &r->user);
}

static int decode_change_password(struct pbuf *p, struct request *r) {
        int k;

        if ((k = get_name(p, &r->user)) < 0 || (k = pbuf_get_secret(p, &r->password)) < 0 ||
            (k = pbuf_get_secret(p, &r->new_password)) < 0)
                return k;
        return r->new_password->len == 0 ? -EBADMSG : 0;
}

static int decode_simulate(struct pbuf *p, struct request *r) {
        int k;

        if ((k = get_name(p, &r->user)) < 0 || (k = pbuf_get_secret(p, &r->password)) < 0 ||
            (k = pbuf_get_u8(p, &r->run_gateway)) < 0)
                return k;
        r->scenario = PGINA_SCENARIO_SIMULATE;
        return 0;
}

static int decode_plugin_admin(struct pbuf *p, struct request *r) {
        int k;

        if ((k = pbuf_get_str(p, &r->plugin, PLUGIN_NAME_WIRE_MAX)) < 0 ||
            (k = get_name(p, &r->user)) < 0 || (k = pbuf_get_u32(p, &r->argc)) < 0)
                return k;
        if (r->argc > PROTO_ARGS_MAX || !valid_plugin_name(r->plugin)) {
                r->argc = 0;
                return -EBADMSG;
        }
        r->argv = calloc(r->argc + 1, sizeof(char *));
        if (!r->argv) {
                r->argc = 0;
                return -ENOMEM;
        }
        for (uint32_t i = 0; i < r->argc; i++)
                if ((k = pbuf_get_str(p, &r->argv[i], FIELD_MAX)) < 0)
                        return k;
        return 0;
}

/* GETPWNAM, GETGRNAM (name | id) and WAIT_JOBS (user | seconds) share a layout. */
static int decode_name_id(struct pbuf *p, struct request *r) {
        int k = get_name(p, &r->user);

        return k < 0 ? k : pbuf_get_u32(p, &r->id);
}

static int decode_empty(struct pbuf *p, struct request *r) { return 0; }

/* ---- encoders (the same layouts, written) ---- */

static int put_strs(struct pbuf *b, const char *const *v, size_t n) {
        int k;

        for (size_t i = 0; i < n; i++)
                if ((k = pbuf_put_str(b, v[i])) < 0)
                        return k;
        return 0;
}
#define STRS(...) (const char *const[]){__VA_ARGS__}
#define PUT_STRS(b, ...) put_strs(b, STRS(__VA_ARGS__), sizeof STRS(__VA_ARGS__) / sizeof(char *))

static int encode_login(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_u8(b, r->scenario)) < 0 || (k = pbuf_put_str(b, r->user)) < 0 ||
            (k = pbuf_put_secret(b, r->password)) < 0)
                return k;
        return PUT_STRS(b, r->service, r->rhost, r->tty, r->session);
}

static int encode_authorize(struct pbuf *b, const struct request *r) {
        return PUT_STRS(b, r->user, r->service, r->rhost);
}

static int encode_open_session(struct pbuf *b, const struct request *r) {
        int k = PUT_STRS(b, r->user, r->token, r->service, r->tty, r->rhost);

        return k < 0 ? k : pbuf_put_u32(b, r->pid);
}

static int encode_close_session(struct pbuf *b, const struct request *r) {
        return PUT_STRS(b, r->session, r->user);
}

static int encode_change_password(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->user)) < 0 || (k = pbuf_put_secret(b, r->password)) < 0)
                return k;
        return pbuf_put_secret(b, r->new_password);
}

static int encode_simulate(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->user)) < 0 || (k = pbuf_put_secret(b, r->password)) < 0)
                return k;
        return pbuf_put_u8(b, r->run_gateway ? 1 : 0);
}

static int encode_plugin_admin(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = PUT_STRS(b, r->plugin, r->user)) < 0 || (k = pbuf_put_u32(b, r->argc)) < 0)
                return k;
        return put_strs(b, (const char *const *)r->argv, r->argc);
}

static int encode_name_id(struct pbuf *b, const struct request *r) {
        int k = pbuf_put_str(b, r->user);

        return k < 0 ? k : pbuf_put_u32(b, r->id);
}

static int encode_empty(struct pbuf *b, const struct request *r) { return 0; }

/* ---- the table: one pair per request type ---- */

/* Indexed by request type; a type without an encoder is not a request. */
static const struct request_codec {
        int (*encode)(struct pbuf *b, const struct request *r);
        int (*decode)(struct pbuf *p, struct request *r);
} codecs[PROTO_REQ_GETGRNAM + 1] = {
        [PROTO_REQ_LOGIN] = {encode_login, decode_login},
        [PROTO_REQ_AUTHORIZE] = {encode_authorize, decode_authorize},
        [PROTO_REQ_OPEN_SESSION] = {encode_open_session, decode_open_session},
        [PROTO_REQ_CLOSE_SESSION] = {encode_close_session, decode_close_session},
        [PROTO_REQ_CHANGE_PASSWORD] = {encode_change_password, decode_change_password},
        [PROTO_REQ_STATUS] = {encode_empty, decode_empty},
        [PROTO_REQ_SESSIONS] = {encode_empty, decode_empty},
        [PROTO_REQ_PLUGINS] = {encode_empty, decode_empty},
        [PROTO_REQ_SIMULATE] = {encode_simulate, decode_simulate},
        [PROTO_REQ_RELOAD] = {encode_empty, decode_empty},
        [PROTO_REQ_PLUGIN_ADMIN] = {encode_plugin_admin, decode_plugin_admin},
        [PROTO_REQ_WAIT_JOBS] = {encode_name_id, decode_name_id},
        [PROTO_REQ_METRICS] = {encode_empty, decode_empty},
        [PROTO_REQ_GETPWNAM] = {encode_name_id, decode_name_id},
        [PROTO_REQ_GETGRNAM] = {encode_name_id, decode_name_id},
};

static const struct request_codec *codec_of(uint16_t type) {
        if (type >= ELEMENTSOF(codecs) || !codecs[type].encode)
                return NULL;
        return &codecs[type];
}

static int fill_empty(struct request *r) {
        char **f[] = {&r->user, &r->service, &r->rhost, &r->tty, &r->session, &r->token, &r->plugin};

        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                if (!*f[i] && !(*f[i] = strdup("")))
                        return -ENOMEM;
        return 0;
}

int request_parse(uint16_t type, struct pbuf *p, struct request *r) {
        const struct request_codec *c = codec_of(type);
        int k;

        memset(r, 0, sizeof *r);
        r->type = type;
        k = c ? c->decode(p, r) : -EBADMSG;
        if (k == 0)
                k = pbuf_expect_end(p);
        if (k == 0)
                k = fill_empty(r);
        if (k < 0)
                request_free(r);
        return k;
}

int request_encode(struct pbuf *b, const struct request *r) {
        const struct request_codec *c = codec_of(r->type);
        int k;

        if (!c)
                return -EINVAL;
        if ((k = proto_frame_begin(b, r->type)) < 0 || (k = c->encode(b, r)) < 0 ||
            (k = proto_frame_end(b)) < 0) {
                pbuf_reset(b);
                return k;
        }
        return 0;
}
