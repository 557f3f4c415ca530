/* pgSMB store format 2: the manifest (see pgsmb-manifest.h). */
#include "pgsmb-manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

void manifest_init(struct manifest *m) { *m = (struct manifest){0}; }

void manifest_free(struct manifest *m) {
        for (size_t i = 0; i < m->n; i++)
                free(m->v[i].path);
        free(m->v);
        free(m->arch);
        *m = (struct manifest){0};
}

static void sha256_hex(const void *p, size_t len, char out[65]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char d[32];
        unsigned dl = 0;

        EVP_Digest(p, len, d, &dl, EVP_sha256(), NULL);
        for (size_t i = 0; i < 32; i++) {
                out[2 * i] = hex[d[i] >> 4];
                out[2 * i + 1] = hex[d[i] & 15];
        }
        out[64] = 0;
}

static int entry_add(struct manifest *m, const struct manifest_entry *e) {
        if (m->n >= SCAN_ENTRIES_MAX)
                return -E2BIG;
        if (m->n == m->cap) {
                size_t cap = m->cap ? 2 * m->cap : 256;
                struct manifest_entry *v = realloc(m->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                m->v = v;
                m->cap = cap;
        }
        m->v[m->n] = *e;
        if (!(m->v[m->n].path = strdup(e->path)))
                return -ENOMEM;
        m->n++;
        return 0;
}

static int archive_add(struct manifest *m, const struct manifest_archive *a) {
        struct manifest_archive *v;

        if (m->narch >= MANIFEST_ARCHIVES_MAX)
                return -E2BIG;
        if (!(v = realloc(m->arch, (m->narch + 1) * sizeof *v)))
                return -ENOMEM;
        m->arch = v;
        m->arch[m->narch++] = *a;
        return 0;
}

int manifest_copy(struct manifest *dst, const struct manifest *src) {
        manifest_init(dst);
        dst->number = src->number;
        dst->parent = src->parent;
        memcpy(dst->id, src->id, sizeof dst->id);
        memcpy(dst->user, src->user, sizeof dst->user);
        memcpy(dst->host, src->host, sizeof dst->host);
        dst->time = src->time;
        for (size_t i = 0; i < src->narch; i++)
                if (archive_add(dst, &src->arch[i]) < 0)
                        goto fail;
        for (size_t i = 0; i < src->n; i++)
                if (entry_add(dst, &src->v[i]) < 0)
                        goto fail;
        return 0;
fail:
        manifest_free(dst);
        return -ENOMEM;
}

/* ---- text ---- */

static int put(struct pbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(struct pbuf *b, const char *fmt, ...) {
        char line[SCAN_LINE_MAX];
        va_list ap;
        int n, k;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof line)
                return -ENAMETOOLONG;
        if ((k = pbuf_reserve(b, (size_t)n)) < 0)
                return k;
        memcpy(b->data + b->len, line, (size_t)n);
        b->len += (size_t)n;
        return 0;
}

int manifest_format(const struct manifest *m, struct pbuf *b) {
        char esc[3 * PATH_MAX + 1], user[3 * 256 + 1], host[3 * 256 + 1], sum[65];
        size_t start = b->len;
        int k;

        if ((k = pgsmb_path_escape(m->user, user, sizeof user)) < 0 ||
            (k = pgsmb_path_escape(m->host, host, sizeof host)) < 0)
                return k;
        if ((k = put(b, "%s\nnumber %" PRIu64 "\nparent %" PRIu64 "\nid %s\nuser %s\nhost %s\ntime %" PRId64 "\n",
                     MANIFEST_MAGIC, m->number, m->parent, m->id, user, host, m->time)) < 0)
                return k;
        for (size_t i = 0; i < m->narch; i++)
                if ((k = put(b, "a %zu %s %" PRIu64 " %s\n", i, m->arch[i].name, m->arch[i].size,
                             m->arch[i].sha256)) < 0)
                        return k;
        for (size_t i = 0; i < m->n; i++) {
                const struct manifest_entry *e = &m->v[i];
                if ((k = pgsmb_path_escape(e->path, esc, sizeof esc)) < 0 ||
                    (k = put(b, "e %" PRIu32 " %c %o %" PRIu64 " %" PRId64 ".%09" PRIu32 " %016" PRIx64 " %s\n",
                             e->archive, e->type, (unsigned)e->mode, e->size, e->mtime_s, e->mtime_ns, e->origin,
                             esc)) < 0)
                        return k;
        }
        sha256_hex(b->data + start, b->len - start, sum);
        return put(b, "sha256 %s\n", sum);
}

/* A line's fields, split on single spaces (at most max). */
struct fields {
        const char *p[8];
        size_t len[8];
        size_t n;
};

static bool split_fields(const char *line, size_t len, struct fields *f, size_t max) {
        const char *s = line, *end = line + len;

        f->n = 0;
        while (s <= end && f->n < max) {
                const char *sp = f->n + 1 < max ? memchr(s, ' ', (size_t)(end - s)) : NULL;
                const char *e = sp ? sp : end;
                if (e == s)
                        return false; /* an empty field: two spaces, or a space at an end */
                f->p[f->n] = s;
                f->len[f->n++] = (size_t)(e - s);
                if (!sp)
                        return true;
                s = sp + 1;
        }
        return false;
}

static bool is(const struct fields *f, size_t i, const char *word) {
        return f->len[i] == strlen(word) && memcmp(f->p[i], word, f->len[i]) == 0;
}

static bool num(const struct fields *f, size_t i, int base, uint64_t max, uint64_t *v) {
        char buf[32], *end;

        if (f->len[i] == 0 || f->len[i] >= sizeof buf || f->p[i][0] == '-' || f->p[i][0] == '+')
                return false;
        memcpy(buf, f->p[i], f->len[i]);
        buf[f->len[i]] = 0;
        errno = 0;
        unsigned long long x = strtoull(buf, &end, base);
        if (errno || *end || x > max || (base == 10 && buf[0] == '0' && buf[1]))
                return false;
        *v = x;
        return true;
}

static bool snum(const struct fields *f, size_t i, int64_t *v) {
        char buf[32], *end;

        if (f->len[i] == 0 || f->len[i] >= sizeof buf || f->p[i][0] == '+')
                return false;
        memcpy(buf, f->p[i], f->len[i]);
        buf[f->len[i]] = 0;
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        if (errno || *end)
                return false;
        *v = x;
        return true;
}

static bool hex_of(const struct fields *f, size_t i, size_t want, char *out) {
        if (f->len[i] != want)
                return false;
        for (size_t k = 0; k < want; k++)
                if (!strchr("0123456789abcdef", f->p[i][k]) || !f->p[i][k])
                        return false;
        memcpy(out, f->p[i], want);
        out[want] = 0;
        return true;
}

static bool text_of(const struct fields *f, size_t i, char *out, size_t outlen) {
        return pgsmb_path_unescape(f->p[i], f->len[i], out, outlen) == 0 && out[0];
}

/* An archive's file name: a plain name of the store's directory. */
static bool archive_name_ok(const char *s) {
        return s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) <= MANIFEST_NAME_MAX;
}

