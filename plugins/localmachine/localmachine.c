/* LocalMachine plugin: pGina's LocalMachine on Linux. Authenticates against /etc/shadow,
 * authorizes on group membership, creates local accounts and syncs their groups at the gateway,
 * removes or scrambles pgina-created accounts at logoff, and changes local passwords. Every change
 * goes through shadow-utils (useradd, groupadd, usermod, userdel, chpasswd) run by pgina_run_tool(). */
#include <pgina/plugin.h>

#include <crypt.h>
#include <limits.h>
#include <stdint.h>
#include <syslog.h>

#include <pgina/account.h>
#include "lm-crypt.h"
#include <pgina/run.h>
#include <pgina/util.h>

#define PLUGIN_NAME "localmachine"
#define AUTH_FAILED "Authentication failed"

static const struct pgina_option lm_options[] = {
        {"always_authenticate", PGINA_OPT_BOOL, "false",
         "authenticate even when an earlier plugin already authenticated the user"},
        {"authz_require_admin", PGINA_OPT_BOOL, "false",
         "authorization: the user must be a member of admin_group"},
        {"admin_group", PGINA_OPT_STRING, "sudo", "the administrator group for authz_require_admin"},
        {"authz_groups", PGINA_OPT_LIST, NULL,
         "authorization: when set, the user must be a member of at least one of these groups"},
        {"authz_apply_to_all", PGINA_OPT_BOOL, "true",
         "apply the authorization rules to every user; false: only to users this plugin authenticated"},
        {"mirror_groups", PGINA_OPT_BOOL, "false",
         "authorization: first copy the local account's groups into the user record"},
        {"mandatory_groups", PGINA_OPT_LIST, NULL,
         "gateway: groups every account is made a member of, besides the record's groups"},
        {"group_create_fail_is_fail", PGINA_OPT_BOOL, "true",
         "gateway: a group that cannot be created fails the logon; false: skip it with a warning"},
        {"logoff_action", PGINA_OPT_STRING, "none",
         "at logoff, for pgina-created accounts: none, remove (account and home) or scramble (password)"},
        {"logoff_exceptions", PGINA_OPT_LIST, NULL, "user names logoff_action never touches"},
        {NULL, 0, NULL, NULL},
};

static void names_donep(struct pgina_names *l) { pgina_names_done(l); }
static void account_donep(struct pgina_account *a) { pgina_account_done(a); }

/* Run a shadow-utils tool for user; logs the outcome (info or error, with the exit status). On
 * failure why says what went wrong, for the user's message. Returns 0 or -errno. */
static int run_tool(struct pgina_ctx *ctx, const char *user, const char *what,
                    const char *const argv[], const char *input, size_t input_len, char *why,
                    size_t whylen) {
        struct pgina_run_result res;
        int r;

        r = pgina_run_tool(argv, input, input_len, &res);
        if (r < 0) {
                snprintf(why, whylen, "%s could not be run: %s", argv[0], strerror(-r));
                pgina_log(ctx, LOG_ERR, "Failed to %s for %s: %s", what, user, why);
                return r;
        }
        if (res.status != 0) {
                snprintf(why, whylen, "%s exited with status %d%s%s", argv[0], res.status,
                         res.err[0] ? ": " : "", res.err);
                pgina_log(ctx, LOG_ERR, "Failed to %s for %s: %s", what, user, why);
                return -EIO;
        }
        pgina_log(ctx, LOG_INFO, "%s for %s: %s exited with status 0", what, user, argv[0]);
        return 0;
}

static bool conf_list_has(const struct pgina_ctx *ctx, const char *key, const char *word) {
        size_t n = pgina_conf_list_len(ctx, key);

        for (size_t i = 0; i < n; i++)
                if (streq_ptr(pgina_conf_list_item(ctx, key, i), word))
                        return true;
        return false;
}

