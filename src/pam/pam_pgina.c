/* pam_pgina.so: the PAM face of pgina, a thin client of pginad. Each PAM call becomes one request
 * on pginad's socket; pginad's messages are relayed through the conversation and its verdict is
 * turned into a PAM code in one place (pam_code_from_status). No policy lives in this file.
 *
 * Module arguments (any management group):
 *   scenario=logon|unlock|credui   what pam_sm_authenticate asks pginad for (default logon):
 *       logon    pGina's whole login in one request: authentication, authorization, gateway,
 *                so the local account exists when authenticate returns.
 *       unlock   re-authenticate the session's own user (screen lockers, which run PAM as that
 *                user); no gateway.
 *       credui   authenticate and authorize another user (sudo, su, pkexec) and append them to
 *                the caller's session, named by PGINA_SESSION.
 *   socket=PATH        pginad's socket, an absolute path (default /run/pgina/pginad.sock).
 *   timeout=SECONDS    longest silence accepted from pginad, while connecting and between two
 *                      frames of one answer (default 30, 1..3600).
 *   debug              log each request and its outcome at LOG_DEBUG (never a password).
 *   use_first_pass     take the password from PAM_AUTHTOK (set by an earlier module); fail with
 *                      PAM_AUTHTOK_RECOVERY_ERR when it is unset.
 *   try_first_pass     take PAM_AUTHTOK when set, otherwise prompt.
 *   use_authtok        password group: the new password must come from PAM_AUTHTOK.
 *   An unknown argument is logged (warning) and ignored. A bad value for a known argument is
 *   logged (error) and fails the call with PAM_SERVICE_ERR, so a typo never changes the scenario.
 *
 * auth      pam_sm_authenticate: PAM_USER (1..256 bytes), then the password: "Password: " through
 *           the conversation (PAM_PROMPT_ECHO_OFF) unless use_/try_first_pass; a prompted password
 *           is stored as PAM_AUTHTOK for later modules. Sends LOGIN {scenario, user, password,
 *           PAM_SERVICE, PAM_RHOST, PAM_TTY, session}; session is "" for logon, else PGINA_SESSION
 *           from the PAM environment or the process environment. pginad's INFO frames are shown
 *           (text and progress as PAM_TEXT_INFO, errors as PAM_ERROR_MSG) unless PAM_SILENT; its
 *           final message as PAM_ERROR_MSG on failure, PAM_TEXT_INFO on success. The logon token
 *           and the authorization verdict are kept with pam_set_data ("pgina_token",
 *           "pgina_authz"): status OK with authorized=no makes authenticate return PAM_SUCCESS and
 *           acct_mgmt PAM_PERM_DENIED with pginad's message. When pginad names the account
 *           differently ("user" in the answer), PAM_USER is updated.
 *           pam_sm_setcred: PAM_SUCCESS, nothing to do.
 * account   pam_sm_acct_mgmt: the verdict authenticate kept for this user (PAM_NEW_AUTHTOK_REQD when
 *           the LOGIN answer says password_expired=yes); for a user another
 *           module authenticated, AUTHORIZE {user, PAM_SERVICE, PAM_RHOST}.
 * session   pam_sm_open_session: OPEN_SESSION {user, token or "", PAM_SERVICE, PAM_TTY, PAM_RHOST,
 *           getpid()}; exports PGINA_SESSION=<id> (also kept as "pgina_session") and every
 *           "env:NAME" of the answer as NAME=value (NAME matching [A-Z_][A-Z0-9_]*) into the PAM
 *           environment. pam_sm_close_session: CLOSE_SESSION {session, user}, the session from
 *           pam_get_data or PGINA_SESSION; no known session is PAM_SUCCESS. Every failure in this
 *           group is PAM_SESSION_ERR.
 * password  pam_sm_chauthtok: PAM_PRELIM_CHECK gets the current password (PAM_OLDAUTHTOK, else
 *           "Current password: "; not asked when the real uid is root, unless
 *           PAM_CHANGE_EXPIRED_AUTHTOK; an empty one is PAM_AUTH_ERR, as pginad does not check
 *           what a root peer, e.g. setuid passwd, leaves empty) and checks that pginad
 *           accepts a connection. PAM_UPDATE_AUTHTOK gets the new password (PAM_AUTHTOK, else
 *           "New password: " and "Retype new password: "; a mismatch is PAM_AUTHTOK_ERR) and sends
 *           CHANGE_PASSWORD {user, old ("" when root), new}.
 *
 * pginad unreachable (socket missing, connection refused, silent past timeout=, a malformed or
 * truncated answer): PAM_AUTHINFO_UNAVAIL (PAM_SESSION_ERR for sessions) and one syslog line naming
 * the socket and the cause. Never a hang past the timeout, never success.
 *
 * Hygiene: only pam_sm_* are exported (pam_pgina.sym); no signal is touched, nothing exits or
 * aborts; the socket is SOCK_CLOEXEC and sends use MSG_NOSIGNAL (proto.c); passwords live only in
 * struct secret and conversation replies are wiped; per-login state only through pam_set_data with
 * wiping cleanups; logging only through pam_syslog.
 */
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