static bool mtime_of(const struct fields *f, size_t i, int64_t *s, uint32_t *ns) {
        const char *dot = memchr(f->p[i], '.', f->len[i]);
        struct fields a, b;
        uint64_t n;

        if (!dot || (size_t)(f->p[i] + f->len[i] - dot - 1) != 9)
                return false;
        a = (struct fields){.p = {f->p[i]}, .len = {(size_t)(dot - f->p[i])}, .n = 1};
        b = (struct fields){.p = {dot + 1}, .len = {9}, .n = 1};
        if (!snum(&a, 0, s))
                return false;
        /* nine digits, leading zeros allowed */
        for (size_t k = 0; k < 9; k++)
                if (dot[1 + k] < '0' || dot[1 + k] > '9')
                        return false;
        n = 0;
        for (size_t k = 0; k < 9; k++)
                n = n * 10 + (uint64_t)(b.p[0][k] - '0');
        *ns = (uint32_t)n;
        return true;
}

static int bad(char *err, size_t errlen, size_t line, const char *what) {
        snprintf(err, errlen, "line %zu: %s", line, what);
        return -EBADMSG;
}

/* Does data end with "sha256 HEX\n", HEX the SHA-256 of all before that line? (What every format
 * keeps, so that a later format is told from a damaged manifest of this one.) */
