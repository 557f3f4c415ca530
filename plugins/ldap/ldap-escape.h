/* LDAP string building for the ldap plugin: RFC 4514 DN values, RFC 4515 filter values, and the
 * %u/%g patterns of the configuration (dn_pattern, search_filter, group_dn_pattern). Pure string
 * code, no libldap, so unit tests link it alone. */
#pragma once

#include <stddef.h>

enum pgldap_escape_kind {
        PGLDAP_ESCAPE_DN, /* RFC 4514: an attribute value inside a DN */
        PGLDAP_ESCAPE_FILTER, /* RFC 4515: an assertion value inside a filter */
};

/* Escape value for kind into out (len bytes, NUL included). 0 or -ENAMETOOLONG. */
int pgldap_escape(enum pgldap_escape_kind kind, const char *value, char *out, size_t len);

/* The same into a new string (NULL on ENOMEM). */
char *pgldap_escape_dup(enum pgldap_escape_kind kind, const char *value);

/* Expand pattern: "%<key>" becomes value escaped for kind, "%%" a '%'; any other '%' sequence is
 * -EINVAL. *ret is a new string. 0, -EINVAL, -ENOMEM. */
int pgldap_expand(const char *pattern, char key, const char *value, enum pgldap_escape_kind kind,
                char **ret);

/* Does pattern hold "%<key>" (and no invalid '%' sequence)? 1 yes, 0 no, -EINVAL bad pattern. */
int pgldap_pattern_has(const char *pattern, char key);

/* Options whose words are DNs (search_contexts, authz_rules, gateway_rules) are split here at
 * blanks only: pginad's list options also split at commas, which every DN holds. Number of
 * blank-separated words of s (NULL = none), and word i as a new string (NULL past the end or on
 * ENOMEM). */
size_t pgldap_words(const char *s);
char *pgldap_word(const char *s, size_t i);