/* The one place a wire status becomes a PAM code. Transport failures come here as
 * PROTO_UNAVAILABLE. The session group only knows PAM_SESSION_ERR for failures. */
static int pam_code_from_status(uint32_t status, enum call_kind kind) {
        int code;

        switch (status) {
        case PROTO_OK:
                return PAM_SUCCESS;
        case PROTO_AUTH_FAILED:
                code = PAM_AUTH_ERR;
                break;
        case PROTO_DENIED:
                code = PAM_PERM_DENIED;
                break;
        case PROTO_GATEWAY_FAILED:
                code = PAM_AUTH_ERR;
                break;
        case PROTO_PERMISSION:
                code = PAM_PERM_DENIED;
                break;
        case PROTO_NOT_FOUND:
                code = PAM_USER_UNKNOWN;
                break;
        case PROTO_CHANGE_FAILED:
                code = PAM_AUTHTOK_ERR;
                break;
        default: /* PROTO_UNAVAILABLE, PROTO_SHUTTING_DOWN, PROTO_BAD_REQUEST, unknown */
                code = PAM_AUTHINFO_UNAVAIL;
                break;
        }
        return kind == CALL_SESSION ? PAM_SESSION_ERR : code;
}

static const char *scenario_name(enum pgina_scenario s) {
        switch (s) {
        case PGINA_SCENARIO_UNLOCK:
                return "unlock";
        case PGINA_SCENARIO_CREDUI:
                return "credui";
        default:
                return "logon";
        }
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        if (!*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

static int parse_args(pam_handle_t *pamh, int flags, int argc, const char **argv, struct args *a) {
        *a = (struct args){
                .scenario = PGINA_SCENARIO_LOGON,
                .socket = PGINA_SOCKET_DEFAULT,
                .timeout_s = TIMEOUT_DEFAULT_S,
                .silent = flags & PAM_SILENT,
        };

        for (int i = 0; i < argc; i++) {
                const char *arg = argv[i];

                if (streq(arg, "debug"))
                        a->debug = true;
                else if (streq(arg, "use_first_pass"))
                        a->use_first_pass = true;
                else if (streq(arg, "try_first_pass"))
                        a->try_first_pass = true;
                else if (streq(arg, "use_authtok"))
                        a->use_authtok = true;
                else if (strncmp(arg, "scenario=", 9) == 0) {
                        const char *v = arg + 9;

                        if (streq(v, "logon"))
                                a->scenario = PGINA_SCENARIO_LOGON;
                        else if (streq(v, "unlock"))
                                a->scenario = PGINA_SCENARIO_UNLOCK;
                        else if (streq(v, "credui"))
                                a->scenario = PGINA_SCENARIO_CREDUI;
                        else {
                                pam_syslog(pamh, LOG_ERR,
                                           "Invalid module argument %s: expected logon, unlock or credui",
                                           arg);
                                return PAM_SERVICE_ERR;
                        }
                } else if (strncmp(arg, "socket=", 7) == 0) {
                        const char *v = arg + 7;

                        if (v[0] != '/' || strlen(v) >= 108) {
                                pam_syslog(pamh, LOG_ERR,
                                           "Invalid module argument %s: expected an absolute path shorter than 108 bytes",
                                           arg);
                                return PAM_SERVICE_ERR;
                        }
                        a->socket = v;
                } else if (strncmp(arg, "timeout=", 8) == 0) {
                        if (parse_uint(arg + 8, 1, TIMEOUT_MAX_S, &a->timeout_s) < 0) {
                                pam_syslog(pamh, LOG_ERR,
                                           "Invalid module argument %s: expected seconds, 1..%u", arg,
                                           TIMEOUT_MAX_S);
                                return PAM_SERVICE_ERR;
                        }
                } else
                        pam_syslog(pamh, LOG_WARNING, "Ignoring unknown module argument %s", arg);
        }
        return PAM_SUCCESS;
}

/* A copy safe to show on a terminal or log: control characters (terminal escapes from a plugin
 * or a remote server) become '?'; newlines and tabs stay. */
static char *sanitized(const char *text) {
        char *s = strdup(text);

        if (!s)
                return NULL;
        for (char *p = s; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                        *p = '?';
        return s;
}

static void show(pam_handle_t *pamh, const struct args *a, int style, const char *text) {
        _cleanup_free_ char *s = NULL;

        if (a->silent || !text || !*text)
                return;
        s = sanitized(text);
        if (!s)
                return;
        if (style == PAM_ERROR_MSG)
                (void)pam_error(pamh, "%s", s);
        else
                (void)pam_info(pamh, "%s", s);
}

struct relay {
        pam_handle_t *pamh;
        const struct args *args;
};

static void relay_info(void *userdata, uint8_t kind, const char *text) {
        struct relay *rl = userdata;

        show(rl->pamh, rl->args, kind == PROTO_INFO_ERROR ? PAM_ERROR_MSG : PAM_TEXT_INFO, text);
}

/* Send one request and read pginad's answer. Logs transport failures (with the socket path) once,
 * here; returns 0 with *res filled, or -errno. */
static int daemon_call(pam_handle_t *pamh, const struct args *a, const char *what,
                       const struct pbuf *req, struct proto_result *res) {
        struct relay rl = {.pamh = pamh, .args = a};
        int timeout_ms = (int)(a->timeout_s * 1000u);
        _cleanup_close_ int fd = -1;
        int r;

        fd = proto_connect(a->socket, timeout_ms);
        if (fd < 0) {
                pam_syslog(pamh, LOG_ERR, "pginad not reachable at %s: %s", a->socket, strerror(-fd));
                return fd;
        }
        r = proto_call(fd, req, timeout_ms, relay_info, &rl, res);
        switch (r) {
        case 0:
                if (a->debug)
                        pam_syslog(pamh, LOG_DEBUG, "%s: pginad answered %s", what,
                                   proto_status_to_string(res->status));
                return 0;
        case -ETIMEDOUT:
                pam_syslog(pamh, LOG_ERR, "pginad at %s did not answer the %s request within %u s",
                           a->socket, what, a->timeout_s);
                break;
        case -ECONNRESET:
        case -EPIPE:
                pam_syslog(pamh, LOG_ERR, "pginad at %s closed the connection during the %s request",
                           a->socket, what);
                break;
        case -EBADMSG:
        case -EPROTO:
        case -EMSGSIZE:
                pam_syslog(pamh, LOG_ERR, "pginad at %s sent a malformed answer to the %s request: %s",
                           a->socket, what, strerror(-r));
                break;
        default:
                pam_syslog(pamh, LOG_ERR, "%s request to pginad at %s failed: %s", what, a->socket,
                           strerror(-r));
                break;
        }
        return r;
}

static int encode_failed(pam_handle_t *pamh, const char *what, int r) {
        pam_syslog(pamh, LOG_ERR, "Failed to encode the %s request: %s", what, strerror(-r));
        return r == -ENOMEM ? PAM_BUF_ERR : PAM_SERVICE_ERR;
}

/* Report a refusal: syslog for the admin, the daemon's message for the user. */
static int refuse(pam_handle_t *pamh, const struct args *a, const char *what, const char *user,
                  uint32_t status, const char *message, int code) {
        _cleanup_free_ char *m = sanitized(strempty(message));

        pam_syslog(pamh, LOG_NOTICE, "%s for user %s: %s%s%s", what, user,
                   proto_status_to_string(status), m && *m ? ": " : "", m ? m : "");
        show(pamh, a, PAM_ERROR_MSG, message);
        return code;
}

static const struct proto_row *first_row(const struct proto_result *res) {
        return res->nrows > 0 ? &res->rows[0] : NULL;
}

static const char *session_from_env(pam_handle_t *pamh) {
        const char *s = pam_getenv(pamh, ENV_SESSION);

        if (!s || !*s)
                s = getenv(ENV_SESSION);
        return s ? s : "";
}

/* A session id we are willing to put into the environment: printable, no space, bounded. */
static bool valid_session_id(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > SESSION_ID_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                        return false;
        return true;
}

static bool valid_env_name(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > ENV_NAME_MAX || !((*s >= 'A' && *s <= 'Z') || *s == '_'))
                return false;
        for (const char *p = s + 1; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

static int putenv_pair(pam_handle_t *pamh, const char *name, const char *value) {
        _cleanup_free_ char *kv = NULL;
        int r;

        if (asprintf(&kv, "%s=%s", name, value) < 0)
                return PAM_BUF_ERR;
        r = pam_putenv(pamh, kv);
        if (r != PAM_SUCCESS)
                pam_syslog(pamh, LOG_ERR, "Failed to set %s in the PAM environment: %s", name,
                           pam_strerror(pamh, r));
        return r;
}

/* The LOGIN answer's row: remember the token and verdict for acct_mgmt and open_session. */
static int login_accepted(pam_handle_t *pamh, const struct args *a, const char *user,
                          const struct proto_result *res) {
        const struct proto_row *row = first_row(res);
        const char *authorized = row ? proto_row_get(row, "authorized") : NULL;
        const char *token = row ? proto_row_get(row, "token") : NULL;
        const char *account = row ? proto_row_get(row, "user") : NULL;
        bool allowed, expired;
        int r;

        if (authorized && (streq(authorized, "yes") || streq(authorized, "no")))
                allowed = streq(authorized, "yes");
        else if (!authorized && a->scenario != PGINA_SCENARIO_LOGON)
                allowed = true; /* unlock and credui report a denial as the status itself */
        else {
                pam_syslog(pamh, LOG_ERR,
                           "pginad at %s sent a malformed answer to the LOGIN request: no valid \"authorized\" field",
                           a->socket);
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_AUTH);
        }

        if (account && *account && !streq(account, user)) {
                if (strlen(account) > USER_MAX) {
                        pam_syslog(pamh, LOG_ERR, "pginad at %s named an account longer than %d bytes",
                                   a->socket, USER_MAX);
                        return pam_code_from_status(PROTO_UNAVAILABLE, CALL_AUTH);
                }
                pam_syslog(pamh, LOG_INFO, "pginad maps user %s to account %s", user, account);
                r = pam_set_item(pamh, PAM_USER, account);
                if (r != PAM_SUCCESS)
                        return r;
                user = account;
        }

        /* The password was right but must be changed first: acct_mgmt says so, and the
         * application (sshd, login, a display manager) then runs the change. */
        expired = allowed && streq_ptr(row ? proto_row_get(row, "password_expired") : NULL, "yes");
        r = verdict_store(pamh,
                          expired ? PAM_NEW_AUTHTOK_REQD
                                  : pam_code_from_status(allowed ? PROTO_OK : PROTO_DENIED, CALL_ACCOUNT),
                          user, expired ? EXPIRED_MESSAGE : res->message);
        if (r == PAM_SUCCESS)
                r = data_set_string(pamh, DATA_TOKEN, token);
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_ERR, "Failed to keep the logon result of %s: %s", user,
                           pam_strerror(pamh, r));
                return r;
        }
        if (allowed)
                show(pamh, a, PAM_TEXT_INFO, res->message);
        if (expired)
                pam_syslog(pamh, LOG_NOTICE, "%s authenticated with a password that must be changed now", user);
        if (a->debug)
                pam_syslog(pamh, LOG_DEBUG, "%s authenticated (scenario %s), authorized=%s", user,
                           scenario_name(a->scenario), allowed ? "yes" : "no");
        return PAM_SUCCESS;
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_secret_ struct secret *password = NULL;
        _cleanup_result_ struct proto_result res = {};
        _cleanup_pbuf_ struct pbuf req = {};
        const char *user, *session;
        enum secret_source src;
        struct args a;
        int r;

        r = parse_args(pamh, flags, argc, argv, &a);
        if (r != PAM_SUCCESS)
                return r;
        /* A new attempt on this handle: forget what an earlier one left. */
        (void)pam_set_data(pamh, DATA_AUTHZ, NULL, NULL);
        (void)pam_set_data(pamh, DATA_TOKEN, NULL, NULL);

        r = get_user(pamh, &user);
        if (r != PAM_SUCCESS)
                return r;
        src = a.use_first_pass ? SOURCE_ITEM : a.try_first_pass ? SOURCE_ITEM_OR_PROMPT : SOURCE_PROMPT;
        r = get_secret(pamh, PAM_AUTHTOK, src, "Password: ", NULL, PAM_AUTH_ERR, &password);
        if (r != PAM_SUCCESS)
                return r;
        session = a.scenario == PGINA_SCENARIO_LOGON ? "" : session_from_env(pamh);

        pbuf_init_secret(&req);
        r = request_encode(&req, &(struct request){
                .type = PROTO_REQ_LOGIN, .scenario = (uint8_t)a.scenario, .user = (char *)user,
                .password = password, .service = (char *)item_str(pamh, PAM_SERVICE),
                .rhost = (char *)item_str(pamh, PAM_RHOST), .tty = (char *)item_str(pamh, PAM_TTY),
                .session = (char *)session});
        if (r < 0)
                return encode_failed(pamh, "LOGIN", r);
        secret_free(TAKE_PTR(password)); /* the frame holds it now; pbuf_free wipes that copy */

        if (a.debug)
                pam_syslog(pamh, LOG_DEBUG, "LOGIN user=%s scenario=%s service=%s session=%s", user,
                           scenario_name(a.scenario), item_str(pamh, PAM_SERVICE), session);
        r = daemon_call(pamh, &a, "LOGIN", &req, &res);
        pbuf_free(&req);
        if (r < 0)
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_AUTH);
        if (res.status != PROTO_OK)
                return refuse(pamh, &a, "Authentication", user, res.status, res.message,
                              pam_code_from_status(res.status, CALL_AUTH));
        return login_accepted(pamh, &a, user, &res);
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return PAM_SUCCESS;
}

