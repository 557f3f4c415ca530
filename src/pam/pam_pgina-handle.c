/* pam_pgina's dealings with the PAM handle: items, the user name, passwords from the item or the
 * conversation (wiped replies), and the per-login data (token, session, verdict) kept with
 * pam_set_data and wiped in its cleanups. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "pgina/plugin.h"
#include "proto.h"
#include "proto-request.h"
#include "secret.h"
#include "util.h"
#include "pam_pgina.h"

const char *item_str(pam_handle_t *pamh, int item) {
        const void *v = NULL;

        if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v)
                return "";
        return v;
}

int get_user(pam_handle_t *pamh, const char **ret) {
        const char *user = NULL;
        int r = pam_get_user(pamh, &user, NULL);

        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "Failed to get the user name: %s", pam_strerror(pamh, r));
                return r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : r;
        }
        if (!user || !*user || strlen(user) > USER_MAX) {
                pam_syslog(pamh, LOG_NOTICE, "Refusing a user name that is empty or longer than %d bytes",
                           USER_MAX);
                return PAM_USER_UNKNOWN;
        }
        *ret = user;
        return PAM_SUCCESS;
}

static int prompt_secret(pam_handle_t *pamh, const char *prompt, char **ret) {
        char *resp = NULL;
        int r = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &resp, "%s", prompt);

        if (r != PAM_SUCCESS) {
                free_wiped(resp);
                return r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : r;
        }
        if (!resp)
                return PAM_CONV_ERR;
        *ret = resp;
        return PAM_SUCCESS;
}

/* Get a password (PAM_AUTHTOK or PAM_OLDAUTHTOK) into a secret. A prompted one is also stored as
 * the PAM item, for the modules stacked after this one. too_long = the code for a password over
 * SECRET_MAX. */
int get_secret(pam_handle_t *pamh, int item, enum secret_source src, const char *prompt,
               const char *retype, int too_long, struct secret **ret) {
        const char *what = item == PAM_OLDAUTHTOK ? "current password" : "password";
        char *resp = NULL, *again = NULL;
        struct secret *s = NULL;
        int r;

        if (src != SOURCE_PROMPT) {
                const void *cur = NULL;

                r = pam_get_item(pamh, item, &cur);
                if (r != PAM_SUCCESS)
                        return r;
                if (cur) {
                        s = secret_from_cstr(cur);
                        if (!s)
                                goto refused;
                        *ret = s;
                        return PAM_SUCCESS;
                }
                if (src == SOURCE_ITEM) {
                        pam_syslog(pamh, LOG_ERR,
                                   "No %s from an earlier module, as use_first_pass/use_authtok require",
                                   what);
                        return PAM_AUTHTOK_RECOVERY_ERR;
                }
        }

        r = prompt_secret(pamh, prompt, &resp);
        if (r != PAM_SUCCESS)
                goto out;
        if (retype) {
                r = prompt_secret(pamh, retype, &again);
                if (r != PAM_SUCCESS)
                        goto out;
                if (!streq(resp, again)) {
                        (void)pam_error(pamh, "Sorry, passwords do not match.");
                        r = PAM_AUTHTOK_ERR;
                        goto out;
                }
        }
        s = secret_from_cstr(resp);
        if (!s)
                goto refused;
        r = pam_set_item(pamh, item, resp);
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "Failed to store the %s for later modules: %s", what,
                           pam_strerror(pamh, r));
                secret_free(s);
                goto out;
        }
        *ret = s;
out:
        free_wiped(resp);
        free_wiped(again);
        return r;

refused:
        if (errno == E2BIG) {
                pam_syslog(pamh, LOG_NOTICE, "Refusing a %s longer than %d bytes", what, SECRET_MAX);
                r = too_long;
        } else {
                pam_syslog(pamh, LOG_CRIT, "Failed to allocate memory for the %s", what);
                r = PAM_BUF_ERR;
        }
        goto out;
}

static void data_free_string(pam_handle_t *pamh, void *data, int error_status) {
        free_wiped(data);
}

static void data_free_verdict(pam_handle_t *pamh, void *data, int error_status) {
        struct verdict *v = data;

        if (!v)
                return;
        free_wiped(v->user);
        free_wiped(v->message);
        explicit_bzero(v, sizeof *v);
        free(v);
}

/* Keep a copy of a string with the handle; "" or NULL removes the entry. */
int data_set_string(pam_handle_t *pamh, const char *name, const char *value) {
        char *copy;
        int r;

        if (!value || !*value)
                return pam_set_data(pamh, name, NULL, NULL);
        copy = strdup(value);
        if (!copy)
                return PAM_BUF_ERR;
        r = pam_set_data(pamh, name, copy, data_free_string);
        if (r != PAM_SUCCESS)
                free_wiped(copy);
        return r;
}

const char *data_get_string(pam_handle_t *pamh, const char *name) {
        const void *v = NULL;

        if (pam_get_data(pamh, name, &v) != PAM_SUCCESS || !v || !*(const char *)v)
                return NULL;
        return v;
}

int verdict_store(pam_handle_t *pamh, int code, const char *user, const char *message) {
        struct verdict *v = calloc(1, sizeof *v);
        int r;

        if (!v)
                return PAM_BUF_ERR;
        v->code = code;
        v->user = strdup(user);
        v->message = strdup(strempty(message));
        if (!v->user || !v->message) {
                data_free_verdict(pamh, v, 0);
                return PAM_BUF_ERR;
        }
        r = pam_set_data(pamh, DATA_AUTHZ, v, data_free_verdict);
        if (r != PAM_SUCCESS)
                data_free_verdict(pamh, v, 0);
        return r;
}

const struct verdict *verdict_get(pam_handle_t *pamh, const char *user) {
        const void *v = NULL;

        if (pam_get_data(pamh, DATA_AUTHZ, &v) != PAM_SUCCESS || !v)
                return NULL;
        if (!streq(((const struct verdict *)v)->user, user))
                return NULL; /* PAM_USER changed since authenticate: not this user's verdict */
        return v;
}
