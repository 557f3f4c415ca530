/* pgSMB logon, store format 2 (delta profiles): a home that is the current version already is
 * used as it is; one that holds an older version gets only the later changes, applied in place as
 * the user from archives downloaded and checked first; any other home is restored whole into a
 * staging directory, each archive of the chain streamed once, taking from each only the paths the
 * manifest says are current there. Either way the result is compared with the manifest, and its
 * scan becomes the record the next logoff compares with. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>


#include <pgina/util.h>

#include "pgsmb-fetch.h"
#include "pgsmb-manifest.h"
#include "pgsmb-restore.h"
#include "pgsmb-scan.h"
#include "pgsmb-v2.h"

/* A catch-up downloads at most this much before it applies anything (memory: the archives wait in
 * memfds); above it, or above half of a full restore, the whole profile is restored instead. */
#define CATCHUP_MAX_BYTES (512ull * 1024 * 1024)

struct v2_restore {
        struct v2_profile p;
        struct v2_state vs;
        struct scan scan; /* of what was restored: the record */
        uint64_t bytes, files, compressed; /* extracted, downloaded */
        unsigned archives;
        long long t0;
        long long download_ms, extract_ms; /* for pginad's metrics: streams, what was left after them */
};

/* What is on disk matches the manifest: every path, its type, a file's size, nothing more. */
static int v2_matches(struct restore *r, const struct manifest *m, const struct scan *s) {
        size_t i = 0, j = 0;

        while (i < m->n || j < s->n) {
                int c = i >= m->n ? 1 : j >= s->n ? -1 : strcmp(m->v[i].path, s->v[j].path);
                if (c < 0) {
                        snprintf(r->why, sizeof r->why, "'%s' of version %" PRIu64 " is missing after the restore "
                                 "(damaged archive %s?)", m->v[i].path, m->number, m->arch[m->v[i].archive].name);
                        return -EBADMSG;
                }
                if (c > 0) {
                        snprintf(r->why, sizeof r->why, "'%s' is not in version %" PRIu64, s->v[j].path, m->number);
                        return -EBADMSG;
                }
                if (m->v[i].type != s->v[j].type || (m->v[i].type == 'f' && m->v[i].size != s->v[j].size)) {
                        snprintf(r->why, sizeof r->why, "'%s' differs from version %" PRIu64 " after the restore "
                                 "(damaged archive %s?)", m->v[i].path, m->number, m->arch[m->v[i].archive].name);
                        return -EBADMSG;
                }
                i++;
                j++;
        }
        return 0;
}

/* Directory modes and times from the manifest, then the scan of dir into v->scan. */
static int v2_fix_and_scan(struct restore *r, const struct manifest *m, const char *dir, struct v2_restore *v) {
        struct scan dirs;
        char err[512];
        int k;

        if ((k = manifest_dirs(m, &dirs)) < 0) {
                snprintf(r->why, sizeof r->why, "out of memory");
                return k;
        }
        k = pgsmb_fix_dirs(&r->pu, dir, &dirs, err, sizeof err);
        scan_free(&dirs);
        if (k < 0) {
                snprintf(r->why, sizeof r->why, "cannot set the directories' modes in %s: %s", dir, err);
                return k;
        }
        scan_free(&v->scan);
        if ((k = pgsmb_scan_home(&r->pu, dir, (const char *const *)r->cfg.exclude, &v->scan, err, sizeof err)) < 0) {
                snprintf(r->why, sizeof r->why, "cannot scan %s: %s", dir, err);
                return k;
        }
        return 0;
}

/* A whole restore's tree: finished, scanned, and exactly the manifest. */
static int v2_finish_tree(struct restore *r, const struct manifest *m, const char *dir, struct v2_restore *v) {
        int k = v2_fix_and_scan(r, m, dir, v);
        return k < 0 ? k : v2_matches(r, m, &v->scan);
}

static int sha_check(struct restore *r, const struct manifest_archive *a, const struct pgsmb_transfer *t) {
        char hex[65];

        pgsmb_hex(t->sha256, hex);
        if (t->bytes != a->size || !t->hashed || strcmp(hex, a->sha256) != 0) {
                snprintf(r->why, sizeof r->why, "archive %s: %" PRIu64 " bytes whose checksum does not match the "
                         "manifest's (%" PRIu64 " bytes): damaged or changed", a->name, t->bytes, a->size);
                return -EBADMSG;
        }
        return 0;
}

/* ---- the whole profile, into a staging directory ---- */

/* The deltas of m (archives 1 on) that a second connection fetches while the base streams: over
 * smb:// only (a round trip is what it saves), at most AHEAD_MAX_BYTES of them in memory. NULL
 * when none is (then each streams as the base does). */
#define AHEAD_MAX_BYTES (128ull * 1024 * 1024)
static struct fetcher *chain_fetch_ahead(struct restore *r, struct store *st, struct v2_restore *v,
                                         const struct manifest *m, size_t *n_ahead) {
        struct fetch_item it[64];
        char rel[64][1200];
        struct store_creds cr;
        struct fetcher *fe = NULL;
        uint64_t bytes = 0;
        size_t n = 0;
        int k;

        *n_ahead = 0;
        if (strncmp(store_url(st), "smb://", 6) != 0)
                return NULL;
        for (size_t i = 1; i < m->narch && n < 64; i++, n++) {
                if ((bytes += m->arch[i].size) > AHEAD_MAX_BYTES ||
                    v2_rel(&v->p, m->arch[i].name, rel[n], sizeof rel[n]) < 0)
                        break;
                it[n] = (struct fetch_item){.rel = rel[n], .name = m->arch[i].name, .size = m->arch[i].size,
                                            .sha256 = m->arch[i].sha256};
        }
        if (n == 0)
                return NULL;
        pgsmb_store_creds(&r->cfg, &cr);
        if ((k = fetcher_start(r->cfg.share, &cr, r->cfg.timeout, it, n, &fe)) < 0) {
                pgina_log(r->ctx, LOG_DEBUG, "%s: the deltas are not fetched ahead: %s", r->cfg.user, strerror(-k));
                return NULL;
        }
        *n_ahead = n;
        return fe;
}

