/* pgSMB store format 2: compaction. When the chain of the current version passes compact_deltas
 * deltas, or its deltas pass compact_percent % of its base, a new base is written from the stored
 * archives (never from the live home: the chain is restored, as the user, into a private
 * directory next to the home, checked against the manifest, then archived whole) and committed the
 * same way as a logoff's version: the next manifest, created exclusively, with the same content.
 * It runs in the logon notification, while the user works: never on a logon's or a logoff's
 * path. Another machine's commit in between wins; the compaction is tried again at a later logon. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/util.h>

#include "pgsmb-manifest.h"
#include "pgsmb-restore.h"
#include "pgsmb-v2.h"

#define COMPACT_FOREIGN_GRACE_S (24 * 3600)

static void compact_log(void *ud, int level, const char *fmt, ...) {
        struct restore *r = ud;
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        pgina_log(r->ctx, level, "%s: %s", r->cfg.user, buf);
}

bool pgsmb_compact_due(const struct pgsmb_cfg *c, const struct manifest *m) {
        uint64_t deltas = 0;

        if (m->narch < 2)
                return false;
        for (size_t i = 1; i < m->narch; i++)
                deltas += m->arch[i].size;
        return (c->compact_deltas && m->narch - 1 >= c->compact_deltas) ||
               (c->compact_percent && deltas * 100 > (uint64_t)c->compact_percent * m->arch[0].size);
}

/* This machine's home came from `from`: it is `to` now, content and record alike. */
static void compact_follow(struct restore *r, const struct manifest *from, const struct manifest *to, uint64_t size) {
        char old[PGSMB_VERSION_MAX], new[PGSMB_VERSION_MAX];
        struct pgsmb_state state;
        struct scan rec;

        /* under the state's lock: a logoff running now saves its own version, which this must
         * not overwrite with the compacted one */
        _cleanup_close_ int lock = pgsmb_state_lock(r->state_dir, r->cfg.user);

        v2_version_string(from, old, sizeof old);
        v2_version_string(to, new, sizeof new);
        if (lock < 0)
                pgina_log(r->ctx, LOG_WARNING, "%s: cannot lock the profile state in %s: %s", r->cfg.user,
                          r->state_dir, strerror(-lock));
        if (pgsmb_state_load(r->state_dir, r->cfg.user, &state) < 0 || !streq(state.version, old))
                return;
        if (pgsmb_record_load(r->state_dir, r->cfg.user, old, &rec) == 0) {
                (void)pgsmb_record_save(r->state_dir, r->cfg.user, new, &rec);
                scan_free(&rec);
        }
        (void)v2_local_save(r->state_dir, r->cfg.user, to);
        snprintf(state.version, sizeof state.version, "%s", new);
        state.manifest_size = size;
        state.manifest_mtime = 0; /* the next logon or logoff reads it once */
        (void)pgsmb_state_save(r->state_dir, r->cfg.user, &state);
}

/* After a commit of next that failed past its exclusive create: true when its manifest is in the
 * store whole and is ours. Anything else (it cannot be read now, or reads damaged: a write of
 * ours may still be landing) leaves the question open; why says what was seen. */
static bool compact_landed(struct store *st, const struct v2_profile *p, const struct manifest *next, char *why,
                           size_t whylen) {
        struct manifest m;
        int k = v2_read_manifest(st, p, next->number, &m, why, whylen);

        if (k == 0) {
                bool ours = streq(m.id, next->id);
                if (!ours)
                        snprintf(why, whylen, "it reads as another version (id %s)", m.id);
                manifest_free(&m);
                return ours;
        }
        return false;
}

/* The new base of m, archived from dir; committed as the next version. 1 done, 0 another machine
 * came first, -EINPROGRESS when its commit failed but may have landed (the new base stays),
 * other -errno (nothing of it is left). */
