/* pgSMB delta profiles: a home's scan and path lists (see pgsmb-scan.h). */
#include "pgsmb-scan.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool needs_escape(unsigned char c) { return c <= 0x20 || c == 0x7f || c == '%'; }

int pgsmb_path_escape(const char *in, char *out, size_t outlen) {
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
                if (needs_escape(*p)) {
                        if (o + 3 >= outlen)
                                return -ENAMETOOLONG;
                        out[o++] = '%';
                        out[o++] = hex[*p >> 4];
                        out[o++] = hex[*p & 15];
                } else {
                        if (o + 1 >= outlen)
                                return -ENAMETOOLONG;
                        out[o++] = (char)*p;
                }
        }
        if (o >= outlen)
                return -ENAMETOOLONG;
        out[o] = 0;
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int pgsmb_path_unescape(const char *in, size_t len, char *out, size_t outlen) {
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)in[i];

                if (c == '%') {
                        int h, l;
                        if (i + 2 >= len)
                                return -EBADMSG;
                        h = hexval(in[i + 1]);
                        l = hexval(in[i + 2]);
                        if (h < 0 || l < 0)
                                return -EBADMSG;
                        c = (unsigned char)(h << 4 | l);
                        if (c == 0 || !needs_escape(c))
                                return -EBADMSG; /* one spelling per path */
                        i += 2;
                } else if (needs_escape(c))
                        return -EBADMSG;
                if (o + 1 >= outlen)
                        return -ENAMETOOLONG;
                out[o++] = (char)c;
        }
        if (o >= outlen)
                return -ENAMETOOLONG;
        out[o] = 0;
        return 0;
}

bool pgsmb_path_valid(const char *path) {
        size_t len = strlen(path);

        if (len == 0 || len >= PATH_MAX || path[0] == '/' || path[len - 1] == '/')
                return false;
        for (const char *s = path; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 0 || n > NAME_MAX || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return false;
                s += n;
                if (*s == '/')
                        s++;
        }
        return true;
}

static char type_of(mode_t m) {
        return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : 0;
}

int scan_entry_from_stat(struct scan_entry *e, char flag, const char *path, const struct stat *st) {
        char t = type_of(st->st_mode);

        if (!t)
                return -EINVAL;
        *e = (struct scan_entry){.flag = flag, .type = t, .mode = st->st_mode & 07777,
                                 .ino = (uint64_t)st->st_ino, .size = (uint64_t)st->st_size,
                                 .mtime_s = st->st_mtim.tv_sec, .mtime_ns = (uint32_t)st->st_mtim.tv_nsec,
                                 .ctime_s = st->st_ctim.tv_sec, .ctime_ns = (uint32_t)st->st_ctim.tv_nsec};
        e->path = strdup(path);
        return e->path ? 0 : -ENOMEM;
}

bool scan_entry_matches(const struct scan_entry *e, const struct stat *st) {
        return e->type == type_of(st->st_mode) && e->mode == (st->st_mode & 07777) &&
               e->ino == (uint64_t)st->st_ino && e->size == (uint64_t)st->st_size &&
               e->mtime_s == st->st_mtim.tv_sec && e->mtime_ns == (uint32_t)st->st_mtim.tv_nsec &&
               e->ctime_s == st->st_ctim.tv_sec && e->ctime_ns == (uint32_t)st->st_ctim.tv_nsec;
}

bool scan_entry_same(const struct scan_entry *a, const struct scan_entry *b) {
        return a->type == b->type && a->mode == b->mode && a->ino == b->ino && a->size == b->size &&
               a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s &&
               a->ctime_ns == b->ctime_ns;
}

/* Is (s, ns) at or after the bound (bs, bns)? Seconds first: a file's times may be anything
 * (in nanoseconds, a time after 2262 overflows). */
static bool at_or_after(int64_t s, uint32_t ns, int64_t bs, int64_t bns) {
        return s > bs || (s == bs && (int64_t)ns >= bns);
}

