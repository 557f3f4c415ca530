/* The master's memory of NSS answers (GETPWNAM, GETGRNAM): sshd and friends ask again and again,
 * so an answer is kept briefly (found NSS_HIT_MS, not found or unavailable NSS_MISS_MS) and the
 * next question is answered without a worker. Runs in the master: no plugin code here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pginad-manager.h"
#include "pginad.h"
#include "util.h"

#define NSS_HIT_MS (60 * 1000)
#define NSS_MISS_MS (10 * 1000)
#define NSS_CACHE_MAX 256

struct nss_entry {
        char *key; /* "n:NAME", "u:UID" (passwd), "g:NAME", "G:GID" (group) */
        uint32_t status;
        struct proto_row row; /* the answer when status is PROTO_OK */
        long long expires;
        struct nss_entry *next;
};

void nss_key(const struct request *r, char *buf, size_t len) {
        bool group = r->type == PROTO_REQ_GETGRNAM;

        if (r->user[0])
                snprintf(buf, len, "%s:%s", group ? "g" : "n", r->user);
        else
                snprintf(buf, len, "%s:%u", group ? "G" : "u", r->id);
}

static void entry_free(struct nss_entry *e) {
        for (size_t i = 0; i < e->row.n; i++) {
                free(e->row.keys[i]);
                free(e->row.values[i]);
        }
        free(e->row.keys);
        free(e->row.values);
        free(e->key);
        free(e);
}

static int row_add(struct proto_row *row, const char *key, const char *value) {
        char **k, **v;

        if (row->n >= PROTO_FIELDS_MAX)
                return -E2BIG;
        k = realloc(row->keys, (row->n + 1) * sizeof *k);
        if (!k)
                return -ENOMEM;
        row->keys = k;
        v = realloc(row->values, (row->n + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        row->values = v;
        row->keys[row->n] = strdup(key);
        row->values[row->n] = strdup(value);
        row->n++; /* owned from here, even half-made, so entry_free frees it */
        return row->keys[row->n - 1] && row->values[row->n - 1] ? 0 : -ENOMEM;
}

/* The passwd row: user, uid, gid, gecos, home, shell (what libnss_pgina's getpw* read). */
static int passwd_row(struct proto_row *row, const struct pgina_user *u) {
        const char *full = pgina_user_get(u, PGINA_ATTR_FULLNAME);
        const char *home = pgina_user_get(u, PGINA_ATTR_HOME);
        const char *shell = pgina_user_get(u, PGINA_ATTR_SHELL);
        char gecos[512], uid[32], gid[32];
        size_t k = 0;
        int r;

        /* GECOS text: no ':' or newline can reach a passwd line */
        for (const char *s = full ? full : ""; *s && k + 1 < sizeof gecos; s++)
                gecos[k++] = (*s == ':' || *s == '\n') ? ' ' : *s;
        gecos[k] = 0;
        snprintf(uid, sizeof uid, "%lld", (long long)u->uid);
        snprintf(gid, sizeof gid, "%lld", (long long)(u->gid >= 0 ? u->gid : u->uid));
        if ((r = row_add(row, "user", u->name)) < 0 || (r = row_add(row, "uid", uid)) < 0 ||
            (r = row_add(row, "gid", gid)) < 0 || (r = row_add(row, "gecos", gecos)) < 0 ||
            (r = row_add(row, "home", home ? home : "/")) < 0 ||
            (r = row_add(row, "shell", shell ? shell : "/bin/sh")) < 0)
                return r;
        return 0;
}

/* The group row as the worker sent it (group_to_row): group, gid, member... */
static int group_row(struct proto_row *row, const struct proto_result *res) {
        for (size_t i = 0; i < res->nrows; i++) {
                const struct proto_row *g = &res->rows[i];

                if (!proto_row_get(g, "group") || proto_row_get(g, "stage"))
                        continue;
                for (size_t k = 0; k < g->n; k++) {
                        int r = row_add(row, g->keys[k], g->values[k]);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        return -ENOENT;
}

static struct pgina_user *result_user(const struct proto_result *res) {
        struct pgina_user *u = NULL;

        for (size_t i = 0; i < res->nrows; i++)
                if (proto_row_get(&res->rows[i], "user"))
                        return user_from_row(&res->rows[i], &u) < 0 ? NULL : u;
        return NULL;
}

const struct nss_entry *nss_cache_find(struct nss_cache *c, const char *key) {
        long long now = clock_now(c->clock);

        for (struct nss_entry **p = &c->head; *p;) {
                struct nss_entry *e = *p;
                if (e->expires <= now) {
                        *p = e->next;
                        entry_free(e);
                        c->n--;
                        continue;
                }
                if (streq(e->key, key))
                        return e;
                p = &e->next;
        }
        return NULL;
}

static void cache_insert(struct nss_cache *c, struct nss_entry *e) {
        if (c->n >= NSS_CACHE_MAX) {
                /* drop the oldest (the list is newest first) */
                struct nss_entry **p = &c->head;
                while (*p && (*p)->next)
                        p = &(*p)->next;
                entry_free(*p);
                *p = NULL;
                c->n--;
        }
        e->next = c->head;
        c->head = e;
        c->n++;
}

const struct nss_entry *nss_cache_store(struct nss_cache *c, const struct request *r,
                                        const struct proto_result *res) {
        struct nss_entry *e = calloc(1, sizeof *e);
        char key[128];
        int k = 0;

        if (!e)
                return NULL;
        nss_key(r, key, sizeof key);
        e->status = res->status;
        if (e->status == PROTO_OK) {
                if (r->type == PROTO_REQ_GETGRNAM)
                        k = group_row(&e->row, res);
                else {
                        _cleanup_user_ struct pgina_user *u = result_user(res);
                        k = u ? passwd_row(&e->row, u) : -ENOENT;
                }
                if (k == -ENOENT) /* "found" without an answer: nobody knows it */
                        e->status = PROTO_NOT_FOUND;
        }
        e->expires = clock_now(c->clock) + (e->status == PROTO_OK ? NSS_HIT_MS : NSS_MISS_MS);
        if ((k < 0 && k != -ENOENT) || !(e->key = strdup(key))) {
                entry_free(e);
                return NULL;
        }
        cache_insert(c, e);
        return e;
}

int nss_entry_reply(const struct nss_entry *e, struct pbuf *b) {
        bool found = e->status == PROTO_OK;
        int r;

        pbuf_init(b);
        if ((r = proto_result_begin(b, e->status, "", found ? 1 : 0)) < 0)
                return r;
        if (!found)
                return 0;
        if ((r = proto_row_begin(b, (uint32_t)e->row.n)) < 0)
                return r;
        for (size_t i = 0; i < e->row.n; i++)
                if ((r = proto_row_field(b, e->row.keys[i], e->row.values[i])) < 0)
                        return r;
        return 0;
}

void nss_cache_clear(struct nss_cache *c) {
        for (struct nss_entry *e = c->head, *n; e; e = n) {
                n = e->next;
                entry_free(e);
        }
        c->head = NULL;
        c->n = 0;
}
