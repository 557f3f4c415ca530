/* The ldap plugin's identity lookup for libnss_pgina (see ldap-lookup.h). */
#include "ldap-lookup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "ldap-conn.h"
#include "ldap-dir.h"
#include "ldap-escape.h"
#include "ldap-group.h"
#include <pgina/util.h>

#define NAME_ATTR_MAX 64

static void conn_donep(struct pgldap_conn *c) { pgldap_conn_done(c); }

static void msgfreep(LDAPMessage **m) {
        if (*m)
                ldap_msgfree(*m);
}
#define _cleanup_msg_ _cleanup_(msgfreep)

/* -EHOSTDOWN of the connection helpers is "no server answered": the lookup's -EHOSTUNREACH. */
static int down_to_unreach(int r) { return r == -EHOSTDOWN ? -EHOSTUNREACH : r; }

/* Connect and bind for searching (the service account, or anonymously). 0 or -errno. */
static int open_conn(struct pgina_ctx *ctx, struct pgldap_conn *c) {
        int r = pgldap_connect(ctx, c);

        if (r < 0)
                return down_to_unreach(r);
        r = pgldap_bind_service(ctx, c);
        if (r < 0)
                return down_to_unreach(r);
        return r == 0 ? -EACCES : 0;
}

/* Does the entry dn exist (and may we see it)? 1, 0, -errno. */
static int entry_exists(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *dn) {
        char *attrs[] = {(char *)LDAP_NO_ATTRS, NULL};
        _cleanup_msg_ LDAPMessage *res = NULL;
        int rc;

        rc = ldap_search_ext_s(c->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
                               NULL, 1, &res);
        if (rc == LDAP_NO_SUCH_OBJECT)
                return 0;
        if (rc != LDAP_SUCCESS) {
                pgina_log(ctx, LOG_ERR, "Lookup of %s on %s failed: %s", dn, c->uri,
                          ldap_err2string(rc));
                return down_to_unreach(pgldap_error(ctx, c, rc));
        }
        return ldap_count_entries(c->ld, res) > 0;
}

/* The entry of name into u. 1 found (with a uidNumber), 0 not, -errno. */
static int lookup_by_name(struct pgina_ctx *ctx, struct pgldap_conn *c, struct pgina_user *u,
                          const char *name) {
        _cleanup_free_ char *dn = NULL;
        int r;

        r = pgldap_find_dn(ctx, c, name, &dn);
        if (r <= 0)
                return down_to_unreach(r);
        if (!pgldap_search_mode(ctx)) {
                /* dn_pattern makes a DN for any name: is there an entry? */
                r = entry_exists(ctx, c, dn);
                if (r <= 0)
                        return r;
        }
        pgina_user_set_ids(u, -1, -1);
        r = pgldap_read_user(ctx, c, dn, u);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return down_to_unreach(r);
        if (pgina_user_uid(u) < 0) {
                pgina_log(ctx, LOG_DEBUG, "Lookup of %s: %s has no uidNumber, not a POSIX account",
                          name, dn);
                return 0;
        }
        return 1;
}

/* The name of the one posixAccount with uidNumber uid under base. 1 (*ret set), 0 none (or
 * several: a uid shared by two entries names nobody), -errno. */
static int search_uid_in(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *base,
                         const char *filter, const char *attr, char **ret) {
        char *attrs[] = {(char *)attr, NULL};
        _cleanup_msg_ LDAPMessage *res = NULL;
        LDAPMessage *e = NULL;
        struct berval **v;
        int r = pgldap_search_one(ctx, c, base, filter, attrs, "search_contexts", &res, &e);

        if (r == -ENOTUNIQ)
                pgina_log(ctx, LOG_WARNING, "%s under %s: the uid names nobody", filter, base);
        if (r <= 0)
                return r;
        v = ldap_get_values_len(c->ld, e, attr);
        for (size_t i = 0; v && v[i]; i++) {
                _cleanup_free_ char *s = NULL;

                if (memchr(v[i]->bv_val, 0, v[i]->bv_len) || v[i]->bv_len > PGINA_NAME_MAX)
                        continue;
                s = strndup(v[i]->bv_val, v[i]->bv_len);
                if (!s) {
                        ldap_value_free_len(v);
                        return -ENOMEM;
                }
                if (valid_user_name(s)) {
                        *ret = TAKE_PTR(s);
                        ldap_value_free_len(v);
                        return 1;
                }
        }
        if (v)
                ldap_value_free_len(v);
        pgina_log(ctx, LOG_WARNING, "The entry with %s under %s has no %s that is a valid user name",
                  filter, base, attr);
        return 0;
}

