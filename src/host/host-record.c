/* The user record (pGina's UserInformation) and its accessors exported to plugins. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "util.h"

struct pgina_user *user_new(const char *name) {
        struct pgina_user *u = calloc(1, sizeof *u);

        if (!u)
                return NULL;
        u->name = strdup(name);
        if (!u->name) {
                free(u);
                return NULL;
        }
        u->uid = u->gid = -1;
        return u;
}

void user_free(struct pgina_user *u) {
        if (!u)
                return;
        secret_free(u->password);
        for (size_t i = 0; i < u->nattrs; i++) {
                free(u->attr_keys[i]);
                free(u->attr_values[i]);
        }
        free(u->attr_keys);
        free(u->attr_values);
        for (size_t i = 0; i < u->ngroups; i++)
                free(u->groups[i]);
        free(u->groups);
        free(u->name);
        free(u);
}

void user_set_password(struct pgina_user *u, struct secret *pw) {
        secret_free(u->password);
        u->password = pw;
}

const char *pgina_user_name(const struct pgina_user *u) { return u->name; }

const char *pgina_user_password(const struct pgina_user *u) {
        return u->password ? u->password->data : NULL;
}

static ssize_t attr_index(const struct pgina_user *u, const char *key) {
        for (size_t i = 0; i < u->nattrs; i++)
                if (streq(u->attr_keys[i], key))
                        return (ssize_t)i;
        return -1;
}

const char *pgina_user_get(const struct pgina_user *u, const char *key) {
        ssize_t i = key ? attr_index(u, key) : -1;
        return i < 0 ? NULL : u->attr_values[i];
}

static bool valid_attr_key(const char *key) {
        size_t n = strlen(key);

        if (n == 0 || n > 128)
                return false;
        for (size_t i = 0; i < n; i++)
                if (key[i] <= ' ' || key[i] == '=' || key[i] == 0x7f)
                        return false;
        return true;
}

int pgina_user_set(struct pgina_user *u, const char *key, const char *value) {
        ssize_t i;
        char *v, *k, **nk, **nv;

        if (!key || !valid_attr_key(key))
                return -EINVAL;
        i = attr_index(u, key);
        if (!value) {
                if (i >= 0) {
                        free(u->attr_keys[i]);
                        free(u->attr_values[i]);
                        u->nattrs--;
                        u->attr_keys[i] = u->attr_keys[u->nattrs];
                        u->attr_values[i] = u->attr_values[u->nattrs];
                }
                return 0;
        }
        if (strlen(value) > PGINA_VALUE_MAX)
                return -E2BIG;
        v = strdup(value);
        if (!v)
                return -ENOMEM;
        if (i >= 0) {
                free(u->attr_values[i]);
                u->attr_values[i] = v;
                return 0;
        }
        k = strdup(key);
        nk = realloc(u->attr_keys, (u->nattrs + 1) * sizeof(char *));
        if (nk)
                u->attr_keys = nk;
        nv = realloc(u->attr_values, (u->nattrs + 1) * sizeof(char *));
        if (nv)
                u->attr_values = nv;
        if (!k || !nk || !nv) {
                free(k);
                free(v);
                return -ENOMEM;
        }
        u->attr_keys[u->nattrs] = k;
        u->attr_values[u->nattrs] = v;
        u->nattrs++;
        return 0;
}

int pgina_user_set_name(struct pgina_user *u, const char *name) {
        char *n;

        if (!valid_user_name(name))
                return -EINVAL;
        if (!(n = strdup(name)))
                return -ENOMEM;
        free(u->name);
        u->name = n;
        return 0;
}

size_t pgina_user_group_count(const struct pgina_user *u) { return u->ngroups; }

const char *pgina_user_group(const struct pgina_user *u, size_t i) {
        return i < u->ngroups ? u->groups[i] : NULL;
}

bool pgina_user_in_group(const struct pgina_user *u, const char *group) {
        for (size_t i = 0; i < u->ngroups; i++)
                if (streq(u->groups[i], group))
                        return true;
        return false;
}

int pgina_user_group_add(struct pgina_user *u, const char *group) {
        char **n, *g;

        if (!group || !group[0] || strlen(group) > PGINA_NAME_MAX)
                return -EINVAL;
        if (pgina_user_in_group(u, group))
                return 0;
        g = strdup(group);
        if (!g)
                return -ENOMEM;
        n = realloc(u->groups, (u->ngroups + 1) * sizeof(char *));
        if (!n) {
                free(g);
                return -ENOMEM;
        }
        u->groups = n;
        u->groups[u->ngroups++] = g;
        return 0;
}

int pgina_user_group_remove(struct pgina_user *u, const char *group) {
        for (size_t i = 0; i < u->ngroups; i++)
                if (streq(u->groups[i], group)) {
                        free(u->groups[i]);
                        /* keep order: plugins and admins read groups in the order they came */
                        memmove(&u->groups[i], &u->groups[i + 1],
                                (u->ngroups - i - 1) * sizeof(char *));
                        u->ngroups--;
                        return 0;
                }
        return -ENOENT;
}