/* Add the local account's groups (primary included) to the record. */
static int copy_account_groups(struct pgina_ctx *ctx, struct pgina_user *u, const char *name,
                               const struct pgina_account *acc) {
        _cleanup_(names_donep) struct pgina_names groups = {0};
        int r;

        r = pgina_account_groups(name, acc->gid, &groups);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "Failed to read the groups of %s: %s", name, strerror(-r));
                return r;
        }
        for (size_t i = 0; i < groups.n; i++) {
                r = pgina_user_group_add(u, groups.v[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- authentication ---------------------------------------------------------------------- */

static int lm_authenticate(struct pgina_ctx *ctx, struct pgina_user *u) {
        const char *name = pgina_user_name(u);
        _cleanup_(account_donep) struct pgina_account acc = {0};
        int r;

        /* pGina: register failure, quietly, when someone else already vouched for the user. */
        if (pgina_ctx_authenticated(ctx) && !pgina_conf_bool(ctx, "always_authenticate")) {
                pgina_ctx_message(ctx, "skipped: already authenticated");
                return 0;
        }

        /* Unknown, locked and wrong password: one path, one message (lm_password_verify). */
        r = lm_password_verify(name, pgina_user_password(u));
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "Failed to read the shadow entry of %s: %s", name,
                          strerror(-r));
                pgina_ctx_message(ctx, AUTH_FAILED);
                return r;
        }
        if (r == 0) {
                pgina_log(ctx, LOG_INFO, "Authentication of %s against the local account failed",
                          name);
                pgina_ctx_message(ctx, AUTH_FAILED);
                return 0;
        }

        r = pgina_account_lookup(name, &acc);
        if (r <= 0) {
                /* a shadow entry without a passwd entry: treat as unknown */
                pgina_log(ctx, LOG_ERR, "%s has a shadow entry but no account", name);
                pgina_ctx_message(ctx, AUTH_FAILED);
                return r < 0 ? r : 0;
        }
        r = copy_account_groups(ctx, u, name, &acc);
        if (r < 0)
                return r;
        if (!pgina_user_get(u, PGINA_ATTR_FULLNAME)) {
                _cleanup_free_ char *full = pgina_gecos_fullname(acc.gecos);
                if (full)
                        (void)pgina_user_set(u, PGINA_ATTR_FULLNAME, full);
        }
        /* debug: the logon line says it */
        pgina_log(ctx, LOG_DEBUG, "Authenticated %s against the local account", name);
        return 1;
}

/* ---- authorization ----------------------------------------------------------------------- */

static int lm_authorize(struct pgina_ctx *ctx, struct pgina_user *u) {
        const char *name = pgina_user_name(u);
        size_t n;
        int r;

        if (!valid_user_name(name)) {
                pgina_ctx_message(ctx, "Authorization denied: invalid user name");
                return 0;
        }

        if (pgina_conf_bool(ctx, "mirror_groups")) {
                _cleanup_(account_donep) struct pgina_account acc = {0};

                r = pgina_account_lookup(name, &acc);
                if (r < 0)
                        return r;
                if (r > 0) {
                        r = copy_account_groups(ctx, u, name, &acc);
                        if (r < 0)
                                return r;
                }
        }

        if (!pgina_conf_bool(ctx, "authz_apply_to_all") &&
            !pgina_ctx_authenticated_by(ctx, PLUGIN_NAME)) {
                pgina_log(ctx, LOG_DEBUG, "%s was not authenticated by %s: not judged", name,
                          PLUGIN_NAME);
                return 1;
        }

        if (pgina_conf_bool(ctx, "authz_require_admin")) {
                const char *admin = pgina_conf_get(ctx, "admin_group");

                if (!admin || !pgina_user_in_group(u, admin)) {
                        pgina_log(ctx, LOG_INFO, "Authorization of %s denied: not a member of %s",
                                  name, strempty(admin));
                        pgina_ctx_message(ctx, "Authorization denied: %s is not a member of the group %s",
                                          name, strempty(admin));
                        return 0;
                }
        }

        n = pgina_conf_list_len(ctx, "authz_groups");
        if (n > 0) {
                char list[1024] = "";
                size_t used = 0;

                for (size_t i = 0; i < n; i++) {
                        const char *g = pgina_conf_list_item(ctx, "authz_groups", i);
                        int k;

                        if (g && pgina_user_in_group(u, g))
                                return 1;
                        k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                     strempty(g));
                        if (k > 0 && (size_t)k < sizeof list - used)
                                used += (size_t)k;
                }
                pgina_log(ctx, LOG_INFO, "Authorization of %s denied: not a member of any of %s",
                          name, list);
                pgina_ctx_message(ctx, "Authorization denied: %s is not a member of any of the groups %s",
                                  name, list);
                return 0;
        }
        return 1;
}