/* Archive i of m from the fetching process into dir: 1 when it was there and is extracted, 0
 * when it was not fetched (the caller streams it), -errno on an extraction's failure. */
static int chain_extract_fetched(struct restore *r, struct fetcher *fe, const struct manifest *m, size_t i,
                                 const char *dir, const struct profile_limits *lim,
                                 const struct pgsmb_extract_opts *o, struct pgsmb_transfer *t) {
        char err[600];
        int fd, k;

        /* the base has streamed: what is still coming gets one store timeout */
        if ((k = fetcher_take(fe, i - 1, (int)r->cfg.timeout * 1000, &fd, err, sizeof err)) < 0) {
                pgina_log(r->ctx, LOG_DEBUG, "%s: archive %s was not fetched ahead (%s): streaming it", r->cfg.user,
                          m->arch[i].name, err);
                return 0;
        }
        long long mid = now_ms(); /* downloaded: the rest is the extraction */
        k = pgsmb_extract_fd(fd, &r->pu, dir, lim, o, t);
        close(fd);
        t->bytes = m->arch[i].size; /* checked by the fetching process, as sha_check does */
        t->mid_ms = mid;
        return k < 0 ? k : 1;
}

/* The chain of m, each archive read once (the base streamed, the deltas fetched during it or
 * streamed after it), into the empty directory dir (the user's), then checked against m (v->scan:
 * its scan). On failure dir may hold part of it. */
static int v2_extract_chain(struct restore *r, struct store *st, struct v2_restore *v, const struct manifest *m,
                            const char *dir) {
        _cleanup_(fetcher_endp) struct fetcher *fe = NULL;
        size_t n_ahead = 0;
        int k;

        if (r->cfg.lim.max_total_bytes && manifest_bytes(m) > r->cfg.lim.max_total_bytes) {
                snprintf(r->why, sizeof r->why, "version %" PRIu64 " holds %" PRIu64 " bytes, more than "
                         "max_profile_size", m->number, manifest_bytes(m));
                return -E2BIG;
        }
        fe = chain_fetch_ahead(r, st, v, m, &n_ahead);
        struct store_creds cr;
        pgsmb_store_creds(&r->cfg, &cr);
        for (size_t i = 0; i < m->narch; i++) {
                /* (a large one, the base: read by two more connections, 8 MiB at a time) */
                struct pgsmb_extract_opts o = {.no_dirfix = true, .always_hash = true, .second_url = r->cfg.share,
                                               .second_creds = &cr, .second_timeout_s = r->cfg.timeout,
                                               .readers = r->cfg.restore_readers};
                struct profile_limits lim = r->cfg.lim;
                struct pgsmb_transfer t;
                char rel[1200];
                struct pbuf want;
                size_t count;

                pbuf_init_large(&want);
                if ((k = manifest_want(m, (uint32_t)i, NULL, 0, &want, &count)) < 0 ||
                    (k = v2_rel(&v->p, m->arch[i].name, rel, sizeof rel)) < 0) {
                        snprintf(r->why, sizeof r->why, "cannot list what %s provides: %s", m->arch[i].name,
                                 strerror(-k));
                        pbuf_free(&want);
                        return k;
                }
                o.want = &want;
                if (lim.max_total_bytes)
                        lim.max_total_bytes -= v->bytes < lim.max_total_bytes ? v->bytes : lim.max_total_bytes;
                long long t0 = now_ms();
                bool fetched = false;
                k = 0; /* 0: streamed here */
                if (i >= 1 && i <= n_ahead)
                        fetched = (k = chain_extract_fetched(r, fe, m, i, dir, &lim, &o, &t)) > 0;
                if (!fetched && k == 0)
                        k = pgsmb_restore_stream_opts(st, rel, m->arch[i].size, &r->pu, dir, &lim, &r->cfg.comp, &o,
                                                      pgsmb_restore_progress, r, &t);
                long long t1 = now_ms(), mid = t.mid_ms ? t.mid_ms : t1;
                v->download_ms += mid - t0;
                v->extract_ms += t1 - mid;
                pbuf_free(&want);
                if (k < 0) {
                        snprintf(r->why, sizeof r->why, "%s", t.err);
                        return k;
                }
                if (!fetched && (k = sha_check(r, &m->arch[i], &t)) < 0)
                        return k;
                char second[400] = "";
                if (t.chunks)
                        snprintf(second, sizeof second, " (%" PRIu64 " of %" PRIu64 " chunks by the readers on connections of "
                                 "their own%s%s; ready after %lld ms; waited %lld ms for room, %lld ms for its own "
                                 "reads, %lld ms for the readers')",
                                 t.second_chunks, t.chunks, t.second_err[0] ? ": " : "", t.second_err, t.ready_ms[0],
                                 t.room_ms, t.read_ms, t.second_wait_ms);
                else if (t.second_err[0])
                        snprintf(second, sizeof second, " (no readers on connections of their own: %s)", t.second_err);
                pgina_log(r->ctx, LOG_DEBUG, "%s: archive %zu of %zu (%s): %" PRIu64 " of %zu entries wanted, "
                          "%.1f MiB, in %lld ms%s%s", r->cfg.user, i + 1, m->narch, m->arch[i].name, t.stats.files,
                          count, t.bytes / 1048576.0, t1 - t0, fetched ? " (fetched ahead)" : "", second);
                v->bytes += t.stats.bytes;
                v->files += t.stats.files;
                v->compressed += t.bytes;
                v->archives++;
        }
        fetcher_end(TAKE_PTR(fe));
        long long t_fin = now_ms();
        k = v2_finish_tree(r, m, dir, v);
        pgina_log(r->ctx, LOG_DEBUG, "%s: directories, scan and check of %s in %lld ms", r->cfg.user, dir,
                  now_ms() - t_fin);
        return k;
}