static int compact_commit(struct restore *r, struct store *st, const struct v2_profile *p, const struct v2_state *vs,
                          const char *dir, const char *host, const char *self) {
        const struct manifest *m = &vs->cur;
        struct pgsmb_user pu = r->pu;
        struct pgsmb_readback_target rt;
        struct manifest_archive added = {0};
        struct manifest next;
        struct store_creds creds;
        struct pgsmb_transfer t;
        char rel[1200], why[600], marks[PATH_MAX];
        uint64_t msize = 0;
        bool keep_base = false;
        struct scan scan;
        int k, mark;

        pu.home = dir;
        if ((k = v2_archive_name(p, self, added.name, sizeof added.name)) < 0 ||
            (k = v2_rel(p, added.name, rel, sizeof rel)) < 0)
                return k;
        /* a logoff here may prune while this uploads: the mark keeps the new base from it */
        snprintf(marks, sizeof marks, "%s/%s", r->state_dir, r->cfg.user);
        if ((mark = v2_upload_mark(marks, added.name)) < 0) {
                snprintf(r->why, sizeof r->why, "cannot mark the upload in %s: %s", r->state_dir, strerror(-mark));
                return mark;
        }
        pgsmb_store_creds(&r->cfg, &creds);
        rt = (struct pgsmb_readback_target){.url = r->cfg.share, .creds = &creds, .timeout_s = r->cfg.timeout};
        k = pgsmb_delta_stream(st, rel, &pu, NULL, &r->cfg.comp, NULL, &rt, NULL, NULL, &t, &scan);
        if (k == 0 && !t.verified)
                k = pgsmb_verify(st, rel, t.bytes, t.sha256, r->why, sizeof r->why);
        else if (k < 0)
                snprintf(r->why, sizeof r->why, "%s", t.err);
        if (k < 0)
                goto fail;
        added.size = t.bytes;
        pgsmb_hex(t.sha256, added.sha256);
        /* The new base holds every path of m, as m has it (the restore checked the tree): the
         * next version is m's manifest over that one archive, metadata unchanged. */
        if (scan.n != m->n) {
                snprintf(r->why, sizeof r->why, "the compacted tree holds %zu entries, version %" PRIu64 " %zu", scan.n,
                         m->number, m->n);
                k = -EBADMSG;
                goto fail;
        }
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(scan.v[i].path, m->v[i].path) != 0 || scan.v[i].type != m->v[i].type ||
                    scan.v[i].flag != '+' || (m->v[i].type == 'f' && scan.v[i].size != m->v[i].size)) {
                        snprintf(r->why, sizeof r->why, "the compacted tree differs from version %" PRIu64 " at '%s'",
                                 m->number, m->v[i].path);
                        k = -EBADMSG;
                        goto fail;
                }
        if ((k = manifest_copy(&next, m)) < 0 || !(next.arch = realloc(next.arch, sizeof *next.arch))) {
                snprintf(r->why, sizeof r->why, "out of memory");
                k = k < 0 ? k : -ENOMEM;
                manifest_free(&next);
                goto fail;
        }
        next.arch[0] = added;
        next.narch = 1;
        for (size_t i = 0; i < next.n; i++)
                next.v[i].archive = 0;
        next.number = (vs->top > m->number ? vs->top : m->number) + 1;
        next.parent = m->number;
        manifest_new_id(next.id);
        snprintf(next.user, sizeof next.user, "%s", r->cfg.user);
        snprintf(next.host, sizeof next.host, "%s", host);
        next.time = (int64_t)time(NULL);
        bool created = false;
        k = v2_commit_created(st, p, &next, &msize, &created, why, sizeof why);
        if (k < 0 && created) {
                /* It failed after its exclusive create (the write, the read-back, the close): the
                 * manifest may be there whole all the same, naming the new base. */
                char seen[600];
                if (compact_landed(st, p, &next, seen, sizeof seen)) {
                        pgina_log(r->ctx, LOG_WARNING, "%s: manifest %" PRIu64 " failed its read-back (%s), but reads "
                                  "whole now: committed", r->cfg.user, next.number, why);
                        k = 0;
                } else {
                        snprintf(r->why, sizeof r->why, "%s; whether version %" PRIu64 " is in the store cannot be "
                                 "told now (%s): its new base %s stays (a prune removes it when no version names it)",
                                 why, next.number, seen, added.name);
                        manifest_free(&next);
                        keep_base = true;
                        goto fail;
                }
        }
        if (k == -EEXIST) {
                pgina_log(r->ctx, LOG_INFO, "%s: another machine saved version %" PRIu64 " first: compaction at a "
                          "later logon", r->cfg.user, next.number);
                manifest_free(&next);
                k = 0;
                goto fail;
        }
        if (k < 0) {
                snprintf(r->why, sizeof r->why, "%s", why);
                manifest_free(&next);
                goto fail;
        }
        pgina_log(r->ctx, LOG_INFO, "%s: compacted version %" PRIu64 " (%zu archives) into version %" PRIu64 " (one "
                  "base, %.1f MiB compressed)", r->cfg.user, m->number, m->narch, next.number, t.bytes / 1048576.0);
        compact_follow(r, m, &next, msize);
        {
                struct v2_state now = {0};
                /* from the listing to the prune's end (v2_prune_lock) */
                _cleanup_close_ int prune_lock = v2_prune_lock(marks);
                if (prune_lock < 0)
                        pgina_log(r->ctx, LOG_WARNING, "%s: no prune: cannot lock %s.prune: %s", r->cfg.user, marks,
                                  strerror(-prune_lock));
                else if (v2_list(st, p, &now, why, sizeof why) == 0)
                        v2_prune(st, p, &now, &next, r->cfg.keep_versions, self, marks, (int64_t)time(NULL),
                                 COMPACT_FOREIGN_GRACE_S, compact_log, r);
                v2_state_free(&now);
        }
        manifest_free(&next);
        scan_free(&scan);
        v2_upload_unmark(mark, marks, added.name);
        return 1;