/* ---- gateway ----------------------------------------------------------------------------- */

/* What the gateway did or, in a dry run, would do; becomes the result message. */
struct plan {
        char text[2048];
        size_t len;
};

static void plan_add(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void plan_add(struct plan *p, const char *fmt, ...) {
        va_list ap;
        int k;

        if (p->len > 0 && p->len + 2 < sizeof p->text) {
                memcpy(p->text + p->len, "; ", 3);
                p->len += 2;
        }
        va_start(ap, fmt);
        k = vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
        va_end(ap);
        if (k > 0)
                p->len = p->len + (size_t)k < sizeof p->text ? p->len + (size_t)k : sizeof p->text - 1;
}

/* A path we pass to useradd: absolute, nothing /etc/passwd or a shell could misread. */
static int account_create(struct pgina_ctx *ctx, struct pgina_user *u, const char *name, bool dry,
                          struct plan *plan) {
        const char *desc = pgina_user_get(u, PGINA_ATTR_DESCRIPTION);
        /* The marker is how pgina knows the account is its own: a plugin's description counts
         * only when it is a "pGina created…" variant (pgSMB's), never an arbitrary text. */
        struct pgina_new_account spec = {
                .name = name,
                .marker = pgina_gecos_is_pgina(desc) ? desc : PGINA_ACCOUNT_MARKER,
                .fullname = pgina_user_get(u, PGINA_ATTR_FULLNAME),
                .home = pgina_user_get(u, PGINA_ATTR_HOME),
                .shell = pgina_user_get(u, PGINA_ATTR_SHELL),
                .uid = pgina_user_uid(u),
                .gid = pgina_user_gid(u),
                .group_name = pgina_user_get(u, PGINA_ATTR_PRIMARY_GROUP),
                .create_home = true,
        };
        char why[320];
        int r;

        if (dry) {
                plan_add(plan, "would create local account %s (GECOS marker \"%s\")", name, spec.marker);
                return 0;
        }
        r = pgina_account_create(&spec, why, sizeof why);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "Failed to create the local account %s: %s", name, why);
                pgina_ctx_message(ctx, "Failed to create local account %s: %s", name, why);
                return r;
        }
        pgina_log(ctx, LOG_INFO, "created the local account %s", name);
        plan_add(plan, "created local account %s", name);
        return 0;
}

/* A pgina-created account follows the record's full name; the marker (first field) is kept. */
static int account_update_fullname(struct pgina_ctx *ctx, struct pgina_user *u, const char *name,
                                   const struct pgina_account *acc, bool dry, struct plan *plan) {
        const char *full = pgina_user_get(u, PGINA_ATTR_FULLNAME);
        _cleanup_free_ char *marker = NULL, *gecos = NULL;
        char why[320];
        int r;

        if (!full || !*full)
                return 0;
        marker = strndup(acc->gecos, strcspn(acc->gecos, ","));
        if (!marker)
                return -ENOMEM;
        gecos = pgina_gecos_build(marker, full);
        if (!gecos)
                return -ENOMEM;
        if (streq(gecos, acc->gecos))
                return 0;
        if (dry) {
                plan_add(plan, "would set the GECOS of %s to \"%s\"", name, gecos);
                return 0;
        }
        r = run_tool(ctx, name, "set the full name", (const char *const[]){"usermod", "-c", gecos, name, NULL},
                     NULL, 0, why, sizeof why);
        if (r < 0)
                pgina_ctx_message(ctx, "Failed to set the full name of %s: %s", name, why);
        return r;
}

/* Add group g to the target list, creating it when missing. Returns 0 (added or skipped by the
 * group_create_fail_is_fail rule) or -errno (the logon fails). */
