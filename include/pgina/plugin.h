/* pgina plugin ABI: the only header between pginad and a plugin.
 *
 * A plugin is a shared object in plugin_dir (default /usr/lib/pgina/plugins) that exports exactly
 * one symbol, `pgina_plugin_entry`, a `struct pgina_plugin` (use PGINA_PLUGIN_DEFINE). pginad
 * dlopen()s it with RTLD_NOW|RTLD_LOCAL inside a forked worker, refuses it when the file is not
 * owned by root or is writable by group/others, and refuses it when `abi_version` differs from
 * PGINA_PLUGIN_ABI_VERSION. Everything else the plugin needs from pginad it calls through the
 * pgina_* functions declared below; they are exported by pginad and pginactl, so a plugin needs no
 * library of ours at run time. The support library (libpgina-plugin: <pgina/util.h>, secret.h,
 * spawn.h, run.h, account.h; `pkg-config --cflags --libs pgina-plugin`) is static: it is linked
 * into the plugin, whose version script or -fvisibility=hidden keeps it private.
 *
 * Stage semantics (pGina's PluginDriver, kept):
 *   authentication  every plugin in [order] authentication runs, in order; each sees whether an
 *                   earlier one succeeded (pgina_ctx_authenticated). The user is authenticated when
 *                   at least one succeeded.
 *   authorization   runs only for an authenticated user; the first denial stops it.
 *   gateway         in order; the first failure stops it and fails the logon.
 *   notification    logon/logoff/session events; results are logged, never block a logon.
 *   change password in order; on a failure the plugins that already changed it are called again
 *                   with (new, old) to restore the old password.
 *
 * Every stage callback returns > 0 for success, 0 for failure (a refusal: wrong password, not a
 * member…), or a negative errno for an error (also a failure, logged as an error). It may set the
 * message shown to the user with pgina_ctx_message(). A plugin runs as root in a worker process that
 * lives for one request; it may block, but request_timeout kills it. It must never write a
 * password anywhere (log, argv, environment, file).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change of this header. */
#define PGINA_PLUGIN_ABI_VERSION 7u

enum pgina_stage {
        PGINA_STAGE_AUTHENTICATION = 1u << 0,
        PGINA_STAGE_AUTHORIZATION = 1u << 1,
        PGINA_STAGE_GATEWAY = 1u << 2,
        PGINA_STAGE_NOTIFICATION = 1u << 3,
        PGINA_STAGE_CHANGE_PASSWORD = 1u << 4,
};

/* What the credential provider was asked for (pam_pgina's scenario= argument). */
enum pgina_scenario {
        PGINA_SCENARIO_LOGON = 0,
        PGINA_SCENARIO_UNLOCK = 1,
        PGINA_SCENARIO_CREDUI = 2, /* sudo, su, pkexec: pGina's UAC users */
        PGINA_SCENARIO_SIMULATE = 3, /* pginactl simulate: nothing must change on the machine */
};

/* Notification events. LOGON/LOGOFF are per user: the first session of a user opened, the last
 * one closed (LOGOFF runs as a background job per user). SESSION_* fire for every session. */
enum pgina_event {
        PGINA_EVENT_LOGON = 1,
        PGINA_EVENT_LOGOFF = 2,
        PGINA_EVENT_SESSION_OPEN = 3,
        PGINA_EVENT_SESSION_CLOSE = 4,
        PGINA_EVENT_UNLOCK = 5,
};

enum pgina_option_type {
        PGINA_OPT_STRING = 0,
        PGINA_OPT_BOOL = 1, /* true/false, yes/no, on/off, 1/0 */
        PGINA_OPT_INT = 2, /* decimal, >= 0 */
        PGINA_OPT_LIST = 3, /* space-separated words */
};

/* One key of the plugin's [name] section. pginad rejects keys a plugin does not declare and values
 * of the wrong type, with file:line, before the plugin ever runs. */
struct pgina_option {
        const char *key;
        enum pgina_option_type type;
        const char *default_value; /* NULL = unset */
        const char *help; /* one line, shown by pginactl plugins */
};

struct pgina_ctx; /* one call of one plugin: config, messages, logging, chain state */
struct pgina_user; /* pGina's UserInformation: travels along the chain */
struct pgina_group; /* a group a directory knows (NSS group lookups): name, gid, members */

