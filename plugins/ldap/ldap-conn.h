/* The ldap plugin's connection to the directory: servers tried in order (a failed one skipped for
 * server_retry_delay seconds, remembered in the plugin's state dir because every request runs in
 * a new worker), StartTLS/ldaps with the configured CA, timeouts, simple binds, the service
 * account's bind. Runs in the worker, as root. */
#pragma once

#include <pgina/plugin.h>

#include <ldap.h>

struct pgldap_conn {
        LDAP *ld;
        char *uri; /* the server that answered */
        /* Active Directory's reason for the last refused bind, the "data NNN" of its diagnostic
         * (hex, e.g. 0x773 must change the password; AD_BIND_*), 0 when it gave none. */
        unsigned ad_data;
};

/* AD's bind sub-codes (MS-ADTS, the Win32 error of AcceptSecurityContext). */
#define AD_BIND_NO_SUCH_USER 0x525
#define AD_BIND_BAD_PASSWORD 0x52e
#define AD_BIND_LOGON_HOURS 0x530
#define AD_BIND_WORKSTATION 0x531
#define AD_BIND_PASSWORD_EXPIRED 0x532
#define AD_BIND_DISABLED 0x533
#define AD_BIND_ACCOUNT_EXPIRED 0x701
#define AD_BIND_MUST_CHANGE 0x773
#define AD_BIND_LOCKED_OUT 0x775

void pgldap_conn_done(struct pgldap_conn *c);

/* Connect to the first server that answers (TLS established when configured). 0, or -EHOSTDOWN
 * after logging each server's failure when none answered; -ENOMEM. */
int pgldap_connect(struct pgina_ctx *ctx, struct pgldap_conn *c);

/* Map an LDAP result code to -errno: -EHOSTDOWN for "the server went away" (down, timeout,
 * unavailable, busy), -EIO otherwise. The server is then marked down. */
int pgldap_error(struct pgina_ctx *ctx, struct pgldap_conn *c, int rc);

/* Simple bind as dn. An empty password is refused here (-EPERM) before anything is sent: a
 * simple bind with a DN and no password is an unauthenticated bind that servers accept.
 * 1 bound, 0 invalid credentials, -errno (pgldap_error) otherwise. */
int pgldap_bind(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *dn, const char *password);

/* Bind as search_dn with the password of search_password_file; without search_dn the connection
 * stays anonymous. 1 bound (or anonymous), 0 the service credentials were refused, -errno. */
int pgldap_bind_service(struct pgina_ctx *ctx, struct pgldap_conn *c);
