/* LDAP plugin: password changes (ldap-passwd.c), RFC 3062 or Active Directory's unicodePwd. */
#pragma once

#include <ldap.h>
#include <stddef.h>

#include "ldap-conn.h"

/* The server is Active Directory (or AD LDS): its rootDSE lists AD's capability. 1 yes, 0 no,
 * -EIO when the rootDSE cannot be read. */
int pgldap_server_is_ad(struct pgldap_conn *c);

/* Change (old_password given: the connection is bound as the user) or reset (NULL: bound as an
 * account allowed to reset it) dn's password. The LDAP result code; on failure why holds the
 * server's own words (its diagnostic message, escaped for a log line) or the code's text. */
int pgldap_passwd_ad(struct pgldap_conn *c, const char *dn, const char *old_password, const char *new_password,
                     char *why, size_t wlen);
int pgldap_passwd_rfc3062(struct pgldap_conn *c, const char *dn, const char *old_password,
                          const char *new_password, char *why, size_t wlen);

/* A password as AD's unicodePwd value: "password" with the quotes, in UTF-16LE (from UTF-8;
 * -EILSEQ for invalid UTF-8). Free with pgldap_berval_wipe. */
int pgldap_ad_password(const char *password, struct berval *out);
void pgldap_berval_wipe(struct berval *b);
