/* LDAP plugin: pGina's LDAP plugin on Linux, with OpenLDAP's libldap. Authenticates by a simple
 * bind as the user's DN (dn_pattern, or a search as the service account or anonymously) and fills
 * the record from the entry (attribute converter included); authorizes by ordered group rules;
 * maps LDAP groups to local groups at the gateway (LocalMachine then makes them exact); changes
 * the user's LDAP password with the password modify extended operation. Every stage opens its own
 * connection: a worker lives for one request and plugins keep no state between calls, but for the
 * name of the user this worker's request authenticated from the logon cache (cache_credentials,
 * ldap-cache.h), which tells authorization and gateway to judge by the cached groups. */
#include <pgina/plugin.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ldap-cache.h"
#include "ldap-config.h"
#include "ldap-conn.h"
#include "ldap-dir.h"
#include "ldap-escape.h"
#include "ldap-group.h"
#include "ldap-lookup.h"
#include "ldap-passwd.h"
#include "ldap-rules.h"
#include <pgina/util.h>

#define PLUGIN_NAME "ldap"
#define AUTH_FAILED "Authentication failed"
#define SERVER_DOWN "LDAP server unavailable"

static const struct pgina_option ldap_plugin_options[] = {
        {"servers", PGINA_OPT_LIST, NULL,
         "ldap:// or ldaps:// URIs (ldap://host:port), tried in order"},
        {"server_retry_delay", PGINA_OPT_INT, "30",
         "seconds a server that failed is skipped (unless every server failed); 0 = never skipped"},
        {"start_tls", PGINA_OPT_BOOL, "false", "StartTLS on ldap:// servers (ldaps:// is TLS already)"},
        {"tls_ca_file", PGINA_OPT_STRING, NULL, "PEM CA certificates the server's certificate must chain to"},
        {"tls_verify", PGINA_OPT_BOOL, "true", "verify the server's certificate and name"},
        {"timeout", PGINA_OPT_INT, "5", "seconds to connect and for each operation"},
        {"search_dn", PGINA_OPT_STRING, NULL,
         "service account for searches (user DN, groups); unset = anonymous"},
        {"search_password_file", PGINA_OPT_STRING, NULL,
         "root-only file (0600) holding the service account's password"},
        {"dn_pattern", PGINA_OPT_STRING, NULL, "the user's DN, %u = user name (e.g. uid=%u,ou=people,dc=example,dc=com)"},
        {"search_filter", PGINA_OPT_STRING, NULL,
         "instead of dn_pattern: find the DN with this filter, %u = user name (e.g. (&(objectClass=posixAccount)(uid=%u)))"},
        {"search_contexts", PGINA_OPT_STRING, NULL,
         "base DNs searched in order with search_filter, separated by blanks (spaces in a DN as \\20)"},
        {"group_attribute", PGINA_OPT_STRING, "memberUid",
         "membership: memberUid (group lists names), member or uniqueMember (group lists DNs), memberOf (user lists groups)"},
        {"group_dn_pattern", PGINA_OPT_STRING, NULL,
         "DN of a group given by name in the rules, %g = name (e.g. cn=%g,ou=groups,dc=example,dc=com)"},
        {"group_search_contexts", PGINA_OPT_STRING, NULL,
         "base DNs where groups are looked up by name or gid (libnss_pgina's group database, the "
         "primary group's name), separated by blanks; unset = the parent of group_dn_pattern"},
        {"group_filter", PGINA_OPT_STRING, "(objectClass=posixGroup)",
         "the filter a group entry matches (with cn=NAME or gidNumber=GID added)"},
        {"authz_rules", PGINA_OPT_STRING, NULL,
         "blank-separated, ordered, first match wins: allow:GROUP deny:GROUP allow:!GROUP (not a "
         "member); GROUP = name (group_dn_pattern) or DN (spaces in it as \\20)"},
        {"authz_default", PGINA_OPT_STRING, "allow", "allow or deny when no rule matches"},
        {"authz_apply_to_all", PGINA_OPT_BOOL, "true",
         "judge every user; false: only users this plugin authenticated"},
        {"allow_when_server_down", PGINA_OPT_BOOL, "false",
         "authorization when no server answers: allow (true) or deny"},
        {"gateway_rules", PGINA_OPT_STRING, NULL,
         "blank-separated LDAPGROUP=localgroup: members of LDAPGROUP (name or DN) get the local group"},
        {"always_authenticate", PGINA_OPT_BOOL, "false",
         "authenticate even when an earlier plugin already authenticated the user"},
        {"cache_credentials", PGINA_OPT_BOOL, "false",
         "keep a yescrypt hash of the password, the record and the rules' groups after an online "
         "logon, for logons while no server answers (pginactl cache list|drop USER)"},
        {"schema", PGINA_OPT_STRING, "rfc2307",
         "rfc2307 (posixAccount: cn, homeDirectory, uidNumber...) or ad (Active Directory: displayName, "
         "unixHomeDirectory, profilePath, homeDirectory + homeDrive as the home share, scriptPath, ids from "
         "the objectSid where no uidNumber is set, nested memberOf)"},
        {"ad_id_base", PGINA_OPT_INT, "100000",
         "schema = ad: uid = ad_id_base + RID of the objectSid, gid = ad_id_base + primaryGroupID, for "
         "accounts without uidNumber/gidNumber (winbind's idmap rid)"},
        {"password_change", PGINA_OPT_STRING, "auto",
         "how passwords are changed: rfc3062 (password modify operation), ad (Active Directory's "
         "unicodePwd, over TLS only), auto (ad when the rootDSE says Active Directory)"},
        {"cache_days", PGINA_OPT_INT, "7",
         "days a cached logon stays usable after the last online logon (0 = never used)"},
        {NULL, 0, NULL, NULL},
};