void scan_mark_racy(struct scan *s, const struct timespec *walk_start) {
        /* the two bounds: SCAN_RACY_NS before the walk, and a second before it */
        int64_t fine_s = walk_start->tv_sec, fine_ns = walk_start->tv_nsec - SCAN_RACY_NS;
        const int64_t coarse_s = (int64_t)walk_start->tv_sec - 1, coarse_ns = walk_start->tv_nsec;

        if (fine_ns < 0)
                fine_s--, fine_ns += 1000000000LL;
        for (size_t i = 0; i < s->n; i++) {
                struct scan_entry *e = &s->v[i];
                bool coarse = e->ctime_ns == 0 && e->mtime_ns == 0;

                if (coarse ? at_or_after(e->ctime_s, e->ctime_ns, coarse_s, coarse_ns)
                           : at_or_after(e->ctime_s, e->ctime_ns, fine_s, fine_ns))
                        e->ctime_s = 0, e->ctime_ns = 0;
        }
}

int scan_format(const struct scan_entry *e, struct pbuf *b) {
        char esc[3 * PATH_MAX + 1], line[SCAN_LINE_MAX];
        int k, n;

        if ((k = pgsmb_path_escape(e->path, esc, sizeof esc)) < 0)
                return k;
        n = snprintf(line, sizeof line, "%c %c %o %" PRIu64 " %" PRIu64 " %" PRId64 ".%09" PRIu32 " %" PRId64
                     ".%09" PRIu32 " %s\n", e->flag, e->type, (unsigned)e->mode, e->ino, e->size, e->mtime_s,
                     e->mtime_ns, e->ctime_s, e->ctime_ns, esc);
        if (n < 0 || (size_t)n >= sizeof line)
                return -ENAMETOOLONG;
        if ((k = pbuf_reserve(b, (size_t)n)) < 0)
                return k;
        memcpy(b->data + b->len, line, (size_t)n);
        b->len += (size_t)n;
        return 0;
}

/* The next space-separated field of [*p, end): its start and length; false when there is none. */
static bool field(const char **p, const char *end, const char **f, size_t *len) {
        const char *s = *p, *e;

        if (s >= end)
                return false;
        e = memchr(s, ' ', (size_t)(end - s));
        if (!e)
                e = end;
        *f = s;
        *len = (size_t)(e - s);
        *p = e < end ? e + 1 : end;
        return *len > 0;
}

static bool parse_u64(const char *f, size_t len, int base, uint64_t max, uint64_t *v) {
        char buf[32], *endp;

        if (len == 0 || len >= sizeof buf || f[0] == '-' || f[0] == '+')
                return false;
        memcpy(buf, f, len);
        buf[len] = 0;
        errno = 0;
        unsigned long long x = strtoull(buf, &endp, base);
        if (errno || *endp || x > max)
                return false;
        *v = x;
        return true;
}

static bool parse_time(const char *f, size_t len, int64_t *s, uint32_t *ns) {
        const char *dot = memchr(f, '.', len);
        char buf[32], *endp;
        uint64_t n;

        if (!dot || (size_t)(f + len - dot - 1) != 9 || (size_t)(dot - f) >= sizeof buf || dot == f)
                return false;
        memcpy(buf, f, (size_t)(dot - f));
        buf[dot - f] = 0;
        errno = 0;
        long long x = strtoll(buf, &endp, 10);
        if (errno || *endp || buf[0] == '+')
                return false;
        if (!parse_u64(dot + 1, 9, 10, 999999999, &n))
                return false;
        *s = x;
        *ns = (uint32_t)n;
        return true;
}