int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_result_ struct proto_result res = {};
        _cleanup_pbuf_ struct pbuf req = {};
        const struct verdict *v;
        const char *user;
        struct args a;
        int r;

        r = parse_args(pamh, flags, argc, argv, &a);
        if (r != PAM_SUCCESS)
                return r;
        r = get_user(pamh, &user);
        if (r != PAM_SUCCESS)
                return r;

        v = verdict_get(pamh, user);
        if (v) {
                if (v->code == PAM_NEW_AUTHTOK_REQD) {
                        show(pamh, &a, PAM_ERROR_MSG, v->message);
                        return PAM_NEW_AUTHTOK_REQD;
                }
                if (v->code != PAM_SUCCESS)
                        return refuse(pamh, &a, "Authorization", user, PROTO_DENIED, v->message, v->code);
                if (a.debug)
                        pam_syslog(pamh, LOG_DEBUG, "%s authorized at logon", user);
                return PAM_SUCCESS;
        }

        r = request_encode(&req, &(struct request){
                .type = PROTO_REQ_AUTHORIZE, .user = (char *)user,
                .service = (char *)item_str(pamh, PAM_SERVICE),
                .rhost = (char *)item_str(pamh, PAM_RHOST)});
        if (r < 0)
                return encode_failed(pamh, "AUTHORIZE", r);
        if (a.debug)
                pam_syslog(pamh, LOG_DEBUG, "AUTHORIZE user=%s service=%s", user,
                           item_str(pamh, PAM_SERVICE));
        if (daemon_call(pamh, &a, "AUTHORIZE", &req, &res) < 0)
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_ACCOUNT);
        if (res.status != PROTO_OK)
                return refuse(pamh, &a, "Authorization", user, res.status, res.message,
                              pam_code_from_status(res.status, CALL_ACCOUNT));
        show(pamh, &a, PAM_TEXT_INFO, res.message);
        return PAM_SUCCESS;
}