void pgina_user_groups_clear(struct pgina_user *u) {
        for (size_t i = 0; i < u->ngroups; i++)
                free(u->groups[i]);
        u->ngroups = 0;
}

int64_t pgina_user_uid(const struct pgina_user *u) { return u->uid; }
int64_t pgina_user_gid(const struct pgina_user *u) { return u->gid; }

void pgina_user_set_ids(struct pgina_user *u, int64_t uid, int64_t gid) {
        u->uid = uid < 0 || uid > UINT32_MAX - 1 ? -1 : uid;
        u->gid = gid < 0 || gid > UINT32_MAX - 1 ? -1 : gid;
}

int user_to_row(const struct pgina_user *u, struct pbuf *b) {
        char num[32];
        int r;

        r = proto_row_begin(b, (uint32_t)(3 + u->nattrs + u->ngroups));
        if (r < 0 || (r = proto_row_field(b, "user", u->name)) < 0)
                return r;
        snprintf(num, sizeof num, "%" PRId64, u->uid);
        if ((r = proto_row_field(b, "uid", num)) < 0)
                return r;
        snprintf(num, sizeof num, "%" PRId64, u->gid);
        if ((r = proto_row_field(b, "gid", num)) < 0)
                return r;
        for (size_t i = 0; i < u->nattrs; i++) {
                char key[160];
                snprintf(key, sizeof key, "attr:%s", u->attr_keys[i]);
                if ((r = proto_row_field(b, key, u->attr_values[i])) < 0)
                        return r;
        }
        for (size_t i = 0; i < u->ngroups; i++)
                if ((r = proto_row_field(b, "group", u->groups[i])) < 0)
                        return r;
        return 0;
}

int user_from_row(const struct proto_row *row, struct pgina_user **ret) {
        _cleanup_user_ struct pgina_user *u = NULL;
        const char *name = proto_row_get(row, "user");
        int r;

        if (!name || !valid_user_name(name))
                return -EBADMSG;
        u = user_new(name);
        if (!u)
                return -ENOMEM;
        for (size_t i = 0; i < row->n; i++) {
                const char *k = row->keys[i], *v = row->values[i];
                if (streq(k, "uid"))
                        u->uid = strtoll(v, NULL, 10);
                else if (streq(k, "gid"))
                        u->gid = strtoll(v, NULL, 10);
                else if (strncmp(k, "attr:", 5) == 0) {
                        if ((r = pgina_user_set(u, k + 5, v)) < 0)
                                return r;
                } else if (streq(k, "group")) {
                        if ((r = pgina_user_group_add(u, v)) < 0)
                                return r;
                }
        }
        pgina_user_set_ids(u, u->uid, u->gid);
        *ret = TAKE_PTR(u);
        return 0;
}
