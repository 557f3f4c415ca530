/* Groups of the directory (above ldap-search.h, below ldap-dir.h): a group by name or gid
 * (libnss_pgina's getgrnam/getgrgid through the plugin's lookup_group), the name of a user's
 * primary group (PGINA_ATTR_PRIMARY_GROUP), and group membership per group_attribute. */
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

/* A group of a rule as a DN: a DN as it is, a plain name through group_dn_pattern (%g). 0 or
 * -EINVAL (a name without group_dn_pattern) / -ENOMEM. */
int pgldap_group_dn(struct pgina_ctx *ctx, const char *group, char **ret);

/* Is the user (name, and DN when known) a member of group_dn per group_attribute? 1 yes, 0 no
 * (a missing group is logged), -errno. */
int pgldap_is_member(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *user,
                     const char *user_dn, const char *group_dn);
