/* The users of the directory: their DN and their entry into the record (see ldap-dir.h). */
#include "ldap-dir.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "ldap-escape.h"
#include "ldap-group.h"
#include "ldap-search.h"
#include <pgina/util.h>

#define ATTRS_SUB "attributes"

static void msgfreep(LDAPMessage **m) {
        if (*m)
                ldap_msgfree(*m);
}
#define _cleanup_msg_ _cleanup_(msgfreep)

/* ---- the user's DN --------------------------------------------------------------------------- */

static int search_dn_in(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *base,
                        const char *filter, char **ret) {
        char *attrs[] = {(char *)LDAP_NO_ATTRS, NULL};
        _cleanup_msg_ LDAPMessage *res = NULL;
        LDAPMessage *e = NULL;
        char *dn;
        int r = pgldap_search_one(ctx, c, base, filter, attrs, "search_contexts", &res, &e);

        if (r == -ENOTUNIQ) /* two entries for one name: binding as either would be a guess */
                pgina_log(ctx, LOG_ERR, "%s names several users under %s: refused (make "
                          "search_filter unique)", filter, base);
        if (r <= 0)
                return r;
        dn = ldap_get_dn(c->ld, e);
        if (!dn)
                return -ENOMEM;
        *ret = strdup(dn);
        ldap_memfree(dn);
        return *ret ? 1 : -ENOMEM;
}

int pgldap_find_dn(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *user, char **ret) {
        _cleanup_free_ char *filter = NULL;
        const char *contexts;
        size_t n;
        int r;

        if (!pgldap_search_mode(ctx)) {
                r = pgldap_expand(pgina_conf_get(ctx, "dn_pattern"), 'u', user, PGLDAP_ESCAPE_DN, ret);
                return r < 0 ? r : 1;
        }
        r = pgldap_expand(pgina_conf_get(ctx, "search_filter"), 'u', user, PGLDAP_ESCAPE_FILTER,
                          &filter);
        if (r < 0)
                return r;
        contexts = pgina_conf_get(ctx, "search_contexts");
        n = pgldap_words(contexts);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *base = pgldap_word(contexts, i);

                if (!base)
                        return -ENOMEM;
                r = search_dn_in(ctx, c, base, filter, ret);
                if (r != 0)
                        return r == -ENOTUNIQ ? 0 : r;
        }
        return 0;
}

/* ---- the user's entry ------------------------------------------------------------------------ */

/* The first value of attr as a new string; NULL when absent, binary or too long. */
static char *first_value(struct pgina_ctx *ctx, LDAP *ld, LDAPMessage *e, const char *attr) {
        struct berval **v = ldap_get_values_len(ld, e, attr);
        char *s = NULL;

        if (!v || !v[0])
                goto out;
        if (v[0]->bv_len >= PGINA_VALUE_MAX || memchr(v[0]->bv_val, 0, v[0]->bv_len)) {
                pgina_log(ctx, LOG_WARNING, "Attribute %s ignored: binary or longer than %d bytes",
                          attr, PGINA_VALUE_MAX - 1);
                goto out;
        }
        s = strndup(v[0]->bv_val, v[0]->bv_len);
out:
        if (v)
                ldap_value_free_len(v);
        return s;
}

static int64_t id_value(struct pgina_ctx *ctx, LDAP *ld, LDAPMessage *e, const char *attr) {
        _cleanup_free_ char *s = first_value(ctx, ld, e, attr);
        char *end = NULL;
        unsigned long long v;

        if (!s)
                return -1;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || !*s || *end || s[0] == '-' || v >= UINT32_MAX) {
                pgina_log(ctx, LOG_WARNING, "%s \"%s\" is not a valid id: ignored", attr, s);
                return -1;
        }
        return (int64_t)v;
}

static const struct {
        const char *record, *ldap;
} well_known[] = {
        {PGINA_ATTR_FULLNAME, "cn"},
        {PGINA_ATTR_EMAIL, "mail"},
        {PGINA_ATTR_HOME, "homeDirectory"},
        {PGINA_ATTR_SHELL, "loginShell"},
};