int pgsmb_restore_v2_chain(struct restore *r, struct store *st, const struct manifest *m, const char *dir,
                           struct scan *scan) {
        struct v2_restore v = {.p = {.dir = r->cfg.remote_dir, .filename = r->cfg.filename}, .t0 = now_ms()};
        int k = v2_extract_chain(r, st, &v, m, dir);

        *scan = v.scan;
        if (k < 0)
                scan_free(scan);
        return k;
}

static int v2_cold(struct restore *r, struct store *st, struct v2_restore *v, bool have_home) {
        const struct manifest *m = &v->vs.cur;
        char staging[PATH_MAX];
        long long t_swap;
        int k;

        if ((k = pgsmb_restore_staging_dir(r, "restore", staging, sizeof staging)) < 0)
                return k;
        if (mkdir(staging, 0700) < 0 || lchown(staging, r->acc.uid, r->acc.gid) < 0) {
                snprintf(r->why, sizeof r->why, "cannot create %s: %s", staging, strerror(errno));
                rmdir(staging);
                return -errno;
        }
        if ((k = v2_extract_chain(r, st, v, m, staging)) < 0) {
                pgsmb_restore_remove_tree(r, staging);
                return k;
        }
        long long t_sw = now_ms();
        if ((k = pgsmb_restore_swap(r, staging, have_home, &t_swap)) < 0)
                return k; /* staging removed */
        pgina_log(r->ctx, LOG_DEBUG, "%s: swapped in (old home removed) in %lld ms", r->cfg.user, now_ms() - t_sw);
        pgina_log(r->ctx, LOG_INFO, "%s: restored version %" PRIu64 " from %s: %" PRIu64 " files (%.1f MiB, %.1f MiB "
                  "compressed) from %u archive(s) in %.1f s", r->cfg.user, m->number, store_url(st), v->files,
                  v->bytes / 1048576.0, v->compressed / 1048576.0, v->archives, (now_ms() - v->t0) / 1000.0);
        return 1;
}

/* ---- catch-up: the later changes, in place ---- */

/* Download rel into a memfd, checking size and checksum against a. */
static int fetch_verified(struct restore *r, struct store *st, const char *rel, const struct manifest_archive *a,
                          int *ret_fd) {
        struct fetch_item it = {.rel = rel, .name = a->name, .size = a->size, .sha256 = a->sha256};
        int fd, k;

        if (a->size > CATCHUP_MAX_BYTES) {
                snprintf(r->why, sizeof r->why, "archive %s: %" PRIu64 " bytes, more than a catch-up holds",
                         a->name, a->size);
                return -EFBIG;
        }
        if ((fd = memfd_create("pgsmb-delta", MFD_CLOEXEC)) < 0) {
                k = -errno;
                snprintf(r->why, sizeof r->why, "%s", strerror(-k));
                return k;
        }
        if ((k = pgsmb_fetch_verified(st, &it, fd, r->why, sizeof r->why)) < 0) {
                close(fd);
                return k;
        }
        *ret_fd = fd;
        return 0;
}

/* What a catch-up touches: the paths it writes (a), removes (b), and the directories right above
 * them (c: their times change as entries come and go). */
struct touched {
        char **a, **b, **c;
        size_t na, nb, nc;
};

static bool touched_has(const struct touched *t, const char *p) {
        return pathlist_has(t->a, t->na, p) || pathlist_has(t->b, t->nb, p) || pathlist_has(t->c, t->nc, p);
}

static int cmp_strp(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

/* t->c from t->a and t->b: sorted, unique, none of them in a or b (a pathlist: pathlist_free). */
static int touched_parents(struct touched *t) {
        size_t n = 0, cap = t->na + t->nb;
        char **v = calloc(cap ? cap : 1, sizeof *v);

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < cap; i++) {
                const char *p = i < t->na ? t->a[i] : t->b[i - t->na];
                const char *slash = strrchr(p, '/');
                if (!slash)
                        continue;
                if (!(v[n] = strndup(p, (size_t)(slash - p)))) {
                        pathlist_free(v, n);
                        return -ENOMEM;
                }
                if (pathlist_has(t->a, t->na, v[n]) || pathlist_has(t->b, t->nb, v[n]))
                        free(v[n]);
                else
                        n++;
        }
        qsort(v, n, sizeof *v, cmp_strp);
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
                if (j > 0 && strcmp(v[i], v[j - 1]) == 0)
                        free(v[i]);
                else
                        v[j++] = v[i];
        }
        t->c = v;
        t->nc = j;
        return 0;
}

/* The path list of all of t, for a stat. */
static int touched_list(const struct touched *t, struct pbuf *out) {
        int k = 0;

        for (size_t i = 0; i < t->na && k == 0; i++)
                k = pathlist_add(out, t->a[i]);
        for (size_t i = 0; i < t->nb && k == 0; i++)
                k = pathlist_add(out, t->b[i]);
        for (size_t i = 0; i < t->nc && k == 0; i++)
                k = pathlist_add(out, t->c[i]);
        return k;
}

/* Only the entries of s that were asked for (the stat job's output is the user's: hostile). */
static void scan_keep_touched(struct scan *s, const struct touched *t) {
        size_t j = 0;

        for (size_t i = 0; i < s->n; i++) {
                if (touched_has(t, s->v[i].path))
                        s->v[j++] = s->v[i];
                else
                        free(s->v[i].path);
        }
        s->n = j;
}

