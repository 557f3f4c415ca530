/* libpgina-plugin: NSS lookups of local accounts and groups (the worker is single-threaded, but the
 * _r variants keep one lookup from clobbering another). */
#include <pgina/account.h>

#include <grp.h>
#include <pwd.h>

#include <pgina/util.h>

void pgina_account_done(struct pgina_account *a) {
        free(a->gecos);
        a->gecos = NULL;
}

int pgina_account_lookup(const char *name, struct pgina_account *a) {
        _cleanup_free_ char *buf = NULL;
        size_t buflen = 1024;
        struct passwd pw, *res = NULL;
        int r;

        for (;;) {
                char *nbuf = realloc(buf, buflen);
                if (!nbuf)
                        return -ENOMEM;
                buf = nbuf;
                r = getpwnam_r(name, &pw, buf, buflen, &res);
                if (r != ERANGE)
                        break;
                if (buflen >= 1024 * 1024)
                        return -ERANGE;
                buflen *= 2;
        }
        if (r != 0 && r != ENOENT)
                return -r;
        if (!res)
                return 0;
        a->uid = pw.pw_uid;
        a->gid = pw.pw_gid;
        a->gecos = strdup(strempty(pw.pw_gecos));
        return a->gecos ? 1 : -ENOMEM;
}

bool pgina_gecos_is_pgina(const char *gecos) {
        return gecos && strncmp(gecos, PGINA_ACCOUNT_MARKER, strlen(PGINA_ACCOUNT_MARKER)) == 0;
}

/* Field i (0-based) of a comma-separated GECOS, malloc'd; NULL when empty or absent. */
static char *gecos_field(const char *gecos, unsigned i) {
        const char *p = gecos, *end;

        for (; i > 0 && p; i--) {
                p = strchr(p, ',');
                if (p)
                        p++;
        }
        if (!p)
                return NULL;
        end = strchrnul(p, ',');
        return end > p ? strndup(p, (size_t)(end - p)) : NULL;
}

char *pgina_gecos_fullname(const char *gecos) {
        if (!gecos)
                return NULL;
        return gecos_field(gecos, pgina_gecos_is_pgina(gecos) ? 4 : 0);
}

static void sanitize(char *s) {
        for (; *s; s++)
                if (*s == ':' || *s == ',' || (unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = ' ';
}

char *pgina_gecos_build(const char *marker, const char *fullname) {
        char *s;

        if (fullname && *fullname) {
                if (asprintf(&s, "%s,,,,%s", marker, fullname) < 0)
                        return NULL;
                /* the four commas are ours; clean each part on its own */
                sanitize(s + strlen(marker) + 4);
                s[strlen(marker)] = '\0';
                sanitize(s);
                s[strlen(marker)] = ',';
        } else {
                s = strdup(marker);
                if (s)
                        sanitize(s);
        }
        return s;
}

void pgina_names_done(struct pgina_names *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

bool pgina_names_has(const struct pgina_names *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->v[i], name))
                        return true;
        return false;
}

int pgina_names_add(struct pgina_names *l, const char *name) {
        char **nv;

        if (pgina_names_has(l, name))
                return 0;
        nv = realloc(l->v, (l->n + 1) * sizeof *nv);
        if (!nv)
                return -ENOMEM;
        l->v = nv;
        l->v[l->n] = strdup(name);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 1;
}

/* Look a group up by name (name != NULL) or gid. 1 found (*ret_name set if asked), 0 not. */
static int group_get(const char *name, gid_t gid, char **ret_name) {
        _cleanup_free_ char *buf = NULL;
        size_t buflen = 4096;
        struct group gr, *res = NULL;
        int r;

        for (;;) {
                char *nbuf = realloc(buf, buflen);
                if (!nbuf)
                        return -ENOMEM;
                buf = nbuf;
                r = name ? getgrnam_r(name, &gr, buf, buflen, &res)
                         : getgrgid_r(gid, &gr, buf, buflen, &res);
                if (r != ERANGE || buflen >= 4 * 1024 * 1024)
                        break;
                buflen *= 2;
        }
        if (r != 0 || !res)
                return 0;
        if (ret_name) {
                *ret_name = strdup(gr.gr_name);
                if (!*ret_name)
                        return -ENOMEM;
        }
        return 1;
}

char *pgina_local_group_name(gid_t gid) {
        char *n = NULL;
        return group_get(NULL, gid, &n) > 0 ? n : NULL;
}

bool pgina_local_group_exists(const char *name) {
        return group_get(name, 0, NULL) > 0;
}

bool pgina_local_gid_exists(gid_t gid) {
        return group_get(NULL, gid, NULL) > 0;
}

int pgina_account_groups(const char *name, gid_t primary, struct pgina_names *ret) {
        _cleanup_free_ gid_t *gids = NULL;
        int n = 32;

        for (;;) {
                int want = n;
                gid_t *ng = realloc(gids, (size_t)n * sizeof *gids);
                if (!ng)
                        return -ENOMEM;
                gids = ng;
                if (getgrouplist(name, primary, gids, &want) >= 0) {
                        n = want;
                        break;
                }
                if (want <= n) /* no growth asked for: give up rather than loop */
                        return -EIO;
                n = want;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *g = pgina_local_group_name(gids[i]);
                int r;

                if (!g)
                        continue; /* a gid without a name cannot be put in the record */
                r = pgina_names_add(ret, g);
                if (r < 0)
                        return r;
        }
        return 0;
}