static void conn_donep(struct pgldap_conn *c) { pgldap_conn_done(c); }

/* The user this request authenticated from the logon cache (request data, unset: none). */
#define CACHED_LOGON_DATA "cached_logon"

static bool cached_logon_of(struct pgina_ctx *ctx, const char *name) {
        const char *cached = pgina_ctx_get_data(ctx, CACHED_LOGON_DATA);

        return cached && streq(cached, name) && pgina_ctx_authenticated_by(ctx, PLUGIN_NAME);
}

/* ---- the membership session of authorization and gateway --------------------------------------- */

struct lookup {
        struct pgldap_conn conn;
        char *user_dn; /* NULL: the user has no entry */
};

static void lookup_done(struct lookup *l) {
        pgldap_conn_done(&l->conn);
        free(l->user_dn);
}

/* Connect, bind for searching, find the user's DN. 0 or -errno (-EHOSTDOWN: no server). */
static int lookup_open(struct pgina_ctx *ctx, const char *user, struct lookup *l) {
        int r;

        r = pgldap_connect(ctx, &l->conn);
        if (r < 0)
                return r;
        r = pgldap_bind_service(ctx, &l->conn);
        if (r <= 0)
                return r < 0 ? r : -EACCES;
        r = pgldap_find_dn(ctx, &l->conn, user, &l->user_dn);
        return r < 0 ? r : 0;
}

/* Membership of a rule's group: asked from the directory (l), or from a cached logon (e), where a
 * group the cache does not know is -ENOENT. */
static int member_of(struct pgina_ctx *ctx, struct lookup *l, const struct pgldap_cache_entry *e,
                     const char *user, const char *group) {
        _cleanup_free_ char *dn = NULL;
        int r;

        r = pgldap_group_dn(ctx, group, &dn);
        if (r < 0)
                return r;
        if (e) {
                r = pgldap_cache_member(e, dn);
                if (r < 0)
                        pgina_log(ctx, LOG_WARNING, "The cached logon of %s does not know the group "
                                  "%s (the rules changed since?)", user, dn);
                return r;
        }
        return pgldap_is_member(ctx, &l->conn, user, l->user_dn, dn);
}

/* ---- the logon cache ------------------------------------------------------------------------- */

static const char *const record_keys[] = {
        PGINA_ATTR_FULLNAME, PGINA_ATTR_EMAIL, PGINA_ATTR_HOME, PGINA_ATTR_SHELL,
};

static int cache_attr(struct pgldap_cache_entry *e, const struct pgina_user *u, const char *key) {
        const char *v = pgina_user_get(u, key);

        for (size_t i = 0; i < e->nattrs; i++)
                if (streq(e->attrs[i].key, key))
                        return 0;
        return v ? pgldap_cache_add_attr(e, key, v) : 0;
}

/* The membership of every group the rules name, as authorization and gateway would ask it. A
 * group whose lookup failed stays out: offline, it is unknown (denied, not mapped). */
