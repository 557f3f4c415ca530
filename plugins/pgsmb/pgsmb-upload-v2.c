/* pgSMB logoff, store format 2 (delta profiles): only what changed since the version this home
 * came from is uploaded, as a new archive under a unique name; then manifest N+1 is created
 * exclusively. Another machine's commit in between is merged when the two touch different paths,
 * else this machine's version is kept beside it as a conflict copy. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/util.h>

#include "pgsmb-manifest.h"
#include "pgsmb-scan.h"
#include "pgsmb-upload.h"
#include "pgsmb-v2.h"

/* Another machine's archive may be an upload in progress for this long. */
#define V2_FOREIGN_GRACE_S (24 * 3600)
/* A manifest slot that is taken but does not parse may be a commit in progress: re-read it this
 * many times, a second apart, before it counts as the leftover of a dead writer. */
#define V2_SLOT_WAITS 3
#define V2_COMMIT_TRIES 8

struct v2_upload {
        struct v2_profile p;
        struct v2_state vs; /* the store before the upload */
        struct manifest base; /* the version this home came from (number 0: none) */
        struct manifest next; /* what the commit writes */
        struct scan record, scan;
        bool have_record;
        bool migrate; /* the store holds format 1: it goes aside once this commits */
        bool conflict; /* the store changed in a way this machine did not see: a copy */
        bool merged; /* committed onto another machine's version: the home lacks its changes */
        char v1_version[PGSMB_VERSION_MAX]; /* format 1's version, to keep its archive under */
        char arch_name[300], arch_rel[1200], hex[65];
        char marks[PATH_MAX]; /* state_dir/USER: the archive is marked as an upload in progress */
        int mark_fd; /* v2_upload_mark's, held until the end (-1: none) */
        /* The listing right after the commit (v2_bypassed) */
        struct v2_state after;
        bool have_after;
        struct pgsmb_transfer t;
        long long t0, t_upload, t_verify;
        struct timespec walk_start; /* realtime: the racy-clean rule's bound (scan_mark_racy) */
        uint64_t added, deleted, changed_bytes, manifest_size;
};

static void v2_log(void *ud, int level, const char *fmt, ...) {
        struct upload *up = ud;
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        pgina_log(up->ctx, level, "%s: %s", up->cfg.user, buf);
}

static void v2_after_drop(struct v2_upload *v) {
        v2_state_free(&v->after);
        v->have_after = false;
}

static void v2_done(struct v2_upload *v) {
        v2_after_drop(v);
        v2_upload_unmark(v->mark_fd, v->marks, v->arch_name);
        v->mark_fd = -1;
        v2_state_free(&v->vs);
        manifest_free(&v->base);
        manifest_free(&v->next);
        scan_free(&v->record);
        scan_free(&v->scan);
}

static int v2_load_settled(struct upload *up, struct store *st, struct v2_upload *v, struct v2_state *now);

/* An earlier logoff's commit whose read-back failed (state.pending): when the store holds it
 * whole, it built on this home's version, so this logoff builds on it in turn (this home's
 * record still holds: that commit only changed paths that differed from it). Else it did not
 * land. The caller's mine/id become the pending version's. */
static int v2_pending(struct upload *up, struct store *st, struct v2_upload *v, uint64_t *mine, char *id) {
        char pid[MANIFEST_ID_LEN + 1], why[600];
        struct manifest m;
        uint64_t pn;
        int k;

        if (!up->state.pending[0])
                return 0;
        if (v2_version_parse(up->state.pending, &pn, pid) < 0 || pn <= *mine) {
                up->state.pending[0] = 0;
                return 0;
        }
        k = v2_read_manifest(st, &v->p, pn, &m, why, sizeof why);
        if (k == 0 && streq(m.id, pid) && m.parent == *mine) {
                pgina_log(up->ctx, LOG_NOTICE, "%s: version %" PRIu64 ", whose commit this machine could not see "
                          "land, is in the store: this logoff builds on it", up->cfg.user, pn);
                *mine = pn;
                memcpy(id, pid, sizeof pid);
                manifest_free(&m);
                return 0; /* pending until this logoff commits */
        }
        manifest_free(&m);
        if (k < 0 && k != -ENOENT && k != -EBADMSG && k != -EFBIG) {
                snprintf(up->why, sizeof up->why, "%s", why);
                return k; /* cannot tell now */
        }
        up->state.pending[0] = 0; /* it did not land */
        return 0;
}