static bool checksum_ends(const char *data, size_t len) {
        static const size_t line = 7 + 64 + 1;
        char want[65];

        if (len < line || data[len - 1] != '\n' || memcmp(data + len - line, "sha256 ", 7) != 0 ||
            (len > line && data[len - line - 1] != '\n'))
                return false;
        sha256_hex(data, len - line, want);
        return memcmp(want, data + len - line + 7, 64) == 0;
}

int manifest_parse(struct manifest *m, const char *data, size_t len, char *err, size_t errlen) {
        static const char *const header[] = {"number", "parent", "id", "user", "host", "time"};
        char path[PATH_MAX], sum[65];
        size_t line = 0, pos = 0;
        bool ended = false;
        int k = 0;

        manifest_init(m);
        if (len > MANIFEST_MAX_BYTES)
                return bad(err, errlen, 0, "too large");
        while (pos < len) {
                const char *l = data + pos, *nl = memchr(l, '\n', len - pos);
                size_t ll;
                struct fields f;

                line++;
                if (!nl) {
                        k = bad(err, errlen, line, "cut short (no end of line)");
                        goto fail;
                }
                ll = (size_t)(nl - l);
                if (ended) {
                        k = bad(err, errlen, line, "data after the checksum");
                        goto fail;
                }
                if (memchr(l, 0, ll)) {
                        k = bad(err, errlen, line, "a NUL byte");
                        goto fail;
                }
                if (line == 1) {
                        static const char pre[] = "pgina-profile-manifest ";
                        uint64_t fmt = 0;
                        if (ll != strlen(MANIFEST_MAGIC) || memcmp(l, MANIFEST_MAGIC, ll) != 0) {
                                /* A later format is not damage: a reader that took it for damage
                                 * would commit over it and prune what it names. */
                                if (ll > sizeof pre - 1 && memcmp(l, pre, sizeof pre - 1) == 0 &&
                                    split_fields(l, ll, &f, 2) && f.n == 2 && num(&f, 1, 10, 999999, &fmt) &&
                                    fmt > 2 && checksum_ends(data, len)) {
                                        snprintf(err, errlen, "line 1: a manifest of format %" PRIu64 ", written by "
                                                 "a newer pgina (this one reads format 2)", fmt);
                                        k = -EPROTONOSUPPORT;
                                        goto fail;
                                }
                                k = bad(err, errlen, line, "not a pgina profile manifest of format 2");
                                goto fail;
                        }
                } else if (line <= 7) {
                        if (!split_fields(l, ll, &f, 2) || f.n != 2 || !is(&f, 0, header[line - 2])) {
                                snprintf(path, sizeof path, "expected '%s'", header[line - 2]);
                                k = bad(err, errlen, line, path);
                                goto fail;
                        }
                        bool ok = line == 2   ? num(&f, 1, 10, UINT64_MAX, &m->number) && m->number > 0
                                  : line == 3 ? num(&f, 1, 10, UINT64_MAX, &m->parent)
                                  : line == 4 ? hex_of(&f, 1, MANIFEST_ID_LEN, m->id)
                                  : line == 5 ? text_of(&f, 1, m->user, sizeof m->user)
                                  : line == 6 ? text_of(&f, 1, m->host, sizeof m->host)
                                              : snum(&f, 1, &m->time);
                        if (!ok || (line == 3 && m->parent >= m->number)) {
                                k = bad(err, errlen, line, "invalid value");
                                goto fail;
                        }
                } else if (ll > 2 && l[0] == 'a' && l[1] == ' ') {
                        struct manifest_archive a = {0};
                        uint64_t idx;
                        if (m->n > 0) {
                                k = bad(err, errlen, line, "an archive after the entries");
                                goto fail;
                        }
                        if (!split_fields(l, ll, &f, 5) || f.n != 5 || !num(&f, 1, 10, MANIFEST_ARCHIVES_MAX, &idx) ||
                            idx != m->narch || f.len[2] > MANIFEST_NAME_MAX || !num(&f, 3, 10, INT64_MAX, &a.size) ||
                            !hex_of(&f, 4, 64, a.sha256)) {
                                k = bad(err, errlen, line, "invalid archive line");
                                goto fail;
                        }
                        memcpy(a.name, f.p[2], f.len[2]);
                        a.name[f.len[2]] = 0;
                        if (!archive_name_ok(a.name) || manifest_archive_index(m, a.name) >= 0) {
                                k = bad(err, errlen, line, "invalid or repeated archive name");
                                goto fail;
                        }
                        if ((k = archive_add(m, &a)) < 0)
                                goto fail;
                } else if (ll > 2 && l[0] == 'e' && l[1] == ' ') {
                        struct manifest_entry e = {0};
                        uint64_t idx, mode;
                        char origin[17] = "0";
                        /* 8 fields; 7 in a manifest of before origins (PATH is escaped: no space) */
                        bool ok = split_fields(l, ll, &f, 8) && (f.n == 7 || f.n == 8);
                        size_t pi = ok ? f.n - 1 : 0;
                        if (!ok || !num(&f, 1, 10, UINT32_MAX, &idx) ||
                            idx >= m->narch || f.len[2] != 1 || !strchr("fdl", f.p[2][0]) ||
                            !num(&f, 3, 8, 07777, &mode) || !num(&f, 4, 10, INT64_MAX, &e.size) ||
                            !mtime_of(&f, 5, &e.mtime_s, &e.mtime_ns) || (f.n == 8 && !hex_of(&f, 6, 16, origin)) ||
                            pgsmb_path_unescape(f.p[pi], f.len[pi], path, sizeof path) < 0 ||
                            !pgsmb_path_valid(path)) {
                                k = bad(err, errlen, line, "invalid entry line");
                                goto fail;
                        }
                        if (m->n > 0 && strcmp(m->v[m->n - 1].path, path) >= 0) {
                                k = bad(err, errlen, line, "entries out of order or repeated");
                                goto fail;
                        }
                        e.archive = (uint32_t)idx;
                        e.origin = strtoull(origin, NULL, 16);
                        e.type = f.p[2][0];
                        e.mode = (uint32_t)mode;
                        e.path = path;
                        if ((k = entry_add(m, &e)) < 0)
                                goto fail;
                } else if (ll > 7 && memcmp(l, "sha256 ", 7) == 0) {
                        if (!split_fields(l, ll, &f, 2) || f.n != 2 || !hex_of(&f, 1, 64, sum)) {
                                k = bad(err, errlen, line, "invalid checksum line");
                                goto fail;
                        }
                        char want[65];
                        sha256_hex(data, pos, want);
                        if (strcmp(want, sum) != 0) {
                                k = bad(err, errlen, line, "checksum does not match (damaged or half-written)");
                                goto fail;
                        }
                        ended = true;
                } else {
                        k = bad(err, errlen, line, "unknown line");
                        goto fail;
                }
                pos = (size_t)(nl - data) + 1;
        }
        if (!ended) {
                k = bad(err, errlen, line, "cut short (no checksum)");
                goto fail;
        }
        if (m->narch == 0 && m->n > 0) {
                k = bad(err, errlen, line, "entries but no archive");
                goto fail;
        }
        return 0;
fail:
        manifest_free(m);
        return k;
}

