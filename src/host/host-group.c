/* A group a plugin's lookup_group fills for libnss_pgina, and its accessors exported to plugins. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "util.h"

struct pgina_group *group_new(const char *name, int64_t gid) {
        struct pgina_group *g = calloc(1, sizeof *g);

        if (!g)
                return NULL;
        g->name = strdup(name);
        if (!g->name) {
                free(g);
                return NULL;
        }
        g->gid = gid > 0 && gid < UINT32_MAX ? gid : -1;
        return g;
}

void group_free(struct pgina_group *g) {
        if (!g)
                return;
        for (size_t i = 0; i < g->nmembers; i++)
                free(g->members[i]);
        free(g->members);
        free(g->name);
        free(g);
}

const char *pgina_group_name(const struct pgina_group *g) { return g->name; }
int64_t pgina_group_gid(const struct pgina_group *g) { return g->gid; }

int pgina_group_set(struct pgina_group *g, const char *name, int64_t gid) {
        char *n;

        /* gid 0 is root's group: files answers for it, a directory never does */
        if (!valid_user_name(name) || gid <= 0 || gid >= UINT32_MAX)
                return -EINVAL;
        if (!(n = strdup(name)))
                return -ENOMEM;
        free(g->name);
        g->name = n;
        g->gid = gid;
        return 0;
}

int pgina_group_member_add(struct pgina_group *g, const char *user) {
        char **v, *m;

        if (!valid_user_name(user))
                return -EINVAL;
        for (size_t i = 0; i < g->nmembers; i++)
                if (streq(g->members[i], user))
                        return 0;
        if (g->nmembers >= PGINA_GROUP_MEMBERS_MAX)
                return -E2BIG;
        if (!(m = strdup(user)))
                return -ENOMEM;
        v = realloc(g->members, (g->nmembers + 1) * sizeof *v);
        if (!v) {
                free(m);
                return -ENOMEM;
        }
        g->members = v;
        g->members[g->nmembers++] = m;
        return 0;
}

int group_to_row(const struct pgina_group *g, struct pbuf *b) {
        char num[32];
        int r;

        snprintf(num, sizeof num, "%" PRId64, g->gid);
        if ((r = proto_row_begin(b, (uint32_t)(2 + g->nmembers))) < 0 ||
            (r = proto_row_field(b, "group", g->name)) < 0 || (r = proto_row_field(b, "gid", num)) < 0)
                return r;
        for (size_t i = 0; i < g->nmembers; i++)
                if ((r = proto_row_field(b, "member", g->members[i])) < 0)
                        return r;
        return 0;
}