static void cache_groups(struct pgina_ctx *ctx, const char *name, struct pgldap_cache_entry *e) {
        _cleanup_(lookup_done) struct lookup l = {.conn = {0}};
        const char *authz = pgina_conf_get(ctx, "authz_rules");
        const char *gw = pgina_conf_get(ctx, "gateway_rules");
        size_t na = pgldap_words(authz), ng = pgldap_words(gw);
        int r;

        if (na + ng == 0)
                return;
        r = lookup_open(ctx, name, &l);
        if (r < 0) {
                pgina_log(ctx, LOG_WARNING, "Group membership of %s not cached: %s", name,
                          r == -EHOSTDOWN ? "no server answered" : strerror(-r));
                return;
        }
        for (size_t i = 0; i < na + ng; i++) {
                _cleanup_free_ char *w = pgldap_word(i < na ? authz : gw, i < na ? i : i - na);
                _cleanup_free_ char *group = NULL, *dn = NULL;
                struct authz_rule rule;
                const char *g, *local;

                if (!w)
                        return;
                if (i < na) {
                        if (pgldap_authz_rule_parse(w, &rule) < 0)
                                continue;
                        g = rule.group;
                } else {
                        if (pgldap_gateway_rule_parse(w, &group, &local) < 0)
                                continue;
                        g = group;
                }
                if (pgldap_group_dn(ctx, g, &dn) < 0 || pgldap_cache_member(e, dn) >= 0)
                        continue;
                r = pgldap_is_member(ctx, &l.conn, name, l.user_dn, dn);
                if (r < 0) {
                        pgina_log(ctx, LOG_WARNING, "Membership of %s in %s not cached: %s", name, dn,
                                  strerror(-r));
                        continue;
                }
                if (pgldap_cache_add_group(e, dn, r > 0) < 0)
                        return;
        }
}

/* After an online authentication: replace the user's cached logon. Failures are logged only. */
static void cache_online_logon(struct pgina_ctx *ctx, struct pgina_user *u, const char *password) {
        _cleanup_(pgldap_cache_entry_done) struct pgldap_cache_entry e = {.uid = -1, .gid = -1};
        const char *name = pgina_user_name(u);
        size_t nconv = pgina_conf_sub_len(ctx, "attributes");

        if (!pgina_conf_bool(ctx, "cache_credentials") || pgina_ctx_dry_run(ctx))
                return;
        e.user = strdup(name);
        if (!e.user)
                return;
        e.time = (long long)time(NULL);
        e.uid = pgina_user_uid(u);
        e.gid = pgina_user_gid(u);
        for (size_t i = 0; i < ELEMENTSOF(record_keys); i++)
                if (cache_attr(&e, u, record_keys[i]) < 0)
                        return;
        for (size_t i = 0; i < nconv; i++)
                if (cache_attr(&e, u, pgina_conf_sub_key(ctx, "attributes", i)) < 0)
                        return;
        cache_groups(ctx, name, &e);
        if (pgldap_cache_save(ctx, &e, password) == 0)
                pgina_log(ctx, LOG_INFO, "Logon of %s cached for offline logons (%zu groups of the "
                          "rules, cache_days %lld)", name, e.ngroups, pgina_conf_int(ctx, "cache_days"));
}

/* No server answered (err = -EHOSTDOWN): the cached logon decides when there is a fresh one. A
 * wrong password is the same refusal as online; no usable entry keeps the error. */