struct pgina_plugin {
        uint32_t abi_version; /* PGINA_PLUGIN_ABI_VERSION */
        uint32_t stages; /* enum pgina_stage bits this plugin implements */
        const char *name; /* section name and [order] name, [a-z0-9_]+ */
        const char *version;
        const char *description;
        const struct pgina_option *options; /* terminated by an entry with key == NULL */

        /* Optional semantic config check (after type checks). Return 0 or -EINVAL after
         * pgina_ctx_message() describing the problem; pginactl config check prints it. */
        int (*check_config)(struct pgina_ctx *ctx);

        int (*authenticate)(struct pgina_ctx *ctx, struct pgina_user *user);
        int (*authorize)(struct pgina_ctx *ctx, struct pgina_user *user);
        int (*gateway)(struct pgina_ctx *ctx, struct pgina_user *user);
        int (*notify)(struct pgina_ctx *ctx, enum pgina_event event, struct pgina_user *user);
        /* old_password is NULL when root changes another user's password. */
        int (*change_password)(struct pgina_ctx *ctx, struct pgina_user *user,
                               const char *old_password, const char *new_password);

        /* Optional admin commands: `pginactl plugin NAME ARGS...` (and shortcuts such as
         * `pginactl profile ...` for pgsmb). user is the record of argv's user when the caller
         * named one: the one pginad keeps for a logged-on user (with the logon password, in
         * memory only), else a record with the name alone. Output lines go to the admin with
         * pgina_ctx_print(). Returns 0, or -errno after pgina_ctx_message() saying why. */
        int (*admin)(struct pgina_ctx *ctx, struct pgina_user *user, int argc,
                     const char *const *argv);

        /* Optional identity lookup for libnss_pgina (a user known to a directory before their
         * local account exists: sshd asks NSS first). The record carries either a name, or ""
         * and a uid (pgina_user_uid). Fill uid, gid, PGINA_ATTR_HOME, PGINA_ATTR_SHELL and
         * PGINA_ATTR_FULLNAME and return > 0; 0 = not known; < 0 = cannot tell (server down).
         * Asked in [order] authentication order; the first plugin that knows the user answers. */
        int (*lookup)(struct pgina_ctx *ctx, struct pgina_user *user);

        /* Optional group lookup for libnss_pgina (getgrnam/getgrgid: a directory user's primary
         * group by name before any local group exists). The group carries either a name, or ""
         * and a gid. Fill it with pgina_group_set() (and members with pgina_group_member_add())
         * and return > 0; 0 = not known; < 0 = cannot tell. Asked like lookup. */
        int (*lookup_group)(struct pgina_ctx *ctx, struct pgina_group *group);
};

#define PGINA_PLUGIN_DEFINE(...)                                                                   \
        __attribute__((visibility("default"))) const struct pgina_plugin pgina_plugin_entry = {    \
                .abi_version = PGINA_PLUGIN_ABI_VERSION, __VA_ARGS__}

#define PGINA_PLUGIN_SYMBOL "pgina_plugin_entry"

/* ---- the user record ----------------------------------------------------------------------
 * Well-known attribute keys; any other key is a free-form attribute (pGina's attribute converter
 * names such as usri4_profile live here too). Values are NUL-terminated UTF-8, at most
 * PGINA_VALUE_MAX bytes. */
#define PGINA_ATTR_FULLNAME "fullname"
#define PGINA_ATTR_DESCRIPTION "description"
#define PGINA_ATTR_EMAIL "email"
#define PGINA_ATTR_HOME "home"
#define PGINA_ATTR_SHELL "shell"
/* Set by a notification plugin when the home must survive this logoff (pgSMB could not save the
 * profile): localmachine's logoff_action=remove then keeps account and home. */
#define PGINA_ATTR_KEEP_HOME "pgina_keep_home"
/* The name of the user's primary group (the one of gid) as the directory calls it: localmachine
 * gives a new local group for gid this name instead of the user's. */
#define PGINA_ATTR_PRIMARY_GROUP "primary_group"
/* Set by pginad on a retried logoff job (pgina_ctx_retry_later): "1" for the first retry, "2"... */
#define PGINA_ATTR_LOGOFF_RETRY "pgina_logoff_retry"
#define PGINA_VALUE_MAX 4096
#define PGINA_NAME_MAX 256