/* The home is version m now, v->scan its record. */
static void v2_home_is(struct upload *up, struct v2_upload *v, const struct manifest *m, uint64_t manifest_size) {
        char version[PGSMB_VERSION_MAX];

        v2_version_string(m, version, sizeof version);
        snprintf(up->state.version, sizeof up->state.version, "%s", version);
        up->state.pending[0] = 0;
        up->state.manifest_size = manifest_size;
        up->state.manifest_mtime = 0; /* until a listing shows it */
        /* lingering processes may still write: what changed as the walk passed is compared
         * again next time */
        scan_mark_racy(&v->scan, &v->walk_start);
        if (pgsmb_record_save(up->state_dir, up->cfg.user, version, &v->scan) < 0)
                pgina_log(up->ctx, LOG_WARNING, "%s: cannot save the record of version %" PRIu64 ": the next "
                          "logoff uploads everything", up->cfg.user, m->number);
        if (v2_local_save(up->state_dir, up->cfg.user, m) < 0)
                pgina_log(up->ctx, LOG_WARNING, "%s: cannot keep a copy of manifest %" PRIu64 " in %s: a "
                          "catch-up here needs the store to keep it", up->cfg.user, m->number, up->state_dir);
}

/* What this home was made from, and whether the store still agrees. */
static int v2_decide(struct upload *up, struct store *st, struct v2_upload *v) {
        uint64_t mine = 0;
        char id[MANIFEST_ID_LEN + 1] = "";
        bool from_v2 = v2_version_parse(up->state.version, &mine, id) == 0;
        int k;

        if ((k = v2_list(st, &v->p, &v->vs, up->why, sizeof up->why)) < 0)
                return k;
        /* The usual logoff: the listing alone says this home's version is still the newest (its
         * manifest's size as this machine saved or restored it), and this machine keeps a copy
         * of it: no download. */
        if (from_v2 && !up->state.pending[0] && mine == v->vs.top && up->state.manifest_size &&
            v2_listed_size(&v->p, &v->vs, mine) == up->state.manifest_size && up->state.manifest_mtime &&
            v2_listed_mtime(&v->p, &v->vs, mine) == up->state.manifest_mtime &&
            v2_local_load(up->state_dir, up->cfg.user, mine, id, &v->vs.cur) == 0) {
                v->vs.cur_file_size = up->state.manifest_size;
                return manifest_copy(&v->base, &v->vs.cur);
        }
        if ((k = v2_load_settled(up, st, v, &v->vs)) < 0)
                return k;
        if ((k = v2_pending(up, st, v, &mine, id)) < 0)
                return k;
        if (v->vs.damaged)
                pgina_log(up->ctx, LOG_WARNING, "%s: %u damaged manifest(s) above version %" PRIu64 " ignored: %s",
                          up->cfg.user, v->vs.damaged, v->vs.cur.number, v->vs.damaged_why);
        if (v->vs.cur.number == 0) {
                if (v->vs.have_v1) {
                        /* Format 1: replaced only when this machine restored its current version. */
                        struct pgsmb_meta meta;
                        char meta_rel[1100];
                        snprintf(meta_rel, sizeof meta_rel, "%s.meta", up->cfg.rel_archive);
                        if (pgsmb_meta_read(st, meta_rel, &meta) == 0 && up->state.version[0] &&
                            streq(meta.version, up->state.version)) {
                                v->migrate = true;
                                snprintf(v->v1_version, sizeof v->v1_version, "%s", meta.version);
                        } else
                                v->conflict = true;
                } else
                        v->conflict = up->state.version[0] != 0; /* its profile is gone from the store */
                return 0;
        }
        if (!from_v2) {
                v->conflict = true; /* the store moved to format 2 since this home was restored */
                return 0;
        }
        if (mine == v->vs.cur.number && streq(id, v->vs.cur.id)) {
                /* the usual case: ours is the current version */
                k = manifest_copy(&v->base, &v->vs.cur);
                return k;
        }
        /* Another machine committed since: we build on ours, then merge. Ours from this
         * machine's copy, else the store's (which may have pruned it). */
        if (v2_local_load(up->state_dir, up->cfg.user, mine, id, &v->base) == 0)
                return 0;
        k = v2_read_manifest(st, &v->p, mine, &v->base, up->why, sizeof up->why);
        if (k < 0 || !streq(v->base.id, id)) {
                manifest_free(&v->base);
                v->conflict = true;
                return k == -ENOENT || k == -EBADMSG || k == 0 ? 0 : k;
        }
        return 0;
}

