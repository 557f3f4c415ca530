/* pgSMB bookkeeping files: local state (root-only) and the store's .meta next to each archive. */
#include "pgsmb-state.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <pgina/util.h>

static void copy_field(char *dst, size_t len, const char *v) {
        size_t n = strcspn(v, "\r\n");
        if (n >= len)
                n = len - 1;
        memcpy(dst, v, n);
        dst[n] = 0;
}

int pgsmb_state_load(const char *dir, const char *user, struct pgsmb_state *s) {
        char path[PATH_MAX], line[512];
        _cleanup_fclose_ FILE *f = NULL;

        memset(s, 0, sizeof *s);
        snprintf(path, sizeof path, "%s/%s.state", dir, user);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        while (fgets(line, sizeof line, f)) {
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq++ = 0;
                if (streq(line, "version"))
                        copy_field(s->version, sizeof s->version, eq);
                else if (streq(line, "upload_failed"))
                        s->upload_failed = eq[0] == '1';
                else if (streq(line, "over_limit"))
                        s->over_limit = eq[0] == '1';
                else if (streq(line, "temporary"))
                        s->temporary = eq[0] == '1';
                else if (streq(line, "manifest_size"))
                        s->manifest_size = strtoull(eq, NULL, 10);
                else if (streq(line, "manifest_mtime"))
                        s->manifest_mtime = strtoull(eq, NULL, 10);
                else if (streq(line, "pending"))
                        copy_field(s->pending, sizeof s->pending, eq);
        }
        return 0;
}

int pgsmb_state_lock(const char *dir, const char *user) {
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof path, "%s/%s.lock", dir, user);
        if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600)) < 0)
                return -errno;
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int k = -errno;
                        close(fd);
                        return k;
                }
        return fd;
}

int pgsmb_state_save(const char *dir, const char *user, const struct pgsmb_state *s) {
        char path[PATH_MAX], buf[512];
        int n;

        snprintf(path, sizeof path, "%s/%s.state", dir, user);
        n = snprintf(buf, sizeof buf, "version=%s\nupload_failed=%d\nover_limit=%d\ntemporary=%d\nmanifest_size=%" PRIu64
                     "\nmanifest_mtime=%" PRIu64 "\n%s%s%s", s->version, s->upload_failed, s->over_limit, s->temporary,
                     s->manifest_size, s->manifest_mtime,
                     s->pending[0] ? "pending=" : "", s->pending, s->pending[0] ? "\n" : "");
        return write_file_atomic(path, buf, (size_t)n, 0600);
}

void pgsmb_version_new(char out[PGSMB_VERSION_MAX]) {
        unsigned char raw[12];
        struct timespec ts;
        size_t off;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (getrandom(raw, sizeof raw, 0) != sizeof raw)
                memset(raw, 0, sizeof raw);
        /* time first (seconds, then nanoseconds, fixed width), so versions sort by age as text;
         * the random part against two machines at the same instant */
        off = (size_t)snprintf(out, PGSMB_VERSION_MAX, "%" PRId64 ".%09ld-", (int64_t)ts.tv_sec, ts.tv_nsec);
        for (size_t i = 0; i < sizeof raw && off + 2 < PGSMB_VERSION_MAX; i++, off += 2)
                snprintf(out + off, 3, "%02x", raw[i]);
}

int pgsmb_meta_read(struct store *st, const char *rel, struct pgsmb_meta *m) {
        struct store_file *f = NULL;
        char buf[2048], *save = NULL, *line;
        size_t have = 0;
        int r;

        memset(m, 0, sizeof *m);
        r = store_open_read(st, rel, &f);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t k = store_read(f, buf + have, sizeof buf - 1 - have);
                if (k < 0) {
                        store_close_file(f);
                        return (int)k;
                }
                if (k == 0)
                        break;
                have += (size_t)k;
                /* A short read of a file is its end (no second request to hear so: a round
                 * trip); a meta file is small, anything longer is not ours. */
                if (have >= sizeof buf - 1 || (size_t)k < sizeof buf - 1 - (have - (size_t)k))
                        break;
        }
        store_close_file(f);
        buf[have] = 0;
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq++ = 0;
                if (streq(line, "version"))
                        copy_field(m->version, sizeof m->version, eq);
                else if (streq(line, "sha256"))
                        copy_field(m->sha256, sizeof m->sha256, eq);
                else if (streq(line, "size"))
                        m->size = strtoull(eq, NULL, 10);
                else if (streq(line, "host"))
                        copy_field(m->host, sizeof m->host, eq);
                else if (streq(line, "time"))
                        m->time = strtoll(eq, NULL, 10);
        }
        if (!m->version[0] || strlen(m->sha256) != 64)
                return -EBADMSG;
        return 0;
}

