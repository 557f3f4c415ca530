/* The rules of the ldap plugin's options: authz_rules words (allow:GROUP, deny:!GROUP) and
 * gateway_rules words (GROUP=localgroup), parsed alike by the stages and the config check. */
#pragma once

#include <stdbool.h>

struct authz_rule {
        bool allow, negate;
        const char *group; /* points into the word */
};

/* 0, or -EINVAL for a word that is no rule. */
int pgldap_authz_rule_parse(const char *w, struct authz_rule *r);
/* "GROUP=localgroup", split at the last '='. *group is a new string, *local points into w. 0,
 * -EINVAL, -ENOMEM. */
int pgldap_gateway_rule_parse(const char *w, char **group, const char **local);