/* ---- queries ---- */

static int entry_path_cmp(const void *key, const void *e) {
        return strcmp(key, ((const struct manifest_entry *)e)->path);
}

const struct manifest_entry *manifest_find(const struct manifest *m, const char *path) {
        return m->n ? bsearch(path, m->v, m->n, sizeof *m->v, entry_path_cmp) : NULL;
}

uint64_t manifest_bytes(const struct manifest *m) {
        uint64_t sum = 0;

        for (size_t i = 0; i < m->n; i++)
                if (m->v[i].type == 'f')
                        sum += m->v[i].size;
        return sum;
}

int manifest_archive_index(const struct manifest *m, const char *name) {
        for (size_t i = 0; i < m->narch; i++)
                if (strcmp(m->arch[i].name, name) == 0)
                        return (int)i;
        return -1;
}

/* ---- building ---- */

/* Drop the archives no entry refers to, renumbering the entries' indexes. */
static void chain_compact(struct manifest *m) {
        uint32_t *map;
        bool *used;
        size_t j = 0;

        if (m->narch == 0)
                return;
        used = calloc(m->narch, sizeof *used);
        map = calloc(m->narch, sizeof *map);
        if (!used || !map) {
                free(used);
                free(map);
                return; /* an unreferenced archive in the chain is harmless */
        }
        for (size_t i = 0; i < m->n; i++)
                used[m->v[i].archive] = true;
        for (size_t i = 0; i < m->narch; i++)
                if (used[i]) {
                        map[i] = (uint32_t)j;
                        m->arch[j++] = m->arch[i];
                }
        m->narch = j;
        for (size_t i = 0; i < m->n; i++)
                m->v[i].archive = map[m->v[i].archive];
        free(used);
        free(map);
}

