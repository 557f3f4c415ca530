/* The users of the directory (above ldap-group.h and ldap-search.h): the user's DN (dn_pattern or a
 * search) and the user's entry into the record (attribute converter included). */
#pragma once

#include <pgina/plugin.h>

#include "ldap-conn.h"
#include "ldap-search.h"

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