/* The entries of what t names, as they are on disk now, into *now (as the user): begun by
 * stat_touched_start, which may run while the caller does something else. */
static int stat_touched_start(struct restore *r, const struct touched *t, struct pgsmb_stat_job *sj) {
        char err[512] = "";
        struct pbuf list;
        int k;

        pbuf_init_large(&list);
        if ((k = touched_list(t, &list)) < 0 ||
            (k = pgsmb_stat_paths_start(&r->pu, r->cfg.home, &list, sj, err, sizeof err)) < 0)
                snprintf(r->why, sizeof r->why, "cannot look at %s: %s", r->cfg.home,
                         k == -ENOMEM ? "out of memory" : err);
        pbuf_free(&list);
        return k;
}

static int stat_touched_wait(struct restore *r, const struct touched *t, struct pgsmb_stat_job *sj,
                             struct scan *now) {
        char err[512] = "";
        int k;

        scan_free(now);
        if ((k = pgsmb_stat_paths_wait(sj, r->cfg.home, now, err, sizeof err)) < 0)
                snprintf(r->why, sizeof r->why, "cannot look at %s: %s", r->cfg.home, err);
        else
                scan_keep_touched(now, t);
        return k;
}

static int stat_touched(struct restore *r, const struct touched *t, struct scan *now) {
        struct pgsmb_stat_job sj;
        int k = stat_touched_start(r, t, &sj);

        return k < 0 ? k : stat_touched_wait(r, t, &sj, now);
}

/* Changes made here after the last logoff's walk (a process that outlived the session) to what
 * the catch-up would write or remove: `now` holds the entries of those paths on disk, rec what
 * the logoff recorded. A directory the new version keeps as a directory does not count (its
 * mode and times become the manifest's); one it removes counts when it changed (a file was made
 * or removed in it). The first one goes into clash; their count is returned. */
static size_t local_clashes(const struct scan *rec, const struct scan *now, const struct manifest *m,
                            char *const *changed, size_t nchanged, char *const *deleted, size_t ndeleted,
                            char *clash, size_t clashlen) {
        size_t n = 0;

        for (size_t i = 0; i < nchanged + ndeleted; i++) {
                bool del = i >= nchanged;
                const char *p = del ? deleted[i - nchanged] : changed[i];
                const struct scan_entry *was = scan_find(rec, p), *is = scan_find(now, p);
                const struct manifest_entry *me = del ? NULL : manifest_find(m, p);
                bool differs;

                if (me && me->type == 'd' && (!is || is->type == 'd') && (!was || was->type == 'd'))
                        continue;
                if (del && !is)
                        continue; /* gone here too */
                differs = !was != !is || (was && is && !scan_entry_same(was, is));
                if (differs && n++ == 0)
                        snprintf(clash, clashlen, "%s", p);
        }
        return n;
}

/* After a catch-up: what it wrote is there as m says, what it removed is gone. (Other paths may
 * hold this machine's own later changes: the record says so.) */
static int v2_matches_touched(struct restore *r, const struct manifest *m, const struct scan *s,
                              char *const *changed, size_t nchanged, char *const *deleted, size_t ndeleted) {
        for (size_t i = 0; i < nchanged; i++) {
                const struct manifest_entry *me = manifest_find(m, changed[i]);
                const struct scan_entry *se = scan_find(s, changed[i]);
                if (!se || se->type != me->type || (me->type == 'f' && se->size != me->size)) {
                        snprintf(r->why, sizeof r->why, "'%s' of version %" PRIu64 " is %s after the catch-up "
                                 "(damaged archive %s?)", me->path, m->number, se ? "different" : "missing",
                                 m->arch[me->archive].name);
                        return -EBADMSG;
                }
        }
        for (size_t i = 0; i < ndeleted; i++) {
                const struct scan_entry *se = scan_find(s, deleted[i]);
                /* a directory stays when something was made in it here (the next logoff saves it) */
                if (se && se->type != 'd') {
                        snprintf(r->why, sizeof r->why, "'%s', which version %" PRIu64 " removed, is still here",
                                 deleted[i], m->number);
                        return -EBADMSG;
                }
        }
        return 0;
}

/* Is e, an entry the catch-up wrote or one of m's directories, version m's content? A file:
 * while its size and mtime are the archive's (to the second when the archive kept no
 * nanoseconds: pax restricted keeps them only with an extended header); a directory: while its
 * mode and mtime are the manifest's; a symlink: as written. */
static bool written_known(const struct scan_entry *e, const struct manifest *m) {
        const struct manifest_entry *me = manifest_find(m, e->path);

        if (!me || me->type != e->type)
                return false;
        if (e->type == 'd')
                return me->mode == e->mode && me->mtime_s == e->mtime_s && me->mtime_ns == e->mtime_ns;
        return e->type != 'f' || (me->size == e->size && me->mtime_s == e->mtime_s &&
                                  (me->mtime_ns == e->mtime_ns || e->mtime_ns == 0));
}

/* The record after a catch-up, from the last logoff's (rec): its entries for what the catch-up
 * did not touch stay (a change made here since no longer matches them: the next logoff uploads
 * it), what it removed goes, and what it wrote, and the directories, are as they are now (now:
 * their entries), with ctime 0 where written_known says no (no file matches that: the next logoff
 * uploads it). Into *out (sorted). */