static int find_name_by_uid(struct pgina_ctx *ctx, struct pgldap_conn *c, int64_t uid, char **ret) {
        char **bases;
        char filter[128], attr[NAME_ATTR_MAX];
        int r;

        snprintf(filter, sizeof filter, "(&(objectClass=posixAccount)(uidNumber=%lld))", (long long)uid);
        pgldap_name_attribute(ctx, attr, sizeof attr);
        bases = pgldap_bases(ctx, "search_contexts", "dn_pattern");
        if (!bases)
                return -ENOMEM;
        if (!bases[0])
                pgina_log(ctx, LOG_DEBUG, "Lookup of uid %lld: no search_contexts to search",
                          (long long)uid);
        for (size_t i = 0; bases[i]; i++) {
                r = search_uid_in(ctx, c, bases[i], filter, attr, ret);
                if (r != 0) {
                        pgldap_bases_free(bases);
                        return r == -ENOTUNIQ ? 0 : r;
                }
        }
        pgldap_bases_free(bases);
        return 0;
}

int pgldap_lookup(struct pgina_ctx *ctx, struct pgina_user *u) {
        _cleanup_(conn_donep) struct pgldap_conn c = {0};
        _cleanup_free_ char *found = NULL;
        const char *name = pgina_user_name(u);
        int64_t uid = pgina_user_uid(u);
        int r;

        if (!name[0] && uid < 0)
                return 0;
        r = open_conn(ctx, &c);
        if (r < 0)
                return r;
        if (name[0]) {
                r = lookup_by_name(ctx, &c, u, name);
                pgina_log(ctx, LOG_DEBUG, "Lookup of %s: %s", name,
                          r > 0 ? "found" : r == 0 ? "not in the directory" : strerror(-r));
                return r;
        }

        r = find_name_by_uid(ctx, &c, uid, &found);
        if (r <= 0) {
                pgina_log(ctx, LOG_DEBUG, "Lookup of uid %lld: %s", (long long)uid,
                          r == 0 ? "not in the directory" : strerror(-r));
                return r;
        }
        /* the name's own entry answers, so getpwuid and getpwnam can never disagree */
        r = lookup_by_name(ctx, &c, u, found);
        if (r <= 0)
                return r;
        if (pgina_user_uid(u) != uid) {
                pgina_log(ctx, LOG_WARNING, "Lookup of uid %lld: %s's entry has uidNumber %lld: "
                          "not answered", (long long)uid, found, (long long)pgina_user_uid(u));
                return 0;
        }
        r = pgina_user_set_name(u, found);
        if (r < 0)
                return r;
        pgina_log(ctx, LOG_DEBUG, "Lookup of uid %lld: %s", (long long)uid, found);
        return 1;
}

int pgldap_lookup_group(struct pgina_ctx *ctx, struct pgina_group *g) {
        _cleanup_(conn_donep) struct pgldap_conn c = {0};
        _cleanup_(pgldap_group_done) struct pgldap_group found = {.gid = -1};
        const char *name = pgina_group_name(g);
        int64_t gid = pgina_group_gid(g);
        int r;

        if (!name[0] && gid <= 0)
                return 0;
        r = open_conn(ctx, &c);
        if (r < 0)
                return r;
        r = pgldap_find_group(ctx, &c, name[0] ? name : NULL, gid, &found);
        if (name[0])
                pgina_log(ctx, LOG_DEBUG, "Group lookup of %s: %s", name,
                          r > 0 ? "found" : r == 0 ? "not in the directory" : strerror(-r));
        else
                pgina_log(ctx, LOG_DEBUG, "Group lookup of gid %lld: %s", (long long)gid,
                          r > 0 ? found.name : r == 0 ? "not in the directory" : strerror(-r));
        if (r <= 0)
                return down_to_unreach(r);
        r = pgina_group_set(g, found.name, found.gid);
        for (size_t i = 0; r == 0 && i < found.nmembers; i++)
                r = pgina_group_member_add(g, found.members[i]);
        return r < 0 && r != -E2BIG ? r : 1;
}
