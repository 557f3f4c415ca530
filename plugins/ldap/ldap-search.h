/* The bottom of the ldap plugin's directory code: the options that say where entries live, and
 * the search for one entry. Groups (ldap-group.h) and users (ldap-dir.h) build on it; it knows
 * neither. */
#pragma once

#include <pgina/plugin.h>

#include "ldap-conn.h"

/* schema = ad: Active Directory's attributes (see pgldap_read_user). */
bool pgldap_schema_ad(struct pgina_ctx *ctx);

/* Search mode (search_filter set) or pattern mode (dn_pattern). */
bool pgldap_search_mode(struct pgina_ctx *ctx);

/* The parent of a DN pattern option ("uid=%u,ou=people,dc=x" -> "ou=people,dc=x"): where its
 * entries live when no search context is set. NULL when there is none (or no memory). */
char *pgldap_pattern_parent(struct pgina_ctx *ctx, const char *key);

/* The attribute that holds the user name: the one "ATTR=%u" of dn_pattern or search_filter
 * names, else uid. */
void pgldap_name_attribute(struct pgina_ctx *ctx, char *out, size_t len);

/* Search base (subtree) for the one entry matching filter, asking for attrs. 1 found (*res to
 * free with ldap_msgfree, *entry in it), 0 none (a base that does not exist is logged under
 * `key`, the option that named it), -ENOTUNIQ several (logged; the caller says what that means),
 * -errno (pgldap_error). */
int pgldap_search_one(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *base,
                      const char *filter, char **attrs, const char *key, LDAPMessage **res,
                      LDAPMessage **entry);

/* Where to search: the words of option contexts_key, or else the parent of option pattern_key,
 * as a NULL-terminated list (empty when neither says; free with pgldap_bases_free). NULL when
 * out of memory. */
char **pgldap_bases(struct pgina_ctx *ctx, const char *contexts_key, const char *pattern_key);
void pgldap_bases_free(char **v);