/* Export the OPEN_SESSION answer: PGINA_SESSION and every env:NAME. */
static int session_export(pam_handle_t *pamh, const struct args *a, const struct proto_row *row) {
        const char *id = row ? proto_row_get(row, "session") : NULL;
        int r;

        if (!id || !valid_session_id(id)) {
                pam_syslog(pamh, LOG_ERR,
                           "pginad at %s sent a malformed answer to the OPEN_SESSION request: no valid session id",
                           a->socket);
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_SESSION);
        }
        r = data_set_string(pamh, DATA_SESSION, id);
        if (r == PAM_SUCCESS)
                r = putenv_pair(pamh, ENV_SESSION, id);
        if (r != PAM_SUCCESS)
                return PAM_SESSION_ERR;

        for (size_t i = 0; i < row->n; i++) {
                const char *name;

                if (strncmp(row->keys[i], "env:", 4) != 0)
                        continue;
                name = row->keys[i] + 4;
                if (!valid_env_name(name)) {
                        _cleanup_free_ char *n = sanitized(name);
                        pam_syslog(pamh, LOG_WARNING, "Ignoring invalid environment name \"%s\" from pginad",
                                   n ? n : "");
                        continue;
                }
                if (putenv_pair(pamh, name, row->values[i]) != PAM_SUCCESS)
                        return PAM_SESSION_ERR;
        }
        if (a->debug)
                pam_syslog(pamh, LOG_DEBUG, "session %s opened", id);
        return PAM_SUCCESS;
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_result_ struct proto_result res = {};
        _cleanup_pbuf_ struct pbuf req = {};
        const char *user, *token;
        struct args a;
        int r;

        r = parse_args(pamh, flags, argc, argv, &a);
        if (r != PAM_SUCCESS)
                return r;
        r = get_user(pamh, &user);
        if (r != PAM_SUCCESS)
                return PAM_SESSION_ERR;
        token = data_get_string(pamh, DATA_TOKEN);

        r = request_encode(&req, &(struct request){
                .type = PROTO_REQ_OPEN_SESSION, .user = (char *)user, .token = (char *)token,
                .service = (char *)item_str(pamh, PAM_SERVICE),
                .tty = (char *)item_str(pamh, PAM_TTY), .rhost = (char *)item_str(pamh, PAM_RHOST),
                .pid = (uint32_t)getpid()});
        if (r < 0) {
                encode_failed(pamh, "OPEN_SESSION", r);
                return PAM_SESSION_ERR;
        }
        if (a.debug)
                pam_syslog(pamh, LOG_DEBUG, "OPEN_SESSION user=%s service=%s tty=%s token=%s", user,
                           item_str(pamh, PAM_SERVICE), item_str(pamh, PAM_TTY), token ? "yes" : "no");
        if (daemon_call(pamh, &a, "OPEN_SESSION", &req, &res) < 0)
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_SESSION);
        if (res.status != PROTO_OK)
                return refuse(pamh, &a, "Opening a session", user, res.status, res.message,
                              pam_code_from_status(res.status, CALL_SESSION));
        r = session_export(pamh, &a, first_row(&res));
        if (r != PAM_SUCCESS)
                return r;
        (void)pam_set_data(pamh, DATA_TOKEN, NULL, NULL); /* used up */
        show(pamh, &a, PAM_TEXT_INFO, res.message);
        return PAM_SUCCESS;
}