static int authenticate_cached(struct pgina_ctx *ctx, struct pgina_user *u, const char *password,
                               int err) {
        _cleanup_(pgldap_cache_entry_done) struct pgldap_cache_entry e = {.uid = -1, .gid = -1};
        const char *name = pgina_user_name(u);
        char when[64], *cached;
        struct tm tm;
        time_t t;
        int r;

        pgina_ctx_message(ctx, SERVER_DOWN);
        if (err != -EHOSTDOWN || !pgina_conf_bool(ctx, "cache_credentials"))
                return err;
        r = pgldap_cache_load(ctx, name, &e);
        if (r <= 0) {
                if (r == 0)
                        pgina_log(ctx, LOG_INFO, "No cached logon of %s to fall back on", name);
                return err;
        }
        t = (time_t)e.time;
        if (!localtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", &tm))
                snprintf(when, sizeof when, "@%lld", e.time);
        if (!pgldap_cache_fresh(ctx, &e)) {
                pgina_log(ctx, LOG_WARNING, "Cached logon of %s (cached at %s) not used: older than "
                          "cache_days (%lld)", name, when, pgina_conf_int(ctx, "cache_days"));
                return err;
        }
        r = pgldap_cache_verify(&e, password);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "Cached logon of %s unusable: the hash cannot be checked: %s",
                          name, strerror(-r));
                return err;
        }
        if (r == 0) {
                pgina_log(ctx, LOG_INFO, "Offline authentication of %s failed: the password does not "
                          "match the cached logon", name);
                pgina_ctx_message(ctx, AUTH_FAILED);
                return 0;
        }
        r = pgldap_cache_fill(&e, u);
        if (r < 0) {
                pgina_ctx_message(ctx, "Failed to fill the record of %s from the cached logon", name);
                return r;
        }
        cached = strdup(name);
        if (!cached)
                return -ENOMEM;
        r = pgina_ctx_set_data(ctx, CACHED_LOGON_DATA, cached, free);
        if (r < 0) {
                free(cached);
                return r;
        }
        pgina_log(ctx, LOG_WARNING, "Authenticated %s offline from the logon cached at %s (cached "
                  "logon): no LDAP server answered", name, when);
        pgina_ctx_message(ctx, "Offline logon with cached credentials: " SERVER_DOWN);
        return 1;
}

/* After a password change: an existing cached logon follows the new password. */
static void cache_new_password(struct pgina_ctx *ctx, const char *name, const char *new_password) {
        _cleanup_(pgldap_cache_entry_done) struct pgldap_cache_entry e = {.uid = -1, .gid = -1};

        if (pgldap_cache_load(ctx, name, &e) <= 0)
                return;
        e.time = (long long)time(NULL);
        if (pgldap_cache_save(ctx, &e, new_password) == 0)
                pgina_log(ctx, LOG_INFO, "Cached logon of %s updated with the new password", name);
}

/* ---- authentication -------------------------------------------------------------------------- */

/* A bind as a DN nobody has, with the given password: an unknown user costs a wrong password's
 * round trip, so the time does not tell which it was. */
static void bind_decoy(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *password) {
        _cleanup_free_ char *base = pgldap_word(pgina_conf_get(ctx, "search_contexts"), 0), *dn = NULL;

        if (asprintf(&dn, "cn=pgina-no-such-user,%s", strempty(base)) < 0)
                return;
        (void)pgldap_bind(ctx, c, dn, password);
}

/* What the user reads when AD refuses the bind for a reason of the account (not the password). */
static const char *ad_refusal(unsigned data) {
        switch (data) {
        case AD_BIND_DISABLED: return "Your account is disabled: ask your administrator";
        case AD_BIND_ACCOUNT_EXPIRED: return "Your account has expired: ask your administrator";
        case AD_BIND_LOCKED_OUT:
                return "Your account is locked out after too many failed logons: try again later or ask your "
                       "administrator";
        case AD_BIND_LOGON_HOURS: return "You may not log on at this time (your account's logon hours)";
        case AD_BIND_WORKSTATION: return "You may not log on from this computer (your account's workstations)";
        default: return NULL;
        }
}

static bool ad_must_change(unsigned data) {
        return data == AD_BIND_MUST_CHANGE || data == AD_BIND_PASSWORD_EXPIRED;
}

/* AD refused the user's bind because the (right) password must be changed: go on bound as the
 * service account, which reads the entry and later changes the password. 1, or 0 and a message
 * when there is no service account. */
static int must_change_rebind(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *name, const char *dn) {
        int r;

        if (!*strempty(pgina_conf_get(ctx, "search_dn"))) {
                pgina_log(ctx, LOG_ERR, "%s (%s) must change the password, which needs a service account "
                          "(search_dn) to read the entry and make the change: logon refused", name, dn);
                pgina_ctx_message(ctx, "Your password must be changed, which this machine cannot do: ask your "
                                  "administrator");
                return 0;
        }
        r = pgldap_bind_service(ctx, c);
        if (r <= 0)
                pgina_ctx_message(ctx, "LDAP service account bind failed");
        return r;
}