int scan_parse_line(const char *line, size_t len, struct scan_entry *e) {
        const char *p = line, *end = line + len, *f;
        char path[PATH_MAX];
        size_t fl;
        uint64_t v;

        *e = (struct scan_entry){0};
        if (len >= SCAN_LINE_MAX || memchr(line, 0, len))
                return -EBADMSG;
        if (!field(&p, end, &f, &fl) || fl != 1 || (f[0] != '+' && f[0] != '='))
                return -EBADMSG;
        e->flag = f[0];
        if (!field(&p, end, &f, &fl) || fl != 1 || !strchr("fdl", f[0]))
                return -EBADMSG;
        e->type = f[0];
        if (!field(&p, end, &f, &fl) || !parse_u64(f, fl, 8, 07777, &v))
                return -EBADMSG;
        e->mode = (uint32_t)v;
        if (!field(&p, end, &f, &fl) || !parse_u64(f, fl, 10, UINT64_MAX, &e->ino))
                return -EBADMSG;
        if (!field(&p, end, &f, &fl) || !parse_u64(f, fl, 10, INT64_MAX, &e->size))
                return -EBADMSG;
        if (!field(&p, end, &f, &fl) || !parse_time(f, fl, &e->mtime_s, &e->mtime_ns))
                return -EBADMSG;
        if (!field(&p, end, &f, &fl) || !parse_time(f, fl, &e->ctime_s, &e->ctime_ns))
                return -EBADMSG;
        /* the path is the rest: it has no raw space */
        if (!field(&p, end, &f, &fl) || p != end || (f + fl != end))
                return -EBADMSG;
        if (pgsmb_path_unescape(f, fl, path, sizeof path) < 0 || !pgsmb_path_valid(path))
                return -EBADMSG;
        e->path = strdup(path);
        return e->path ? 0 : -ENOMEM;
}

void scan_init(struct scan *s) { *s = (struct scan){0}; }

void scan_free(struct scan *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i].path);
        free(s->v);
        *s = (struct scan){0};
}

int scan_add(struct scan *s, struct scan_entry *e) {
        if (s->n >= SCAN_ENTRIES_MAX)
                return -E2BIG;
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 256;
                struct scan_entry *v = realloc(s->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = *e;
        e->path = NULL;
        s->sorted = false;
        return 0;
}

/* After scan_sort refused a duplicate: the line where its path is listed the second time (0 when
 * it cannot be told), so the message names a line as for any other bad one. Only on that error. */
static size_t dup_line(const struct scan *s, const char *data, size_t len) {
        const char *dup = NULL;
        size_t no = 0, seen = 0;

        for (size_t i = 1; i < s->n && !dup; i++)
                if (strcmp(s->v[i - 1].path, s->v[i].path) == 0)
                        dup = s->v[i].path;
        for (size_t pos = 0; dup && pos < len;) {
                const char *nl = memchr(data + pos, '\n', len - pos);
                struct scan_entry e;

                no++;
                if (!nl || scan_parse_line(data + pos, (size_t)(nl - data - pos), &e) < 0)
                        return 0;
                bool same = strcmp(e.path, dup) == 0;
                free(e.path);
                if (same && ++seen == 2)
                        return no;
                pos = (size_t)(nl - data) + 1;
        }
        return 0;
}

int scan_parse(struct scan *s, const char *data, size_t len, size_t *line_no) {
        size_t no = 0;
        int k = 0;

        scan_init(s);
        for (size_t pos = 0; pos < len;) {
                const char *nl = memchr(data + pos, '\n', len - pos);
                struct scan_entry e;

                no++;
                if (!nl) {
                        k = -EBADMSG;
                        break;
                }
                if ((k = scan_parse_line(data + pos, (size_t)(nl - data - pos), &e)) < 0)
                        break;
                if ((k = scan_add(s, &e)) < 0) {
                        free(e.path);
                        break;
                }
                pos = (size_t)(nl - data) + 1;
        }
        if (k == 0 && (k = scan_sort(s)) < 0)
                no = dup_line(s, data, len);
        if (line_no)
                *line_no = no;
        if (k < 0)
                scan_free(s);
        return k;
}

int pgsmb_read_all(int fd, size_t max, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                ssize_t n;

                if (len == cap) {
                        size_t ncap = cap ? 2 * cap : 65536;
                        char *nb;
                        if (cap >= max) {
                                free(buf);
                                return -E2BIG;
                        }
                        if (ncap > max)
                                ncap = max;
                        if (!(nb = realloc(buf, ncap))) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = nb;
                        cap = ncap;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int k = -errno;
                        free(buf);
                        return k;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int scan_read_fd(struct scan *s, int fd, size_t max, size_t *line_no) {
        char *buf = NULL;
        size_t len = 0;
        int k;

        if (line_no)
                *line_no = 0;
        if ((k = pgsmb_read_all(fd, max, &buf, &len)) < 0)
                return k;
        k = scan_parse(s, buf ? buf : "", len, line_no);
        free(buf);
        return k;
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const struct scan_entry *)a)->path, ((const struct scan_entry *)b)->path);
}