static int target_add(struct pgina_ctx *ctx, const char *name, const char *g, const char *primary,
                      bool dry, struct pgina_names *target, struct plan *plan) {
        bool fail_is_fail = pgina_conf_bool(ctx, "group_create_fail_is_fail");
        char why[320];
        int r;

        if (primary && streq(g, primary))
                return 0;
        if (pgina_names_has(target, g))
                return 0;
        if (!strpbrk(g, ",: \t\n") && pgina_local_group_exists(g)) {
                /* an existing group is used as it is named, even outside the names we create */
                return pgina_names_add(target, g) < 0 ? -ENOMEM : 0;
        } else if (!valid_user_name(g)) {
                snprintf(why, sizeof why, "invalid group name \"%s\"", g);
                r = -EINVAL;
                pgina_log(ctx, fail_is_fail ? LOG_ERR : LOG_WARNING, "Group of %s: %s", name, why);
        } else if (dry) {
                plan_add(plan, "would create group %s", g);
                return pgina_names_add(target, g) < 0 ? -ENOMEM : 0;
        } else {
                r = run_tool(ctx, name, "create a group", (const char *const[]){"groupadd", g, NULL},
                             NULL, 0, why, sizeof why);
                if (r == 0) {
                        plan_add(plan, "created group %s", g);
                        return pgina_names_add(target, g) < 0 ? -ENOMEM : 0;
                }
        }
        if (fail_is_fail) {
                pgina_ctx_message(ctx, "Failed to create group %s for %s: %s", g, name, why);
                return r;
        }
        pgina_log(ctx, LOG_WARNING, "Group %s skipped for %s (group_create_fail_is_fail=false)", g, name);
        plan_add(plan, "warning: group %s could not be created and was skipped", g);
        return 0;
}

static bool same_names(const struct pgina_names *a, const struct pgina_names *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!pgina_names_has(b, a->v[i]))
                        return false;
        return true;
}

/* Make the account's supplementary groups exactly the record's groups plus mandatory_groups,
 * minus its primary group. acc is NULL in a dry run for an account not created yet. */
static int sync_groups(struct pgina_ctx *ctx, struct pgina_user *u, const char *name,
                       const struct pgina_account *acc, bool dry, struct plan *plan) {
        _cleanup_(names_donep) struct pgina_names target = {0}, current = {0};
        _cleanup_free_ char *primary = NULL, *joined = NULL;
        size_t nrec = pgina_user_group_count(u), nmand = pgina_conf_list_len(ctx, "mandatory_groups");
        size_t len = 1;
        char why[320];
        int r;

        if (acc)
                primary = pgina_local_group_name(acc->gid);
        else if (pgina_user_gid(u) > 0)
                primary = pgina_local_group_name((gid_t)pgina_user_gid(u));
        if (!primary)
                primary = strdup(name); /* a new account's own user group */
        if (!primary)
                return -ENOMEM;

        for (size_t i = 0; i < nrec + nmand; i++) {
                const char *g = i < nrec ? pgina_user_group(u, i)
                                         : pgina_conf_list_item(ctx, "mandatory_groups", i - nrec);
                if (!g)
                        continue;
                r = target_add(ctx, name, g, primary, dry, &target, plan);
                if (r < 0)
                        return r;
        }

        if (acc) {
                r = pgina_account_groups(name, acc->gid, &current);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < current.n; i++)
                        if (streq(current.v[i], primary)) {
                                free(current.v[i]);
                                current.v[i] = current.v[--current.n];
                                break;
                        }
                if (same_names(&target, &current))
                        return 0;
        }

        for (size_t i = 0; i < target.n; i++)
                len += strlen(target.v[i]) + 1;
        joined = calloc(1, len);
        if (!joined)
                return -ENOMEM;
        for (size_t i = 0; i < target.n; i++) {
                if (i)
                        strcat(joined, ",");
                strcat(joined, target.v[i]);
        }
        if (dry) {
                plan_add(plan, "would set the groups of %s to \"%s\"", name, joined);
                return 0;
        }
        r = run_tool(ctx, name, "set the groups", (const char *const[]){"usermod", "-G", joined, name, NULL},
                     NULL, 0, why, sizeof why);
        if (r < 0) {
                pgina_ctx_message(ctx, "Failed to set the groups of %s: %s", name, why);
                return r;
        }
        plan_add(plan, "groups of %s set to \"%s\"", name, joined);
        return 0;
}

