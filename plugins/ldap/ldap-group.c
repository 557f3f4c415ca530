/* Groups of the directory (see ldap-group.h). */
#include "ldap-group.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "ldap-escape.h"
#include "ldap-search.h"
#include <pgina/util.h>

static void msgfreep(LDAPMessage **m) {
        if (*m)
                ldap_msgfree(*m);
}
#define _cleanup_msg_ _cleanup_(msgfreep)

void pgldap_group_done(struct pgldap_group *g) {
        for (size_t i = 0; i < g->nmembers; i++)
                free(g->members[i]);
        free(g->members);
        free(g->name);
        *g = (struct pgldap_group){.gid = -1};
}

static int member_add(struct pgldap_group *g, const char *name, size_t len) {
        _cleanup_free_ char *s = strndup(name, len);
        char **v;

        if (!s)
                return -ENOMEM;
        if (!valid_user_name(s) || g->nmembers >= PGINA_GROUP_MEMBERS_MAX)
                return 0;
        for (size_t i = 0; i < g->nmembers; i++)
                if (streq(g->members[i], s))
                        return 0;
        v = realloc(g->members, (g->nmembers + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        g->members = v;
        g->members[g->nmembers++] = TAKE_PTR(s);
        return 0;
}

/* A member DN's user name: its first RDN when that is a single uid=NAME (or name_attr=NAME).
 * Anything else (cn=Full Name, a multi-valued RDN) names nobody we could answer for. */
static int member_from_dn(struct pgldap_group *g, const struct berval *bv, const char *name_attr) {
        _cleanup_free_ char *s = strndup(bv->bv_val, bv->bv_len);
        LDAPDN dn = NULL;
        int r = 0;

        if (!s)
                return -ENOMEM;
        if (ldap_str2dn(s, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || !dn)
                return 0;
        if (dn[0] && dn[0][0] && !dn[0][1]) {
                const LDAPAVA *ava = dn[0][0];
                const struct berval *a = &ava->la_attr;

                if ((a->bv_len == 3 && strncasecmp(a->bv_val, "uid", 3) == 0) ||
                    (a->bv_len == strlen(name_attr) && strncasecmp(a->bv_val, name_attr, a->bv_len) == 0))
                        r = member_add(g, ava->la_value.bv_val, ava->la_value.bv_len);
        }
        ldap_dnfree(dn);
        return r;
}

static int read_members(struct pgina_ctx *ctx, LDAP *ld, LDAPMessage *e, struct pgldap_group *g) {
        static const char *const attrs[] = {"memberUid", "member", "uniqueMember"};
        char name_attr[64];
        int r = 0;

        pgldap_name_attribute(ctx, name_attr, sizeof name_attr);
        for (size_t a = 0; a < ELEMENTSOF(attrs) && r == 0; a++) {
                struct berval **v = ldap_get_values_len(ld, e, attrs[a]);

                for (size_t i = 0; v && v[i] && r == 0; i++) {
                        if (memchr(v[i]->bv_val, 0, v[i]->bv_len))
                                continue;
                        r = a == 0 ? member_add(g, v[i]->bv_val, v[i]->bv_len)
                                   : member_from_dn(g, v[i], name_attr);
                }
                if (v)
                        ldap_value_free_len(v);
        }
        if (r == 0 && g->nmembers >= PGINA_GROUP_MEMBERS_MAX)
                pgina_log(ctx, LOG_WARNING, "Group %s: only the first %d members are listed", g->name,
                          PGINA_GROUP_MEMBERS_MAX);
        return r;
}

/* The entry's name: the cn equal to want (a search is case-insensitive, a group name is not),
 * else the first cn that is a valid name. */
static char *entry_name(LDAP *ld, LDAPMessage *e, const char *want) {
        struct berval **v = ldap_get_values_len(ld, e, "cn");
        char *found = NULL;

        for (size_t i = 0; v && v[i] && !found; i++) {
                _cleanup_free_ char *s = strndup(v[i]->bv_val, v[i]->bv_len);

                if (s && strlen(s) == v[i]->bv_len && valid_user_name(s) && (!want || streq(s, want)))
                        found = TAKE_PTR(s);
        }
        if (v)
                ldap_value_free_len(v);
        return found;
}

static int64_t entry_gid(LDAP *ld, LDAPMessage *e) {
        struct berval **v = ldap_get_values_len(ld, e, "gidNumber");
        int64_t gid = -1;

        if (v && v[0] && v[0]->bv_len > 0 && v[0]->bv_len < 11) {
                char buf[16], *end = NULL;
                unsigned long long n;

                memcpy(buf, v[0]->bv_val, v[0]->bv_len);
                buf[v[0]->bv_len] = 0;
                errno = 0;
                n = strtoull(buf, &end, 10);
                if (!errno && !*end && buf[0] >= '0' && buf[0] <= '9' && n > 0 && n < UINT32_MAX)
                        gid = (int64_t)n;
        }
        if (v)
                ldap_value_free_len(v);
        return gid;
}

/* One context: 1 found, 0 not here, -ENOTUNIQ several, -errno. */
static int find_in(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *base,
                   const char *filter, const char *name, struct pgldap_group *g) {
        char *attrs[] = {"cn", "gidNumber", "memberUid", "member", "uniqueMember", NULL};
        _cleanup_msg_ LDAPMessage *res = NULL;
        LDAPMessage *e = NULL;
        int r = pgldap_search_one(ctx, c, base, filter, attrs, "group_search_contexts", &res, &e);

        if (r == -ENOTUNIQ)
                pgina_log(ctx, LOG_WARNING, "%s under %s: the name or gid names no group", filter,
                          base);
        if (r <= 0)
                return r;
        g->gid = entry_gid(c->ld, e);
        g->name = entry_name(c->ld, e, name);
        if (g->gid < 0 || !g->name) {
                pgina_log(ctx, LOG_DEBUG, "Group %s under %s: no valid cn or gidNumber: ignored",
                          filter, base);
                pgldap_group_done(g);
                return 0;
        }
        return read_members(ctx, c->ld, e, g) < 0 ? -ENOMEM : 1;
}

int pgldap_find_group(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *name, int64_t gid,
                      struct pgldap_group *g) {
        const char *base_filter = pgina_conf_get(ctx, "group_filter");
        _cleanup_free_ char *value = NULL;
        char **bases;
        char filter[1024];
        int r;

        *g = (struct pgldap_group){.gid = -1};
        if (name) {
                if (!(value = pgldap_escape_dup(PGLDAP_ESCAPE_FILTER, name)))
                        return -ENOMEM;
                r = snprintf(filter, sizeof filter, "(&%s(cn=%s))", base_filter, value);
        } else
                r = snprintf(filter, sizeof filter, "(&%s(gidNumber=%lld))", base_filter, (long long)gid);
        if (r < 0 || (size_t)r >= sizeof filter)
                return -EINVAL;
        bases = pgldap_bases(ctx, "group_search_contexts", "group_dn_pattern");
        if (!bases)
                return -ENOMEM;
        if (!bases[0])
                pgina_log(ctx, LOG_DEBUG, "Group lookup: neither group_search_contexts nor "
                          "group_dn_pattern says where groups are");
        for (size_t i = 0; bases[i]; i++) {
                r = find_in(ctx, c, bases[i], filter, name, g);
                if (r != 0) {
                        pgldap_bases_free(bases);
                        return r == -ENOTUNIQ ? 0 : r;
                }
        }
        pgldap_bases_free(bases);
        return 0;
}

/* ---- membership ---------------------------------------------------------------------------------- */

int pgldap_group_dn(struct pgina_ctx *ctx, const char *group, char **ret) {
        const char *pattern = pgina_conf_get(ctx, "group_dn_pattern");

        if (strchr(group, '=')) {
                *ret = strdup(group);
                return *ret ? 0 : -ENOMEM;
        }
        if (!pattern || !*pattern)
                return -EINVAL;
        return pgldap_expand(pattern, 'g', group, PGLDAP_ESCAPE_DN, ret);
}

/* Does the entry base match filter? 1, 0, -errno; a missing entry is 0, logged. */
static int base_matches(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *base,
                        const char *filter) {
        char *attrs[] = {(char *)LDAP_NO_ATTRS, NULL};
        _cleanup_msg_ LDAPMessage *res = NULL;
        int rc;

        rc = ldap_search_ext_s(c->ld, base, LDAP_SCOPE_BASE, filter, attrs, 0, NULL, NULL, NULL, 1,
                               &res);
        if (rc == LDAP_NO_SUCH_OBJECT) {
                pgina_log(ctx, LOG_WARNING, "%s does not exist on %s (a group of the rules?)", base,
                          c->uri);
                return 0;
        }
        if (rc != LDAP_SUCCESS) {
                pgina_log(ctx, LOG_ERR, "Search %s in %s on %s failed: %s", filter, base, c->uri,
                          ldap_err2string(rc));
                return pgldap_error(ctx, c, rc);
        }
        return ldap_count_entries(c->ld, res) > 0;
}

int pgldap_is_member(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *user,
                     const char *user_dn, const char *group_dn) {
        const char *attr = pgina_conf_get(ctx, "group_attribute");
        bool by_dn = !strcasecmp(attr, "member") || !strcasecmp(attr, "uniqueMember");
        bool member_of = !strcasecmp(attr, "memberOf");
        _cleanup_free_ char *value = NULL, *filter = NULL;
        int r;

        if ((by_dn || member_of) && !user_dn)
                return 0; /* not in the directory: a member of nothing */
        value = pgldap_escape_dup(PGLDAP_ESCAPE_FILTER, member_of ? group_dn : by_dn ? user_dn : user);
        /* AD: memberOf lists direct groups only; the in-chain rule follows nested ones */
        if (!value || asprintf(&filter, "(%s%s=%s)", attr,
                               member_of && pgldap_schema_ad(ctx) ? ":1.2.840.113556.1.4.1941:" : "", value) < 0) {
                filter = NULL;
                return -ENOMEM;
        }
        r = base_matches(ctx, c, member_of ? user_dn : group_dn, filter);
        if (r >= 0)
                pgina_log(ctx, LOG_DEBUG, "%s is %sa member of %s (%s)", user, r ? "" : "not ",
                          group_dn, attr);
        return r;
}
