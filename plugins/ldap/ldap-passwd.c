/* LDAP plugin: changing a password, the two ways servers take it. RFC 3062's password modify
 * extended operation (OpenLDAP, 389-DS, ...); Active Directory's modify of unicodePwd, the
 * password as a quoted UTF-16LE string (MS-ADTS 3.1.1.3.1.5.1: the user's own change deletes the
 * old value and adds the new one in one modify, which makes AD check the old one and apply the
 * password history and minimum age; an administrator's reset replaces it). AD takes it only
 * over an encrypted connection. */
#include "ldap-passwd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <pgina/util.h>

/* AD (LDAP_CAP_ACTIVE_DIRECTORY_OID) and AD LDS (LDAP_CAP_ACTIVE_DIRECTORY_ADAM_OID). */
#define CAP_AD "1.2.840.113556.1.4.800"
#define CAP_AD_LDS "1.2.840.113556.1.4.1851"

int pgldap_server_is_ad(struct pgldap_conn *c) {
        char *attrs[] = {(char *)"supportedCapabilities", NULL};
        struct timeval tv = {.tv_sec = 10};
        LDAPMessage *res = NULL, *e;
        struct berval **v = NULL;
        int rc, ad = 0;

        rc = ldap_search_ext_s(c->ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res);
        if (rc != LDAP_SUCCESS) {
                ldap_msgfree(res);
                return -EIO;
        }
        if ((e = ldap_first_entry(c->ld, res)) && (v = ldap_get_values_len(c->ld, e, "supportedCapabilities")))
                for (size_t i = 0; v[i]; i++)
                        if ((v[i]->bv_len == strlen(CAP_AD) && !memcmp(v[i]->bv_val, CAP_AD, v[i]->bv_len)) ||
                            (v[i]->bv_len == strlen(CAP_AD_LDS) && !memcmp(v[i]->bv_val, CAP_AD_LDS, v[i]->bv_len)))
                                ad = 1;
        ldap_value_free_len(v);
        ldap_msgfree(res);
        return ad;
}

/* Next code point of UTF-8 s (advancing *i); -1 for a malformed or overlong sequence. */
static long utf8_next(const unsigned char *s, size_t len, size_t *i) {
        unsigned char b = s[(*i)++];
        size_t n;
        long cp;

        if (b < 0x80)
                return b;
        if ((b & 0xe0) == 0xc0)
                n = 1, cp = b & 0x1f;
        else if ((b & 0xf0) == 0xe0)
                n = 2, cp = b & 0x0f;
        else if ((b & 0xf8) == 0xf0)
                n = 3, cp = b & 0x07;
        else
                return -1;
        if (*i + n > len)
                return -1;
        for (size_t k = 0; k < n; k++) {
                if ((s[*i] & 0xc0) != 0x80)
                        return -1;
                cp = (cp << 6) | (s[(*i)++] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return -1;
        return cp;
}

int pgldap_ad_password(const char *password, struct berval *out) {
        size_t len = strlen(password), n = 0, i = 0;
        /* at most one UTF-16 unit (2 bytes) per input byte, two per 4-byte sequence, and quotes */
        unsigned char *p = malloc(2 * len + 4);

        out->bv_val = NULL;
        out->bv_len = 0;
        if (!p)
                return -ENOMEM;
        p[n++] = '"';
        p[n++] = 0;
        while (i < len) {
                long cp = utf8_next((const unsigned char *)password, len, &i);
                if (cp < 0) {
                        explicit_bzero(p, 2 * len + 4);
                        free(p);
                        return -EILSEQ;
                }
                if (cp >= 0x10000) {
                        long hi = 0xd800 + ((cp - 0x10000) >> 10), lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
                        p[n++] = (unsigned char)(hi & 0xff);
                        p[n++] = (unsigned char)(hi >> 8);
                        cp = lo;
                }
                p[n++] = (unsigned char)(cp & 0xff);
                p[n++] = (unsigned char)(cp >> 8);
        }
        p[n++] = '"';
        p[n++] = 0;
        out->bv_val = (char *)p;
        out->bv_len = n;
        return 0;
}

void pgldap_berval_wipe(struct berval *b) {
        if (b->bv_val) {
                explicit_bzero(b->bv_val, b->bv_len);
                free(b->bv_val);
        }
        b->bv_val = NULL;
        b->bv_len = 0;
}

/* The server's own words about the last failure, else the result code's text. */
static void server_reason(LDAP *ld, int rc, char *why, size_t wlen) {
        char *msg = NULL;

        if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS && msg && *msg) {
                snprintf(why, wlen, "%s", msg);
                log_escape(why, wlen);
        } else
                snprintf(why, wlen, "%s", ldap_err2string(rc));
        ldap_memfree(msg);
}

int pgldap_passwd_ad(struct pgldap_conn *c, const char *dn, const char *old_password, const char *new_password,
                     char *why, size_t wlen) {
        struct berval oldv = {0}, newv = {0};
        struct berval *old_vals[] = {&oldv, NULL}, *new_vals[] = {&newv, NULL};
        LDAPMod del = {.mod_op = LDAP_MOD_DELETE | LDAP_MOD_BVALUES, .mod_type = (char *)"unicodePwd",
                       .mod_bvalues = old_vals};
        LDAPMod add = {.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES, .mod_type = (char *)"unicodePwd",
                       .mod_bvalues = new_vals};
        LDAPMod rep = {.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, .mod_type = (char *)"unicodePwd",
                       .mod_bvalues = new_vals};
        LDAPMod *change[] = {&del, &add, NULL}, *reset[] = {&rep, NULL};
        int r, rc;

        if ((r = pgldap_ad_password(new_password, &newv)) < 0 ||
            (old_password && (r = pgldap_ad_password(old_password, &oldv)) < 0)) {
                snprintf(why, wlen, "%s", r == -EILSEQ ? "the password is not valid UTF-8" : strerror(-r));
                pgldap_berval_wipe(&newv);
                return r == -EILSEQ ? LDAP_PARAM_ERROR : LDAP_NO_MEMORY;
        }
        rc = ldap_modify_ext_s(c->ld, dn, old_password ? change : reset, NULL, NULL);
        pgldap_berval_wipe(&oldv);
        pgldap_berval_wipe(&newv);
        if (rc != LDAP_SUCCESS)
                server_reason(c->ld, rc, why, wlen);
        return rc;
}

int pgldap_passwd_rfc3062(struct pgldap_conn *c, const char *dn, const char *old_password,
                          const char *new_password, char *why, size_t wlen) {
        struct berval user = {.bv_len = strlen(dn), .bv_val = (char *)dn};
        struct berval oldpw = {.bv_len = old_password ? strlen(old_password) : 0, .bv_val = (char *)old_password};
        struct berval newpw = {.bv_len = strlen(new_password), .bv_val = (char *)new_password};
        struct berval gen = {0, NULL};
        int rc = ldap_passwd_s(c->ld, &user, old_password ? &oldpw : NULL, &newpw, &gen, NULL, NULL);

        if (gen.bv_val) {
                explicit_bzero(gen.bv_val, gen.bv_len);
                ber_memfree(gen.bv_val);
        }
        if (rc != LDAP_SUCCESS)
                server_reason(c->ld, rc, why, wlen);
        return rc;
}
