/* The bottom of the ldap plugin's directory code (see ldap-search.h): where to search and the
 * one-entry search that users (ldap-dir.c) and groups (ldap-group.c) are found with. */
#include "ldap-search.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "ldap-escape.h"
#include <pgina/util.h>

bool pgldap_schema_ad(struct pgina_ctx *ctx) { return streq_ptr(pgina_conf_get(ctx, "schema"), "ad"); }

bool pgldap_search_mode(struct pgina_ctx *ctx) {
        const char *f = pgina_conf_get(ctx, "search_filter");
        return f && *f;
}

char *pgldap_pattern_parent(struct pgina_ctx *ctx, const char *key) {
        const char *p = pgina_conf_get(ctx, key);

        if (!p)
                return NULL;
        for (const char *s = p; *s; s++) {
                if (*s == '\\' && s[1]) {
                        s++;
                        continue;
                }
                if (*s == ',')
                        return s[1] && !strchr(s + 1, '%') ? strdup(s + 1) : NULL;
        }
        return NULL;
}

void pgldap_name_attribute(struct pgina_ctx *ctx, char *out, size_t len) {
        const char *p = pgina_conf_get(ctx, pgldap_search_mode(ctx) ? "search_filter" : "dn_pattern");
        const char *at = p ? strstr(p, "=%u") : NULL, *start;

        snprintf(out, len, "uid");
        if (!at)
                return;
        start = at;
        while (start > p && (isalnum((unsigned char)start[-1]) || start[-1] == '-'))
                start--;
        if (start < at && (size_t)(at - start) < len && isalpha((unsigned char)*start))
                snprintf(out, len, "%.*s", (int)(at - start), start);
}

char **pgldap_bases(struct pgina_ctx *ctx, const char *contexts_key, const char *pattern_key) {
        const char *contexts = pgina_conf_get(ctx, contexts_key);
        size_t n = pgldap_words(contexts);
        char **v = calloc(n + 2, sizeof *v);

        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(v[i] = pgldap_word(contexts, i))) {
                        pgldap_bases_free(v);
                        return NULL;
                }
        /* no contexts: the parent of the pattern, if it has one (NULL otherwise: an empty list) */
        if (n == 0)
                v[0] = pgldap_pattern_parent(ctx, pattern_key);
        return v;
}

void pgldap_bases_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

int pgldap_search_one(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *base,
                      const char *filter, char **attrs, const char *key, LDAPMessage **res,
                      LDAPMessage **entry) {
        int rc, n;

        *res = NULL;
        rc = ldap_search_ext_s(c->ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, NULL,
                               2, res);
        if (rc == LDAP_NO_SUCH_OBJECT) {
                pgina_log(ctx, LOG_WARNING, "%s: %s does not exist on %s", key, base, c->uri);
                return 0;
        }
        if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
                pgina_log(ctx, LOG_ERR, "Search for %s under %s on %s failed: %s", filter, base,
                          c->uri, ldap_err2string(rc));
                return pgldap_error(ctx, c, rc);
        }
        n = ldap_count_entries(c->ld, *res);
        if (n == 0)
                return 0;
        if (n > 1 || rc == LDAP_SIZELIMIT_EXCEEDED) {
                pgina_log(ctx, LOG_WARNING, "Search for %s under %s on %s found several entries",
                          filter, base, c->uri);
                return -ENOTUNIQ;
        }
        *entry = ldap_first_entry(c->ld, *res);
        return *entry ? 1 : 0;
}