/* The delta (everything when there is no record of what the base holds) to its unique name,
 * verified. */
static int v2_archive(struct upload *up, struct store *st, struct v2_upload *v) {
        struct pgsmb_readback_target rt;
        struct store_creds creds;
        int k;

        v->t0 = now_ms();
        clock_gettime(CLOCK_REALTIME, &v->walk_start);
        _cleanup_(pgsmb_delta_early_abortp) struct pgsmb_early *early = NULL;
        if (up->record_loaded && v->base.number && !v->conflict) {
                /* loaded before the connect, and its delta started then: the same version's */
                v->record = up->record;
                scan_init(&up->record);
                up->record_loaded = false;
                v->have_record = true;
                early = TAKE_PTR(up->early);
                if (early) { /* (its times on the logoff's path count from here, as without it) */
                        v->walk_start = up->early_walk_start;
                        pgina_log(up->ctx, LOG_DEBUG, "%s: the delta began %lld ms before this upload took it, "
                                  "before the connect", up->cfg.user, v->t0 - up->early_ms);
                }
        } else
                v->have_record = v->base.number && !v->conflict &&
                                 pgsmb_record_load(up->state_dir, up->cfg.user, up->state.version, &v->record) == 0;
        pgsmb_delta_early_abort(TAKE_PTR(up->early)); /* not the delta this upload makes */
        if (!v->have_record && v->base.number)
                pgina_log(up->ctx, LOG_INFO, "%s: no record of version %" PRIu64 " here: the whole home is uploaded",
                          up->cfg.user, v->base.number);
        if ((k = v2_archive_name(&v->p, up->self, v->arch_name, sizeof v->arch_name)) < 0 ||
            (k = v2_rel(&v->p, v->arch_name, v->arch_rel, sizeof v->arch_rel)) < 0) {
                snprintf(up->why, sizeof up->why, "cannot name the archive: %s", strerror(-k));
                return k;
        }
        /* until the end of this logoff, a prune running beside it here (a compaction) leaves the
         * archive alone */
        snprintf(v->marks, sizeof v->marks, "%s/%s", up->state_dir, up->cfg.user);
        if ((v->mark_fd = v2_upload_mark(v->marks, v->arch_name)) < 0) {
                k = v->mark_fd;
                snprintf(up->why, sizeof up->why, "cannot mark the upload in %s: %s", up->state_dir, strerror(-k));
                return k;
        }
        pgsmb_store_creds(&up->cfg, &creds);
        rt = (struct pgsmb_readback_target){.url = up->cfg.share, .creds = &creds, .timeout_s = up->cfg.timeout};
        if (early)
                k = pgsmb_delta_early_finish(TAKE_PTR(early), st, v->arch_rel, &rt, pgsmb_upload_progress, up, &v->t,
                                             &v->scan);
        else
                k = pgsmb_delta_stream(st, v->arch_rel, &up->pu, (const char *const *)up->cfg.exclude, &up->cfg.comp,
                                       v->have_record ? &v->record : NULL, &rt, pgsmb_upload_progress, up, &v->t,
                                       &v->scan);
        v->t_upload = now_ms();
        if (k == 0 && !v->t.verified)
                k = pgsmb_verify(st, v->arch_rel, v->t.bytes, v->t.sha256, up->why, sizeof up->why);
        else if (k < 0)
                snprintf(up->why, sizeof up->why, "%s", v->t.err);
        if (k < 0) {
                (void)store_unlink(st, v->arch_rel);
                return k;
        }
        v->t_verify = now_ms();
        pgsmb_hex(v->t.sha256, v->hex);
        return 0;
}