static int ldap_plugin_authenticate(struct pgina_ctx *ctx, struct pgina_user *u) {
        _cleanup_(conn_donep) struct pgldap_conn c = {0};
        const char *name = pgina_user_name(u), *password = pgina_user_password(u);
        _cleanup_free_ char *dn = NULL;
        unsigned expired = 0;
        int r;

        if (pgina_ctx_authenticated(ctx) && !pgina_conf_bool(ctx, "always_authenticate")) {
                pgina_ctx_message(ctx, "skipped: already authenticated");
                return 0;
        }
        /* Never let an empty password reach a bind: servers take it as an anonymous bind. */
        if (!password || !*password) {
                pgina_log(ctx, LOG_INFO, "Authentication of %s failed: empty password, refused "
                          "without contacting the server", name);
                pgina_ctx_message(ctx, AUTH_FAILED);
                return 0;
        }
        r = pgldap_connect(ctx, &c);
        if (r < 0)
                return authenticate_cached(ctx, u, password, r);
        if (pgldap_search_mode(ctx)) {
                r = pgldap_bind_service(ctx, &c);
                if (r == -EHOSTDOWN)
                        return authenticate_cached(ctx, u, password, r);
                if (r <= 0) {
                        pgina_ctx_message(ctx, "LDAP service account bind failed");
                        return r < 0 ? r : -EACCES;
                }
        }
        r = pgldap_find_dn(ctx, &c, name, &dn);
        if (r == -EHOSTDOWN)
                return authenticate_cached(ctx, u, password, r);
        if (r < 0) {
                pgina_ctx_message(ctx, "LDAP search failed");
                return r;
        }
        if (r == 0) {
                bind_decoy(ctx, &c, password);
                pgina_log(ctx, LOG_INFO, "Authentication of %s failed: no LDAP entry", name);
                pgina_ctx_message(ctx, AUTH_FAILED);
                return 0;
        }
        r = pgldap_bind(ctx, &c, dn, password);
        if (r == 0 && ad_must_change(c.ad_data)) {
                /* AD says this for the right password only */
                expired = c.ad_data;
                if ((r = must_change_rebind(ctx, &c, name, dn)) <= 0)
                        return r;
        }
        if (r == 0) {
                const char *why = ad_refusal(c.ad_data);
                if (c.ad_data)
                        pgina_log(ctx, LOG_INFO, "Authentication of %s as %s failed: %s (Active Directory: data %x)",
                                  name, dn, why ? why : "invalid credentials", c.ad_data);
                else
                        pgina_log(ctx, LOG_INFO, "Authentication of %s as %s failed: invalid credentials", name, dn);
                pgina_ctx_message(ctx, "%s", why ? why : AUTH_FAILED);
                return 0;
        }
        if (r == -EHOSTDOWN) /* the server went away: it said nothing about the password */
                return authenticate_cached(ctx, u, password, r);
        if (r < 0) {
                pgina_ctx_message(ctx, AUTH_FAILED);
                return r;
        }
        r = pgldap_read_user(ctx, &c, dn, u);
        name = pgina_user_name(u); /* schema = ad may have renamed it (the old string is freed) */
        if (r == -EHOSTDOWN)
                return authenticate_cached(ctx, u, password, r);
        if (r == -ENOENT) { /* gone since the bind, or no logon account (schema = ad: a computer) */
                pgina_ctx_message(ctx, AUTH_FAILED);
                return 0;
        }
        if (r < 0) {
                /* without its uidNumber the gateway would give the account another uid */
                pgina_ctx_message(ctx, "Failed to read the LDAP entry of %s", name);
                return r;
        }
        if (expired) {
                /* no cached logon from a password about to be replaced */
                pgina_log(ctx, LOG_INFO, "Authenticated %s as %s on %s: the password %s and must be changed now",
                          name, dn, c.uri, expired == AD_BIND_MUST_CHANGE ? "is marked \"must change at next logon\"" : "has expired");
                pgina_ctx_password_expired(ctx);
                return 1;
        }
        /* debug: the logon line says it */
        pgina_log(ctx, LOG_DEBUG, "Authenticated %s as %s on %s", name, dn, c.uri);
        pgldap_conn_done(&c);
        cache_online_logon(ctx, u, password);
        return 1;
}

/* ---- authorization --------------------------------------------------------------------------- */