static int lm_gateway(struct pgina_ctx *ctx, struct pgina_user *u) {
        const char *name = pgina_user_name(u);
        _cleanup_(account_donep) struct pgina_account acc = {0};
        bool dry = pgina_ctx_dry_run(ctx), exists;
        struct plan plan = {.len = 0};
        int r;

        if (!valid_user_name(name)) {
                pgina_ctx_message(ctx, "Refusing to manage a local account with an invalid name");
                return 0;
        }
        r = pgina_account_lookup(name, &acc);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "Failed to look up %s: %s", name, strerror(-r));
                return r;
        }
        exists = r > 0;
        if (!exists) {
                r = account_create(ctx, u, name, dry, &plan);
                if (r < 0)
                        return r;
                if (!dry) {
                        r = pgina_account_lookup(name, &acc);
                        if (r <= 0) {
                                pgina_log(ctx, LOG_ERR, "%s is still missing after useradd", name);
                                pgina_ctx_message(ctx, "Failed to create local account %s", name);
                                return r < 0 ? r : -ENOENT;
                        }
                        exists = true;
                }
        } else if (pgina_gecos_is_pgina(acc.gecos)) {
                r = account_update_fullname(ctx, u, name, &acc, dry, &plan);
                if (r < 0)
                        return r;
        }
        /* Accounts that existed before pgina are synced too, but their GECOS is never touched:
         * they are never marked "pGina created", so never removed or scrambled. */
        r = sync_groups(ctx, u, name, exists ? &acc : NULL, dry, &plan);
        if (r < 0)
                return r;
        if (plan.len > 0)
                pgina_ctx_message(ctx, "%s%s", dry ? "dry run: " : "", plan.text);
        return 1;
}

/* ---- notification ------------------------------------------------------------------------ */

/* chpasswd -e with "user:HASH\n" on stdin; the line is wiped afterwards. */
static int set_password_hash(struct pgina_ctx *ctx, const char *name, const char *password,
                             const char *what, char *why, size_t whylen) {
        char hash[CRYPT_OUTPUT_SIZE], line[CRYPT_OUTPUT_SIZE + 64];
        int r, k;

        r = lm_password_hash(password, hash, sizeof hash);
        if (r < 0) {
                snprintf(why, whylen, "hashing failed: %s", strerror(-r));
                pgina_log(ctx, LOG_ERR, "Failed to %s for %s: %s", what, name, why);
                explicit_bzero(hash, sizeof hash);
                return r;
        }
        k = snprintf(line, sizeof line, "%s:%s\n", name, hash);
        explicit_bzero(hash, sizeof hash);
        if (k < 0 || (size_t)k >= sizeof line) {
                explicit_bzero(line, sizeof line);
                return -ENOBUFS;
        }
        r = run_tool(ctx, name, what, (const char *const[]){"chpasswd", "-e", NULL}, line,
                     (size_t)k, why, whylen);
        explicit_bzero(line, sizeof line);
        return r;
}

static int logoff_remove(struct pgina_ctx *ctx, const char *name) {
        char why[320];
        int r;

        r = run_tool(ctx, name, "remove the account at logoff",
                     (const char *const[]){"userdel", "-r", name, NULL}, NULL, 0, why, sizeof why);
        if (r < 0)
                pgina_ctx_message(ctx, "Failed to remove local account %s: %s", name, why);
        return r;
}

static int logoff_scramble(struct pgina_ctx *ctx, const char *name) {
        char pw[LM_RANDOM_PASSWORD_SIZE], why[320];
        int r;

        r = lm_password_random(pw, sizeof pw);
        if (r >= 0)
                r = set_password_hash(ctx, name, pw, "scramble the password at logoff", why, sizeof why);
        else
                snprintf(why, sizeof why, "getrandom failed: %s", strerror(-r));
        explicit_bzero(pw, sizeof pw);
        if (r < 0)
                pgina_ctx_message(ctx, "Failed to scramble the password of %s: %s", name, why);
        return r;
}