/* The next manifest from the scan: the base's entries where nothing changed. */
static int v2_build(struct upload *up, struct v2_upload *v) {
        struct manifest_archive added = {.size = v->t.bytes};
        int k;

        snprintf(added.name, sizeof added.name, "%s", v->arch_name);
        snprintf(added.sha256, sizeof added.sha256, "%s", v->hex);
        k = manifest_from_scan(&v->next, v->have_record ? &v->base : NULL, &v->scan, &added);
        if (k < 0) {
                snprintf(up->why, sizeof up->why, "cannot make the next version from the scan of %s: %s",
                         up->cfg.home, k == -ESTALE ? "it does not match the record" : strerror(-k));
                return k;
        }
        v->next.parent = v->conflict ? 0 : v->vs.cur.number;
        v->next.number = (v->vs.top > v->vs.cur.number ? v->vs.top : v->vs.cur.number) + 1;
        manifest_new_id(v->next.id);
        snprintf(v->next.user, sizeof v->next.user, "%s", up->cfg.user);
        snprintf(v->next.host, sizeof v->next.host, "%s", up->host);
        v->next.time = (int64_t)time(NULL);
        for (size_t i = 0; i < v->scan.n; i++)
                if (v->scan.v[i].flag == '+') {
                        v->added++;
                        v->changed_bytes += v->scan.v[i].type == 'f' ? v->scan.v[i].size : 0;
                }
        if (v->have_record)
                for (size_t i = 0; i < v->base.n; i++)
                        if (!manifest_find(&v->next, v->base.v[i].path))
                                v->deleted++;
        return 0;
}

/* The home here is no version of the store (a conflict copy, a merge): the next logon restores
 * the current one. Its manifest copy goes with its version; its record stays, as the record of
 * no version (the home as this logoff walked it): the next logon replaces the home only while
 * nothing changed it since. */
static void v2_home_is_no_version(struct upload *up, struct v2_upload *v) {
        up->state.version[0] = 0;
        up->state.pending[0] = 0;
        scan_mark_racy(&v->scan, &v->walk_start);
        if (pgsmb_record_save(up->state_dir, up->cfg.user, PGSMB_RECORD_NO_VERSION, &v->scan) < 0) {
                pgina_log(up->ctx, LOG_WARNING, "%s: cannot save the record of the home as it is: the next logon "
                          "cannot tell a change made here after this logoff", up->cfg.user);
                pgsmb_record_remove(up->state_dir, up->cfg.user);
        }
        v2_local_remove(up->state_dir, up->cfg.user);
}

static int v2_conflict(struct upload *up, struct store *st, struct v2_upload *v, const char *how) {
        char name[400];
        int k = v2_write_conflict(st, &v->p, &v->next, up->host, name, sizeof name, up->why, sizeof up->why);

        if (k < 0)
                return k;
        /* As with format 1: the next logon here restores the store's version (this one is kept
         * in the copy). */
        v2_home_is_no_version(up, v);
        pgina_log(up->ctx, LOG_WARNING, "%s: %s: saved as conflict copy %s", up->cfg.user, how, name);
        pgsmb_mail_admin(up->ctx, up->u, "profile conflict",
                         "The profile of %s changed on another machine since it was restored on %s (%s).\n"
                         "This machine's copy was saved beside it as %s/%s%s%s; nothing was overwritten.\n"
                         "pginactl profile restore %s %s makes it the current version.\n",
                         up->cfg.user, up->host, how, store_url(st), v->p.dir, v->p.dir[0] ? "/" : "", name,
                         up->cfg.user, name);
        return 1;
}

