/* Cached (offline) logons of the ldap plugin (see ldap-cache.h).
 *
 * An entry is a text file of lines "KEY FIELD...", every field escaped so it holds no blank and
 * no newline (\\ \n \s \r):
 *   pgina-ldap-cache 1
 *   user NAME
 *   time UNIXTIME
 *   hash $y$...
 *   uid N / gid N        (absent: none)
 *   attr KEY VALUE       (the record's values as the online logon filled them)
 *   group 1|0 GROUPDN    (membership of each group the rules name)
 * crypt_rn is libxcrypt's crypt_r with the size given; unlike crypt_r ASan does not intercept it
 * (see plugins/localmachine/lm-crypt.c). */
#include "ldap-cache.h"

#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/util.h>

#define CACHE_DIR "cache"
#define CACHE_SUFFIX ".entry"
#define CACHE_MAGIC "pgina-ldap-cache"
#define CACHE_VERSION "1"
#define CACHE_FILE_MAX (1024 * 1024)
#define DAY 86400LL
/* an entry dated this far in the future (clock set back, or an edited file) is not trusted */
#define FUTURE_SLACK DAY

void pgldap_cache_entry_done(struct pgldap_cache_entry *e) {
        free(e->user);
        if (e->hash) {
                explicit_bzero(e->hash, strlen(e->hash));
                free(e->hash);
        }
        for (size_t i = 0; i < e->nattrs; i++) {
                free(e->attrs[i].key);
                free(e->attrs[i].value);
        }
        for (size_t i = 0; i < e->ngroups; i++)
                free(e->groups[i].dn);
        free(e->attrs);
        free(e->groups);
        *e = (struct pgldap_cache_entry){.uid = -1, .gid = -1};
}

static void crypt_data_freep(struct crypt_data **d) {
        if (*d) {
                explicit_bzero(*d, sizeof **d);
                free(*d);
        }
}

int pgldap_cache_add_attr(struct pgldap_cache_entry *e, const char *key, const char *value) {
        struct pgldap_cache_attr *a = reallocarray(e->attrs, e->nattrs + 1, sizeof *a);

        if (!a)
                return -ENOMEM;
        e->attrs = a;
        a[e->nattrs].key = strdup(key);
        a[e->nattrs].value = strdup(value);
        if (!a[e->nattrs].key || !a[e->nattrs].value) {
                free(a[e->nattrs].key);
                free(a[e->nattrs].value);
                return -ENOMEM;
        }
        e->nattrs++;
        return 0;
}

int pgldap_cache_add_group(struct pgldap_cache_entry *e, const char *dn, bool member) {
        struct pgldap_cache_group *g;

        if (pgldap_cache_member(e, dn) >= 0)
                return 0;
        g = reallocarray(e->groups, e->ngroups + 1, sizeof *g);
        if (!g)
                return -ENOMEM;
        e->groups = g;
        g[e->ngroups].dn = strdup(dn);
        if (!g[e->ngroups].dn)
                return -ENOMEM;
        g[e->ngroups++].member = member;
        return 0;
}

int pgldap_cache_member(const struct pgldap_cache_entry *e, const char *group_dn) {
        for (size_t i = 0; i < e->ngroups; i++)
                if (!strcasecmp(e->groups[i].dn, group_dn))
                        return e->groups[i].member ? 1 : 0;
        return -ENOENT;
}

int pgldap_cache_fill(const struct pgldap_cache_entry *e, struct pgina_user *u) {
        int r;

        for (size_t i = 0; i < e->nattrs; i++) {
                r = pgina_user_set(u, e->attrs[i].key, e->attrs[i].value);
                if (r < 0)
                        return r;
        }
        pgina_user_set_ids(u, e->uid >= 0 ? e->uid : pgina_user_uid(u),
                           e->gid >= 0 ? e->gid : pgina_user_gid(u));
        return 0;
}

/* ---- paths ----------------------------------------------------------------------------------- */

/* <state_dir>/cache, created 0700; refused when it is not a directory of ours without group or
 * other access. */
