/* The session cache (pGina's m_sessionPropertyCache): session id -> list of entries, the first the
 * logged-in user, then credui users. Written atomically to state_dir/sessions after every change
 * so a restart of pginad forgets nothing; passwords stay in memory only. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pginad.h"
#include "util.h"

#define CACHE_MAGIC "PGINA-SESSIONS 1\n"

static void boot_id(char *buf, size_t len) {
        _cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

        if (!f || !fgets(buf, (int)len, f))
                snprintf(buf, len, "unknown");
        buf[strcspn(buf, "\n")] = 0;
}

static void entry_done(struct cache_entry *e) {
        free(e->user);
        free(e->service);
        free(e->tty);
        free(e->rhost);
        free(e->phases);
        user_free(e->record);
        secret_free(e->password);
        memset(e, 0, sizeof *e);
}

void session_done(struct session *s) {
        for (size_t i = 0; i < s->nentries; i++)
                entry_done(&s->entries[i]);
        free(s->entries);
        free(s->id);
        free(s->logind);
        memset(s, 0, sizeof *s);
}

void cache_free(struct cache *c) {
        for (size_t i = 0; i < c->n; i++)
                session_done(&c->v[i]);
        free(c->v);
        free(c->path);
        memset(c, 0, sizeof *c);
}

struct session *cache_find(struct cache *c, const char *id) {
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->v[i].id, id))
                        return &c->v[i];
        return NULL;
}

/* user@.service's own PAM session ("systemd-user", from common-session): the user's service
 * manager, started for the first login and closed, as the user, some seconds after the last.
 * It is not a logon: a user's logoff is the end of their last other session. */
bool cache_session_is_manager(const struct session *s) {
        return s->nentries > 0 && streq(strempty(s->entries[0].service), "systemd-user");
}

unsigned cache_user_sessions(const struct cache *c, const char *user) {
        unsigned n = 0;

        for (size_t i = 0; i < c->n; i++)
                if (c->v[i].nentries > 0 && streq(c->v[i].entries[0].user, user) &&
                    !cache_session_is_manager(&c->v[i]))
                        n++;
        return n;
}

static int entry_init(struct cache_entry *e, struct pgina_user *record, struct secret *password,
                      const char *service, const char *tty, const char *rhost, uint8_t scenario) {
        memset(e, 0, sizeof *e);
        e->user = strdup(record->name);
        e->service = strdup(strempty(service));
        e->tty = strdup(strempty(tty));
        e->rhost = strdup(strempty(rhost));
        e->phases = strdup("");
        e->uid = record->uid;
        e->opened = (int64_t)time(NULL);
        e->scenario = scenario;
        if (!e->user || !e->service || !e->tty || !e->rhost || !e->phases) {
                entry_done(e);
                return -ENOMEM;
        }
        e->record = record;
        e->password = password;
        return 0;
}

int cache_entry_set_phases(struct cache_entry *e, const char *phases) {
        char *p = strdup(strempty(phases));

        if (!p)
                return -ENOMEM;
        free(e->phases);
        e->phases = p;
        return 0;
}

int cache_append(struct session *s, struct pgina_user *record, struct secret *password,
                 const char *service, const char *tty, const char *rhost) {
        struct cache_entry *n = realloc(s->entries, (s->nentries + 1) * sizeof *n);
        int r;

        if (!n)
                return -ENOMEM;
        s->entries = n;
        r = entry_init(&s->entries[s->nentries], record, password, service, tty, rhost,
                       s->nentries == 0 ? PGINA_SCENARIO_LOGON : PGINA_SCENARIO_CREDUI);
        if (r < 0)
                return r;
        s->nentries++;
        return 0;
}

struct session *cache_open(struct cache *c, struct pgina_user *record, struct secret *password,
                           const char *service, const char *tty, const char *rhost,
                           uint32_t leader) {
        struct session *n = realloc(c->v, (c->n + 1) * sizeof *n), *s;
        char id[32];

        if (!n)
                return NULL;
        c->v = n;
        s = &c->v[c->n];
        memset(s, 0, sizeof *s);
        snprintf(id, sizeof id, "%" PRIu64, ++c->next_id);
        s->id = strdup(id);
        s->logind = strdup("");
        s->leader = leader;
        if (!s->id || !s->logind || cache_append(s, record, password, service, tty, rhost) < 0) {
                free(s->id);
                free(s->logind);
                free(s->entries);
                return NULL;
        }
        c->n++;
        return s;
}

int cache_close(struct cache *c, const char *id, struct session *ret) {
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->v[i].id, id)) {
                        *ret = c->v[i];
                        c->v[i] = c->v[--c->n];
                        return 0;
                }
        return -ENOENT;
}

/* On disk: a magic line, then proto.h result rows: one row per entry with the session's and the
 * entry's fields and the record (user_to_row's fields). "logind" and "phases" may be missing
 * (older files). */
