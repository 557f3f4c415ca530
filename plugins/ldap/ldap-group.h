/* Groups of the directory: a group by name or gid (libnss_pgina's getgrnam/getgrgid through the
 * plugin's lookup_group) and the name of a user's primary group (PGINA_ATTR_PRIMARY_GROUP). */
#pragma once

#include <pgina/plugin.h>

#include "ldap-conn.h"

struct pgldap_group {
        char *name;
        int64_t gid;
        size_t nmembers;
        char **members;
};

void pgldap_group_done(struct pgldap_group *g);

/* The one entry matching (&group_filter(cn=name)) — or (gidNumber=gid) when name is NULL — under
 * group_search_contexts (else the parent of group_dn_pattern), searched in order; the first
 * context holding it answers. Members: memberUid values, and member/uniqueMember DNs whose first
 * RDN is uid (or the user name attribute) = a valid name. 1 found (*g filled), 0 not found (or
 * ambiguous, or no context configured), -errno (pgldap_error's). */
int pgldap_find_group(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *name, int64_t gid,
                      struct pgldap_group *g);