int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_result_ struct proto_result res = {};
        _cleanup_pbuf_ struct pbuf req = {};
        const char *user, *session;
        struct args a;
        int r;

        r = parse_args(pamh, flags, argc, argv, &a);
        if (r != PAM_SUCCESS)
                return r;
        r = get_user(pamh, &user);
        if (r != PAM_SUCCESS)
                return PAM_SESSION_ERR;
        session = data_get_string(pamh, DATA_SESSION);
        if (!session)
                session = pam_getenv(pamh, ENV_SESSION);
        if (!session || !*session) {
                if (a.debug)
                        pam_syslog(pamh, LOG_DEBUG, "No pgina session to close for %s", user);
                return PAM_SUCCESS;
        }

        r = request_encode(&req, &(struct request){.type = PROTO_REQ_CLOSE_SESSION,
                                                    .session = (char *)session, .user = (char *)user});
        if (r < 0) {
                encode_failed(pamh, "CLOSE_SESSION", r);
                return PAM_SESSION_ERR;
        }
        if (a.debug)
                pam_syslog(pamh, LOG_DEBUG, "CLOSE_SESSION user=%s session=%s", user, session);
        if (daemon_call(pamh, &a, "CLOSE_SESSION", &req, &res) < 0)
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_SESSION);
        if (res.status != PROTO_OK)
                return refuse(pamh, &a, "Closing a session", user, res.status, res.message,
                              pam_code_from_status(res.status, CALL_SESSION));
        /* session may point into the data entry: drop the entry last. */
        (void)pam_putenv(pamh, ENV_SESSION);
        (void)pam_set_data(pamh, DATA_SESSION, NULL, NULL);
        show(pamh, &a, PAM_TEXT_INFO, res.message);
        return PAM_SUCCESS;
}

