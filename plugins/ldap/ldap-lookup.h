/* The ldap plugin's identity lookup for libnss_pgina (plugin.h's `lookup` callback): a directory
 * user's uid, gid, home, shell and full name before their local account exists. */
#pragma once

#include <pgina/plugin.h>

/* By name (pgina_user_name(u) not ""): the entry of dn_pattern or search_filter. By uid (name ""
 * and pgina_user_uid(u)): the one (&(objectClass=posixAccount)(uidNumber=N)) entry under
 * search_contexts (or the parent of dn_pattern), whose name attribute becomes the record's name.
 * Binds as the service account (search_dn) or anonymously; every operation is bounded by
 * [ldap] timeout. Fills uid/gid (uidNumber/gidNumber), home, shell, fullname.
 * 1 found, 0 not found (no entry, no uidNumber, several entries), -EHOSTUNREACH when no server
 * answered, other -errno when the directory could not tell. */
int pgldap_lookup(struct pgina_ctx *ctx, struct pgina_user *u);

/* Group by name (pgina_group_name(g) not "") or gid: pgldap_find_group's one entry, with its
 * members. Binds like pgldap_lookup. 1 found, 0 not, -EHOSTUNREACH no server answered, -errno. */
int pgldap_lookup_group(struct pgina_ctx *ctx, struct pgina_group *g);