const char *pgina_user_name(const struct pgina_user *u);
/* The password given at logon; NULL where the call has none (notifications, acct_mgmt only). */
const char *pgina_user_password(const struct pgina_user *u);
const char *pgina_user_get(const struct pgina_user *u, const char *key); /* NULL when unset */
int pgina_user_set(struct pgina_user *u, const char *key, const char *value); /* NULL unsets */
/* In lookup by uid: the name of the user found. In authenticate: the local account the logon
 * name stands for (a directory's alice@example.com is alice); a logon name that is not a valid
 * user name must be renamed so, or the logon fails. The string pgina_user_name returned before
 * is freed. */
int pgina_user_set_name(struct pgina_user *u, const char *name);

size_t pgina_user_group_count(const struct pgina_user *u);
const char *pgina_user_group(const struct pgina_user *u, size_t i);
bool pgina_user_in_group(const struct pgina_user *u, const char *group);
int pgina_user_group_add(struct pgina_user *u, const char *group); /* no duplicates */
int pgina_user_group_remove(struct pgina_user *u, const char *group);
void pgina_user_groups_clear(struct pgina_user *u);

/* uid/gid a plugin supplies (LDAP uidNumber…); -1 when none. */
int64_t pgina_user_uid(const struct pgina_user *u);
int64_t pgina_user_gid(const struct pgina_user *u);
void pgina_user_set_ids(struct pgina_user *u, int64_t uid, int64_t gid);

/* ---- a group (lookup_group) ------------------------------------------------------------------
 * Names follow the user name rules; at most PGINA_GROUP_MEMBERS_MAX members. */
#define PGINA_GROUP_MEMBERS_MAX 1000
const char *pgina_group_name(const struct pgina_group *g); /* "" when asked by gid */
int64_t pgina_group_gid(const struct pgina_group *g); /* -1 when asked by name */
/* The group found: its name and gid (1 .. 2^32-2). -EINVAL for an invalid name or gid. */
int pgina_group_set(struct pgina_group *g, const char *name, int64_t gid);
/* -EINVAL for an invalid user name, -E2BIG past the maximum; duplicates are ignored. */
int pgina_group_member_add(struct pgina_group *g, const char *user);

/* ---- the call context ---------------------------------------------------------------------- */
const char *pgina_ctx_plugin(const struct pgina_ctx *ctx); /* this plugin's name */
enum pgina_scenario pgina_ctx_scenario(const struct pgina_ctx *ctx);
const char *pgina_ctx_service(const struct pgina_ctx *ctx); /* PAM service, "" if none */
const char *pgina_ctx_rhost(const struct pgina_ctx *ctx);
const char *pgina_ctx_tty(const struct pgina_ctx *ctx);
const char *pgina_ctx_state_dir(const struct pgina_ctx *ctx); /* this plugin's own, 0700 root */
/* True when the call must not change the machine (pginactl simulate without --gateway). */
bool pgina_ctx_dry_run(const struct pgina_ctx *ctx);

/* How many sessions the user has open on this machine right now (a gateway must never replace
 * the home of a user who is logged in). */
unsigned pgina_ctx_user_sessions(const struct pgina_ctx *ctx);

/* Authentication stage: has any plugin before this one succeeded? */
bool pgina_ctx_authenticated(const struct pgina_ctx *ctx);
/* Did plugin `name` authenticate this user (in this request)? */
bool pgina_ctx_authenticated_by(const struct pgina_ctx *ctx, const char *name);
/* From authenticate, with a success: the password is right but has expired, or must be changed
 * before the first logon (AD's "must change password at next logon"). The logon goes on only
 * through a password change: PAM's account stage answers PAM_NEW_AUTHTOK_REQD, and the change
 * that follows (PAM_CHANGE_EXPIRED_AUTHTOK) comes with the old password. ABI 5. */
void pgina_ctx_password_expired(struct pgina_ctx *ctx);

/* Per-request data, like pam_set_data/pam_get_data: what one call of this plugin leaves for its
 * later calls in the same request (an authenticate for the authorize after it), instead of a
 * static. Names are this plugin's own (other plugins' entries are not visible). Setting a name
 * again calls the cleanup of the old pointer first; data NULL removes the entry. Every cleanup runs
 * at the end of the request. -ENOMEM; -EOPNOTSUPP where the call belongs to no request (config
 * check); on failure data is not taken (still the caller's to free). ABI 6. */