/* schema = ad: Active Directory's own attributes, as pGina's attribute converter maps them. cn
 * first, displayName over it when there is one; the Linux home and shell from the RFC 2307
 * attributes AD has (unixHomeDirectory, loginShell); homeDirectory and homeDrive are the
 * Windows home share and its drive (pgSMB's home_share and home_mount), scriptPath the login
 * script. */
static const struct {
        const char *record, *ldap;
} well_known_ad[] = {
        {PGINA_ATTR_FULLNAME, "cn"},
        {PGINA_ATTR_FULLNAME, "displayName"},
        {PGINA_ATTR_EMAIL, "mail"},
        {PGINA_ATTR_HOME, "unixHomeDirectory"},
        {PGINA_ATTR_SHELL, "loginShell"},
        {"usri4_profile", "profilePath"},
        {"usri4_home_dir", "homeDirectory"},
        {"usri4_home_dir_drive", "homeDrive"},
        {"LoginScript", "scriptPath"},
};


/* A binary objectSid (MS-DTYP 2.4.2.2: revision, sub-authority count, 6-byte authority, 32-bit
 * little-endian sub-authorities): its RID (the last sub-authority) and the bytes before it
 * (the domain's SID, with the count not yet adjusted). 0, or -EINVAL for no valid SID. */
struct ad_sid {
        unsigned char raw[68];
        size_t len;
        uint32_t rid;
};

static int read_sid(LDAP *ld, LDAPMessage *e, struct ad_sid *sid) {
        struct berval **v = ldap_get_values_len(ld, e, "objectSid");
        int r = -EINVAL;

        if (v && v[0] && v[0]->bv_len >= 12 && v[0]->bv_len <= sizeof sid->raw) {
                const unsigned char *p = (const unsigned char *)v[0]->bv_val;
                size_t n = p[1];
                if (p[0] == 1 && n >= 1 && v[0]->bv_len == 8 + 4 * n) {
                        memcpy(sid->raw, p, v[0]->bv_len);
                        sid->len = v[0]->bv_len;
                        p += sid->len - 4;
                        sid->rid = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                        r = 0;
                }
        }
        if (v)
                ldap_value_free_len(v);
        return r;
}

/* The id of a RID: ad_id_base + RID (winbind's idmap rid, base at RID 0). -1 past 2^31. */
static int64_t rid_id(struct pgina_ctx *ctx, uint32_t rid) {
        int64_t id = (int64_t)pgina_conf_int(ctx, "ad_id_base") + rid;
        return id > INT32_MAX ? -1 : id;
}

/* The sAMAccountName of the group whose SID is the user's domain with RID rid: the primary
 * group (primaryGroupID), "Domain Users" for most. Best effort. */
static void set_primary_group_sid(struct pgina_ctx *ctx, struct pgldap_conn *c, struct pgina_user *u,
                                  const struct ad_sid *user_sid, uint32_t rid) {
        char filter[32 + 3 * sizeof user_sid->raw], *attrs[] = {(char *)"sAMAccountName", NULL};
        unsigned char sid[sizeof user_sid->raw];
        char **bases = pgldap_bases(ctx, "group_search_contexts", "group_dn_pattern");
        size_t n = 0;

        if (bases && !bases[0]) {
                pgldap_bases_free(bases);
                bases = pgldap_bases(ctx, "search_contexts", "dn_pattern");
        }
        memcpy(sid, user_sid->raw, user_sid->len);
        for (int i = 0; i < 4; i++)
                sid[user_sid->len - 4 + (size_t)i] = (unsigned char)(rid >> (8 * i));
        n = (size_t)snprintf(filter, sizeof filter, "(objectSid=");
        for (size_t i = 0; i < user_sid->len; i++)
                n += (size_t)snprintf(filter + n, sizeof filter - n, "\\%02x", sid[i]);
        snprintf(filter + n, sizeof filter - n, ")");
        for (size_t i = 0; bases && bases[i]; i++) {
                _cleanup_msg_ LDAPMessage *res = NULL;
                LDAPMessage *e;
                if (pgldap_search_one(ctx, c, bases[i], filter, attrs, "search_contexts", &res, &e) > 0) {
                        _cleanup_free_ char *name = first_value(ctx, c->ld, e, "sAMAccountName");
                        /* a local group name: "Domain Users" is domain-users */
                        for (char *q = name; q && *q; q++)
                                *q = *q == ' ' ? '-' : (char)tolower((unsigned char)*q);
                        if (name && pgina_user_set(u, PGINA_ATTR_PRIMARY_GROUP, name) == 0)
                                pgina_log(ctx, LOG_DEBUG, "%s: primary group %s (RID %u)", pgina_user_name(u),
                                          name, rid);
                        break;
                }
        }
        pgldap_bases_free(bases);
}