/* Root may set a password without the current one (pam_unix's rule): only when the real uid is
 * root, and not when PAM asks to change an expired password. pginad cannot tell: a setuid-root
 * program (passwd) run by a user is a root peer to it, and pginad checks no current password a
 * root peer leaves empty. So every other caller must send a non-empty current password. */
static bool chauthtok_as_root(int flags) {
        return getuid() == 0 && !(flags & PAM_CHANGE_EXPIRED_AUTHTOK);
}

static int get_current_password(pam_handle_t *pamh, const char *user, struct secret **ret) {
        struct secret *old = NULL;
        int r = get_secret(pamh, PAM_OLDAUTHTOK, SOURCE_ITEM_OR_PROMPT, "Current password: ", NULL,
                           PAM_AUTH_ERR, &old);

        if (r != PAM_SUCCESS)
                return r;
        if (old->len == 0) {
                secret_free(old);
                pam_syslog(pamh, LOG_NOTICE, "Password change for user %s refused: no current password",
                           user);
                return PAM_AUTH_ERR;
        }
        *ret = old;
        return PAM_SUCCESS;
}

static int chauthtok_prelim(pam_handle_t *pamh, const struct args *a, int flags, const char *user) {
        _cleanup_secret_ struct secret *old = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (!chauthtok_as_root(flags)) {
                r = get_current_password(pamh, user, &old);
                if (r != PAM_SUCCESS)
                        return r;
        }
        fd = proto_connect(a->socket, (int)(a->timeout_s * 1000u));
        if (fd < 0) {
                pam_syslog(pamh, LOG_ERR, "pginad not reachable at %s: %s", a->socket, strerror(-fd));
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_PASSWORD);
        }
        if (a->debug)
                pam_syslog(pamh, LOG_DEBUG, "Password change for %s: pginad reachable", user);
        return PAM_SUCCESS;
}