static void entry_from_scan(struct manifest_entry *e, const struct scan_entry *s, uint32_t archive) {
        *e = (struct manifest_entry){.path = s->path, .archive = archive, .type = s->type, .mode = s->mode,
                                     .size = s->type == 'f' ? s->size : 0, .mtime_s = s->mtime_s,
                                     .mtime_ns = s->mtime_ns};
}

int manifest_from_scan(struct manifest *out, const struct manifest *old, const struct scan *scan,
                       const struct manifest_archive *added) {
        uint32_t new_index;
        int k = 0;

        manifest_init(out);
        if (!scan->sorted)
                return -EINVAL;
        for (size_t i = 0; old && i < old->narch; i++)
                if ((k = archive_add(out, &old->arch[i])) < 0)
                        goto fail;
        new_index = (uint32_t)out->narch;
        if ((k = archive_add(out, added)) < 0)
                goto fail;
        uint64_t origin = manifest_new_origin();
        for (size_t i = 0; i < scan->n; i++) {
                const struct scan_entry *s = &scan->v[i];
                struct manifest_entry e;

                if (s->flag == '+') {
                        entry_from_scan(&e, s, new_index);
                        e.origin = origin;
                } else {
                        const struct manifest_entry *o = old ? manifest_find(old, s->path) : NULL;
                        if (!o || o->type != s->type) {
                                k = -ESTALE;
                                goto fail;
                        }
                        e = *o;
                }
                if ((k = entry_add(out, &e)) < 0)
                        goto fail;
        }
        chain_compact(out);
        return 0;
fail:
        manifest_free(out);
        return k;
}

/* The same content: type, mode, size and mtime (to the nanosecond) agree, and the origin where
 * both know it, whichever archive holds it (a compaction moves every entry to a new base without
 * changing one). */
static bool entry_same(const struct manifest_entry *x, const struct manifest_entry *y) {
        return x->type == y->type && x->mode == y->mode && x->size == y->size && x->mtime_s == y->mtime_s &&
               x->mtime_ns == y->mtime_ns && (!x->origin || !y->origin || x->origin == y->origin);
}

static int list_push(char ***v, size_t *n, size_t *cap, const char *s) {
        if (*n == *cap) {
                size_t c = *cap ? 2 * *cap : 64;
                char **nv = realloc(*v, c * sizeof *nv);
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = c;
        }
        if (!((*v)[*n] = strdup(s)))
                return -ENOMEM;
        (*n)++;
        return 0;
}

/* by_archive: an entry whose archive is another one differs too (ours against its base: what this
 * machine archived again is its change, whatever its metadata says) */