/* AD's ids and name: uidNumber/gidNumber where set, else from the objectSid's RID and the
 * primaryGroupID; the local name is the sAMAccountName (a logon as alice@acc.test is alice). */
static int read_ad_identity(struct pgina_ctx *ctx, struct pgldap_conn *c, LDAPMessage *e, struct pgina_user *u,
                            int64_t *uid, int64_t *gid) {
        _cleanup_free_ char *sam = first_value(ctx, c->ld, e, "sAMAccountName");
        int64_t pg = id_value(ctx, c->ld, e, "primaryGroupID");
        struct ad_sid sid;
        bool have_sid = read_sid(c->ld, e, &sid) == 0;
        int r;

        /* AD's names ignore case; Linux's are lowercase */
        for (char *q = sam; q && *q; q++)
                *q = (char)tolower((unsigned char)*q);
        /* computers and trusts are objectClass=user too, their sAMAccountName ends in '$': their
         * passwords are a machine's secret (or chosen by whoever added the computer), no person's */
        if (sam && *sam && sam[strlen(sam) - 1] == '$') {
                pgina_log(ctx, LOG_NOTICE, "%s is the computer or trust account %s: not a logon account",
                          pgina_user_name(u), sam);
                return -ENOENT;
        }
        if (sam && *sam && !streq(sam, pgina_user_name(u))) {
                pgina_log(ctx, LOG_INFO, "%s is %s (sAMAccountName): the local account's name", pgina_user_name(u),
                          sam);
                if ((r = pgina_user_set_name(u, sam)) < 0)
                        return r;
        }
        if (*uid < 0 && have_sid && (*uid = rid_id(ctx, sid.rid)) >= 0)
                pgina_log(ctx, LOG_INFO, "%s: uid %lld from the objectSid (RID %u + ad_id_base)", pgina_user_name(u),
                          (long long)*uid, sid.rid);
        if (*gid < 0 && have_sid && pg > 0 && (*gid = rid_id(ctx, (uint32_t)pg)) >= 0) {
                pgina_log(ctx, LOG_INFO, "%s: gid %lld from the primaryGroupID (RID %lld + ad_id_base)",
                          pgina_user_name(u), (long long)*gid, (long long)pg);
                set_primary_group_sid(ctx, c, u, &sid, (uint32_t)pg);
                return 1; /* the primary group is named */
        }
        if (!have_sid)
                pgina_log(ctx, LOG_WARNING, "%s: no valid objectSid", pgina_user_name(u));
        return 0;
}

static int copy_attr(struct pgina_ctx *ctx, LDAP *ld, LDAPMessage *e, struct pgina_user *u,
                     const char *record, const char *attr) {
        _cleanup_free_ char *v = first_value(ctx, ld, e, attr);
        int r;

        if (!v)
                return 0;
        r = pgina_user_set(u, record, v);
        if (r < 0)
                pgina_log(ctx, LOG_ERR, "Failed to set %s from %s: %s", record, attr, strerror(-r));
        else
                pgina_log(ctx, LOG_DEBUG, "%s: %s = %s (from %s)", pgina_user_name(u), record, v, attr);
        return r;
}