static int lm_notify(struct pgina_ctx *ctx, enum pgina_event event, struct pgina_user *u) {
        const char *name = pgina_user_name(u), *action = pgina_conf_get(ctx, "logoff_action");
        _cleanup_(account_donep) struct pgina_account acc = {0};
        int r;

        if (event != PGINA_EVENT_LOGOFF || !action || streq(action, "none"))
                return 1;
        if (!valid_user_name(name))
                return 1;
        if (conf_list_has(ctx, "logoff_exceptions", name)) {
                pgina_log(ctx, LOG_INFO, "%s is in logoff_exceptions: no %s at logoff", name, action);
                return 1;
        }
        r = pgina_account_lookup(name, &acc);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "Failed to look up %s: %s", name, strerror(-r));
                return r;
        }
        if (r == 0)
                return 1;
        if (!pgina_gecos_is_pgina(acc.gecos)) {
                pgina_log(ctx, LOG_INFO, "%s was not created by pgina: no %s at logoff", name, action);
                return 1;
        }
        if (pgina_ctx_dry_run(ctx)) {
                pgina_ctx_message(ctx, "dry run: would %s local account %s", action, name);
                return 1;
        }
        if (streq(action, "remove") && pgina_user_get(u, PGINA_ATTR_KEEP_HOME)) {
                /* An earlier plugin could not save the home (pgSMB): removing it would lose data. */
                pgina_log(ctx, LOG_WARNING, "%s: home kept at logoff (its profile could not be saved); "
                          "scrambling the password instead of removing the account", name);
                r = logoff_scramble(ctx, name);
                return r < 0 ? r : 1;
        }
        if (streq(action, "remove"))
                r = logoff_remove(ctx, name);
        else if (streq(action, "scramble"))
                r = logoff_scramble(ctx, name);
        else
                r = -EINVAL; /* check_config refuses anything else */
        return r < 0 ? r : 1;
}

/* ---- change password --------------------------------------------------------------------- */

static int lm_change_password(struct pgina_ctx *ctx, struct pgina_user *u, const char *old_password,
                              const char *new_password) {
        const char *name = pgina_user_name(u);
        _cleanup_(account_donep) struct pgina_account acc = {0};
        char why[320];
        int r;

        /* old_password is not checked here: pginad verified it before calling the chain. */
        if (!valid_user_name(name)) {
                pgina_ctx_message(ctx, "Refusing to change the password of an invalid user name");
                return 0;
        }
        if (!new_password)
                return -EINVAL;
        r = pgina_account_lookup(name, &acc);
        if (r < 0)
                return r;
        if (r == 0) {
                pgina_ctx_message(ctx, "No local account %s", name);
                return 0;
        }
        if (pgina_ctx_dry_run(ctx)) {
                pgina_ctx_message(ctx, "dry run: would change the password of %s", name);
                return 1;
        }
        r = set_password_hash(ctx, name, new_password, "change the password", why, sizeof why);
        if (r < 0) {
                pgina_ctx_message(ctx, "Failed to change the local password of %s: %s", name, why);
                return r;
        }
        return 1;
}

/* ---- config ------------------------------------------------------------------------------ */

static int check_name_list(struct pgina_ctx *ctx, const char *key) {
        size_t n = pgina_conf_list_len(ctx, key);

        for (size_t i = 0; i < n; i++) {
                const char *w = pgina_conf_list_item(ctx, key, i);
                if (!valid_user_name(w)) {
                        pgina_ctx_message(ctx, "%s: \"%s\" is not a valid user or group name", key,
                                          strempty(w));
                        return -EINVAL;
                }
        }
        return 0;
}

static int lm_check_config(struct pgina_ctx *ctx) {
        const char *action = pgina_conf_get(ctx, "logoff_action");
        const char *admin = pgina_conf_get(ctx, "admin_group");
        static const char *const lists[] = {"authz_groups", "mandatory_groups", "logoff_exceptions"};
        int r;

        if (!action || !(streq(action, "none") || streq(action, "remove") || streq(action, "scramble"))) {
                pgina_ctx_message(ctx, "logoff_action must be none, remove or scramble, not \"%s\"",
                                  strempty(action));
                return -EINVAL;
        }
        if (!valid_user_name(admin)) {
                pgina_ctx_message(ctx, "admin_group: \"%s\" is not a valid group name", strempty(admin));
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                r = check_name_list(ctx, lists[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

PGINA_PLUGIN_DEFINE(.stages = PGINA_STAGE_AUTHENTICATION | PGINA_STAGE_AUTHORIZATION |
                              PGINA_STAGE_GATEWAY | PGINA_STAGE_NOTIFICATION |
                              PGINA_STAGE_CHANGE_PASSWORD,
                    .name = PLUGIN_NAME, .version = "1.0",
                    .description = "Local accounts: shadow authentication, group authorization, "
                                   "account creation and group sync, logoff remove/scramble, "
                                   "password change",
                    .options = lm_options, .check_config = lm_check_config,
                    .authenticate = lm_authenticate, .authorize = lm_authorize,
                    .gateway = lm_gateway, .notify = lm_notify,
                    .change_password = lm_change_password);