/* Another machine committed `now->cur` since this home's version: merge onto it. 1 to commit
 * v->next (the merge), 0 when it became a conflict copy (done), -errno. */
static int v2_merge(struct upload *up, struct store *st, struct v2_upload *v, const struct v2_state *now) {
        struct manifest merged;
        char why[400];
        int k;

        if (v->base.number == 0 || !v->have_record) {
                v->conflict = true;
                return v2_conflict(up, st, v, "another machine saved it first") > 0 ? 0 : -EIO;
        }
        k = manifest_rebase(&merged, &v->base, &v->next, &now->cur, why, sizeof why);
        if (k == -EBUSY) {
                pgina_log(up->ctx, LOG_NOTICE, "%s: version %" PRIu64 " from %s clashes with this logoff: %s",
                          up->cfg.user, now->cur.number, now->cur.host, why);
                v->conflict = true;
                k = v2_conflict(up, st, v, why);
                return k > 0 ? 0 : k;
        }
        if (k < 0) {
                snprintf(up->why, sizeof up->why, "cannot merge with version %" PRIu64 ": %s", now->cur.number,
                         strerror(-k));
                return k;
        }
        pgina_log(up->ctx, LOG_INFO, "%s: version %" PRIu64 " from %s came first; this logoff's changes are merged "
                  "onto it", up->cfg.user, now->cur.number, now->cur.host);
        v->merged = true;
        merged.parent = now->cur.number;
        merged.number = (now->top > now->cur.number ? now->top : now->cur.number) + 1;
        memcpy(merged.id, v->next.id, sizeof merged.id);
        memcpy(merged.user, v->next.user, sizeof merged.user);
        memcpy(merged.host, v->next.host, sizeof merged.host);
        merged.time = v->next.time;
        manifest_free(&v->next);
        v->next = merged;
        /* a later merge starts from theirs: what ours adds to it is what the merge added */
        manifest_free(&v->base);
        k = manifest_copy(&v->base, &now->cur);
        return k < 0 ? k : 1;
}

/* How long a manifest that does not parse yet may be another machine's commit in progress: its
 * writer's calls are each bounded by the store's timeout. */
static unsigned slot_wait_s(const struct upload *up) {
        unsigned t = 2 * (up->cfg.timeout ? up->cfg.timeout : 15);
        return t > 120 ? 120 : t;
}

/* The store as it is now; while its highest manifest does not parse (a commit in progress?) and
 * is younger than slot_wait_s, wait for it. */
static int v2_load_settled(struct upload *up, struct store *st, struct v2_upload *v, struct v2_state *now) {
        long long until = now_ms() + 1000LL * slot_wait_s(up);
        int k;

        for (;;) {
                v2_state_free(now);
                if ((k = v2_load(st, &v->p, now, up->why, sizeof up->why)) < 0)
                        return k;
                if (now->top <= now->cur.number || now_ms() >= until)
                        return 0;
                int64_t mtime = 0;
                for (size_t i = 0; i < now->nents; i++)
                        if (manifest_name_number(v->p.filename, now->ents[i].name) == now->top)
                                mtime = now->ents[i].mtime;
                if (mtime && (int64_t)time(NULL) - mtime > (int64_t)slot_wait_s(up))
                        return 0; /* long dead */
                sleep(1);
        }
}

/* Another machine took the slot: wait for its manifest (a commit in progress), then merge onto
 * it. 1 to try again with v->next rebuilt, 0 when it became a conflict copy (done), -errno. */
static int v2_rebase(struct upload *up, struct store *st, struct v2_upload *v) {
        struct v2_state now = {0};
        int k;

        if ((k = v2_load_settled(up, st, v, &now)) < 0)
                return k;
        if (now.cur.number < v->next.number) {
                /* a dead writer's half manifest: the next free number, same parent */
                pgina_log(up->ctx, LOG_WARNING, "%s: manifest %" PRIu64 " is damaged (%s): committing as %" PRIu64,
                          up->cfg.user, v->next.number, now.damaged_why, now.top + 1);
                v->next.number = now.top + 1;
                v2_state_free(&now);
                return 1;
        }
        k = v2_merge(up, st, v, &now);
        v2_state_free(&now);
        return k;
}