static int server_down_verdict(struct pgina_ctx *ctx, const char *name) {
        if (pgina_conf_bool(ctx, "allow_when_server_down")) {
                pgina_log(ctx, LOG_WARNING, "%s allowed: no LDAP server answered (allow_when_server_down)",
                          name);
                pgina_ctx_message(ctx, SERVER_DOWN ": allowed (allow_when_server_down)");
                return 1;
        }
        pgina_log(ctx, LOG_WARNING, "%s denied: no LDAP server answered", name);
        pgina_ctx_message(ctx, "Authorization denied: " SERVER_DOWN);
        return 0;
}

static int authz_verdict(struct pgina_ctx *ctx, const char *name, bool allow, const char *why) {
        pgina_log(ctx, LOG_INFO, "Authorization of %s: %s by %s", name, allow ? "allowed" : "denied", why);
        if (!allow)
                pgina_ctx_message(ctx, "Authorization denied by %s", why);
        return allow ? 1 : 0;
}

/* No server answered: a user this request authenticated from the logon cache is judged by the
 * cached groups, anyone else by allow_when_server_down. e is loaded here. */
static int server_down_cached(struct pgina_ctx *ctx, const char *name, struct pgldap_cache_entry *e) {
        if (!cached_logon_of(ctx, name))
                return 0;
        if (pgldap_cache_load(ctx, name, e) <= 0)
                return 0;
        pgina_log(ctx, LOG_INFO, "No LDAP server answered: the groups of %s come from the cached logon",
                  name);
        return 1;
}

static int ldap_plugin_authorize(struct pgina_ctx *ctx, struct pgina_user *u) {
        _cleanup_(lookup_done) struct lookup l = {.conn = {0}};
        _cleanup_(pgldap_cache_entry_done) struct pgldap_cache_entry e = {.uid = -1, .gid = -1};
        const struct pgldap_cache_entry *cached = NULL;
        const char *name = pgina_user_name(u);
        const char *rules = pgina_conf_get(ctx, "authz_rules");
        size_t n = pgldap_words(rules);
        bool def = streq_ptr(pgina_conf_get(ctx, "authz_default"), "allow");
        int r;

        if (!pgina_conf_bool(ctx, "authz_apply_to_all") && !pgina_ctx_authenticated_by(ctx, PLUGIN_NAME))
                return 1;
        if (n == 0)
                return authz_verdict(ctx, name, def, "authz_default");

        r = lookup_open(ctx, name, &l);
        if (r == -EHOSTDOWN) {
                if (!server_down_cached(ctx, name, &e))
                        return server_down_verdict(ctx, name);
                cached = &e;
        } else if (r < 0) {
                pgina_ctx_message(ctx, "Authorization failed: LDAP lookup of %s failed", name);
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *w = pgldap_word(rules, i);
                struct authz_rule rule;
                char why[600];

                if (!w)
                        return -ENOMEM;
                if (pgldap_authz_rule_parse(w, &rule) < 0)
                        return -EINVAL; /* check_config refuses it */
                r = member_of(ctx, &l, cached, name, rule.group);
                if (r == -EHOSTDOWN && !cached) {
                        if (!server_down_cached(ctx, name, &e))
                                return server_down_verdict(ctx, name);
                        cached = &e;
                        r = member_of(ctx, &l, cached, name, rule.group);
                }
                if (r == -ENOENT && cached) {
                        /* a group the cache does not know: deny rather than guess */
                        snprintf(why, sizeof why, "rule \"%s\" (its group is not in the cached logon)", w);
                        return authz_verdict(ctx, name, false, why);
                }
                if (r < 0) {
                        pgina_ctx_message(ctx, "Authorization failed: LDAP group lookup failed");
                        return r;
                }
                if ((r > 0) != rule.negate) {
                        snprintf(why, sizeof why, "rule \"%s\"%s", w, cached ? " (cached groups)" : "");
                        return authz_verdict(ctx, name, rule.allow, why);
                }
        }
        return authz_verdict(ctx, name, def, cached ? "authz_default (cached groups)" : "authz_default");
}

/* ---- gateway --------------------------------------------------------------------------------- */