static int diff(const struct manifest *a, const struct manifest *b, bool by_archive, char ***changed,
                size_t *nchanged, char ***deleted, size_t *ndeleted) {
        size_t i = 0, j = 0, cc = 0, cd = 0;
        int k = 0;

        *changed = *deleted = NULL;
        *nchanged = *ndeleted = 0;
        while (k == 0 && (i < a->n || j < b->n)) {
                int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->v[i].path, b->v[j].path);
                if (c < 0)
                        k = list_push(deleted, ndeleted, &cd, a->v[i++].path);
                else if (c > 0)
                        k = list_push(changed, nchanged, &cc, b->v[j++].path);
                else {
                        if (!entry_same(&a->v[i], &b->v[j]) ||
                            (by_archive && strcmp(a->arch[a->v[i].archive].name, b->arch[b->v[j].archive].name) != 0))
                                k = list_push(changed, nchanged, &cc, b->v[j].path);
                        i++;
                        j++;
                }
        }
        if (k < 0) {
                pathlist_free(*changed, *nchanged);
                pathlist_free(*deleted, *ndeleted);
                *changed = *deleted = NULL;
                *nchanged = *ndeleted = 0;
        }
        return k;
}

int manifest_diff(const struct manifest *a, const struct manifest *b, char ***changed, size_t *nchanged,
                  char ***deleted, size_t *ndeleted) {
        return diff(a, b, false, changed, nchanged, deleted, ndeleted);
}

static int str_ptr_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Is path, or a directory above it, in the sorted list v? (*which: the one found) */
static bool self_or_ancestor_in(const char *path, char *const *v, size_t n, const char **which) {
        char up[PATH_MAX];
        const char *key = up;
        char *slash;

        if (n == 0)
                return false;
        snprintf(up, sizeof up, "%s", path);
        for (;;) {
                char *const *hit = bsearch(&key, v, n, sizeof *v, str_ptr_cmp);
                if (hit) {
                        if (which)
                                *which = *hit;
                        return true;
                }
                if (!(slash = strrchr(up, '/')))
                        return false;
                *slash = 0;
        }
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const struct manifest_entry *)a)->path, ((const struct manifest_entry *)b)->path);
}

int manifest_rebase(struct manifest *out, const struct manifest *base, const struct manifest *ours,
                    const struct manifest *theirs, char *why, size_t whylen) {
        char **oc = NULL, **od = NULL, **tc = NULL, **td = NULL;
        size_t noc = 0, nod = 0, ntc = 0, ntd = 0;
        int k;

        manifest_init(out);
        /* ours: every entry this logoff archived (a change that kept size and mtime too);
         * theirs: what changed in content (a compaction on the way changes only archives) */
        if ((k = diff(base, ours, true, &oc, &noc, &od, &nod)) < 0 ||
            (k = manifest_diff(base, theirs, &tc, &ntc, &td, &ntd)) < 0)
                goto done;
        /* A clash: a path both changed (not a directory on both sides), or one side deleted what
         * the other changed or wrote into. (Each path's ancestors are looked up in the other
         * side's sorted lists: a merge of 40,000 paths each way stays quick.) */
        for (size_t i = 0; i < noc && k == 0; i++) {
                const struct manifest_entry *o = manifest_find(ours, oc[i]), *t = manifest_find(theirs, oc[i]);
                if ((pathlist_has(tc, ntc, oc[i]) && !(o && t && o->type == 'd' && t->type == 'd')) ||
                    self_or_ancestor_in(oc[i], td, ntd, NULL))
                        k = -EBUSY;
                if (k < 0)
                        snprintf(why, whylen, "'%s' changed on both machines", oc[i]);
        }
        for (size_t j = 0; j < ntc && k == 0; j++) {
                const char *gone;
                if (self_or_ancestor_in(tc[j], od, nod, &gone)) {
                        k = -EBUSY;
                        snprintf(why, whylen, "'%s' deleted here, changed on the other machine", gone);
                }
        }
        if (k < 0)
                goto done;
        /* theirs, then ours' changes in place, then ours' deletions out */
        for (size_t i = 0; i < theirs->narch && k == 0; i++)
                k = archive_add(out, &theirs->arch[i]);
        for (size_t i = 0; i < ours->narch && k == 0; i++)
                if (manifest_archive_index(out, ours->arch[i].name) < 0)
                        k = archive_add(out, &ours->arch[i]);
        for (size_t i = 0; i < theirs->n && k == 0; i++) {
                const struct manifest_entry *t = &theirs->v[i];
                if (pathlist_has(od, nod, t->path) || pathlist_has(oc, noc, t->path))
                        continue;
                k = entry_add(out, t);
        }
        for (size_t i = 0; i < noc && k == 0; i++) {
                struct manifest_entry e = *manifest_find(ours, oc[i]);
                e.archive = (uint32_t)manifest_archive_index(out, ours->arch[e.archive].name);
                k = entry_add(out, &e);
        }
        if (k < 0)
                goto done;
        if (out->n > 1)
                qsort(out->v, out->n, sizeof *out->v, entry_cmp);
        /* every entry's parent directory is in the result */
        for (size_t i = 0; i < out->n && k == 0; i++) {
                char parent[PATH_MAX], *slash;
                const struct manifest_entry *p;
                snprintf(parent, sizeof parent, "%s", out->v[i].path);
                if (!(slash = strrchr(parent, '/')))
                        continue;
                *slash = 0;
                if (!(p = manifest_find(out, parent)) || p->type != 'd') {
                        k = -EBUSY;
                        snprintf(why, whylen, "'%s' lost its directory in the merge", out->v[i].path);
                }
        }
        if (k == 0)
                chain_compact(out);
done:
        pathlist_free(oc, noc);
        pathlist_free(od, nod);
        pathlist_free(tc, ntc);
        pathlist_free(td, ntd);
        if (k < 0)
                manifest_free(out);
        return k;
}