static int entry_to_row(const struct session *s, size_t idx, struct pbuf *b) {
        const struct cache_entry *e = &s->entries[idx];
        _cleanup_pbuf_ struct pbuf rec = {0};
        char num[4][32];
        struct pbuf view;
        uint32_t n;
        int r;

        /* Serialise the record alone first, then splice its fields behind ours. */
        pbuf_init(&rec);
        if ((r = user_to_row(e->record, &rec)) < 0)
                return r;
        view = rec;
        if ((r = pbuf_get_u32(&view, &n)) < 0)
                return r;
        snprintf(num[0], sizeof num[0], "%zu", idx);
        snprintf(num[1], sizeof num[1], "%" PRId64, e->opened);
        snprintf(num[2], sizeof num[2], "%u", e->scenario);
        snprintf(num[3], sizeof num[3], "%u", s->leader);
        if ((r = proto_row_begin(b, 11 + n)) < 0 || (r = proto_row_field(b, "session", s->id)) < 0 ||
            (r = proto_row_field(b, "index", num[0])) < 0 ||
            (r = proto_row_field(b, "service", e->service)) < 0 ||
            (r = proto_row_field(b, "tty", e->tty)) < 0 || (r = proto_row_field(b, "rhost", e->rhost)) < 0 ||
            (r = proto_row_field(b, "opened", num[1])) < 0 ||
            (r = proto_row_field(b, "scenario", num[2])) < 0 ||
            (r = proto_row_field(b, "leader", num[3])) < 0 ||
            (r = proto_row_field(b, "logind", s->logind)) < 0 ||
            (r = proto_row_field(b, "entry_user", e->user)) < 0 ||
            (r = proto_row_field(b, "phases", e->phases)) < 0)
                return r;
        for (size_t k = view.pos; k < view.len; k++)
                if ((r = pbuf_put_u8(b, view.data[k])) < 0)
                        return r;
        return 0;
}

int cache_save(const struct cache *c) {
        _cleanup_pbuf_ struct pbuf b = {0};
        size_t rows = 0;
        char next[128], boot[64];
        int r;

        for (size_t i = 0; i < c->n; i++)
                rows += c->v[i].nentries;
        pbuf_init(&b);
        boot_id(boot, sizeof boot);
        snprintf(next, sizeof next, "%" PRIu64 " %s", c->next_id, boot);
        for (const char *m = CACHE_MAGIC; *m; m++)
                if ((r = pbuf_put_u8(&b, (uint8_t)*m)) < 0)
                        return r;
        if ((r = pbuf_put_u32(&b, 0)) < 0 || (r = pbuf_put_str(&b, next)) < 0 ||
            (r = pbuf_put_u32(&b, (uint32_t)rows)) < 0)
                return r;
        for (size_t i = 0; i < c->n; i++)
                for (size_t k = 0; k < c->v[i].nentries; k++)
                        if ((r = entry_to_row(&c->v[i], k, &b)) < 0)
                                return r;
        r = write_file_atomic(c->path, b.data, b.len, 0600);
        if (r < 0)
                return log_error_errno(r, "Failed to write the session cache %s: %m", c->path);
        return 0;
}

static int cache_add_row(struct cache *c, const struct proto_row *row) {
        const char *id = proto_row_get(row, "session"), *idx = proto_row_get(row, "index");
        const char *leader = proto_row_get(row, "leader"), *logind = proto_row_get(row, "logind");
        struct pgina_user *rec = NULL;
        struct session *s;
        int r;

        if (!id || !idx || (r = user_from_row(row, &rec)) < 0)
                return -EBADMSG;
        s = cache_find(c, id);
        if (!s) {
                s = cache_open(c, rec, NULL, proto_row_get(row, "service"), proto_row_get(row, "tty"),
                               proto_row_get(row, "rhost"), leader ? (uint32_t)strtoul(leader, NULL, 10) : 0);
                if (!s) {
                        user_free(rec);
                        return -ENOMEM;
                }
                c->next_id--; /* cache_open counted one */
                free(s->id);
                s->id = strdup(id);
                if (!s->id)
                        return -ENOMEM;
                if (logind && logind_session_id_valid(logind)) {
                        free(s->logind);
                        if (!(s->logind = strdup(logind)))
                                return -ENOMEM;
                }
        } else if ((r = cache_append(s, rec, NULL, proto_row_get(row, "service"),
                                     proto_row_get(row, "tty"), proto_row_get(row, "rhost"))) < 0) {
                user_free(rec);
                return r;
        }
        s->entries[s->nentries - 1].opened = strtoll(strempty(proto_row_get(row, "opened")), NULL, 10);
        s->entries[s->nentries - 1].scenario =
                (uint8_t)strtoul(strempty(proto_row_get(row, "scenario")), NULL, 10);
        if (cache_entry_set_phases(&s->entries[s->nentries - 1], proto_row_get(row, "phases")) < 0)
                return -ENOMEM;
        return 0;
}

int cache_load(struct cache *c, const char *state_dir) {
        _cleanup_close_ int fd = -1;
        _cleanup_pbuf_ struct pbuf b = {0};
        struct proto_result res;
        size_t mlen = strlen(CACHE_MAGIC);
        char path[PATH_MAX];
        ssize_t k;
        int r;

        memset(c, 0, sizeof *c);
        snprintf(path, sizeof path, "%s/sessions", state_dir);
        if (!(c->path = strdup(path)))
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : log_error_errno(-errno, "Failed to open %s: %m", path);
        pbuf_init(&b);
        while ((k = pbuf_read_fd(&b, fd, 65536)) > 0)
                ;
        if (k < 0)
                return log_error_errno((int)k, "Failed to read %s: %m", path);
        if (b.len < mlen || memcmp(b.data, CACHE_MAGIC, mlen) != 0) {
                log_error("Ignoring %s: not a pgina session cache", path);
                return 0;
        }
        b.pos = mlen;
        r = proto_result_parse(&b, &res);
        if (r < 0) {
                log_error("Ignoring %s: damaged (%s); sessions from before are forgotten", path,
                          strerror(-r));
                return 0;
        }
        {
                char *end = NULL, boot[64];
                c->next_id = strtoull(strempty(res.message), &end, 10);
                boot_id(boot, sizeof boot);
                c->from_previous_boot = !end || *end != ' ' || !streq(end + 1, boot);
        }
        for (size_t i = 0; i < res.nrows; i++)
                if (cache_add_row(c, &res.rows[i]) < 0)
                        log_warning("%s: skipping a damaged session entry", path);
        proto_result_free(&res);
        log_info("Session cache %s: %zu session(s) restored", path, c->n);
        return 0;
}
