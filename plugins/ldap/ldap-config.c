/* The ldap plugin's semantic config check (see ldap-config.h). */
#include "ldap-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ldap-cache.h"
#include "ldap-dir.h"
#include "ldap-escape.h"
#include "ldap-rules.h"
#include <pgina/util.h>

static bool valid_attr_name(const char *a) {
        if (!a || !*a)
                return false;
        for (const char *p = a; *p; p++)
                if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
                      *p == '-' || *p == '.' || *p == ';'))
                        return false;
        return true;
}

static int check_pattern(struct pgina_ctx *ctx, const char *key, char k) {
        const char *v = pgina_conf_get(ctx, key);

        if (pgldap_pattern_has(v, k) <= 0) {
                pgina_ctx_message(ctx, "%s must hold %%%c once at least and no other %% sequence "
                                  "than %%%%: \"%s\"", key, k, v);
                return -EINVAL;
        }
        return 0;
}

static int check_group(struct pgina_ctx *ctx, const char *key, const char *group) {
        if (!strchr(group, '=') && !*strempty(pgina_conf_get(ctx, "group_dn_pattern"))) {
                pgina_ctx_message(ctx, "%s: the group \"%s\" is a name: set group_dn_pattern or "
                                  "give its DN", key, group);
                return -EINVAL;
        }
        return 0;
}

static int check_servers(struct pgina_ctx *ctx) {
        size_t n = pgina_conf_list_len(ctx, "servers");

        if (n == 0) {
                pgina_ctx_message(ctx, "servers: at least one ldap:// or ldaps:// URI is needed");
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                const char *s = pgina_conf_list_item(ctx, "servers", i);
                if (strncasecmp(s, "ldap://", 7) && strncasecmp(s, "ldaps://", 8) &&
                    strncasecmp(s, "ldapi://", 8)) {
                        pgina_ctx_message(ctx, "servers: \"%s\" is not an ldap://, ldaps:// or ldapi:// URI", s);
                        return -EINVAL;
                }
        }
        return 0;
}

/* A bind sends the user's password: over plain ldap:// without StartTLS anyone on the path reads
 * it. Allowed (a lab's own segment, a test), but said at every load. */
static void warn_clear_text(struct pgina_ctx *ctx) {
        size_t n = pgina_conf_list_len(ctx, "servers");

        if (pgina_conf_bool(ctx, "start_tls"))
                return;
        for (size_t i = 0; i < n; i++) {
                const char *s = pgina_conf_list_item(ctx, "servers", i);
                if (strncasecmp(s, "ldap://", 7) == 0)
                        pgina_conf_warn(ctx, "servers", "%s without start_tls = true sends every password in "
                                        "clear text over the network (use ldaps:// or start_tls)", s);
        }
}

static int check_user_lookup(struct pgina_ctx *ctx) {
        bool pattern = !!*strempty(pgina_conf_get(ctx, "dn_pattern"));

        if (pattern == pgldap_search_mode(ctx)) {
                pgina_ctx_message(ctx, "set either dn_pattern or search_filter (with search_contexts)");
                return -EINVAL;
        }
        if (pattern)
                return check_pattern(ctx, "dn_pattern", 'u');
        if (pgldap_words(pgina_conf_get(ctx, "search_contexts")) == 0) {
                pgina_ctx_message(ctx, "search_filter needs search_contexts (base DNs to search)");
                return -EINVAL;
        }
        return check_pattern(ctx, "search_filter", 'u');
}

static int check_rules(struct pgina_ctx *ctx) {
        const char *rules = pgina_conf_get(ctx, "authz_rules");
        size_t n = pgldap_words(rules);
        int r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *w = pgldap_word(rules, i);
                struct authz_rule rule;

                if (!w)
                        return -ENOMEM;
                if (pgldap_authz_rule_parse(w, &rule) < 0) {
                        pgina_ctx_message(ctx, "authz_rules: \"%s\" is not allow:GROUP, deny:GROUP, "
                                          "allow:!GROUP or deny:!GROUP", w);
                        return -EINVAL;
                }
                r = check_group(ctx, "authz_rules", rule.group);
                if (r < 0)
                        return r;
        }
        rules = pgina_conf_get(ctx, "gateway_rules");
        n = pgldap_words(rules);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *w = pgldap_word(rules, i), *group = NULL;
                const char *local;

                if (!w)
                        return -ENOMEM;
                if (pgldap_gateway_rule_parse(w, &group, &local) < 0) {
                        pgina_ctx_message(ctx, "gateway_rules: \"%s\" is not LDAPGROUP=localgroup "
                                          "(a valid local group name after the last '=')", w);
                        return -EINVAL;
                }
                r = check_group(ctx, "gateway_rules", group);
                if (r < 0)
                        return r;
        }
        if (*strempty(pgina_conf_get(ctx, "group_dn_pattern")))
                return check_pattern(ctx, "group_dn_pattern", 'g');
        return 0;
}