static int chauthtok_update(pam_handle_t *pamh, const struct args *a, int flags, const char *user) {
        _cleanup_secret_ struct secret *old = NULL, *new = NULL;
        _cleanup_result_ struct proto_result res = {};
        _cleanup_pbuf_ struct pbuf req = {};
        bool as_root = chauthtok_as_root(flags);
        enum secret_source src;
        int r;

        if (!as_root) {
                r = get_current_password(pamh, user, &old);
                if (r != PAM_SUCCESS)
                        return r;
        }
        src = a->use_authtok || a->use_first_pass ? SOURCE_ITEM : SOURCE_ITEM_OR_PROMPT;
        r = get_secret(pamh, PAM_AUTHTOK, src, "New password: ", "Retype new password: ",
                       PAM_AUTHTOK_ERR, &new);
        if (r != PAM_SUCCESS)
                return r;

        pbuf_init_secret(&req);
        r = request_encode(&req, &(struct request){.type = PROTO_REQ_CHANGE_PASSWORD,
                                                    .user = (char *)user, .password = old,
                                                    .new_password = new});
        if (r < 0)
                return encode_failed(pamh, "CHANGE_PASSWORD", r);
        secret_free(TAKE_PTR(old));
        secret_free(TAKE_PTR(new));

        if (a->debug)
                pam_syslog(pamh, LOG_DEBUG, "CHANGE_PASSWORD user=%s as_root=%s", user,
                           as_root ? "yes" : "no");
        r = daemon_call(pamh, a, "CHANGE_PASSWORD", &req, &res);
        pbuf_free(&req);
        if (r < 0)
                return pam_code_from_status(PROTO_UNAVAILABLE, CALL_PASSWORD);
        if (res.status != PROTO_OK)
                return refuse(pamh, a, "Password change", user, res.status, res.message,
                              pam_code_from_status(res.status, CALL_PASSWORD));
        pam_syslog(pamh, LOG_NOTICE, "Password changed for user %s", user);
        show(pamh, a, PAM_TEXT_INFO, res.message);
        return PAM_SUCCESS;
}

int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        const char *user;
        struct args a;
        int r;

        r = parse_args(pamh, flags, argc, argv, &a);
        if (r != PAM_SUCCESS)
                return r;
        r = get_user(pamh, &user);
        if (r != PAM_SUCCESS)
                return r;
        if (flags & PAM_PRELIM_CHECK)
                return chauthtok_prelim(pamh, &a, flags, user);
        if (flags & PAM_UPDATE_AUTHTOK)
                return chauthtok_update(pamh, &a, flags, user);
        pam_syslog(pamh, LOG_ERR, "pam_sm_chauthtok called without PAM_PRELIM_CHECK or PAM_UPDATE_AUTHTOK");
        return PAM_SERVICE_ERR;
}

