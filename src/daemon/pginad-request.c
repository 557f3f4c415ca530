/* Client requests off the wire: every field read through proto.c and validated here, once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pginad.h"
#include "util.h"

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

static int get_name(struct pbuf *p, char **ret) {
        int r = pbuf_get_str(p, ret, PGINA_NAME_MAX);
        if (r < 0)
                return r;
        /* An impossible name is still answered like a wrong password: kept, judged later. */
        return 0;
}

static int get_field(struct pbuf *p, char **ret) { return pbuf_get_str(p, ret, 1024); }

static int fill_empty(struct request *r) {
        char **f[] = {&r->user, &r->service, &r->rhost, &r->tty, &r->session, &r->token, &r->plugin};

        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                if (!*f[i] && !(*f[i] = strdup("")))
                        return -ENOMEM;
        return 0;
}

int request_parse(uint16_t type, struct pbuf *p, struct request *r) {
        int k = 0;

        memset(r, 0, sizeof *r);
        r->type = type;
        switch (type) {
        case PROTO_REQ_LOGIN:
                if ((k = pbuf_get_u8(p, &r->scenario)) < 0 || (k = get_name(p, &r->user)) < 0 ||
                    (k = pbuf_get_secret(p, &r->password)) < 0 ||
                    (k = get_field(p, &r->service)) < 0 || (k = get_field(p, &r->rhost)) < 0 ||
                    (k = get_field(p, &r->tty)) < 0 || (k = get_field(p, &r->session)) < 0)
                        break;
                if (r->scenario != PGINA_SCENARIO_LOGON && r->scenario != PGINA_SCENARIO_UNLOCK &&
                    r->scenario != PGINA_SCENARIO_CREDUI)
                        k = -EBADMSG;
                break;
        case PROTO_REQ_AUTHORIZE:
                if ((k = get_name(p, &r->user)) < 0 || (k = get_field(p, &r->service)) < 0 ||
                    (k = get_field(p, &r->rhost)) < 0)
                        break;
                break;
        case PROTO_REQ_OPEN_SESSION:
                if ((k = get_name(p, &r->user)) < 0 || (k = get_field(p, &r->token)) < 0 ||
                    (k = get_field(p, &r->service)) < 0 || (k = get_field(p, &r->tty)) < 0 ||
                    (k = get_field(p, &r->rhost)) < 0 || (k = pbuf_get_u32(p, &r->pid)) < 0)
                        break;
                break;
        case PROTO_REQ_CLOSE_SESSION:
                if ((k = get_field(p, &r->session)) < 0 || (k = get_name(p, &r->user)) < 0)
                        break;
                break;
        case PROTO_REQ_CHANGE_PASSWORD:
                if ((k = get_name(p, &r->user)) < 0 || (k = pbuf_get_secret(p, &r->password)) < 0 ||
                    (k = pbuf_get_secret(p, &r->new_password)) < 0)
                        break;
                if (r->new_password->len == 0)
                        k = -EBADMSG;
                break;
        case PROTO_REQ_SIMULATE:
                if ((k = get_name(p, &r->user)) < 0 || (k = pbuf_get_secret(p, &r->password)) < 0 ||
                    (k = pbuf_get_u8(p, &r->run_gateway)) < 0)
                        break;
                r->scenario = PGINA_SCENARIO_SIMULATE;
                break;
        case PROTO_REQ_PLUGIN_ADMIN:
                if ((k = pbuf_get_str(p, &r->plugin, 64)) < 0 || (k = get_name(p, &r->user)) < 0 ||
                    (k = pbuf_get_u32(p, &r->argc)) < 0)
                        break;
                if (r->argc > PROTO_ARGS_MAX || !valid_plugin_name(r->plugin)) {
                        r->argc = 0;
                        k = -EBADMSG;
                        break;
                }
                r->argv = calloc(r->argc + 1, sizeof(char *));
                if (!r->argv) {
                        r->argc = 0;
                        k = -ENOMEM;
                        break;
                }
                for (uint32_t i = 0; i < r->argc && k == 0; i++)
                        k = pbuf_get_str(p, &r->argv[i], 1024);
                break;
        case PROTO_REQ_GETPWNAM:
        case PROTO_REQ_GETGRNAM:
                if ((k = get_name(p, &r->user)) < 0 || (k = pbuf_get_u32(p, &r->id)) < 0)
                        break;
                break;
        case PROTO_REQ_WAIT_JOBS:
                if ((k = get_name(p, &r->user)) < 0 || (k = pbuf_get_u32(p, &r->id)) < 0)
                        break;
                break;
        case PROTO_REQ_STATUS:
        case PROTO_REQ_SESSIONS:
        case PROTO_REQ_PLUGINS:
        case PROTO_REQ_RELOAD:
                break;
        default:
                k = -EBADMSG;
        }
        if (k == 0)
                k = pbuf_expect_end(p);
        if (k == 0)
                k = fill_empty(r);
        if (k < 0)
                request_free(r);
        return k;
}