static int cache_dir(struct pgina_ctx *ctx, bool create, char *path, size_t len) {
        struct stat st;

        if (snprintf(path, len, "%s/" CACHE_DIR, pgina_ctx_state_dir(ctx)) >= (int)len)
                return -ENAMETOOLONG;
        if (create && mkdir(path, 0700) < 0 && errno != EEXIST) {
                int r = -errno;
                pgina_log(ctx, LOG_ERR, "Failed to create the logon cache %s: %s", path, strerror(-r));
                return r;
        }
        if (lstat(path, &st) < 0) {
                int r = -errno;
                if (r != -ENOENT)
                        pgina_log(ctx, LOG_ERR, "Logon cache %s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
                pgina_log(ctx, LOG_ERR, "Logon cache %s must be a directory owned by root with mode "
                          "0700: not used", path);
                return -EPERM;
        }
        return 0;
}

static int entry_path(struct pgina_ctx *ctx, const char *user, bool create, char *path, size_t len) {
        char dir[4096];
        int r;

        if (!valid_user_name(user))
                return -EINVAL;
        r = cache_dir(ctx, create, dir, sizeof dir);
        if (r < 0)
                return r;
        if (snprintf(path, len, "%s/%s" CACHE_SUFFIX, dir, user) >= (int)len)
                return -ENAMETOOLONG;
        return 0;
}

/* ---- escaping -------------------------------------------------------------------------------- */

struct buf {
        char *data;
        size_t len, size;
        bool oom;
};

static void buf_wipe(struct buf *b) {
        if (b->data) {
                explicit_bzero(b->data, b->size);
                free(b->data);
        }
        *b = (struct buf){0};
}

static void buf_putc(struct buf *b, char c) {
        if (b->oom)
                return;
        if (b->len + 2 > b->size) {
                size_t n = b->size ? b->size * 2 : 1024;
                char *d = malloc(n);
                if (!d) {
                        b->oom = true;
                        return;
                }
                if (b->data) {
                        memcpy(d, b->data, b->len);
                        explicit_bzero(b->data, b->size); /* the old copy held the hash too */
                        free(b->data);
                }
                b->data = d;
                b->size = n;
        }
        b->data[b->len++] = c;
        b->data[b->len] = 0;
}

static void buf_puts(struct buf *b, const char *s) {
        for (; *s; s++)
                buf_putc(b, *s);
}

static void buf_put_field(struct buf *b, const char *s) {
        buf_putc(b, ' ');
        if (!*s)
                buf_puts(b, "\\e"); /* an empty field must stay a field */
        for (; *s; s++)
                switch (*s) {
                case '\\':
                        buf_puts(b, "\\\\");
                        break;
                case '\n':
                        buf_puts(b, "\\n");
                        break;
                case '\r':
                        buf_puts(b, "\\r");
                        break;
                case ' ':
                        buf_puts(b, "\\s");
                        break;
                case '\t':
                        buf_puts(b, "\\t");
                        break;
                default:
                        buf_putc(b, *s);
                }
}

/* Unescape a field in place. 0 or -EBADMSG. */
static int unescape(char *s) {
        char *o = s;

        if (streq(s, "\\e")) {
                *s = 0;
                return 0;
        }
        for (; *s; s++) {
                if (*s != '\\') {
                        *o++ = *s;
                        continue;
                }
                switch (*++s) {
                case '\\': *o++ = '\\'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 's': *o++ = ' '; break;
                case 't': *o++ = '\t'; break;
                default: return -EBADMSG;
                }
        }
        *o = 0;
        return 0;
}

/* ---- saving ---------------------------------------------------------------------------------- */

/* A new yescrypt hash of password (default cost, random salt), or NULL. */
static char *hash_password(struct pgina_ctx *ctx, const char *password) {
        _cleanup_(crypt_data_freep) struct crypt_data *cd = calloc(1, sizeof *cd);
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        const char *out;
        char *hash = NULL;

        if (!cd)
                return NULL;
        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt)) {
                pgina_log(ctx, LOG_ERR, "crypt_gensalt_rn($y$) failed: %s", strerror(errno));
                return NULL;
        }
        out = crypt_rn(password, salt, cd, (int)sizeof *cd);
        if (!out || out[0] != '$')
                pgina_log(ctx, LOG_ERR, "yescrypt hashing failed: %s", strerror(errno));
        else
                hash = strdup(out);
        explicit_bzero(salt, sizeof salt);
        return hash;
}

