/* pam_pgina's shared pieces: module arguments, the per-login data it leaves on the PAM handle,
 * and what pam_pgina-handle.c offers pam_pgina.c. Nothing here is exported (pam_pgina.sym). */
#pragma once

#include <stdbool.h>

#include <security/pam_modules.h>

#include "pgina/plugin.h"
#include "proto.h"
#include "secret.h"

#define EXPIRED_MESSAGE "Your password has expired or must be changed before you log on: change it now."
#define DATA_AUTHZ "pgina_authz"
#define DATA_TOKEN "pgina_token"
#define DATA_SESSION "pgina_session"
#define ENV_SESSION "PGINA_SESSION"

#define USER_MAX 256
#define SESSION_ID_MAX 256
#define ENV_NAME_MAX 128
#define TIMEOUT_DEFAULT_S 30u
#define TIMEOUT_MAX_S 3600u

/* Which PAM call a daemon answer belongs to: decides the code for the same wire status. */
enum call_kind {
        CALL_AUTH,
        CALL_ACCOUNT,
        CALL_SESSION,
        CALL_PASSWORD,
};

struct args {
        enum pgina_scenario scenario;
        const char *socket;
        unsigned timeout_s;
        bool debug;
        bool use_first_pass;
        bool try_first_pass;
        bool use_authtok;
        bool silent;
};

/* The authorization verdict of one LOGIN, for acct_mgmt. */
struct verdict {
        int code;
        char *user;
        char *message;
};

static inline void proto_result_freep(struct proto_result *r) { proto_result_free(r); }
#define _cleanup_result_ _cleanup_(proto_result_freep)

enum secret_source {
        SOURCE_ITEM, /* the PAM item must be set (use_first_pass, use_authtok) */
        SOURCE_ITEM_OR_PROMPT,
        SOURCE_PROMPT,
};

/* pam_pgina-handle.c */
const char *item_str(pam_handle_t *pamh, int item);
int get_user(pam_handle_t *pamh, const char **ret);
int get_secret(pam_handle_t *pamh, int item, enum secret_source src, const char *prompt,
               const char *retype, int too_long, struct secret **ret);
int data_set_string(pam_handle_t *pamh, const char *name, const char *value);
const char *data_get_string(pam_handle_t *pamh, const char *name);
int verdict_store(pam_handle_t *pamh, int code, const char *user, const char *message);
const struct verdict *verdict_get(pam_handle_t *pamh, const char *user);
