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

static int get_field(struct pbuf *p, char **ret) { return pbuf_get_str(p, ret, FIELD_MAX); }

static int decode_login(struct pbuf *p, struct request *r) {
        int k;

        if ((k = pbuf_get_u8(p, &r->scenario)) < 0 || (k = get_name(p, &r->user)) < 0 ||
            (k = pbuf_get_secret(p, &r->password)) < 0 || (k = get_field(p, &r->service)) < 0 ||
            (k = get_field(p, &r->rhost)) < 0 || (k = get_field(p, &r->tty)) < 0 ||
            (k = get_field(p, &r->session)) < 0)
                return k;
        if (r->scenario != PGINA_SCENARIO_LOGON && r->scenario != PGINA_SCENARIO_UNLOCK &&
            r->scenario != PGINA_SCENARIO_CREDUI)
                return -EBADMSG;
        return 0;
}

static int decode_authorize(struct pbuf *p, struct request *r) {
        int k;

        if ((k = get_name(p, &r->user)) < 0 || (k = get_field(p, &r->service)) < 0 ||
            (k = get_field(p, &r->rhost)) < 0)
                return k;
        return 0;
}

static int decode_open_session(struct pbuf *p, struct request *r) {
        int k;

        if ((k = get_name(p, &r->user)) < 0 || (k = get_field(p, &r->token)) < 0 ||
            (k = get_field(p, &r->service)) < 0 || (k = get_field(p, &r->tty)) < 0 ||
            (k = get_field(p, &r->rhost)) < 0 || (k = pbuf_get_u32(p, &r->pid)) < 0)
                return k;
        return 0;
}

static int decode_close_session(struct pbuf *p, struct request *r) {
        int k;

        if ((k = get_field(p, &r->session)) < 0 || (k = get_name(p, &r->user)) < 0)
                return k;
        return 0;
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
        int k;

        if ((k = get_name(p, &r->user)) < 0 || (k = pbuf_get_u32(p, &r->id)) < 0)
                return k;
        return 0;
}

static int decode_empty(struct pbuf *p, struct request *r) { return 0; }

/* ---- encoders (the same layouts, written) ---- */

static int encode_login(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_u8(b, r->scenario)) < 0 || (k = pbuf_put_str(b, r->user)) < 0 ||
            (k = pbuf_put_secret(b, r->password)) < 0 || (k = pbuf_put_str(b, r->service)) < 0 ||
            (k = pbuf_put_str(b, r->rhost)) < 0 || (k = pbuf_put_str(b, r->tty)) < 0 ||
            (k = pbuf_put_str(b, r->session)) < 0)
                return k;
        return 0;
}

static int encode_authorize(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->user)) < 0 || (k = pbuf_put_str(b, r->service)) < 0 ||
            (k = pbuf_put_str(b, r->rhost)) < 0)
                return k;
        return 0;
}

static int encode_open_session(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->user)) < 0 || (k = pbuf_put_str(b, r->token)) < 0 ||
            (k = pbuf_put_str(b, r->service)) < 0 || (k = pbuf_put_str(b, r->tty)) < 0 ||
            (k = pbuf_put_str(b, r->rhost)) < 0 || (k = pbuf_put_u32(b, r->pid)) < 0)
                return k;
        return 0;
}

static int encode_close_session(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->session)) < 0 || (k = pbuf_put_str(b, r->user)) < 0)
                return k;
        return 0;
}

static int encode_change_password(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->user)) < 0 || (k = pbuf_put_secret(b, r->password)) < 0 ||
            (k = pbuf_put_secret(b, r->new_password)) < 0)
                return k;
        return 0;
}

static int encode_simulate(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->user)) < 0 || (k = pbuf_put_secret(b, r->password)) < 0 ||
            (k = pbuf_put_u8(b, r->run_gateway ? 1 : 0)) < 0)
                return k;
        return 0;
}

static int encode_plugin_admin(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->plugin)) < 0 || (k = pbuf_put_str(b, r->user)) < 0 ||
            (k = pbuf_put_u32(b, r->argc)) < 0)
                return k;
        for (uint32_t i = 0; i < r->argc; i++)
                if ((k = pbuf_put_str(b, r->argv[i])) < 0)
                        return k;
        return 0;
}

static int encode_name_id(struct pbuf *b, const struct request *r) {
        int k;

        if ((k = pbuf_put_str(b, r->user)) < 0 || (k = pbuf_put_u32(b, r->id)) < 0)
                return k;
        return 0;
}

static int encode_empty(struct pbuf *b, const struct request *r) { return 0; }

/* ---- the table: one pair per request type ---- */

static const struct request_codec {
        uint16_t type;
        int (*encode)(struct pbuf *b, const struct request *r);
        int (*decode)(struct pbuf *p, struct request *r);
} codecs[] = {
        {PROTO_REQ_LOGIN, encode_login, decode_login},
        {PROTO_REQ_AUTHORIZE, encode_authorize, decode_authorize},
        {PROTO_REQ_OPEN_SESSION, encode_open_session, decode_open_session},
        {PROTO_REQ_CLOSE_SESSION, encode_close_session, decode_close_session},
        {PROTO_REQ_CHANGE_PASSWORD, encode_change_password, decode_change_password},
        {PROTO_REQ_STATUS, encode_empty, decode_empty},
        {PROTO_REQ_SESSIONS, encode_empty, decode_empty},
        {PROTO_REQ_PLUGINS, encode_empty, decode_empty},
        {PROTO_REQ_SIMULATE, encode_simulate, decode_simulate},
        {PROTO_REQ_RELOAD, encode_empty, decode_empty},
        {PROTO_REQ_PLUGIN_ADMIN, encode_plugin_admin, decode_plugin_admin},
        {PROTO_REQ_WAIT_JOBS, encode_name_id, decode_name_id},
        {PROTO_REQ_GETPWNAM, encode_name_id, decode_name_id},
        {PROTO_REQ_GETGRNAM, encode_name_id, decode_name_id},
};

static const struct request_codec *codec_of(uint16_t type) {
        for (size_t i = 0; i < ELEMENTSOF(codecs); i++)
                if (codecs[i].type == type)
                        return &codecs[i];
        return NULL;
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