static int catch_up_record(const struct scan *rec, const struct scan *now, const struct manifest *m,
                           char *const *deleted, size_t ndeleted, struct scan *out) {
        size_t i = 0, j = 0;
        int k = 0;

        scan_init(out);
        while ((i < rec->n || j < now->n) && k == 0) {
                int c = i >= rec->n ? 1 : j >= now->n ? -1 : strcmp(rec->v[i].path, now->v[j].path);
                struct scan_entry e;

                if (c < 0 && pathlist_has(deleted, ndeleted, rec->v[i].path)) {
                        i++;
                        continue;
                }
                e = c < 0 ? rec->v[i] : now->v[j];
                if (c >= 0 && !written_known(&e, m))
                        e.ctime_s = 0, e.ctime_ns = 0;
                if (!(e.path = strdup(e.path)))
                        k = -ENOMEM;
                else if ((k = scan_add(out, &e)) < 0)
                        free(e.path);
                i += c <= 0;
                j += c >= 0;
        }
        if (k == 0) {
                out->sorted = true;
                return 0;
        }
        scan_free(out);
        return k;
}

/* Without a record of the last logoff: the scan of the whole home, trusted only where the
 * catch-up wrote (written_known); every other entry gets ctime 0. */
static void catch_up_record_unknown(struct scan *s, const struct manifest *m, char *const *changed,
                                    size_t nchanged) {
        for (size_t i = 0; i < s->n; i++) {
                struct scan_entry *e = &s->v[i];
                bool wrote = pathlist_has(changed, nchanged, e->path) || e->type == 'd';
                if (!wrote || !written_known(e, m))
                        e->ctime_s = 0, e->ctime_ns = 0;
        }
}

/* At most this many archives are extracted at once (each its own job: the paths of one version
 * are each in one archive, so they never write the same file). */
#define CATCHUP_JOBS 3

/* The archives use[] marks (downloaded and checked into fds[], closed here) into the home, in
 * place, each only for its entries among changed; expect: what the check saw at those paths
 * (NULL: not looked). 0, or -errno with r->why (every job started is waited for). */
static int catch_up_extract(struct restore *r, struct v2_restore *v, const struct manifest *m, const bool *use,
                            int *fds, char **changed, size_t nchanged, const struct scan *expect) {
        struct {
                struct pgsmb_child ch;
                struct pgsmb_transfer t;
                size_t arch;
        } jobs[CATCHUP_JOBS];
        size_t nj = 0, i = 0;
        long long t0 = now_ms();
        int k = 0;

        for (;;) {
                if (k == 0 && i < m->narch && nj < CATCHUP_JOBS) {
                        /* with what the check saw: a path changed since stops it (the window
                         * between the check and each rename) */
                        struct pgsmb_extract_opts o = {.in_place = true, .no_dirfix = true, .expect = expect};
                        struct pbuf want;
                        size_t count;

                        if (!use[i]) {
                                i++;
                                continue;
                        }
                        pbuf_init_large(&want);
                        if ((k = manifest_want(m, (uint32_t)i, changed, nchanged, &want, &count)) < 0)
                                snprintf(r->why, sizeof r->why, "out of memory");
                        o.want = &want;
                        if (k == 0 && (k = pgsmb_extract_fd_start(fds[i], &r->pu, r->cfg.home, &r->cfg.lim, &o,
                                                                  &jobs[nj].ch, &jobs[nj].t)) < 0)
                                snprintf(r->why, sizeof r->why, "%s", jobs[nj].t.err);
                        pbuf_free(&want);
                        close(fds[i]);
                        fds[i] = -1;
                        if (k == 0)
                                jobs[nj++].arch = i;
                        i++;
                        continue;
                }
                if (nj == 0)
                        break;
                /* the oldest first: its report */
                int kw = pgsmb_extract_fd_wait(&jobs[0].ch, &jobs[0].t);
                if (kw < 0 && k == 0) {
                        k = kw;
                        snprintf(r->why, sizeof r->why, "%s", jobs[0].t.err);
                } else if (kw == 0) {
                        v->bytes += jobs[0].t.stats.bytes;
                        v->files += jobs[0].t.stats.files;
                        v->compressed += m->arch[jobs[0].arch].size;
                        v->archives++;
                }
                memmove(&jobs[0], &jobs[1], --nj * sizeof jobs[0]);
        }
        v->extract_ms += now_ms() - t0;
        return k;
}

/* 1 when the home was brought from `mine` to the current version, 0 when a catch-up is not worth
 * it (the caller restores the whole profile), 2 when the home changed here since its last logoff
 * where the current version changed it too (it is used as it is: its next logoff merges or keeps
 * a conflict copy), -errno when it failed (the caller restores the whole profile: the home then
 * holds part of the changes, and a whole restore replaces it). */