static int ldap_plugin_gateway(struct pgina_ctx *ctx, struct pgina_user *u) {
        _cleanup_(lookup_done) struct lookup l = {.conn = {0}};
        _cleanup_(pgldap_cache_entry_done) struct pgldap_cache_entry e = {.uid = -1, .gid = -1};
        const struct pgldap_cache_entry *cached = NULL;
        const char *name = pgina_user_name(u);
        const char *rules = pgina_conf_get(ctx, "gateway_rules");
        size_t n = pgldap_words(rules);
        char added[1024] = "";
        size_t used = 0;
        int r;

        if (n == 0)
                return 1;
        r = lookup_open(ctx, name, &l);
        if (r == -EHOSTDOWN && server_down_cached(ctx, name, &e)) {
                cached = &e;
                r = 0;
        }
        if (r < 0) {
                /* pGina: a gateway without its server adds nothing and lets the logon go on
                 * (LocalMachine's exact sync then drops the mapped groups: the safe direction) */
                pgina_log(ctx, LOG_WARNING, "No LDAP group mapping for %s: %s", name,
                          r == -EHOSTDOWN ? "no server answered" : strerror(-r));
                pgina_ctx_message(ctx, "%s: no groups added", r == -EHOSTDOWN ? SERVER_DOWN : "LDAP lookup failed");
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *w = pgldap_word(rules, i), *group = NULL;
                const char *local;

                if (!w)
                        return -ENOMEM;
                if (pgldap_gateway_rule_parse(w, &group, &local) < 0)
                        return -EINVAL;
                r = member_of(ctx, &l, cached, name, group);
                if (r < 0) {
                        pgina_log(ctx, LOG_WARNING, "Gateway rule %s=%s skipped for %s: %s", group,
                                  local, name, strerror(-r));
                        continue;
                }
                if (r == 0)
                        continue;
                r = pgina_user_group_add(u, local);
                if (r < 0)
                        return r;
                pgina_log(ctx, LOG_INFO, "%s is a member of %s%s: local group %s added", name, group,
                          cached ? " (cached logon)" : "", local);
                int k = snprintf(added + used, sizeof added - used, "%s%s", used ? ", " : "", local);
                if (k > 0 && (size_t)k < sizeof added - used)
                        used += (size_t)k;
        }
        if (used)
                pgina_ctx_message(ctx, "Added to groups: %s", added);
        else
                pgina_ctx_message(ctx, "No groups added");
        return 1;
}

/* ---- change password ------------------------------------------------------------------------- */

/* rfc3062, ad, or what the server says it is (auto). */
static bool use_ad(struct pgina_ctx *ctx, struct pgldap_conn *c) {
        const char *how = pgina_conf_get(ctx, "password_change");
        int k;

        if (streq_ptr(how, "ad"))
                return true;
        if (streq_ptr(how, "rfc3062"))
                return false;
        k = pgldap_server_is_ad(c);
        if (k < 0)
                pgina_log(ctx, LOG_WARNING, "Cannot read the rootDSE of %s to tell Active Directory from other "
                          "servers: using the RFC 3062 password modify operation (password_change = ad "
                          "says it outright)", c->uri);
        return k > 0;
}

/* AD takes unicodePwd only over an encrypted connection. */
static bool connection_encrypted(struct pgina_ctx *ctx, const struct pgldap_conn *c) {
        return strncasecmp(c->uri, "ldaps://", 8) == 0 || pgina_conf_bool(ctx, "start_tls");
}

static int passwd_change(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *dn,
                         const char *old_password, const char *new_password, bool *used_ad) {
        bool ad = *used_ad = use_ad(ctx, c);
        char why[512] = "";
        int rc;

        if (ad && !connection_encrypted(ctx, c)) {
                pgina_log(ctx, LOG_ERR, "Password change of %s refused: Active Directory changes passwords "
                          "only over TLS, and %s is plain ldap:// without start_tls", dn, c->uri);
                pgina_ctx_message(ctx, "LDAP password change not possible: the connection to the directory "
                                  "is not encrypted");
                return 0;
        }
        rc = ad ? pgldap_passwd_ad(c, dn, old_password, new_password, why, sizeof why)
                : pgldap_passwd_rfc3062(c, dn, old_password, new_password, why, sizeof why);
        if (rc == LDAP_SUCCESS)
                return 1;
        pgina_log(ctx, LOG_ERR, "Password change of %s on %s (%s) failed: %s", dn, c->uri,
                  ad ? "Active Directory, unicodePwd" : "RFC 3062 password modify", why);
        pgina_ctx_message(ctx, "The directory refused the new password: %s", why);
        switch (rc) {
        case LDAP_INSUFFICIENT_ACCESS:
        case LDAP_CONSTRAINT_VIOLATION:
        case LDAP_UNWILLING_TO_PERFORM:
        case LDAP_PROTOCOL_ERROR: /* a server without the operation (AD and RFC 3062) */
        case LDAP_PARAM_ERROR:
        case LDAP_INVALID_CREDENTIALS:
                return 0;
        default:
                return pgldap_error(ctx, c, rc);
        }
}