/* After our commit of v->next: did another machine, taking our slot for a dead writer's, commit
 * a version above it that does not build on it? Then ours is merged onto that one. 1 when it
 * was (commit v->next again), 0 when ours stands, or when a conflict copy was made, -errno.
 * The listing is kept (v->after: the manifest's mtime, whether a prune is due); the manifests
 * above ours are read only when there are any. */
static int v2_bypassed(struct upload *up, struct store *st, struct v2_upload *v) {
        struct v2_state now = {0};
        char why[300];
        int k = 0;

        v2_after_drop(v);
        if (v2_list(st, &v->p, &now, why, sizeof why) < 0) {
                v2_state_free(&now);
                return 0;
        }
        if (now.top > v->next.number && v2_load_listed(st, &v->p, &now, why, sizeof why) == 0 &&
            now.cur.number > v->next.number && now.cur.parent < v->next.number) {
                v2_after_drop(v);
                pgina_log(up->ctx, LOG_WARNING, "%s: version %" PRIu64 " from %s was committed over this logoff's %" PRIu64
                          " without it", up->cfg.user, now.cur.number, now.cur.host, v->next.number);
                k = v2_merge(up, st, v, &now);
                v2_state_free(&now);
                return k;
        }
        v->after = now;
        v->have_after = true;
        return 0;
}

/* Our commit of v->next failed after its exclusive create: is it there whole all the same (the
 * read-back failed, not the write)? */
static bool v2_landed(struct upload *up, struct store *st, struct v2_upload *v) {
        struct manifest m;
        char why[600];
        bool ours = v2_read_manifest(st, &v->p, v->next.number, &m, why, sizeof why) == 0 &&
                    streq(m.id, v->next.id);

        if (ours)
                pgina_log(up->ctx, LOG_WARNING, "%s: manifest %" PRIu64 " failed its read-back (%s), but reads whole "
                          "now: committed", up->cfg.user, v->next.number, up->why);
        manifest_free(&m);
        return ours;
}

static int v2_commit_loop(struct upload *up, struct store *st, struct v2_upload *v) {
        for (unsigned i = 0; i < V2_COMMIT_TRIES; i++) {
                int k = v2_commit(st, &v->p, &v->next, &v->manifest_size, up->why, sizeof up->why);
                if (k < 0 && k != -EEXIST && v2_landed(up, st, v))
                        k = 0;
                if (k < 0 && k != -EEXIST && !v->merged && !v->conflict) {
                        /* It may have landed where this machine cannot see now: the next
                         * logoff looks for it, and builds on it if it did. */
                        v2_version_string(&v->next, up->state.pending, sizeof up->state.pending);
                        return k;
                }
                if (k == 0) {
                        bool was_conflict = v->conflict;
                        if ((k = v2_bypassed(up, st, v)) < 0)
                                return k;
                        if (k == 0)
                                return v->conflict && !was_conflict ? 0 : 1;
                        continue; /* merged onto the one above: commit again */
                }
                if (k != -EEXIST)
                        return k;
                if ((k = v2_rebase(up, st, v)) <= 0)
                        return k < 0 ? k : 0;
        }
        snprintf(up->why, sizeof up->why, "%d other commits came first; giving up for now", V2_COMMIT_TRIES);
        return -EAGAIN;
}

/* Format 1's archive becomes a kept version (pginactl profile list/restore still see it) and its
 * .meta goes, so a format-1 reader does not take it for the current profile. */