/* The directory's name for the user's primary group, so that a local group made for gid gets the
 * same name on every machine. Best effort: the logon does not depend on it. */
static void set_primary_group(struct pgina_ctx *ctx, struct pgldap_conn *c, struct pgina_user *u,
                              int64_t gid) {
        _cleanup_(pgldap_group_done) struct pgldap_group g = {.gid = -1};
        int r = pgldap_find_group(ctx, c, NULL, gid, &g);

        if (r > 0)
                r = pgina_user_set(u, PGINA_ATTR_PRIMARY_GROUP, g.name);
        if (r < 0)
                pgina_log(ctx, LOG_WARNING, "%s: the name of primary group %lld is unknown: %s",
                          pgina_user_name(u), (long long)gid, strerror(-r));
}

int pgldap_read_user(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *dn,
                     struct pgina_user *u) {
        bool ad = pgldap_schema_ad(ctx);
        size_t nconv = pgina_conf_sub_len(ctx, ATTRS_SUB), k = 0, nwk = ad ? ELEMENTSOF(well_known_ad) : ELEMENTSOF(well_known);
        _cleanup_free_ char **attrs = calloc(nwk + nconv + 6, sizeof(char *));
        _cleanup_msg_ LDAPMessage *res = NULL;
        LDAPMessage *e;
        int64_t uid, gid;
        int rc, r, named = 0;

        if (!attrs)
                return -ENOMEM;
        for (size_t i = 0; i < nwk; i++)
                attrs[k++] = (char *)(ad ? well_known_ad[i].ldap : well_known[i].ldap);
        attrs[k++] = (char *)"uidNumber";
        attrs[k++] = (char *)"gidNumber";
        if (ad) {
                attrs[k++] = (char *)"objectSid";
                attrs[k++] = (char *)"primaryGroupID";
                attrs[k++] = (char *)"sAMAccountName";
        }
        for (size_t i = 0; i < nconv; i++)
                attrs[k++] = (char *)pgina_conf_sub_value(ctx, ATTRS_SUB, i);

        rc = ldap_search_ext_s(c->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
                               NULL, 1, &res);
        if (rc != LDAP_SUCCESS) {
                pgina_log(ctx, LOG_ERR, "Failed to read %s on %s: %s", dn, c->uri, ldap_err2string(rc));
                return pgldap_error(ctx, c, rc);
        }
        e = ldap_first_entry(c->ld, res);
        if (!e) {
                pgina_log(ctx, LOG_ERR, "Failed to read %s on %s: no entry returned (access rules?)",
                          dn, c->uri);
                return -ENOENT;
        }
        for (size_t i = 0; i < nwk; i++) {
                r = ad ? copy_attr(ctx, c->ld, e, u, well_known_ad[i].record, well_known_ad[i].ldap)
                       : copy_attr(ctx, c->ld, e, u, well_known[i].record, well_known[i].ldap);
                if (r < 0)
                        return r;
        }
        uid = id_value(ctx, c->ld, e, "uidNumber");
        gid = id_value(ctx, c->ld, e, "gidNumber");
        if (ad && (named = read_ad_identity(ctx, c, e, u, &uid, &gid)) < 0)
                return named;
        /* an entry without them keeps what an earlier plugin supplied */
        pgina_user_set_ids(u, uid >= 0 ? uid : pgina_user_uid(u), gid >= 0 ? gid : pgina_user_gid(u));
        if (gid > 0 && !named)
                set_primary_group(ctx, c, u, gid);
        /* the converter comes last: it may override a well-known one (fullname = displayName) */
        for (size_t i = 0; i < nconv; i++) {
                r = copy_attr(ctx, c->ld, e, u, pgina_conf_sub_key(ctx, ATTRS_SUB, i),
                              pgina_conf_sub_value(ctx, ATTRS_SUB, i));
                if (r < 0)
                        return r;
        }
        return 0;
}