int manifest_want(const struct manifest *m, uint32_t index, char *const *only, size_t nonly, struct pbuf *b,
                  size_t *count) {
        *count = 0;
        for (size_t i = 0; i < m->n; i++) {
                int k;
                if (m->v[i].archive != index || (only && !pathlist_has(only, nonly, m->v[i].path)))
                        continue;
                if ((k = pathlist_add(b, m->v[i].path)) < 0)
                        return k;
                (*count)++;
        }
        return 0;
}

int manifest_dirs(const struct manifest *m, struct scan *s) {
        scan_init(s);
        for (size_t i = 0; i < m->n; i++) {
                struct scan_entry e;
                int k;
                if (m->v[i].type != 'd')
                        continue;
                e = (struct scan_entry){.flag = '=', .type = 'd', .mode = m->v[i].mode, .mtime_s = m->v[i].mtime_s,
                                        .mtime_ns = m->v[i].mtime_ns, .ctime_s = m->v[i].mtime_s,
                                        .ctime_ns = m->v[i].mtime_ns, .path = strdup(m->v[i].path)};
                if (!e.path || (k = scan_add(s, &e)) < 0) {
                        free(e.path);
                        scan_free(s);
                        return -ENOMEM;
                }
        }
        s->sorted = true; /* m's order */
        return 0;
}

/* ---- names ---- */

int manifest_file_name(const char *filename, uint64_t number, char *out, size_t len) {
        int n = snprintf(out, len, "%s.m%08" PRIu64, filename, number);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

uint64_t manifest_name_number(const char *filename, const char *name) {
        size_t fl = strlen(filename);
        const char *p = name + fl + 2;
        uint64_t v = 0;

        if (strncmp(name, filename, fl) != 0 || name[fl] != '.' || name[fl + 1] != 'm' || strlen(p) < 8 ||
            strlen(p) > 19)
                return 0;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        return v;
}

void manifest_new_id(char out[MANIFEST_ID_LEN + 1]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char r[MANIFEST_ID_LEN / 2];

        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
                for (size_t i = 0; i < sizeof r; i++)
                        r[i] = (unsigned char)rand();
        for (size_t i = 0; i < sizeof r; i++) {
                out[2 * i] = hex[r[i] >> 4];
                out[2 * i + 1] = hex[r[i] & 15];
        }
        out[MANIFEST_ID_LEN] = 0;
}

uint64_t manifest_new_origin(void) {
        uint64_t v = 0;

        while (v == 0)
                if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
                        v = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ (uint64_t)time(NULL);
        return v;
}