static void v2_migrate_done(struct upload *up, struct store *st, struct v2_upload *v) {
        char target[1200], meta_rel[1100];

        snprintf(target, sizeof target, "%s.v-%s", up->cfg.rel_archive, v->v1_version);
        snprintf(meta_rel, sizeof meta_rel, "%s.meta", up->cfg.rel_archive);
        if (store_rename(st, up->cfg.rel_archive, target, false) < 0)
                pgina_log(up->ctx, LOG_WARNING, "%s: format 1 archive not moved aside: %s", up->cfg.user, store_error(st));
        else
                (void)store_unlink(st, meta_rel);
        pgina_log(up->ctx, LOG_NOTICE, "%s: the profile is of store format 2 now; the format 1 archive is kept as %s",
                  up->cfg.user, target);
}

static void v2_report(struct upload *up, struct store *st, struct v2_upload *v) {
        struct pgsmb_transfer *t = &v->t;

        if (t->stats.skipped_links)
                pgina_log(up->ctx, LOG_WARNING, "%s: %" PRIu64 " symlink(s) pointing outside the home were not saved",
                          up->cfg.user, t->stats.skipped_links);
        pgina_log(up->ctx, LOG_INFO,
                  "%s: saved version %" PRIu64 " to %s/%s%s%s: %" PRIu64 " of %zu entries changed (%.1f MiB, "
                  "%.1f MiB compressed), %" PRIu64 " removed, %zu archive(s) in the chain, in %.1f s (archive, "
                  "upload%s %.1f s, verify %.1f s)",
                  up->cfg.user, v->next.number, store_url(st), v->p.dir, v->p.dir[0] ? "/" : "", v->arch_name,
                  v->added, v->scan.n, v->changed_bytes / 1048576.0, t->bytes / 1048576.0, v->deleted,
                  v->next.narch, (now_ms() - v->t0) / 1000.0, t->verified ? " and read-back" : "",
                  (v->t_upload - v->t0) / 1000.0, (v->t_verify - v->t_upload) / 1000.0);
        long long mid = t->mid_ms ? t->mid_ms : v->t_upload, end = t->end_ms ? t->end_ms : v->t_upload;
        pgina_log(up->ctx, LOG_DEBUG, "%s: delta: archiver's end at %lld ms, stored at %lld ms, verified at %lld ms",
                  up->cfg.user, mid - v->t0, end - v->t0, v->t_verify - v->t0);
        pgina_ctx_metric(up->ctx, "archive_ms", (uint64_t)(mid - v->t0));
        pgina_ctx_metric(up->ctx, "upload_ms", (uint64_t)(end > mid ? end - mid : 0));
        pgina_ctx_metric(up->ctx, "verify_ms", (uint64_t)(v->t_verify > end ? v->t_verify - end : 0));
        pgina_ctx_metric(up->ctx, "upload_bytes", t->bytes);
}

/* The prune is the logon's work, in the background (pgsmb_compact): a logoff leaves the version
 * that fell out of keep_versions for it. Only when the listing after the commit shows more than
 * that one (the logons' prune did not run: it failed, or this machine only logs off) does the
 * logoff prune, from its own listing under the prune lock: the store stays bounded. */
static void v2_backstop_prune(struct upload *up, struct store *st, struct v2_upload *v) {
        unsigned old = v2_prune_due(&v->p, &v->after, &v->next, up->cfg.keep_versions);

        if (old <= 1)
                return;
        pgina_log(up->ctx, LOG_INFO, "%s: %u versions older than keep_versions = %u in the store (no logon "
                  "pruned since): pruning", up->cfg.user, old, up->cfg.keep_versions);
        /* The version this logoff built on, as read or as this machine keeps it, when the
         * listing still shows its manifest as the decision saw it: not read again. */
        bool built_on = !v->merged && !v->conflict && v->base.number && v->base.number == v->vs.cur.number &&
                        streq(v->base.id, v->vs.cur.id);
        v2_prune_now(st, &v->p, &v->next, built_on ? &v->base : NULL, v->vs.cur_file_size, up->cfg.keep_versions,
                     up->self, v->marks, V2_FOREIGN_GRACE_S, v2_log, up);
}