fail:
        if (!keep_base)
                (void)store_unlink(st, rel);
        scan_free(&scan);
        v2_upload_unmark(mark, marks, added.name);
        return keep_base ? -EINPROGRESS : k;
}

/* The store's prune, at logon beside the session (a logoff leaves it to this, see
 * v2_backstop_prune): when the listing shows a version older than keep_versions, from a
 * listing of its own under the prune lock. Not when a compaction committed: it pruned. */
static void logon_prune(struct restore *r, struct store *st, const struct v2_profile *p, const struct v2_state *vs,
                        const char *self) {
        char marks[PATH_MAX];

        if (v2_prune_due(p, vs, &vs->cur, r->cfg.keep_versions) &&
            snprintf(marks, sizeof marks, "%s/%s", r->state_dir, r->cfg.user) < (int)sizeof marks)
                v2_prune_now(st, p, &vs->cur, NULL, 0, r->cfg.keep_versions, self, marks, COMPACT_FOREIGN_GRACE_S,
                             compact_log, r);
}

void pgsmb_compact(struct pgina_ctx *ctx, struct pgina_user *u) {
        struct restore r = {.ctx = ctx, .u = u};
        struct v2_profile p;
        struct v2_state vs = {0};
        struct store *st = NULL;
        char staging[PATH_MAX] = "", host[256], self[V2_SELF_MAX];
        struct scan scan = {0};
        int k;

        r.state_dir = pgina_ctx_state_dir(ctx);
        if (pgsmb_cfg_load(ctx, u, &r.cfg, r.why, sizeof r.why) < 0 || r.cfg.archive_argv)
                goto out;
        if (pgina_account_lookup(r.cfg.user, &r.acc) <= 0 || r.acc.uid == 0)
                goto out;
        r.pu = (struct pgsmb_user){.name = r.cfg.user, .uid = r.acc.uid, .gid = r.acc.gid, .home = r.cfg.home};
        pgsmb_host_short(host, sizeof host);
        if ((k = v2_self(r.state_dir, host, self)) < 0)
                pgina_log(ctx, LOG_WARNING, "%s: %s/install-id or the boot id cannot be read (%s): archives of this job "
                          "get a name of its own (leftovers of this machine wait a day like another's)", r.cfg.user,
                          r.state_dir, strerror(-k));
        p = (struct v2_profile){.dir = r.cfg.remote_dir, .filename = r.cfg.filename};
        if (pgsmb_connect(ctx, &r.cfg, false, &st, r.why, sizeof r.why) < 0 ||
            v2_load(st, &p, &vs, r.why, sizeof r.why) < 0 || !vs.cur.number)
                goto out;
        if (!pgsmb_compact_due(&r.cfg, &vs.cur)) {
                logon_prune(&r, st, &p, &vs, self);
                goto out;
        }
        pgina_log(ctx, LOG_INFO, "%s: version %" PRIu64 " is a chain of %zu archives: writing a new base", r.cfg.user,
                  vs.cur.number, vs.cur.narch);
        if ((k = pgsmb_restore_staging_dir(&r, "compact", staging, sizeof staging)) < 0 ||
            mkdir(staging, 0700) < 0 || lchown(staging, r.acc.uid, r.acc.gid) < 0) {
                pgina_log(ctx, LOG_WARNING, "%s: no compaction: cannot create %s: %m", r.cfg.user, staging);
                if (staging[0])
                        rmdir(staging);
                staging[0] = 0;
                goto out;
        }
        bool unsure = false;
        if ((k = pgsmb_restore_v2_chain(&r, st, &vs.cur, staging, &scan)) >= 0) {
                k = compact_commit(&r, st, &p, &vs, staging, host, self);
                unsure = k == -EINPROGRESS;
        }
        if (k < 0)
                pgina_log(ctx, LOG_WARNING, "%s: compaction of version %" PRIu64 " failed%s: %s", r.cfg.user,
                          vs.cur.number, unsure ? "" : " (the store is unchanged)", r.why);
        /* no new base (failed, or another machine committed first): the prune still; not when the
         * new version may have landed (its base, unmarked now, is left to a later prune) */
        if (k <= 0 && !unsure)
                logon_prune(&r, st, &p, &vs, self);
out:
        if (staging[0])
                pgsmb_restore_remove_tree(&r, staging);
        scan_free(&scan);
        v2_state_free(&vs);
        if (st)
                store_close(st);
        pgina_account_done(&r.acc);
        pgsmb_cfg_done(&r.cfg);
}