int scan_sort(struct scan *s) {
        if (s->n > 1)
                qsort(s->v, s->n, sizeof *s->v, entry_cmp);
        for (size_t i = 1; i < s->n; i++)
                if (strcmp(s->v[i - 1].path, s->v[i].path) == 0)
                        return -EBADMSG;
        s->sorted = true;
        return 0;
}

const struct scan_entry *scan_find(const struct scan *s, const char *path) {
        struct scan_entry key = {.path = (char *)path};

        if (!s->sorted || s->n == 0)
                return NULL;
        return bsearch(&key, s->v, s->n, sizeof *s->v, entry_cmp);
}

int scan_format_all(const struct scan *s, struct pbuf *b) {
        for (size_t i = 0; i < s->n; i++) {
                int k = scan_format(&s->v[i], b);
                if (k < 0)
                        return k;
        }
        return 0;
}

int pathlist_add(struct pbuf *b, const char *path) {
        char esc[3 * PATH_MAX + 1];
        size_t n;
        int k;

        if ((k = pgsmb_path_escape(path, esc, sizeof esc)) < 0)
                return k;
        n = strlen(esc);
        if ((k = pbuf_reserve(b, n + 1)) < 0)
                return k;
        memcpy(b->data + b->len, esc, n);
        b->data[b->len + n] = '\n';
        b->len += n + 1;
        return 0;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void pathlist_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The line where dup is listed the second time (one spelling per path: its escaped form). */
static size_t pathlist_dup_line(const char *data, size_t len, const char *dup) {
        char esc[3 * PATH_MAX + 1];
        size_t no = 0, seen = 0, n;

        if (pgsmb_path_escape(dup, esc, sizeof esc) < 0)
                return 0;
        n = strlen(esc);
        for (size_t pos = 0; pos < len;) {
                const char *nl = memchr(data + pos, '\n', len - pos);

                no++;
                if (!nl)
                        return 0;
                if ((size_t)(nl - data - pos) == n && memcmp(data + pos, esc, n) == 0 && ++seen == 2)
                        return no;
                pos = (size_t)(nl - data) + 1;
        }
        return 0;
}

int pathlist_parse(const char *data, size_t len, char ***ret, size_t *n, size_t *line_no) {
        char **v = NULL, path[PATH_MAX];
        size_t cnt = 0, cap = 0, no = 0;
        int k = 0;

        for (size_t pos = 0; pos < len;) {
                const char *nl = memchr(data + pos, '\n', len - pos);

                no++;
                if (!nl || pgsmb_path_unescape(data + pos, (size_t)(nl - data - pos), path, sizeof path) < 0 ||
                    !pgsmb_path_valid(path)) {
                        k = -EBADMSG;
                        goto fail;
                }
                if (cnt == cap) {
                        size_t ncap = cap ? 2 * cap : 64;
                        char **nv;
                        if (ncap > SCAN_ENTRIES_MAX || !(nv = realloc(v, ncap * sizeof *nv))) {
                                k = cap >= SCAN_ENTRIES_MAX ? -E2BIG : -ENOMEM;
                                goto fail;
                        }
                        v = nv;
                        cap = ncap;
                }
                if (!(v[cnt] = strdup(path))) {
                        k = -ENOMEM;
                        goto fail;
                }
                cnt++;
                pos = (size_t)(nl - data) + 1;
        }
        if (cnt > 1)
                qsort(v, cnt, sizeof *v, str_cmp);
        for (size_t i = 1; i < cnt; i++)
                if (strcmp(v[i - 1], v[i]) == 0) {
                        no = pathlist_dup_line(data, len, v[i]);
                        k = -EBADMSG;
                        goto fail;
                }
        *ret = v;
        *n = cnt;
        if (line_no)
                *line_no = no;
        return 0;
fail:
        if (line_no)
                *line_no = no;
        pathlist_free(v, cnt);
        return k;
}

bool pathlist_has(char *const *v, size_t n, const char *path) {
        return n > 0 && bsearch(&path, v, n, sizeof *v, str_cmp) != NULL;
}