int pgldap_cache_save(struct pgina_ctx *ctx, struct pgldap_cache_entry *e, const char *password) {
        _cleanup_(buf_wipe) struct buf b = {0};
        char path[4096], num[32];
        int r;

        if (!password || !*password)
                return -EINVAL;
        r = entry_path(ctx, e->user, true, path, sizeof path);
        if (r < 0) {
                if (r == -EINVAL)
                        pgina_log(ctx, LOG_WARNING, "Logon of %s not cached: the name cannot be a "
                                  "file name", e->user);
                return r;
        }
        if (e->hash) {
                explicit_bzero(e->hash, strlen(e->hash));
                free(e->hash);
        }
        e->hash = hash_password(ctx, password);
        if (!e->hash)
                return -EIO;

        buf_puts(&b, CACHE_MAGIC " " CACHE_VERSION "\nuser");
        buf_put_field(&b, e->user);
        snprintf(num, sizeof num, "%lld", e->time);
        buf_puts(&b, "\ntime");
        buf_put_field(&b, num);
        buf_puts(&b, "\nhash");
        buf_put_field(&b, e->hash);
        if (e->uid >= 0) {
                snprintf(num, sizeof num, "%" PRId64, e->uid);
                buf_puts(&b, "\nuid");
                buf_put_field(&b, num);
        }
        if (e->gid >= 0) {
                snprintf(num, sizeof num, "%" PRId64, e->gid);
                buf_puts(&b, "\ngid");
                buf_put_field(&b, num);
        }
        for (size_t i = 0; i < e->nattrs; i++) {
                buf_puts(&b, "\nattr");
                buf_put_field(&b, e->attrs[i].key);
                buf_put_field(&b, e->attrs[i].value);
        }
        for (size_t i = 0; i < e->ngroups; i++) {
                buf_puts(&b, "\ngroup");
                buf_put_field(&b, e->groups[i].member ? "1" : "0");
                buf_put_field(&b, e->groups[i].dn);
        }
        buf_putc(&b, '\n');
        if (b.oom)
                return -ENOMEM;
        r = write_file_atomic(path, b.data, b.len, 0600);
        if (r < 0) {
                pgina_log(ctx, LOG_ERR, "Failed to write the cached logon %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

/* ---- loading --------------------------------------------------------------------------------- */

static int read_entry_file(struct pgina_ctx *ctx, const char *path, char **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        char *data;
        size_t got = 0;

        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                if (r != -ENOENT)
                        pgina_log(ctx, LOG_ERR, "Failed to open the cached logon %s: %s", path,
                                  strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) ||
            st.st_size > CACHE_FILE_MAX) {
                pgina_log(ctx, LOG_ERR, "Cached logon %s ignored: not a regular file owned by root "
                          "with mode 0600 (or too large)", path);
                return -EPERM;
        }
        data = calloc(1, (size_t)st.st_size + 1);
        if (!data)
                return -ENOMEM;
        while (got < (size_t)st.st_size) {
                ssize_t k = read(fd, data + got, (size_t)st.st_size - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int r = k < 0 ? -errno : -EBADMSG;
                        explicit_bzero(data, (size_t)st.st_size);
                        free(data);
                        pgina_log(ctx, LOG_ERR, "Failed to read the cached logon %s: %s", path,
                                  strerror(-r));
                        return r;
                }
                got += (size_t)k;
        }
        *ret = data;
        return 0;
}

static int parse_ll(const char *s, long long min, long long *ret) {
        char *end = NULL;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || !*s || *end || v < min)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* One line split into at most 4 fields (unescaped in place). */
static int parse_line(char *line, struct pgldap_cache_entry *e, bool *seen_time) {
        char *f[4] = {NULL};
        size_t n = 0;
        long long v;
        int r;

        for (char *save = NULL, *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                if (n == ELEMENTSOF(f))
                        return -EBADMSG;
                f[n++] = w;
        }
        if (n == 0)
                return 0;
        for (size_t i = 1; i < n; i++)
                if (unescape(f[i]) < 0)
                        return -EBADMSG;
        if (streq(f[0], CACHE_MAGIC))
                return n == 2 && streq(f[1], CACHE_VERSION) ? 0 : -EBADMSG;
        if (streq(f[0], "user") && n == 2 && !e->user)
                return (e->user = strdup(f[1])) ? 0 : -ENOMEM;
        if (streq(f[0], "hash") && n == 2 && !e->hash)
                return (e->hash = strdup(f[1])) ? 0 : -ENOMEM;
        if (streq(f[0], "time") && n == 2) {
                r = parse_ll(f[1], 0, &e->time);
                *seen_time = r == 0;
                return r;
        }
        if ((streq(f[0], "uid") || streq(f[0], "gid")) && n == 2) {
                r = parse_ll(f[1], 0, &v);
                if (r < 0 || v >= UINT32_MAX)
                        return -EBADMSG;
                if (f[0][0] == 'u')
                        e->uid = v;
                else
                        e->gid = v;
                return 0;
        }
        if (streq(f[0], "attr") && n == 3 && *f[1])
                return pgldap_cache_add_attr(e, f[1], f[2]);
        if (streq(f[0], "group") && n == 3 && (streq(f[1], "0") || streq(f[1], "1")) && *f[2])
                return pgldap_cache_add_group(e, f[2], f[1][0] == '1');
        return -EBADMSG;
}

static int parse_entry(char *data, struct pgldap_cache_entry *e) {
        bool seen_time = false;
        int r;

        if (strncmp(data, CACHE_MAGIC " ", sizeof CACHE_MAGIC))
                return -EBADMSG;
        for (char *save = NULL, *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                r = parse_line(l, e, &seen_time);
                if (r < 0)
                        return r;
        }
        return e->user && e->hash && e->hash[0] == '$' && seen_time ? 0 : -EBADMSG;
}

int pgldap_cache_load(struct pgina_ctx *ctx, const char *user, struct pgldap_cache_entry *e) {
        char path[4096];
        char *data = NULL;
        size_t len;
        int r;

        *e = (struct pgldap_cache_entry){.uid = -1, .gid = -1};
        r = entry_path(ctx, user, false, path, sizeof path);
        if (r == -ENOENT || r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        r = read_entry_file(ctx, path, &data);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        len = strlen(data);
        r = parse_entry(data, e);
        explicit_bzero(data, len);
        free(data);
        if (r == 0 && !streq(e->user, user))
                r = -EBADMSG;
        if (r < 0) {
                pgldap_cache_entry_done(e);
                pgina_log(ctx, LOG_ERR, "Cached logon %s ignored: %s", path,
                          r == -EBADMSG ? "malformed" : strerror(-r));
                return r;
        }
        return 1;
}

long long pgldap_cache_expires(struct pgina_ctx *ctx, const struct pgldap_cache_entry *e) {
        long long days = pgina_conf_int(ctx, "cache_days");

        if (days < 0 || days > 100000)
                days = 100000;
        return e->time + days * DAY;
}

bool pgldap_cache_fresh(struct pgina_ctx *ctx, const struct pgldap_cache_entry *e) {
        long long now = (long long)time(NULL);

        return e->time <= now + FUTURE_SLACK && now < pgldap_cache_expires(ctx, e);
}

/* Equal strings, in time that depends only on the lengths. */
static bool streq_consttime(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
        unsigned char d = la != lb;

        for (size_t i = 0; i < n; i++)
                d |= (unsigned char)(a[i] ^ b[i]);
        return d == 0;
}

int pgldap_cache_verify(const struct pgldap_cache_entry *e, const char *password) {
        _cleanup_(crypt_data_freep) struct crypt_data *cd = calloc(1, sizeof *cd);
        const char *out;

        if (!cd)
                return -ENOMEM;
        if (!password || !*password || !e->hash)
                return 0;
        out = crypt_rn(password, e->hash, cd, (int)sizeof *cd);
        if (!out || out[0] != '$')
                return -EINVAL;
        return streq_consttime(out, e->hash) ? 1 : 0;
}

/* ---- admin ----------------------------------------------------------------------------------- */

static void format_time(long long t, char *out, size_t len) {
        time_t tt = (time_t)t;
        struct tm tm;

        if (!localtime_r(&tt, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S %z", &tm))
                snprintf(out, len, "@%lld", t);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cache_list(struct pgina_ctx *ctx) {
        _cleanup_free_ char **names = NULL;
        char dir[4096];
        size_t n = 0, cap = 0;
        DIR *d;
        struct dirent *de;
        int r;

        r = cache_dir(ctx, false, dir, sizeof dir);
        if (r == -ENOENT) {
                pgina_ctx_print(ctx, "no cached logons");
                return 0;
        }
        if (r < 0) {
                pgina_ctx_message(ctx, "cannot read the logon cache: %s", strerror(-r));
                return r;
        }
        d = opendir(dir);
        if (!d) {
                r = -errno;
                pgina_ctx_message(ctx, "cannot read the logon cache %s: %s", dir, strerror(-r));
                return r;
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name), sl = strlen(CACHE_SUFFIX);
                char *name;

                if (l <= sl || strcmp(de->d_name + l - sl, CACHE_SUFFIX))
                        continue;
                if (n == cap) {
                        char **nn = reallocarray(names, cap ? cap * 2 : 16, sizeof *nn);
                        if (!nn)
                                break;
                        names = nn;
                        cap = cap ? cap * 2 : 16;
                }
                name = strndup(de->d_name, l - sl);
                if (!name)
                        break;
                names[n++] = name;
        }
        closedir(d);
        if (n)
                qsort(names, n, sizeof *names, name_cmp);
        if (n == 0)
                pgina_ctx_print(ctx, "no cached logons");
        else
                pgina_ctx_print(ctx, "%-24s %-26s %s", "USER", "CACHED", "EXPIRES");
        for (size_t i = 0; i < n; i++) {
                struct pgldap_cache_entry e;
                char cached[64], expires[64];

                r = pgldap_cache_load(ctx, names[i], &e);
                if (r <= 0) {
                        pgina_ctx_print(ctx, "%-24s %s", names[i], r < 0 ? "(unreadable)" : "(gone)");
                } else {
                        format_time(e.time, cached, sizeof cached);
                        format_time(pgldap_cache_expires(ctx, &e), expires, sizeof expires);
                        pgina_ctx_print(ctx, "%-24s %-26s %s%s", e.user, cached, expires,
                                        pgldap_cache_fresh(ctx, &e) ? "" : " (expired)");
                        pgldap_cache_entry_done(&e);
                }
                free(names[i]);
        }
        return 0;
}

static int cache_drop(struct pgina_ctx *ctx, const char *user) {
        char path[4096];
        int r;

        if (!valid_user_name(user)) {
                pgina_ctx_message(ctx, "cache drop: \"%s\" is not a valid user name", user);
                return -EINVAL;
        }
        r = entry_path(ctx, user, false, path, sizeof path);
        if (r == 0 && unlink(path) < 0)
                r = -errno;
        if (r == -ENOENT) {
                pgina_ctx_message(ctx, "no cached logon for %s", user);
                return r;
        }
        if (r < 0) {
                pgina_ctx_message(ctx, "cannot drop the cached logon of %s: %s", user, strerror(-r));
                return r;
        }
        pgina_log(ctx, LOG_INFO, "Cached logon of %s dropped by the administrator", user);
        pgina_ctx_print(ctx, "dropped the cached logon of %s", user);
        return 0;
}

int pgldap_cache_admin(struct pgina_ctx *ctx, int argc, const char *const *argv) {
        if (argc == 2 && streq(argv[0], "cache") && streq(argv[1], "list"))
                return cache_list(ctx);
        if (argc == 3 && streq(argv[0], "cache") && streq(argv[1], "drop"))
                return cache_drop(ctx, argv[2]);
        pgina_ctx_message(ctx, "usage: cache list | cache drop USER");
        return -EINVAL;
}
