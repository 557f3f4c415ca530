/* Directory lookups of the ldap plugin: the user's DN (dn_pattern or a search), the user's entry
 * into the record (attribute converter included), group membership per group_attribute. */
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

/* The DN of user. 1 found (*ret set), 0 no such user (or an ambiguous search), -errno. In search
 * mode the connection must be bound for searching (pgldap_bind_service). */
int pgldap_find_dn(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *user, char **ret);

/* Read the entry dn into u: fullname (cn), email (mail), home (homeDirectory), shell
 * (loginShell), uid/gid (uidNumber/gidNumber), then every [ldap.attributes] "record = ldapattr"
 * (the attribute's first value). With schema = ad: fullname (displayName, else cn), home
 * (unixHomeDirectory), usri4_profile (profilePath), usri4_home_dir (homeDirectory),
 * usri4_home_dir_drive (homeDrive), LoginScript (scriptPath); uid/gid from uidNumber/gidNumber
 * where set, else ad_id_base + the RID of the objectSid / of the primaryGroupID; the name
 * becomes the sAMAccountName. 0 or -errno. */
int pgldap_read_user(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *dn,
                     struct pgina_user *u);

/* A group of a rule as a DN: a DN as it is, a plain name through group_dn_pattern (%g). 0 or
 * -EINVAL (a name without group_dn_pattern) / -ENOMEM. */
int pgldap_group_dn(struct pgina_ctx *ctx, const char *group, char **ret);

/* Is the user (name, and DN when known) a member of group_dn per group_attribute? 1 yes, 0 no
 * (a missing group is logged), -errno. */
int pgldap_is_member(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *user,
                     const char *user_dn, const char *group_dn);