int pgsmb_upload_v2(struct upload *up, struct store *st) {
        struct v2_upload v = {
                .p = {.dir = up->cfg.remote_dir, .filename = up->cfg.filename}, .mark_fd = -1};
        long long t_start = now_ms();
        char version[PGSMB_VERSION_MAX];
        int k;

        if ((k = v2_decide(up, st, &v)) < 0)
                goto out;
        /* A profile already of format 2 stays so; another becomes so when store_format says. */
        if (v.vs.cur.number == 0 && v.vs.top == 0 && (up->cfg.store_format < 2 || up->cfg.archive_argv)) {
                up->format1 = true;
                k = -EOPNOTSUPP;
                goto out;
        }
        if (up->cfg.archive_argv) {
                snprintf(up->why, sizeof up->why, "the profile in %s is of store format 2, which the external "
                         "program (compress_command) cannot write", store_url(st));
                k = -EINVAL;
                goto out;
        }
        long long t_decided = now_ms();
        if ((k = v2_archive(up, st, &v)) < 0 || (k = v2_build(up, &v)) < 0)
                goto out;
        long long t_built = now_ms(), t_committed = 0, t_saved = 0;
        if (!v.conflict && v.base.number && v.base.number == v.vs.cur.number && streq(v.base.id, v.vs.cur.id) &&
            v.added == 0 && v.deleted == 0 &&
            v.next.n == v.base.n) {
                /* nothing changed: the store keeps its version, the empty delta goes */
                (void)store_unlink(st, v.arch_rel);
                pgina_log(up->ctx, LOG_INFO, "%s: nothing changed since version %" PRIu64 ": nothing uploaded",
                          up->cfg.user, v.base.number);
                if (up->state.pending[0]) { /* that version is the one this machine could not see land */
                        v2_home_is(up, &v, &v.base, v.vs.cur_file_size);
                        up->state.manifest_mtime = v2_listed_mtime(&v.p, &v.vs, v.base.number);
                }
                k = 1;
                goto out;
        }
        if (v.conflict) {
                k = v2_conflict(up, st, &v, "the store holds a version this machine did not restore");
                goto out;
        }
        /* The store moved on since this home's version (another machine's logoff, an admin's
         * restore, a compaction): our change set goes onto the current version. */
        k = v.base.number && (v.base.number != v.vs.cur.number || !streq(v.base.id, v.vs.cur.id))
                    ? v2_merge(up, st, &v, &v.vs)
                    : 1;
        if (k > 0)
                k = v2_commit_loop(up, st, &v);
        if (k <= 0) {
                /* On a failure the archive stays: a commit whose read-back failed may still
                 * have made a valid manifest that names it. The prune removes it once no
                 * manifest does. */
                if (k == 0)
                        k = 1; /* a conflict copy, mailed */
                goto out;
        }
        t_committed = now_ms();
        uint64_t listed_mtime = 0;
        if (v.have_after) {
                if (!v.merged && v2_listed_size(&v.p, &v.after, v.next.number) == v.manifest_size)
                        listed_mtime = v2_listed_mtime(&v.p, &v.after, v.next.number);
                v2_backstop_prune(up, st, &v);
        }
        v2_after_drop(&v);
        long long t_pruned = now_ms();
        v2_version_string(&v.next, version, sizeof version);
        if (v.merged) {
                /* This home lacks what the other machine changed: it is no version of the store,
                 * and the next logon here restores the merged one. */
                v2_home_is_no_version(up, &v);
        } else {
                v2_home_is(up, &v, &v.next, v.manifest_size);
                up->state.manifest_mtime = listed_mtime; /* 0: the next listing shows it */
        }
        t_saved = now_ms();
        if (v.migrate)
                v2_migrate_done(up, st, &v);
        v2_report(up, st, &v);
        pgina_log(up->ctx, LOG_DEBUG, "%s: logoff: decided in %lld ms, delta and manifest %lld ms, commit %lld ms, "
                  "prune %lld ms, record and copies %lld ms", up->cfg.user, t_decided - t_start, t_built - t_decided,
                  t_committed - t_built, t_pruned - t_committed, t_saved - t_pruned);
        k = 1;
out:
        v2_done(&v);
        return k;
}