int pgina_ctx_set_data(struct pgina_ctx *ctx, const char *name, void *data,
                       void (*cleanup)(void *data));
void *pgina_ctx_get_data(const struct pgina_ctx *ctx, const char *name); /* NULL when unset */

/* Retries of logoff work (ABI 7). From notify(LOGOFF), before returning 0: this plugin's work
 * failed for a reason that passes (its server unreachable, its share full). pginad keeps the job
 * in its journal and runs the LOGOFF notification again later, with back-off (pginad.conf's
 * job_retry_delay, doubling up to job_retry_max_delay), from this plugin on: the plugins before it
 * in [order] are not called again, the ones after it are (localmachine removes the account once
 * the home is saved). The call's message (pgina_ctx_message) is the reason pginactl status shows.
 * A retry's record carries PGINA_ATTR_LOGOFF_RETRY. Ignored anywhere else. */
void pgina_ctx_retry_later(struct pgina_ctx *ctx);
/* From any call: what this plugin's pending retries wait for works again (a logon reached the
 * store): they run now instead of at their back-off time. */
void pgina_ctx_retry_now(struct pgina_ctx *ctx);

/* Figures of this call for pginad's metrics (ABI 7): pginactl metrics and the logon's log line
 * show them. `name` is [a-z0-9_]+, at most PGINA_METRIC_NAME_MAX bytes, and its ending says what
 * the value is: "_ms" a duration in milliseconds (a histogram in seconds, and the logon's log line
 * names it: pgSMB's "download_ms" is "pgsmb download 400 ms"), "_bytes" a number of bytes (a
 * counter), anything else a count of events (a counter: "store_errors"). Reported twice in one
 * call, the values add up. At most PGINA_METRICS_MAX names per call, and pginad keeps at most 32
 * (plugin, name) pairs in all: the rest is dropped (a bounded memory, no per-user names: never
 * put a user's name or a path into `name`). Invalid names are ignored. */
#define PGINA_METRIC_NAME_MAX 48
#define PGINA_METRICS_MAX 16
void pgina_ctx_metric(struct pgina_ctx *ctx, const char *name, uint64_t value);

/* This plugin's configuration (declared defaults apply). */
const char *pgina_conf_get(const struct pgina_ctx *ctx, const char *key);
bool pgina_conf_bool(const struct pgina_ctx *ctx, const char *key);
long long pgina_conf_int(const struct pgina_ctx *ctx, const char *key);
/* Number of words of a list option, and word i of it (valid until the next call). */
size_t pgina_conf_list_len(const struct pgina_ctx *ctx, const char *key);
const char *pgina_conf_list_item(const struct pgina_ctx *ctx, const char *key, size_t i);

/* A warning about this plugin's `key` for the admin, from check_config: logged (LOG_WARNING) as
 * "FILE:LINE: [plugin] key: text" (FILE: alone when the key is unset). The configuration stays
 * valid; pginactl config check prints the line and still says OK. */
void pgina_conf_warn(const struct pgina_ctx *ctx, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Free-form subsections "[<plugin>.<sub>]" (e.g. [ldap.attributes]): their keys are not checked
 * against the option table. Number of entries, and entry i's key and value (NULL past the end). */
size_t pgina_conf_sub_len(const struct pgina_ctx *ctx, const char *sub);
const char *pgina_conf_sub_key(const struct pgina_ctx *ctx, const char *sub, size_t i);
const char *pgina_conf_sub_value(const struct pgina_ctx *ctx, const char *sub, size_t i);

/* The result message of this call (pGina's BooleanResult.Message); shown to the user. */
void pgina_ctx_message(struct pgina_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Progress text relayed at once through the PAM conversation (long gateway work). */
void pgina_ctx_progress(struct pgina_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* A line of output for the admin running a plugin command (admin only). */
void pgina_ctx_print(struct pgina_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* syslog priorities (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG); the line is prefixed with the
 * plugin's name. Never pass a password. */
void pgina_log(const struct pgina_ctx *ctx, int priority, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