int pgsmb_meta_write(struct store *st, const char *rel, const struct pgsmb_meta *m) {
        char tmp[PATH_MAX], buf[1024], ver[PGSMB_VERSION_MAX];
        struct store_file *f = NULL;
        int n, r;

        /* Named by host like the archive's temporary file: this host's next upload removes what a
         * crash left (prune_versions), never another machine's write in progress. */
        pgsmb_version_new(ver);
        snprintf(tmp, sizeof tmp, "%s.tmp-%s-%s", rel, m->host[0] ? m->host : "localhost", ver);
        n = snprintf(buf, sizeof buf, "version=%s\nsha256=%s\nsize=%" PRIu64 "\nhost=%s\ntime=%" PRId64 "\n",
                     m->version, m->sha256, m->size, m->host, m->time);
        r = store_open_write(st, tmp, &f);
        if (r < 0)
                return r;
        r = store_write(f, buf, (size_t)n);
        n = store_close_file(f);
        if (r == 0)
                r = n;
        if (r == 0)
                r = store_rename(st, tmp, rel, true);
        if (r < 0)
                (void)store_unlink(st, tmp);
        return r;
}

/* ---- the record (format 2) ---- */

void pgsmb_host_short(char *buf, size_t len) {
        if (gethostname(buf, len) < 0 || !buf[0])
                snprintf(buf, len, "localhost");
        buf[len - 1] = 0;
        buf[strcspn(buf, ".")] = 0;
}

static void record_path(const char *dir, const char *user, char *path, size_t len) {
        snprintf(path, len, "%s/%s.record", dir, user);
}

int pgsmb_record_read(const char *dir, const char *user, const char *version, char **data, size_t *len) {
        char path[PATH_MAX], head[PGSMB_VERSION_MAX + 16];
        _cleanup_close_ int fd = -1;
        struct stat st;
        char *buf = NULL;
        int k;

        *data = NULL;
        *len = 0;
        record_path(dir, user, path, sizeof path);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size > RECORD_MAX_BYTES)
                return -EFBIG;
        if (!(buf = malloc((size_t)st.st_size + 1)))
                return -ENOMEM;
        if (read(fd, buf, (size_t)st.st_size) != st.st_size) {
                free(buf);
                return -EIO;
        }
        /* "version VERSION\n", then the scan */
        k = snprintf(head, sizeof head, "version %s\n", version);
        if (k <= 0 || (size_t)k >= sizeof head || (size_t)st.st_size < (size_t)k || memcmp(buf, head, (size_t)k) != 0) {
                free(buf);
                return -ESTALE; /* the record of another version */
        }
        *len = (size_t)st.st_size - (size_t)k;
        memmove(buf, buf + k, *len);
        *data = buf;
        return 0;
}

int pgsmb_record_load(const char *dir, const char *user, const char *version, struct scan *s) {
        char *buf;
        size_t len;
        int r;

        scan_init(s);
        if ((r = pgsmb_record_read(dir, user, version, &buf, &len)) < 0)
                return r;
        r = scan_parse(s, buf, len, NULL);
        free(buf);
        return r;
}

int pgsmb_record_save(const char *dir, const char *user, const char *version, const struct scan *s) {
        char path[PATH_MAX], head[PGSMB_VERSION_MAX + 16];
        struct pbuf b;
        int k, n;

        record_path(dir, user, path, sizeof path);
        n = snprintf(head, sizeof head, "version %s\n", version);
        pbuf_init_large(&b);
        if ((k = pbuf_reserve(&b, (size_t)n)) < 0)
                goto out;
        memcpy(b.data, head, (size_t)n);
        b.len = (size_t)n;
        if ((k = scan_format_all(s, &b)) < 0)
                goto out;
        k = write_file_atomic(path, b.data, b.len, 0600);
out:
        pbuf_free(&b);
        return k;
}

void pgsmb_record_remove(const char *dir, const char *user) {
        char path[PATH_MAX];

        record_path(dir, user, path, sizeof path);
        (void)unlink(path);
}