static int ldap_plugin_change_password(struct pgina_ctx *ctx, struct pgina_user *u, const char *old_password,
                                const char *new_password) {
        _cleanup_(conn_donep) struct pgldap_conn c = {0};
        const char *name = pgina_user_name(u);
        bool reset = !old_password, service = !!*strempty(pgina_conf_get(ctx, "search_dn")), ad = false;
        _cleanup_free_ char *dn = NULL;
        int r;

        if (!new_password || !*new_password) {
                pgina_ctx_message(ctx, "LDAP password change refused: empty new password");
                return 0;
        }
        if (reset && !service) {
                pgina_ctx_message(ctx, "LDAP password reset without the old password needs a "
                                  "service account (search_dn)");
                return 0;
        }
        if (!reset && !*old_password) {
                pgina_ctx_message(ctx, "Password change failed: invalid LDAP user name or password");
                return 0;
        }
        r = pgldap_connect(ctx, &c);
        if (r < 0) {
                pgina_ctx_message(ctx, SERVER_DOWN);
                return r;
        }
        if (reset || pgldap_search_mode(ctx)) {
                r = pgldap_bind_service(ctx, &c);
                if (r <= 0) {
                        pgina_ctx_message(ctx, "LDAP service account bind failed");
                        return r < 0 ? r : -EACCES;
                }
        }
        r = pgldap_find_dn(ctx, &c, name, &dn);
        if (r <= 0) {
                pgina_ctx_message(ctx, r < 0 ? "LDAP search failed" : "No LDAP entry for %s", name);
                return r;
        }
        if (!reset) {
                r = pgldap_bind(ctx, &c, dn, old_password);
                if (r == 0 && ad_must_change(c.ad_data)) {
                        /* the old password is right but may not bind: the service account makes
                         * the change (old and new, so AD checks the old one and its rules) */
                        pgina_log(ctx, LOG_INFO, "%s changes a password that must be changed, through the "
                                  "service account", name);
                        r = must_change_rebind(ctx, &c, name, dn);
                        if (r <= 0)
                                return r;
                }
                if (r <= 0) {
                        pgina_log(ctx, LOG_INFO, "Password change of %s refused: the old password "
                                  "does not bind as %s", name, dn);
                        pgina_ctx_message(ctx, "Password change failed: invalid LDAP user name or password");
                        return r;
                }
        }
        if (pgina_ctx_dry_run(ctx)) {
                pgina_ctx_message(ctx, "dry run: would change the LDAP password of %s", dn);
                return 1;
        }
        r = passwd_change(ctx, &c, dn, old_password, new_password, &ad);
        if (r > 0) {
                pgina_log(ctx, LOG_INFO, "LDAP password of %s (%s) changed%s on %s%s", name, dn,
                          reset ? " by the service account" : "", c.uri,
                          ad ? " (Active Directory, unicodePwd)" : "");
                cache_new_password(ctx, name, new_password);
        }
        return r;
}

static int ldap_plugin_admin(struct pgina_ctx *ctx, struct pgina_user *u _unused_, int argc,
                             const char *const *argv) {
        return pgldap_cache_admin(ctx, argc, argv);
}

PGINA_PLUGIN_DEFINE(.stages = PGINA_STAGE_AUTHENTICATION | PGINA_STAGE_AUTHORIZATION |
                              PGINA_STAGE_GATEWAY | PGINA_STAGE_CHANGE_PASSWORD,
                    .name = PLUGIN_NAME, .version = "1.0",
                    .description = "LDAP directory: bind authentication, attribute converter, "
                                   "group authorization rules, group mapping, password change, "
                                   "cached offline logons",
                    .options = ldap_plugin_options, .check_config = pgldap_check_config,
                    .authenticate = ldap_plugin_authenticate, .authorize = ldap_plugin_authorize,
                    .gateway = ldap_plugin_gateway, .change_password = ldap_plugin_change_password,
                    .admin = ldap_plugin_admin, .lookup = pgldap_lookup,
                    .lookup_group = pgldap_lookup_group);