static int v2_catch_up(struct restore *r, struct store *st, struct v2_restore *v, const struct manifest *mine) {
        const struct manifest *m = &v->vs.cur;
        char **changed = NULL, **deleted = NULL, err[512];
        size_t nchanged = 0, ndeleted = 0;
        uint64_t need = 0, full = 0;
        bool *use = calloc(m->narch ? m->narch : 1, sizeof *use);
        struct scan rec, now;
        bool have_rec, written = false;
        struct touched tc = {0};
        int *fds = NULL, k;

        long long t_start = now_ms(), t_checked = 0, t_applied = 0;

        scan_init(&now);
        have_rec = pgsmb_record_load(r->state_dir, r->cfg.user, r->state.version, &rec) == 0;
        if (!use) {
                k = -ENOMEM;
                goto out;
        }
        if ((k = manifest_diff(mine, m, &changed, &nchanged, &deleted, &ndeleted)) < 0)
                goto out;
        tc = (struct touched){.a = changed, .na = nchanged, .b = deleted, .nb = ndeleted};
        if ((k = touched_parents(&tc)) < 0)
                goto out;
        for (size_t i = 0; i < nchanged; i++)
                use[manifest_find(m, changed[i])->archive] = true;
        /* sizes from the store (a hostile one may say anything): sums that saturate */
        for (size_t i = 0; i < m->narch; i++) {
                uint64_t sz = m->arch[i].size;
                full = full > UINT64_MAX - sz ? UINT64_MAX : full + sz;
                if (use[i])
                        need = need > UINT64_MAX - sz ? UINT64_MAX : need + sz;
        }
        if (need > CATCHUP_MAX_BYTES || need > full / 2) {
                pgina_log(r->ctx, LOG_INFO, "%s: version %" PRIu64 " differs from %" PRIu64 " here by %.1f MiB of "
                          "%.1f MiB: restored whole", r->cfg.user, m->number, mine->number, need / 1048576.0,
                          full / 1048576.0);
                k = 0;
                goto out;
        }
        /* Every archive it needs, downloaded and checked before anything is written (a failure
         * here leaves the home as it was) */
        if (!(fds = malloc(m->narch * sizeof *fds))) {
                k = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < m->narch; i++)
                fds[i] = -1;
        /* A process that outlived the last session may have changed the home after its logoff's
         * walk: such a change the catch-up would overwrite keeps the home as it is. Only what
         * the catch-up touches is looked at, while the archives download (what changes after
         * the look stops the extraction right before its rename: the expectation). */
        struct pgsmb_stat_job sj;
        bool looking = have_rec;
        if (looking && (k = stat_touched_start(r, &tc, &sj)) < 0)
                goto out;
        for (size_t i = 0; i < m->narch; i++) {
                char rel[1200];
                if (!use[i])
                        continue;
                long long t0 = now_ms();
                if ((k = v2_rel(&v->p, m->arch[i].name, rel, sizeof rel)) < 0 ||
                    (k = fetch_verified(r, st, rel, &m->arch[i], &fds[i])) < 0)
                        break;
                v->download_ms += now_ms() - t0;
        }
        if (k < 0) {
                if (looking) {
                        char why[sizeof r->why];
                        memcpy(why, r->why, sizeof why); /* the download's reason stays */
                        (void)stat_touched_wait(r, &tc, &sj, &now);
                        memcpy(r->why, why, sizeof why);
                }
                goto out;
        }
        if (have_rec) {
                char clash[PATH_MAX] = "";
                size_t n;
                if ((k = stat_touched_wait(r, &tc, &sj, &now)) < 0)
                        goto out;
                if ((n = local_clashes(&rec, &now, m, changed, nchanged, deleted, ndeleted, clash, sizeof clash))) {
                        pgina_log(r->ctx, LOG_WARNING, "%s: '%s'%s changed here after the last logoff, and version %"
                                  PRIu64 " changes it too: the home is used as it is (version %" PRIu64 "); its "
                                  "next logoff merges the two or keeps a conflict copy", r->cfg.user, clash,
                                  n > 1 ? " (and others)" : "", m->number, mine->number);
                        k = 2;
                        goto out;
                }
        }
        t_checked = now_ms();
        written = true; /* from the first job on */
        if ((k = catch_up_extract(r, v, m, use, fds, changed, nchanged, have_rec ? &now : NULL)) < 0)
                goto out;
        if (ndeleted) {
                struct pbuf list;
                pbuf_init_large(&list);
                for (size_t i = 0; i < ndeleted && k == 0; i++)
                        k = pathlist_add(&list, deleted[i]);
                written = true;
                if (k == 0 && (k = pgsmb_delete_paths(&r->pu, r->cfg.home, &list, have_rec ? &now : NULL, err,
                                                      sizeof err)) < 0)
                        snprintf(r->why, sizeof r->why, "cannot remove what version %" PRIu64 " deleted: %s",
                                 m->number, err);
                pbuf_free(&list);
                if (k < 0)
                        goto out;
        }
        t_applied = now_ms();
        if (have_rec) {
                /* The directories it wrote get the manifest's mode and mtime; those right above
                 * what it touched get the manifest's mtime back, and keep their mode (a chmod
                 * made here stays, and the next logoff saves it); no other is touched. */
                struct scan dirs;
                scan_init(&dirs);
                for (size_t i = 0; i < nchanged + tc.nc && k == 0; i++) {
                        const char *p = i < nchanged ? changed[i] : tc.c[i - nchanged];
                        const struct manifest_entry *me = manifest_find(m, p);
                        const struct scan_entry *was = i < nchanged ? NULL : scan_find(&now, p);
                        struct scan_entry e;
                        if (!me || me->type != 'd')
                                continue;
                        e = (struct scan_entry){.flag = '=', .type = 'd',
                                                .mode = was && was->type == 'd' ? was->mode : me->mode,
                                                .mtime_s = me->mtime_s, .mtime_ns = me->mtime_ns, .path = strdup(p)};
                        if (!e.path || (k = scan_add(&dirs, &e)) < 0) {
                                free(e.path);
                                k = -ENOMEM;
                        }
                }
                if (k == 0 && dirs.n && (k = pgsmb_fix_dirs(&r->pu, r->cfg.home, &dirs, err, sizeof err)) < 0)
                        snprintf(r->why, sizeof r->why, "cannot set the directories' modes in %s: %s", r->cfg.home, err);
                else if (k < 0)
                        snprintf(r->why, sizeof r->why, "out of memory");
                scan_free(&dirs);
                /* what the catch-up touched, as it is now */
                if (k < 0 || (k = stat_touched(r, &tc, &now)) < 0)
                        goto out;
                if ((k = v2_matches_touched(r, m, &now, changed, nchanged, deleted, ndeleted)) < 0)
                        goto out;
                scan_free(&v->scan);
                if ((k = catch_up_record(&rec, &now, m, deleted, ndeleted, &v->scan)) < 0) {
                        snprintf(r->why, sizeof r->why, "out of memory");
                        goto out;
                }
        } else {
                if ((k = v2_fix_and_scan(r, m, r->cfg.home, v)) < 0 ||
                    (k = v2_matches_touched(r, m, &v->scan, changed, nchanged, deleted, ndeleted)) < 0)
                        goto out;
                catch_up_record_unknown(&v->scan, m, changed, nchanged);
        }
        pgina_log(r->ctx, LOG_DEBUG, "%s: catch-up: record and check %lld ms, download %lld ms, extraction and "
                  "removals %lld ms, directories and record %lld ms", r->cfg.user,
                  t_checked - t_start - v->download_ms, v->download_ms, t_applied - t_checked,
                  now_ms() - t_applied);
        pgina_log(r->ctx, LOG_INFO, "%s: home brought from version %" PRIu64 " to %" PRIu64 " in place: %zu changed, "
                  "%zu removed (%.1f MiB from %u archive(s)) in %.1f s", r->cfg.user, mine->number, m->number,
                  nchanged, ndeleted, v->compressed / 1048576.0, v->archives, (now_ms() - v->t0) / 1000.0);
        k = 1;
out:
        for (size_t i = 0; fds && i < m->narch; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        free(fds);
        if (k < 0 && written)
                k = -EINPROGRESS; /* failed part-way: the home holds some of it */
        pathlist_free(tc.c, tc.nc);
        pathlist_free(changed, nchanged);
        pathlist_free(deleted, ndeleted);
        scan_free(&now);
        if (have_rec)
                scan_free(&rec);
        free(use);
        return k;
}

/* Does this home hold changes made here after its last logoff (a process that outlived the
 * session)? Compared with the record, the whole home: 1 with the first one in first (and their
 * count in *n), 0 without (or without a record to tell), -errno when it cannot be looked at. An
 * entry the record marked racy (ctime 0) counts only when it differs in more than its ctime; a
 * directory only when its mode or type changed (its times follow what is made in it). */
static int home_changed_here(struct restore *r, char *first, size_t firstlen, size_t *n) {
        struct scan rec, now;
        char err[512];
        size_t i = 0, j = 0;
        int k;

        *n = 0;
        if (pgsmb_record_load(r->state_dir, r->cfg.user, r->state.version[0] ? r->state.version : PGSMB_RECORD_NO_VERSION,
                              &rec) < 0)
                return 0;
        if ((k = pgsmb_scan_home(&r->pu, r->cfg.home, (const char *const *)r->cfg.exclude, &now, err,
                                 sizeof err)) < 0) {
                snprintf(r->why, sizeof r->why, "cannot scan %s: %s", r->cfg.home, err);
                scan_free(&rec);
                return k;
        }
        while (i < rec.n || j < now.n) {
                int c = i >= rec.n ? 1 : j >= now.n ? -1 : strcmp(rec.v[i].path, now.v[j].path);
                const struct scan_entry *a = c <= 0 ? &rec.v[i] : NULL, *b = c >= 0 ? &now.v[j] : NULL;
                bool differs;

                if (!a || !b)
                        differs = true;
                else if (a->type == 'd' && b->type == 'd')
                        differs = a->mode != b->mode;
                else if (a->ctime_s == 0 && a->ctime_ns == 0)
                        differs = a->type != b->type || a->mode != b->mode || a->ino != b->ino || a->size != b->size ||
                                  a->mtime_s != b->mtime_s || a->mtime_ns != b->mtime_ns;
                else
                        differs = !scan_entry_same(a, b);
                if (differs && (*n)++ == 0)
                        snprintf(first, firstlen, "%s", (a ? a : b)->path);
                i += c <= 0;
                j += c >= 0;
        }
        scan_free(&rec);
        scan_free(&now);
        return *n > 0;
}

/* ---- the decision ---- */

/* k > 0 with `restored`: the home is the current version now, v->scan its record. */
static int v2_done(struct restore *r, struct v2_restore *v, int k, bool restored) {
        char version[PGSMB_VERSION_MAX];

        if (k > 0 && restored) {
                v2_version_string(&v->vs.cur, version, sizeof version);
                snprintf(r->state.version, sizeof r->state.version, "%s", version);
                r->state.temporary = false;
                r->state.upload_failed = false;
                r->state.manifest_size = v->vs.cur_file_size;
                r->state.manifest_mtime = v2_listed_mtime(&v->p, &v->vs, v->vs.cur.number);
                r->state.pending[0] = 0;
                if (pgsmb_record_save(r->state_dir, r->cfg.user, version, &v->scan) < 0)
                        pgina_log(r->ctx, LOG_WARNING, "%s: cannot save the record of version %" PRIu64 ": the next "
                                  "logoff uploads everything", r->cfg.user, v->vs.cur.number);
                if (v2_local_save(r->state_dir, r->cfg.user, &v->vs.cur) < 0)
                        pgina_log(r->ctx, LOG_WARNING, "%s: cannot keep a copy of manifest %" PRIu64 " in %s: a "
                                  "catch-up here needs the store to keep it", r->cfg.user, v->vs.cur.number,
                                  r->state_dir);
                pgina_ctx_metric(r->ctx, "download_ms", (uint64_t)v->download_ms);
                pgina_ctx_metric(r->ctx, "extract_ms", (uint64_t)v->extract_ms);
                pgina_ctx_metric(r->ctx, "download_bytes", v->compressed);
        }
        scan_free(&v->scan);
        v2_state_free(&v->vs);
        return k;
}

int pgsmb_restore_v2(struct restore *r, struct store *st) {
        struct v2_restore v = {.p = {.dir = r->cfg.remote_dir, .filename = r->cfg.filename}, .t0 = now_ms()};
        long long t_listed;
        char id[MANIFEST_ID_LEN + 1] = "";
        uint64_t mine = 0;
        struct stat hs;
        bool have_home = lstat(r->cfg.home, &hs) == 0;
        bool from_v2 = v2_version_parse(r->state.version, &mine, id) == 0;
        int k;

        if ((k = v2_list(st, &v.p, &v.vs, r->why, sizeof r->why)) < 0)
                return v2_done(r, &v, k, false);
        /* A re-logon: the listing alone says the home is the current version (nothing above
         * it, its manifest's size as this machine saved or restored it). */
        if (have_home && !r->state.temporary && from_v2 && mine == v.vs.top && r->state.manifest_size &&
            v2_listed_size(&v.p, &v.vs, mine) == r->state.manifest_size && r->state.manifest_mtime &&
            v2_listed_mtime(&v.p, &v.vs, mine) == r->state.manifest_mtime) {
                pgina_log(r->ctx, LOG_INFO, "%s: home is already version %" PRIu64 ", no download", r->cfg.user, mine);
                return v2_done(r, &v, 1, false);
        }
        t_listed = now_ms();
        if ((k = v2_load_listed(st, &v.p, &v.vs, r->why, sizeof r->why)) < 0)
                return v2_done(r, &v, k, false);
        pgina_log(r->ctx, LOG_DEBUG, "%s: listed in %lld ms, manifest %" PRIu64 " read in %lld ms", r->cfg.user,
                  t_listed - v.t0, v.vs.cur.number, now_ms() - t_listed);
        if (v.vs.damaged)
                pgina_log(r->ctx, LOG_WARNING, "%s: %u damaged manifest(s) ignored: %s", r->cfg.user, v.vs.damaged,
                          v.vs.damaged_why);
        if (v.vs.cur.number == 0) {
                if (v.vs.top == 0)
                        return v2_done(r, &v, 0, false); /* format 1, or nothing yet */
                snprintf(r->why, sizeof r->why, "%s: no valid manifest of %s: %s", store_url(st), r->cfg.filename,
                         v.vs.damaged_why);
                return v2_done(r, &v, -EBADMSG, false);
        }
        if (!streq(v.vs.cur.user, r->cfg.user)) {
                snprintf(r->why, sizeof r->why, "%s: version %" PRIu64 " is the profile of '%s', not of %s",
                         store_url(st), v.vs.cur.number, v.vs.cur.user, r->cfg.user);
                return v2_done(r, &v, -EBADMSG, false);
        }
        if (have_home && !r->state.temporary && from_v2 && mine == v.vs.cur.number && streq(id, v.vs.cur.id)) {
                pgina_log(r->ctx, LOG_INFO, "%s: home is already version %" PRIu64 ", no download", r->cfg.user, mine);
                return v2_done(r, &v, 1, false);
        }
        if (have_home && !r->state.temporary && !r->state.upload_failed && from_v2 && mine < v.vs.cur.number) {
                struct manifest old;
                char why[600];
                /* what this home holds: this machine's copy of its manifest, else the store's */
                bool known = v2_local_load(r->state_dir, r->cfg.user, mine, id, &old) == 0;
                if (!known && v2_read_manifest(st, &v.p, mine, &old, why, sizeof why) == 0) {
                        known = streq(old.id, id);
                        if (!known)
                                manifest_free(&old);
                }
                if (known) {
                        k = v2_catch_up(r, st, &v, &old);
                        manifest_free(&old);
                        if (k == 2)
                                return v2_done(r, &v, 1, false);
                        if (k > 0)
                                return v2_done(r, &v, 1, true);
                        if (k == -EINPROGRESS) {
                                /* some of it is written: replacing the home now could take this
                                 * machine's own later changes with it */
                                pgina_log(r->ctx, LOG_WARNING, "%s: catching up from version %" PRIu64 " to %" PRIu64
                                          " failed part-way (%s): the home is used as it is; its next logoff keeps "
                                          "it beside version %" PRIu64 " (a merge or a conflict copy)", r->cfg.user,
                                          mine, v.vs.cur.number, r->why, v.vs.cur.number);
                                return v2_done(r, &v, 1, false);
                        }
                        if (k < 0)
                                pgina_log(r->ctx, LOG_WARNING, "%s: catching up from version %" PRIu64 " failed (%s): "
                                          "restoring the whole profile", r->cfg.user, mine, r->why);
                        v.bytes = v.files = v.compressed = 0;
                        v.archives = 0;
                } else
                        pgina_log(r->ctx, LOG_INFO, "%s: version %" PRIu64 " of this home is no longer in the store: "
                                  "restoring the whole profile", r->cfg.user, mine);
        }
        /* A whole restore replaces the home: not one that holds changes of its own no version
         * has (made after its last logoff). Also when the home is no version (its last logoff
         * kept a conflict copy or a merge): that logoff's record says what it held. */
        if (have_home && !r->state.temporary && !r->state.upload_failed && (from_v2 || !r->state.version[0])) {
                char first[PATH_MAX] = "", was[80] = "no version of the store";
                size_t n;
                if (from_v2)
                        snprintf(was, sizeof was, "version %" PRIu64, mine);
                if ((k = home_changed_here(r, first, sizeof first, &n)) != 0) {
                        if (k > 0)
                                pgina_log(r->ctx, LOG_WARNING, "%s: '%s'%s changed here after the last logoff: the "
                                          "home is used as it is (%s), not replaced by version %" PRIu64 "; its "
                                          "next logoff %s", r->cfg.user, first, n > 1 ? " (and others)" : "", was,
                                          v.vs.cur.number, from_v2 ? "merges the two or keeps a conflict copy"
                                                                   : "keeps a conflict copy");
                        else
                                pgina_log(r->ctx, LOG_WARNING, "%s: %s: the home is used as it is, not replaced by "
                                          "version %" PRIu64, r->cfg.user, r->why, v.vs.cur.number);
                        return v2_done(r, &v, 1, false);
                }
        }
        return v2_done(r, &v, v2_cold(r, st, &v, have_home), true);
}