static int check_attributes(struct pgina_ctx *ctx) {
        size_t n = pgina_conf_sub_len(ctx, "attributes");

        for (size_t i = 0; i < n; i++) {
                const char *k = pgina_conf_sub_key(ctx, "attributes", i);
                const char *v = pgina_conf_sub_value(ctx, "attributes", i);

                if (!k || !*k || !valid_attr_name(v)) {
                        pgina_ctx_message(ctx, "[ldap.attributes] %s = %s: expected "
                                          "\"recordname = ldapAttribute\"", strempty(k), strempty(v));
                        return -EINVAL;
                }
        }
        return 0;
}

/* group_filter: one parenthesised filter (balanced), no %-pattern. */
static int check_group_filter(struct pgina_ctx *ctx) {
        const char *f = strempty(pgina_conf_get(ctx, "group_filter"));
        size_t n = strlen(f);
        int depth = 0;

        for (size_t i = 0; i < n && depth >= 0; i++) {
                if (f[i] == '\\' && i + 1 < n) {
                        i++;
                        continue;
                }
                depth += f[i] == '(' ? 1 : f[i] == ')' ? -1 : 0;
                if (depth == 0 && i + 1 < n)
                        depth = -1; /* text after the closing parenthesis */
        }
        if (n < 3 || f[0] != '(' || depth != 0 || strchr(f, '%')) {
                pgina_ctx_message(ctx, "group_filter \"%s\" is not one LDAP filter in parentheses, "
                                  "e.g. (objectClass=posixGroup)", f);
                return -EINVAL;
        }
        return 0;
}

int pgldap_check_config(struct pgina_ctx *ctx) {
        const char *attr = pgina_conf_get(ctx, "group_attribute");
        const char *def = pgina_conf_get(ctx, "authz_default");
        const char *ca = pgina_conf_get(ctx, "tls_ca_file");
        int r;

        r = check_servers(ctx);
        if (r < 0)
                return r;
        warn_clear_text(ctx);
        r = check_user_lookup(ctx);
        if (r < 0)
                return r;
        if (!attr || (strcasecmp(attr, "memberUid") && strcasecmp(attr, "member") &&
                      strcasecmp(attr, "uniqueMember") && strcasecmp(attr, "memberOf"))) {
                pgina_ctx_message(ctx, "group_attribute must be memberUid, member, uniqueMember or "
                                  "memberOf, not \"%s\"", strempty(attr));
                return -EINVAL;
        }
        if (!def || (!streq(def, "allow") && !streq(def, "deny"))) {
                pgina_ctx_message(ctx, "authz_default must be allow or deny, not \"%s\"", strempty(def));
                return -EINVAL;
        }
        const char *schema = pgina_conf_get(ctx, "schema");
        if (!schema || (!streq(schema, "rfc2307") && !streq(schema, "ad"))) {
                pgina_ctx_message(ctx, "schema must be rfc2307 or ad, not \"%s\"", strempty(schema));
                return -EINVAL;
        }
        if (pgina_conf_int(ctx, "ad_id_base") < 1000 || pgina_conf_int(ctx, "ad_id_base") > INT32_MAX) {
                pgina_ctx_message(ctx, "ad_id_base must be at least 1000 (below are the system's and local "
                                  "users' ids) and at most %d", INT32_MAX);
                return -EINVAL;
        }
        const char *how = pgina_conf_get(ctx, "password_change");
        if (!how || (!streq(how, "auto") && !streq(how, "ad") && !streq(how, "rfc3062"))) {
                pgina_ctx_message(ctx, "password_change must be auto, ad or rfc3062, not \"%s\"", strempty(how));
                return -EINVAL;
        }
        if (pgina_conf_int(ctx, "timeout") <= 0) {
                pgina_ctx_message(ctx, "timeout must be at least 1 second");
                return -EINVAL;
        }
        if (*strempty(pgina_conf_get(ctx, "search_dn")) &&
            !*strempty(pgina_conf_get(ctx, "search_password_file"))) {
                pgina_ctx_message(ctx, "search_dn needs search_password_file");
                return -EINVAL;
        }
        if (ca && *ca && access(ca, R_OK) < 0) {
                pgina_ctx_message(ctx, "tls_ca_file %s: %s", ca, strerror(errno));
                return -EINVAL;
        }
        r = check_rules(ctx);
        if (r < 0)
                return r;
        r = check_group_filter(ctx);
        if (r < 0)
                return r;
        return check_attributes(ctx);
}
