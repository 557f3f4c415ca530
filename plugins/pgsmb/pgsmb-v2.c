/* pgSMB store format 2 in a store (see pgsmb-v2.h). */
#include "pgsmb-v2.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/util.h>

/* Damaged manifests above the newest valid one a reader goes through before it calls the store
 * broken (dead writers leave one each; their bytes count too, at most MANIFEST_MAX_BYTES). */
#define V2_DAMAGED_MAX 32

void v2_state_free(struct v2_state *s) {
        manifest_free(&s->cur);
        store_entries_free(s->ents, s->nents);
        *s = (struct v2_state){0};
}

int v2_rel(const struct v2_profile *p, const char *name, char *out, size_t len) {
        int n = snprintf(out, len, "%s%s%s", p->dir, p->dir[0] ? "/" : "", name);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* All of rel into b, at most max bytes (-EFBIG past them, or past what b may hold). Reads go
 * in steps of at most 8 MiB (a round trip each), never reserving more than max + 1 bytes in
 * all. Unless to_eof, they end at the size the file had when opened (*sized then): the store's
 * files are written once, under a new name, and the read that would see the end costs a round
 * trip. A caller that finds the bytes damaged reads again to_eof: a server may say less. */
static int read_small(struct store *st, const char *rel, size_t max, bool to_eof, struct pbuf *b, bool *sized,
                      char *err, size_t errlen) {
        struct store_file *f = NULL;
        int k = store_open_read(st, rel, &f);
        int64_t size;

        if (sized)
                *sized = false;
        if (k < 0) {
                snprintf(err, errlen, "%s", store_error(st));
                return k;
        }
        size = to_eof ? -1 : store_file_size(f);
        for (;;) {
                if (size >= 0 && b->len == (uint64_t)size && size <= (int64_t)max) {
                        if (sized)
                                *sized = true;
                        break; /* all of it, as the server said at the open */
                }
                size_t want = max + 1 - b->len;
                ssize_t n;

                if (want > 8 * 1024 * 1024)
                        want = 8 * 1024 * 1024;
                if ((k = pbuf_reserve(b, want)) < 0) {
                        if (k == -ENOMEM)
                                snprintf(err, errlen, "%s/%s: out of memory", store_url(st), rel);
                        else {
                                k = -EFBIG;
                                snprintf(err, errlen, "%s/%s: larger than %zu bytes", store_url(st), rel,
                                         b->len);
                        }
                        break;
                }
                n = store_read(f, b->data + b->len, want);
                if (n < 0) {
                        k = (int)n;
                        snprintf(err, errlen, "%s", store_error(st));
                        break;
                }
                if (n == 0)
                        break;
                b->len += (size_t)n;
                if (b->len > max) {
                        snprintf(err, errlen, "%s/%s: larger than %zu bytes", store_url(st), rel, max);
                        k = -EFBIG;
                        break;
                }
        }
        store_close_file(f);
        return k;
}

int v2_read_manifest_file(struct store *st, const struct v2_profile *p, const char *name, struct manifest *m,
                          char *err, size_t errlen) {
        char rel[1200], why[256];
        struct pbuf b;
        int k;

        manifest_init(m);
        if ((k = v2_rel(p, name, rel, sizeof rel)) < 0) {
                snprintf(err, errlen, "%s: name too long", name);
                return k;
        }
        bool sized = false;
        pbuf_init_large(&b);
        for (int round = 0; round < 2; round++) {
                b.len = 0;
                if ((k = read_small(st, rel, MANIFEST_MAX_BYTES, round > 0, &b, &sized, err, errlen)) == 0 &&
                    (k = manifest_parse(m, (const char *)b.data, b.len, why, sizeof why)) < 0)
                        snprintf(err, errlen, "%s/%s: %s", store_url(st), rel, why);
                if (k != -EBADMSG || !sized)
                        break;
                manifest_free(m); /* damaged as far as the open's size: once more to its end */
                manifest_init(m);
        }
        pbuf_free(&b);
        return k;
}

int v2_read_manifest(struct store *st, const struct v2_profile *p, uint64_t number, struct manifest *m,
                     char *err, size_t errlen) {
        char name[300];
        int k;

        if ((k = manifest_file_name(p->filename, number, name, sizeof name)) < 0)
                return k;
        if ((k = v2_read_manifest_file(st, p, name, m, err, errlen)) == 0 && m->number != number) {
                snprintf(err, errlen, "%s: it says it is version %" PRIu64, name, m->number);
                manifest_free(m);
                return -EBADMSG;
        }
        return k;
}

int v2_list(struct store *st, const struct v2_profile *p, struct v2_state *s, char *err, size_t errlen) {
        int k;

        *s = (struct v2_state){0};
        k = store_list(st, p->dir, &s->ents, &s->nents);
        if (k == -ENOENT)
                return 0;
        if (k < 0) {
                snprintf(err, errlen, "%s", store_error(st));
                return k;
        }
        for (size_t i = 0; i < s->nents; i++) {
                uint64_t n = manifest_name_number(p->filename, s->ents[i].name);
                if (n > s->top && !s->ents[i].is_dir)
                        s->top = n;
                if (!s->ents[i].is_dir && strcmp(s->ents[i].name, p->filename) == 0)
                        s->have_v1 = true;
        }
        return 0;
}

static uint64_t listed_size(const struct v2_profile *p, const struct v2_state *s, uint64_t number) {
        for (size_t i = 0; i < s->nents; i++)
                if (manifest_name_number(p->filename, s->ents[i].name) == number)
                        return s->ents[i].size;
        return 0;
}

static int cmp_u64_desc(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? 1 : x > y ? -1 : 0;
}

int v2_load(struct store *st, const struct v2_profile *p, struct v2_state *s, char *err, size_t errlen) {
        int k = v2_list(st, p, s, err, errlen);

        return k < 0 ? k : v2_load_listed(st, p, s, err, errlen);
}

uint64_t v2_listed_mtime(const struct v2_profile *p, const struct v2_state *s, uint64_t number) {
        for (size_t i = 0; i < s->nents; i++)
                if (manifest_name_number(p->filename, s->ents[i].name) == number)
                        return (uint64_t)s->ents[i].mtime * 1000000000u + s->ents[i].mtime_ns;
        return 0;
}

uint64_t v2_listed_size(const struct v2_profile *p, const struct v2_state *s, uint64_t number) {
        return listed_size(p, s, number);
}

int v2_load_listed(struct store *st, const struct v2_profile *p, struct v2_state *s, char *err, size_t errlen) {
        uint64_t *nums = NULL, damaged_bytes = 0;
        size_t n = 0;
        int k = 0;

        if (s->top == 0)
                return 0;
        if (!(nums = calloc(s->nents, sizeof *nums)))
                return -ENOMEM;
        for (size_t i = 0; i < s->nents; i++) {
                uint64_t v = manifest_name_number(p->filename, s->ents[i].name);
                if (v && !s->ents[i].is_dir)
                        nums[n++] = v;
        }
        qsort(nums, n, sizeof *nums, cmp_u64_desc);
        for (size_t i = 0; i < n; i++) {
                char why[600];
                uint64_t listed = listed_size(p, s, nums[i]);
                if (s->damaged >= V2_DAMAGED_MAX || damaged_bytes > MANIFEST_MAX_BYTES) {
                        /* dead writers leave a few; this many is a hostile or broken store */
                        snprintf(err, errlen, "%s/%s: %u damaged manifests above the newest valid one (%s)",
                                 store_url(st), p->dir, s->damaged, s->damaged_why);
                        k = -EBADMSG;
                        break;
                }
                if (listed > MANIFEST_MAX_BYTES) {
                        k = -EFBIG;
                        snprintf(why, sizeof why, "%s/%s: manifest %" PRIu64 " is listed with %" PRIu64 " bytes, "
                                 "more than a manifest may have", store_url(st), p->dir, nums[i], listed);
                } else
                        k = v2_read_manifest(st, p, nums[i], &s->cur, why, sizeof why);
                if (k == 0) {
                        s->cur_file_size = listed_size(p, s, nums[i]);
                        break;
                }
                if (k != -EBADMSG && k != -ENOENT && k != -EFBIG) {
                        snprintf(err, errlen, "%s", why);
                        break; /* the store failed: not a verdict on the manifest */
                }
                if (k == -ENOENT)
                        continue; /* pruned between the listing and the read */
                if (s->damaged++ == 0)
                        snprintf(s->damaged_why, sizeof s->damaged_why, "%s", why);
                damaged_bytes += listed > MANIFEST_MAX_BYTES ? 0 : listed;
                k = 0;
        }
        free(nums);
        if (k < 0) {
                v2_state_free(s);
                return k;
        }
        return 0;
}

int v2_commit(struct store *st, const struct v2_profile *p, const struct manifest *m, uint64_t *size, char *err,
              size_t errlen) {
        return v2_commit_created(st, p, m, size, NULL, err, errlen);
}

int v2_commit_created(struct store *st, const struct v2_profile *p, const struct manifest *m, uint64_t *size,
                      bool *created, char *err, size_t errlen) {
        struct store_file *f = NULL;
        struct pbuf b, back;
        char name[300], rel[1200];
        int k;

        if ((k = manifest_file_name(p->filename, m->number, name, sizeof name)) < 0 ||
            (k = v2_rel(p, name, rel, sizeof rel)) < 0) {
                snprintf(err, errlen, "%s: name too long", p->filename);
                return k;
        }
        pbuf_init_large(&b);
        pbuf_init_large(&back);
        if ((k = manifest_format(m, &b)) < 0) {
                snprintf(err, errlen, "cannot write manifest %s: %s", name, strerror(-k));
                goto out;
        }
        if (created)
                *created = false;
        /* FILE_CREATE on the server: exactly one machine gets version N. */
        if ((k = store_open_write(st, rel, &f)) < 0) {
                if (k != -EEXIST)
                        snprintf(err, errlen, "%s", store_error(st));
                goto out;
        }
        if (created)
                *created = true;
        /* Read back on the handle that wrote it (the file is ours: no other machine gets a
         * FILE_CREATE of it; a reader's open, size query and close would be three round trips
         * more), one byte further than written: a longer file shows. Then closed, which
         * flushes and reports as ever; when the read failed, the close's failure is the one
         * told (a commit whose read-back failed is looked for again by name: v2_landed). */
        if ((k = store_write(f, b.data, b.len)) < 0) {
                snprintf(err, errlen, "%s", store_error(st));
                store_close_file(f);
                goto out;
        }
        if (size)
                *size = b.len;
        if ((k = store_reread(f)) == 0 && (k = pbuf_reserve(&back, b.len + 1)) < 0)
                snprintf(err, errlen, "out of memory");
        else if (k < 0)
                snprintf(err, errlen, "%s", store_error(st));
        while (k == 0 && back.len <= b.len) {
                ssize_t n = store_read(f, back.data + back.len, b.len + 1 - back.len);
                if (n < 0) {
                        k = (int)n;
                        snprintf(err, errlen, "%s", store_error(st));
                }
                if (n <= 0)
                        break;
                back.len += (size_t)n;
        }
        int c = store_close_file(f);
        if (c < 0) {
                k = c;
                snprintf(err, errlen, "%s", store_error(st));
        }
        if (k < 0)
                goto out;
        if (back.len != b.len || memcmp(back.data, b.data, b.len) != 0) {
                snprintf(err, errlen, "%s/%s: read back %zu bytes that differ from the %zu written", store_url(st),
                         rel, back.len, b.len);
                k = -EIO;
                goto out;
        }
out:
        pbuf_free(&b);
        pbuf_free(&back);
        return k;
}

int v2_write_conflict(struct store *st, const struct v2_profile *p, const struct manifest *m, const char *host,
                      char *name, size_t namelen, char *err, size_t errlen) {
        struct store_file *f = NULL;
        char rel[1200], stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        struct pbuf b;
        int k;

        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", gmtime_r(&now, &tm));
        if (snprintf(name, namelen, "%s.c-%.32s-%s-%.6s", p->filename, host, stamp, m->id) >= (int)namelen ||
            (k = v2_rel(p, name, rel, sizeof rel)) < 0) {
                snprintf(err, errlen, "%s: name too long", p->filename);
                return -ENAMETOOLONG;
        }
        pbuf_init_large(&b);
        if ((k = manifest_format(m, &b)) < 0 || (k = store_open_write(st, rel, &f)) < 0) {
                snprintf(err, errlen, "%s", k == -ENOMEM ? "out of memory" : store_error(st));
                pbuf_free(&b);
                return k;
        }
        k = store_write(f, b.data, b.len);
        int c = store_close_file(f);
        if (k == 0)
                k = c;
        if (k < 0)
                snprintf(err, errlen, "%s", store_error(st));
        pbuf_free(&b);
        return k;
}

/* The first 4 bytes of 32 hex digits (dashes skipped, as in a boot id): 0, or -EINVAL. */
static int hex4(const char *s, unsigned char out[4]) {
        unsigned char b[4];
        size_t n = 0;

        for (; *s && *s != '\n' && n < 8; s++) {
                int v = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
                if (*s == '-')
                        continue;
                if (v < 0)
                        return -EINVAL;
                b[n / 2] = (unsigned char)(n % 2 ? b[n / 2] | v : v << 4);
                n++;
        }
        if (n != 8)
                return -EINVAL;
        memcpy(out, b, sizeof b);
        return 0;
}

static int read_local(const char *path, char *buf, size_t len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        ssize_t n;

        if (fd < 0)
                return -errno;
        if ((n = read(fd, buf, len - 1)) < 0)
                return -errno;
        buf[n] = 0;
        return 0;
}

static bool lower_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* state_dir/install-id: 32 hex digits and a newline, made once (when missing or not that).
 * Two first calls at once may each write one (the later stays): an archive the other named then
 * waits for the grace period, no worse. One that cannot be read is not replaced: -errno. */
static int install_id(const char *state_dir, unsigned char id[4]) {
        char path[PATH_MAX], buf[80];
        unsigned char raw[16];
        int k;

        if (snprintf(path, sizeof path, "%s/install-id", state_dir) >= (int)sizeof path)
                return -ENAMETOOLONG;
        if ((k = read_local(path, buf, sizeof buf)) == 0 && strlen(buf) == 33 && lower_hex(buf, 32) &&
            buf[32] == '\n' && hex4(buf, id) == 0)
                return 0;
        if (k < 0 && k != -ENOENT)
                return k;
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
                return -EIO;
        for (size_t i = 0; i < sizeof raw; i++)
                snprintf(buf + 2 * i, 3, "%02x", raw[i]);
        buf[32] = '\n';
        if ((k = write_file_atomic(path, buf, 33, 0644)) < 0)
                return k;
        memcpy(id, raw, 4);
        return 0;
}

int v2_self(const char *state_dir, const char *host, char self[V2_SELF_MAX]) {
        unsigned char id[4] = {0}, boot[4] = {0};
        char buf[80];
        int k = state_dir ? install_id(state_dir, id) : -EINVAL;

        if (k == 0 && (read_local("/proc/sys/kernel/random/boot_id", buf, sizeof buf) < 0 || hex4(buf, boot) < 0))
                k = -ENODATA; /* no boot id: an install id alone is not this boot's */
        if (k < 0) { /* a tag of this process's own (getrandom of 4 bytes does not fail) */
                if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
                        memset(id, 0, sizeof id);
                memset(boot, 0, sizeof boot);
        }
        snprintf(self, V2_SELF_MAX, "%02x%02x%02x%02x-%.32s", id[0] ^ boot[0], id[1] ^ boot[1], id[2] ^ boot[2],
                 id[3] ^ boot[3], host);
        return k;
}

int v2_archive_name(const struct v2_profile *p, const char *host, char *out, size_t len) {
        unsigned char r[8];

        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
                return -EIO;
        int n = snprintf(out, len, "%s.a-%.48s-%02x%02x%02x%02x%02x%02x%02x%02x", p->filename, host, r[0], r[1],
                         r[2], r[3], r[4], r[5], r[6], r[7]);
        if (n < 0 || n >= (int)len || n > MANIFEST_NAME_MAX)
                return -ENAMETOOLONG;
        return 0;
}

/* ---- prune ---- */

static bool has_prefix(const char *s, const char *pre, size_t n) { return strncmp(s, pre, n) == 0; }

/* name is exactly ours_pre and v2_archive_name's 16 hex digits: an archive this machine named
 * (a prefix alone would take a host "lab-TAG…"'s for ours). */
static bool is_ours(const char *name, const char *ours_pre) {
        size_t n = strlen(ours_pre);
        return has_prefix(name, ours_pre, n) && strlen(name) == n + 16 && lower_hex(name + n, 16);
}

/* The archive names the kept versions hold (a sorted set of strings). */
struct name_set {
        char **v;
        size_t n, cap;
};

static int name_set_add_manifest(struct name_set *ns, const struct manifest *m) {
        for (size_t i = 0; i < m->narch; i++) {
                if (ns->n == ns->cap) {
                        size_t cap = ns->cap ? ns->cap * 2 : 64;
                        char **v = realloc(ns->v, cap * sizeof *v);
                        if (!v)
                                return -ENOMEM;
                        ns->v = v;
                        ns->cap = cap;
                }
                if (!(ns->v[ns->n] = strdup(m->arch[i].name)))
                        return -ENOMEM;
                ns->n++;
        }
        return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool name_set_has(const struct name_set *ns, const char *name) {
        return ns->n && bsearch(&name, ns->v, ns->n, sizeof *ns->v, cmp_str);
}

static void name_set_free(struct name_set *ns) {
        for (size_t i = 0; i < ns->n; i++)
                free(ns->v[i]);
        free(ns->v);
}

static int mark_path(const char *marks, const char *name, char *out, size_t len) {
        int n = snprintf(out, len, "%s.up.%s", marks, name);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int v2_upload_mark(const char *marks, const char *name) {
        char path[PATH_MAX];
        int fd, k;

        if ((k = mark_path(marks, name, path, sizeof path)) < 0)
                return k;
        if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                k = -errno;
                close(fd);
                return k;
        }
        return fd;
}

int v2_prune_lock(const char *marks) {
        char path[PATH_MAX];
        int fd;

        if (snprintf(path, sizeof path, "%s.prune", marks) >= (int)sizeof path)
                return -ENAMETOOLONG;
        if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
                return -errno;
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
        return fd;
}

void v2_upload_unmark(int fd, const char *marks, const char *name) {
        char path[PATH_MAX];
        int lock;

        if (fd < 0)
                return;
        /* not while a prune that listed the store before this upload's commit runs: it would
         * find the archive unmarked and named by no manifest it read */
        lock = v2_prune_lock(marks);
        if (mark_path(marks, name, path, sizeof path) == 0)
                (void)unlink(path);
        close(fd);
        if (lock >= 0)
                close(lock);
}

bool v2_upload_marked(const char *marks, const char *name) {
        char path[PATH_MAX];
        bool held;
        int fd;

        if (!marks || mark_path(marks, name, path, sizeof path) < 0)
                return false;
        if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return errno != ENOENT; /* cannot tell: as if held */
        held = flock(fd, LOCK_EX | LOCK_NB) < 0;
        if (!held)
                (void)unlink(path); /* its process is gone */
        close(fd);
        return held;
}

unsigned v2_prune_due(const struct v2_profile *p, const struct v2_state *s, const struct manifest *cur,
                      unsigned keep_versions) {
        uint64_t oldest_kept = cur->number > keep_versions ? cur->number - keep_versions : 1;
        unsigned old = 0;

        for (size_t i = 0; i < s->nents; i++) {
                uint64_t n = manifest_name_number(p->filename, s->ents[i].name);
                if (!s->ents[i].is_dir && n && n < oldest_kept)
                        old++;
        }
        return old;
}

void v2_prune_now(struct store *st, const struct v2_profile *p, const struct manifest *cur,
                  const struct manifest *known, uint64_t known_size, unsigned keep_versions, const char *host,
                  const char *marks, int64_t grace_s, v2_log_fn log, void *ud) {
        struct v2_state now = {0};
        char why[300];
        int lock = v2_prune_lock(marks);

        if (lock < 0) {
                if (log)
                        log(ud, LOG_WARNING, "no prune: cannot lock %s.prune: %s", marks, strerror(-lock));
                return;
        }
        if (v2_list(st, p, &now, why, sizeof why) == 0) {
                if (known && (!known_size || v2_listed_size(p, &now, known->number) != known_size))
                        known = NULL;
                v2_prune_known(st, p, &now, cur, known, keep_versions, host, marks, (int64_t)time(NULL), grace_s, log,
                               ud);
        } else if (log)
                log(ud, LOG_WARNING, "no prune: %s", why);
        v2_state_free(&now);
        close(lock);
}

void v2_prune(struct store *st, const struct v2_profile *p, const struct v2_state *s, const struct manifest *cur,
              unsigned keep_versions, const char *host, const char *marks, int64_t now, int64_t grace_s, v2_log_fn log,
              void *ud) {
        v2_prune_known(st, p, s, cur, NULL, keep_versions, host, marks, now, grace_s, log, ud);
}

/* A version committed since the listing s (another machine's, or an old version an admin made
 * current again with pginactl profile restore) may name archives no manifest of s names: the
 * manifests and conflict copies the store holds now that s did not show are read into kept. 0,
 * or -errno when one of them cannot be read now (then nothing may be removed). */
static int keep_since_listing(struct store *st, const struct v2_profile *p, const struct v2_state *s,
                              struct name_set *kept, v2_log_fn log, void *ud) {
        struct store_entry *now = NULL;
        char conf_pre[300], why[600];
        size_t n = 0;
        int k;

        snprintf(conf_pre, sizeof conf_pre, "%s.c-", p->filename);
        if ((k = store_list(st, p->dir, &now, &n)) < 0) {
                if (log)
                        log(ud, LOG_WARNING, "prune stopped: cannot list the store again: %s", store_error(st));
                return k;
        }
        k = 0;
        for (size_t i = 0; i < n && k == 0; i++) {
                const char *name = now[i].name;
                bool listed = false;
                struct manifest m;

                if (now[i].is_dir || (!manifest_name_number(p->filename, name) &&
                                      !has_prefix(name, conf_pre, strlen(conf_pre))))
                        continue;
                for (size_t j = 0; j < s->nents && !listed; j++)
                        listed = strcmp(s->ents[j].name, name) == 0;
                if (listed || now[i].size > MANIFEST_MAX_BYTES)
                        continue;
                k = v2_read_manifest_file(st, p, name, &m, why, sizeof why);
                if (k == 0) {
                        k = name_set_add_manifest(kept, &m);
                        manifest_free(&m);
                } else if (k == -EBADMSG || k == -ENOENT || k == -EFBIG)
                        k = 0; /* damaged, or gone again: it names nothing */
                else if (log)
                        log(ud, LOG_WARNING, "prune stopped: cannot read %s: %s", name, why);
        }
        store_entries_free(now, n);
        return k;
}

void v2_prune_known(struct store *st, const struct v2_profile *p, const struct v2_state *s, const struct manifest *cur,
                    const struct manifest *known, unsigned keep_versions, const char *host, const char *marks,
                    int64_t now, int64_t grace_s, v2_log_fn log, void *ud) {
        char arch_pre[300], ours_pre[340], conf_pre[300], rel[1200], why[600];
        size_t fl = strlen(p->filename);
        struct name_set kept = {0};
        uint64_t oldest_kept = cur->number > keep_versions ? cur->number - keep_versions : 1;
        int k;

        snprintf(arch_pre, sizeof arch_pre, "%s.a-", p->filename);
        snprintf(ours_pre, sizeof ours_pre, "%s.a-%.48s-", p->filename, host);
        snprintf(conf_pre, sizeof conf_pre, "%s.c-", p->filename);
        if (known && (known->number >= cur->number || known->number < oldest_kept))
                known = NULL; /* not one of the kept ones below cur: nothing to save */
        if ((k = name_set_add_manifest(&kept, cur)) < 0 || (known && (k = name_set_add_manifest(&kept, known)) < 0))
                goto out;
        qsort(kept.v, kept.n, sizeof *kept.v, cmp_str);
        /* Is any archive a candidate at all (named by no version we know of, and ours or old)?
         * Usually not (a delta chain's archives are all the current version's): then the kept
         * manifests need not be read, a logoff does not download them. */
        bool candidates = false;
        for (size_t i = 0; i < s->nents && !candidates; i++) {
                const char *name = s->ents[i].name;
                candidates = !s->ents[i].is_dir && strlen(name) > fl && has_prefix(name, arch_pre, strlen(arch_pre)) &&
                             !name_set_has(&kept, name) &&
                             (is_ours(name, ours_pre) || now - s->ents[i].mtime >= grace_s);
        }
        /* The manifests: kept ones read (their archives stay), the rest removed. Kept: the last
         * keep_versions, every conflict copy, and any above cur (another machine's newer work). */
        for (size_t i = 0; i < s->nents; i++) {
                const char *name = s->ents[i].name;
                uint64_t n = manifest_name_number(p->filename, name);
                bool conflict = has_prefix(name, conf_pre, strlen(conf_pre));
                struct manifest m;

                if (s->ents[i].is_dir || (!n && !conflict) || n == cur->number)
                        continue;
                if (conflict || n >= oldest_kept) {
                        if (!candidates || (known && !conflict && n == known->number))
                                continue; /* (known: its archives are in the set already) */
                        /* A damaged one keeps no archive (and stays: it is the admin's to look
                         * at; above cur it may be a commit in progress, whose archive another
                         * machine's grace keeps). One that cannot be read now (the store
                         * failed, no memory) may name any archive: nothing more is removed. */
                        if (s->ents[i].size > MANIFEST_MAX_BYTES)
                                continue;
                        k = v2_read_manifest_file(st, p, name, &m, why, sizeof why);
                        if (k == 0) {
                                k = name_set_add_manifest(&kept, &m);
                                manifest_free(&m);
                                if (k < 0)
                                        goto out;
                        } else if (k != -EBADMSG && k != -ENOENT && k != -EFBIG) {
                                if (log)
                                        log(ud, LOG_WARNING, "prune stopped: cannot read %s: %s", name, why);
                                goto out;
                        }
                        continue;
                }
                if (v2_rel(p, name, rel, sizeof rel) == 0 && store_unlink(st, rel) == 0 && log)
                        log(ud, LOG_INFO, "removed %s (older than keep_versions = %u)", name, keep_versions);
        }
        if (!candidates)
                goto out;
        if ((k = keep_since_listing(st, p, s, &kept, log, ud)) < 0)
                goto out;
        qsort(kept.v, kept.n, sizeof *kept.v, cmp_str);
        /* The archives: one no kept manifest names goes. */
        for (size_t i = 0; i < s->nents; i++) {
                const char *name = s->ents[i].name;

                if (s->ents[i].is_dir || strlen(name) <= fl || !has_prefix(name, arch_pre, strlen(arch_pre)))
                        continue;
                if (name_set_has(&kept, name))
                        continue;
                if (!is_ours(name, ours_pre) && now - s->ents[i].mtime < grace_s)
                        continue; /* maybe another machine's upload in progress */
                if (is_ours(name, ours_pre) && v2_upload_marked(marks, name)) {
                        if (log)
                                log(ud, LOG_DEBUG, "kept %s: an upload of this machine in progress", name);
                        continue;
                }
                if (v2_rel(p, name, rel, sizeof rel) == 0) {
                        if (store_unlink(st, rel) == 0) {
                                if (log)
                                        log(ud, LOG_INFO, "removed %s (no version names it)", name);
                        } else if (log)
                                log(ud, LOG_WARNING, "cannot remove %s: %s", name, store_error(st));
                }
        }
out:
        if (k == -ENOMEM && log)
                log(ud, LOG_WARNING, "prune stopped: out of memory");
        name_set_free(&kept);
}

void v2_version_string(const struct manifest *m, char *out, size_t len) {
        snprintf(out, len, "2:%" PRIu64 ":%s", m->number, m->id);
}

int v2_version_parse(const char *v, uint64_t *number, char *id) {
        char *end;
        unsigned long long n;

        if (strncmp(v, "2:", 2) != 0)
                return -EINVAL;
        errno = 0;
        n = strtoull(v + 2, &end, 10);
        if (errno || n == 0 || *end != ':' || strlen(end + 1) != MANIFEST_ID_LEN)
                return -EINVAL;
        *number = n;
        memcpy(id, end + 1, MANIFEST_ID_LEN + 1);
        return 0;
}

/* ---- this machine's copy of its home's manifest ---- */

static int local_path(const char *dir, const char *user, char *path, size_t len) {
        int n = snprintf(path, len, "%s/%s.manifest", dir, user);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int v2_local_save(const char *dir, const char *user, const struct manifest *m) {
        char path[PATH_MAX];
        struct pbuf b;
        int k;

        if ((k = local_path(dir, user, path, sizeof path)) < 0)
                return k;
        pbuf_init_large(&b);
        if ((k = manifest_format(m, &b)) == 0)
                k = write_file_atomic(path, b.data, b.len, 0600);
        pbuf_free(&b);
        return k;
}

int v2_local_load(const char *dir, const char *user, uint64_t number, const char *id, struct manifest *m) {
        char path[PATH_MAX], err[256];
        char *data = NULL;
        size_t len = 0;
        int fd, k;

        manifest_init(m);
        if ((k = local_path(dir, user, path, sizeof path)) < 0)
                return k;
        if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
                return -errno;
        k = pgsmb_read_all(fd, MANIFEST_MAX_BYTES, &data, &len);
        close(fd);
        if (k == 0)
                k = data ? manifest_parse(m, data, len, err, sizeof err) : -EBADMSG;
        free(data);
        if (k == 0 && (m->number != number || !streq(m->id, id)))
                k = -ESTALE;
        if (k < 0)
                manifest_free(m);
        return k;
}

void v2_local_remove(const char *dir, const char *user) {
        char path[PATH_MAX];

        if (local_path(dir, user, path, sizeof path) == 0)
                (void)unlink(path);
}
