/* pgSMB logoff: save the home to the store, never over a version this machine did not restore. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/account.h>
#include "pgsmb-state.h"
#include "pgsmb-helper.h"
#include "pgsmb-userwork.h"
#include "pgsmb.h"
#include "pgsmb-upload.h"
#include <pgina/util.h>


static int profile_bytes(struct upload *up, uint64_t *bytes) {
        struct userwork_job job = {.kind = USERWORK_SIZE, .name = up->pu.name, .home = up->pu.home,
                                   .dir = up->cfg.home, .exclude = (const char *const *)up->cfg.exclude};
        struct userwork_report rep;
        int k = pgsmb_as_user(&up->pu, &job, &rep);

        if (k < 0) {
                snprintf(up->why, sizeof up->why, "cannot measure %s: %s", up->cfg.home, rep.err);
                return k;
        }
        /* The answer crosses the process boundary as the report's text. */
        *bytes = strtoull(rep.err, NULL, 10);
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(((const struct store_entry *)a)->name, ((const struct store_entry *)b)->name);
}

/* Keep the newest keep_versions "<filename>.v-<version>" files, and drop this host's leftovers
 * of uploads that died on a hung server or with pginad ("<filename>.tmp-<host>-…" and
 * "<filename>.meta.tmp-<host>-…": another machine's upload in progress has another host name and
 * is left alone). */
static void prune_versions(struct upload *up, struct store *st) {
        struct store_entry *v = NULL;
        size_t n = 0, ours = 0;
        char prefix[300], stale[600], stale_meta[600];

        snprintf(prefix, sizeof prefix, "%s.v-", up->cfg.filename);
        snprintf(stale, sizeof stale, "%s.tmp-%s-", up->cfg.filename, up->host);
        snprintf(stale_meta, sizeof stale_meta, "%s.meta.tmp-%s-", up->cfg.filename, up->host);
        if (store_list(st, up->cfg.remote_dir, &v, &n) < 0)
                return;
        qsort(v, n, sizeof *v, cmp_names);
        for (size_t i = n; i > 0; i--) {
                char rel[1100];

                if (strncmp(v[i - 1].name, stale, strlen(stale)) == 0 ||
                    strncmp(v[i - 1].name, stale_meta, strlen(stale_meta)) == 0) {
                        snprintf(rel, sizeof rel, "%s%s%s", up->cfg.remote_dir, up->cfg.remote_dir[0] ? "/" : "",
                                 v[i - 1].name);
                        if (store_unlink(st, rel) == 0)
                                pgina_log(up->ctx, LOG_INFO, "%s: removed %s left by an upload that failed",
                                          up->cfg.user, v[i - 1].name);
                        continue;
                }
                if (strncmp(v[i - 1].name, prefix, strlen(prefix)) != 0)
                        continue;
                if (++ours <= up->cfg.keep_versions)
                        continue;
                snprintf(rel, sizeof rel, "%s%s%s", up->cfg.remote_dir, up->cfg.remote_dir[0] ? "/" : "",
                         v[i - 1].name);
                if (store_unlink(st, rel) < 0)
                        pgina_log(up->ctx, LOG_WARNING, "%s: %s", up->cfg.user, store_error(st));
        }
        store_entries_free(v, n);
}

void pgsmb_upload_progress(void *userdata, uint64_t bytes, uint64_t total) {
        struct upload *up = userdata;

        if (up->admin)
                pgina_ctx_print(up->ctx, "%.1f MiB uploaded", bytes / 1048576.0);
        else
                pgina_log(up->ctx, LOG_DEBUG, "%s: %.1f MiB uploaded", up->cfg.user, bytes / 1048576.0);
}

/* What one attempt knows between its steps. */
struct upload_attempt {
        char tmp[1100], meta_rel[1100], target[1100], hex[65];
        struct pgsmb_meta cur, meta;
        struct pgsmb_transfer t;
        bool have_archive, have_meta, conflict;
        long long t0, t_upload, t_verify;
};

/* Archive: what the store holds decides whether this is a replace or a conflict copy; the home
 * is streamed to a temporary name. Returns the stream's result (a->t.err says why). */
static int upload_archive(struct upload *up, struct store *st, struct upload_attempt *a) {
        struct pgsmb_readback_target rt;
        struct store_creds creds;
        struct store_stat ss;

        a->t0 = now_ms();
        snprintf(a->meta_rel, sizeof a->meta_rel, "%s.meta", up->cfg.rel_archive);
        a->have_archive = store_stat(st, up->cfg.rel_archive, &ss) == 0;
        a->have_meta = pgsmb_meta_read(st, a->meta_rel, &a->cur) == 0;
        /* Replace only what this machine restored: the same version, or nothing on either side. */
        a->conflict = a->have_archive
                              ? !(a->have_meta && up->state.version[0] && streq(a->cur.version, up->state.version))
                              : (a->have_meta || up->state.version[0]);
        pgsmb_version_new(a->meta.version);
        snprintf(a->tmp, sizeof a->tmp, "%s.tmp-%s-%s", up->cfg.rel_archive, up->host, a->meta.version);
        pgsmb_store_creds(&up->cfg, &creds);
        rt = (struct pgsmb_readback_target){.url = up->cfg.share, .creds = &creds, .timeout_s = up->cfg.timeout};
        return pgsmb_upload_stream(st, a->tmp, &up->pu, (const char *const *)up->cfg.exclude, &up->cfg.comp, &rt,
                                   pgsmb_upload_progress, up, &a->t);
}

/* Verify: read back behind the writer already, or (no second connection) now. On failure the
 * temporary file goes. */
static int upload_verify(struct upload *up, struct store *st, struct upload_attempt *a, int k) {
        a->t_upload = now_ms();
        if (k == 0 && !a->t.verified)
                k = pgsmb_verify(st, a->tmp, a->t.bytes, a->t.sha256, up->why, sizeof up->why);
        else
                snprintf(up->why, sizeof up->why, "%s", a->t.err);
        if (k < 0) {
                (void)store_unlink(st, a->tmp);
                return k;
        }
        a->t_verify = now_ms();
        pgsmb_hex(a->t.sha256, a->hex);
        return 0;
}

/* Commit, when the store changed elsewhere: the upload is kept beside it as a conflict copy. */
static int upload_commit_conflict(struct upload *up, struct store *st, struct upload_attempt *a) {
        time_t now = time(NULL);
        struct tm tm;
        char stamp[32];
        int k;

        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", gmtime_r(&now, &tm));
        snprintf(a->target, sizeof a->target, "%s.conflict-%s-%s", up->cfg.rel_archive, up->host, stamp);
        if ((k = store_rename(st, a->tmp, a->target, false)) < 0) {
                snprintf(up->why, sizeof up->why, "%s", store_error(st));
                (void)store_unlink(st, a->tmp);
                return k;
        }
        pgina_log(up->ctx, LOG_WARNING,
                  "%s: the store holds version %s, not %s restored here: saved as conflict copy %s",
                  up->cfg.user, a->have_meta ? a->cur.version : "(unknown)",
                  up->state.version[0] ? up->state.version : "(none)", a->target);
        pgsmb_mail_admin(up->ctx, up->u, "profile conflict",
                         "The profile of %s changed on another machine since it was restored on %s.\n"
                         "This machine's copy was saved beside it as %s/%s; nothing was overwritten.\n",
                         up->cfg.user, up->host, store_url(st), a->target);
        return 1;
}

/* What the upload saw, for the log (and the admin's mail when files changed under it). */
static void upload_report(struct upload *up, struct store *st, struct upload_attempt *a) {
        struct pgsmb_transfer *t = &a->t;

        if (t->stats.changed) {
                log_escape(t->stats.first_changed, sizeof t->stats.first_changed); /* for the mail too */
                pgina_log(up->ctx, LOG_WARNING, "%s: %" PRIu64 " file(s) changed while they were archived (a process "
                          "still writing in the home?), saved as they were read: first '%s'", up->cfg.user,
                          t->stats.changed, t->stats.first_changed);
                pgsmb_mail_admin(up->ctx, up->u, "files changed during the upload",
                                 "The profile of %s was saved from %s, but %" PRIu64 " file(s) changed while they "
                                 "were being archived (first: %s); they were saved as they were read, possibly "
                                 "cut or incomplete.\n",
                                 up->cfg.user, up->host, t->stats.changed, t->stats.first_changed);
        }
        if (t->stats.skipped_links)
                pgina_log(up->ctx, LOG_WARNING, "%s: %" PRIu64 " symlink(s) pointing outside the home were not saved",
                          up->cfg.user, t->stats.skipped_links);
        pgina_log(up->ctx, LOG_INFO,
                  "%s: saved %" PRIu64 " files (%.1f MiB, %.1f MiB compressed) to %s/%s in %.1f s "
                  "(archive, upload%s %.1f s, verify %.1f s)",
                  up->cfg.user, t->stats.files, t->stats.bytes / 1048576.0, t->bytes / 1048576.0, store_url(st),
                  up->cfg.rel_archive, (now_ms() - a->t0) / 1000.0, t->verified ? " and read-back" : "",
                  (a->t_upload - a->t0) / 1000.0,
                  (a->t_verify - a->t_upload) / 1000.0);
        /* For pginad's metrics: archive (the upload streams alongside), the upload's rest, the
         * verification (the read-back's end, or the read after the upload). */
        long long mid = t->mid_ms ? t->mid_ms : a->t_upload, end = t->end_ms ? t->end_ms : a->t_upload;
        pgina_ctx_metric(up->ctx, "archive_ms", (uint64_t)(mid - a->t0));
        pgina_ctx_metric(up->ctx, "upload_ms", (uint64_t)(end > mid ? end - mid : 0));
        pgina_ctx_metric(up->ctx, "verify_ms", (uint64_t)(a->t_verify > end ? a->t_verify - end : 0));
        pgina_ctx_metric(up->ctx, "upload_bytes", t->bytes);
}

/* Commit: the previous archive becomes a kept version, the verified upload takes its place: two
 * renames onto free names (SMB has no atomic replace). In between a restore elsewhere finds the
 * .meta without its archive and tries again a moment later. Then the .meta, and old versions go. */
static int upload_commit(struct upload *up, struct store *st, struct upload_attempt *a) {
        int k;

        if (a->conflict)
                return upload_commit_conflict(up, st, a);
        if (a->have_archive) {
                snprintf(a->target, sizeof a->target, "%s.v-%s", up->cfg.rel_archive,
                         a->have_meta ? a->cur.version : a->meta.version);
                if ((k = store_rename(st, up->cfg.rel_archive, a->target, false)) < 0) {
                        snprintf(up->why, sizeof up->why, "%s", store_error(st));
                        (void)store_unlink(st, a->tmp);
                        return k;
                }
        }
        if ((k = store_rename(st, a->tmp, up->cfg.rel_archive, false)) < 0) {
                snprintf(up->why, sizeof up->why, "%s", store_error(st));
                if (a->have_archive && store_rename(st, a->target, up->cfg.rel_archive, false) < 0)
                        pgina_log(up->ctx, LOG_ERR, "%s: the previous archive stays as %s: %s", up->cfg.user,
                                  a->target, store_error(st));
                (void)store_unlink(st, a->tmp);
                return k;
        }
        snprintf(a->meta.sha256, sizeof a->meta.sha256, "%s", a->hex);
        a->meta.size = a->t.bytes;
        snprintf(a->meta.host, sizeof a->meta.host, "%s", up->host);
        a->meta.time = (int64_t)time(NULL);
        if ((k = pgsmb_meta_write(st, a->meta_rel, &a->meta)) < 0) {
                /* The archive is in place and whole; without its meta the next logon downloads it. */
                pgina_log(up->ctx, LOG_ERR, "%s: archive saved but its .meta not: %s", up->cfg.user,
                          store_error(st));
                a->meta.version[0] = 0;
        }
        snprintf(up->state.version, sizeof up->state.version, "%s", a->meta.version);
        prune_versions(up, st);
        upload_report(up, st, a);
        return 1;
}

/* One try: archive → temporary name → verify → keep the old version → rename into place. */
static int attempt(struct upload *up, struct store *st) {
        struct upload_attempt a = {0};
        int k = upload_archive(up, st, &a);

        if ((k = upload_verify(up, st, &a, k)) < 0)
                return k;
        return upload_commit(up, st, &a);
}

/* Worth trying again later, by pginad itself: the store did not answer or is full. Not a
 * refused logon (a retry with the same password would count as another bad one, and lock the
 * account out), nor what this machine must fix (settings, the size limit, a missing password). */
static bool upload_retryable(int err) {
        return err < 0 && err != -EACCES && err != -EPERM && err != -ENOKEY && err != -EINVAL &&
               err != -ENAMETOOLONG;
}

/* This job is pginad's retry number N of an upload that failed (PGINA_ATTR_LOGOFF_RETRY), or 0. */
static unsigned upload_retry_number(const struct upload *up) {
        const char *n = pgina_user_get(up->u, PGINA_ATTR_LOGOFF_RETRY);
        return n ? (unsigned)strtoul(n, NULL, 10) : 0;
}

/* The home stays (and is never a temporary profile). With `retry`, pginad runs this upload again
 * later: the admins hear of the first failure and of the end, not of each retry. */
static int upload_failed(struct upload *up, const char *what, bool retry) {
        unsigned n = upload_retry_number(up);

        up->state.upload_failed = true;
        (void)pgsmb_state_save(up->state_dir, up->cfg.user, &up->state);
        (void)pgina_user_set(up->u, PGINA_ATTR_KEEP_HOME, "1");
        if (retry) {
                pgina_ctx_retry_later(up->ctx);
                pgina_ctx_message(up->ctx, "%s", up->why);
        }
        if (n > 0) {
                pgina_log(up->ctx, LOG_WARNING, "%s: profile still not saved (retry %u), the local home is kept: %s",
                          up->cfg.user, n, up->why);
                return 0;
        }
        pgina_log(up->ctx, LOG_ERR, "%s: profile not saved, the local home is kept%s: %s", up->cfg.user,
                  retry ? " and pginad tries again" : "", up->why);
        pgsmb_mail_admin(up->ctx, up->u, what,
                         "The profile of %s could not be saved from %s:\n%s\n"
                         "The home stays on this machine and is used at the user's next logon here.\n%s",
                         up->cfg.user, up->host, up->why,
                         retry ? "pginad tries again by itself (pginactl status shows when); you are told when it "
                                 "is saved.\n"
                               : "");
        return 0;
}

/* A retry that worked: said once, to the log and the admins who heard of the failure. */
static void upload_saved_after_all(struct upload *up) {
        unsigned n = upload_retry_number(up);

        if (n == 0)
                return;
        pgina_log(up->ctx, LOG_NOTICE, "%s: profile saved after all (retry %u), version %s", up->cfg.user, n,
                  up->state.version[0] ? up->state.version : "(unknown)");
        pgsmb_mail_admin(up->ctx, up->u, "profile saved after all",
                         "The profile of %s, which could not be saved from %s at logoff, is saved now "
                         "(retry %u, version %s).\n",
                         up->cfg.user, up->host, n, up->state.version[0] ? up->state.version : "(unknown)");
}

int pgsmb_upload(struct pgina_ctx *ctx, struct pgina_user *u, bool admin) {
        struct upload up = {.ctx = ctx, .u = u, .admin = admin};
        struct pgina_account acc = {0};
        struct store *st = NULL;
        struct stat hs;
        uint64_t bytes = 0;
        int k = 0, err = -EIO;
        _cleanup_close_ int lock = -1;
        _cleanup_free_ char *rec_text = NULL; /* the record's scan, until parsed */
        size_t rec_len = 0;

        long long t_job = now_ms();
        up.state_dir = pgina_ctx_state_dir(ctx);
        pgsmb_host_short(up.host, sizeof up.host);
        int self_r = v2_self(up.state_dir, up.host, up.self);
        if (pgsmb_cfg_load(ctx, u, &up.cfg, up.why, sizeof up.why) < 0) {
                k = upload_failed(&up, "profile settings invalid", false);
                goto out;
        }
        if (self_r < 0)
                pgina_log(ctx, LOG_WARNING, "%s: %s/install-id or the boot id cannot be read (%s): archives of this job "
                          "get a name of its own (leftovers of this machine wait a day like another's)", up.cfg.user,
                          up.state_dir, strerror(-self_r));
        /* the state is this job's until it saves it (a compaction in the background waits) */
        if ((lock = pgsmb_state_lock(up.state_dir, up.cfg.user)) < 0)
                pgina_log(ctx, LOG_WARNING, "%s: cannot lock the profile state in %s: %s", up.cfg.user, up.state_dir,
                          strerror(-lock));
        (void)pgsmb_state_load(up.state_dir, up.cfg.user, &up.state);
        /* upload_failed wins: a home holding unsaved work is never a temporary profile. */
        if (up.state.temporary && !up.state.upload_failed) {
                pgina_log(ctx, LOG_INFO, "%s: temporary profile, not uploaded", up.cfg.user);
                (void)pgina_user_set(u, PGINA_ATTR_KEEP_HOME, NULL);
                k = 1;
                goto out;
        }
        if (pgina_account_lookup(up.cfg.user, &acc) <= 0 || lstat(up.cfg.home, &hs) < 0 || acc.uid == 0) {
                pgina_log(ctx, LOG_INFO, "%s: no local account or home: nothing to save", up.cfg.user);
                k = 1;
                goto out;
        }
        up.pu = (struct pgsmb_user){.name = up.cfg.user, .uid = acc.uid, .gid = acc.gid, .home = up.cfg.home};
        if (!admin) {
                /* A logon of this user waits for this job: no new process of theirs starts now. */
                pgsmb_end_user_processes(ctx, up.cfg.user, acc.uid, acc.gid);
                pgsmb_logoff_unmount(ctx, u, &up.cfg, acc.uid, acc.gid);
        }
        if (up.cfg.max_storage_bytes) {
                if ((k = profile_bytes(&up, &bytes)) < 0) {
                        k = upload_failed(&up, "profile not saved", false);
                        goto out;
                }
                if (bytes > up.cfg.max_storage_bytes) {
                        snprintf(up.why, sizeof up.why, "the profile holds %" PRIu64 " KiB, over its limit of %" PRIu64 " KiB",
                                 bytes / 1024, up.cfg.max_storage_bytes / 1024);
                        up.state.over_limit = true;
                        k = upload_failed(&up, "profile over its size limit", false);
                        goto out;
                }
        }
        up.state.over_limit = false;
        /* The usual logoff of a format-2 home: its delta against the record of its version is
         * walked and compressed while the store connects (a dozen round trips); the upload takes
         * it when the store says that version is still the one to build on (v2_archive). */
        /* The record goes to the walk as the file holds it; this worker parses its own copy once
         * the store is connecting or connected, while the walk runs. */
        scan_init(&up.record);
        if (strncmp(up.state.version, "2:", 2) == 0 && !up.state.pending[0] && !up.cfg.archive_argv &&
            pgsmb_record_read(up.state_dir, up.cfg.user, up.state.version, &rec_text, &rec_len) == 0) {
                char why[300];
                clock_gettime(CLOCK_REALTIME, &up.early_walk_start);
                up.early_ms = now_ms();
                if (pgsmb_delta_early_start(&up.pu, (const char *const *)up.cfg.exclude, &up.cfg.comp, rec_text,
                                            rec_len, &up.early, why, sizeof why) < 0)
                        pgina_log(ctx, LOG_DEBUG, "%s: the delta waits for the store: %s", up.cfg.user, why);
        }
        k = 0;
        for (unsigned i = 0; i < up.cfg.retries && k <= 0; i++) {
                if (i > 0)
                        sleep(up.cfg.retry_delay);
                long long t_conn = now_ms();
                int c = st ? 0 : pgsmb_connect(ctx, &up.cfg, true, &st, up.why, sizeof up.why);
                if (c < 0) {
                        err = c;
                        pgina_ctx_metric(ctx, "store_errors", 1);
                        break;
                }
                pgina_log(ctx, LOG_DEBUG, "%s: logoff: connected in %lld ms (%lld ms since the job began)", up.cfg.user,
                          now_ms() - t_conn, now_ms() - t_job);
                if (rec_text) {
                        /* the walk parses the same text: a record it refuses fails it too */
                        if (scan_parse(&up.record, rec_text, rec_len, NULL) == 0)
                                up.record_loaded = true;
                        else
                                pgsmb_delta_early_abort(TAKE_PTR(up.early));
                        free(TAKE_PTR(rec_text));
                }
                up.format1 = false;
                k = pgsmb_upload_v2(&up, st);
                if (k == -EOPNOTSUPP && up.format1) {
                        pgsmb_delta_early_abort(TAKE_PTR(up.early));
                        k = attempt(&up, st); /* format 1 */
                }
                if (k < 0)
                        err = k;
                if (upload_retryable(k))
                        pgina_ctx_metric(ctx, "store_errors", 1);
                if (k <= 0) {
                        pgina_log(ctx, LOG_WARNING, "%s: upload try %u of %u failed: %s", up.cfg.user, i + 1,
                                  up.cfg.retries, up.why);
                        store_close(st); /* a fresh connection for the next try */
                        st = NULL;
                }
        }
        pgsmb_delta_early_abort(TAKE_PTR(up.early)); /* not taken (a conflict, no connection) */
        if (k > 0) {
                up.state.upload_failed = false;
                if (pgsmb_state_save(up.state_dir, up.cfg.user, &up.state) < 0)
                        pgina_log(ctx, LOG_ERR, "%s: cannot save the profile state", up.cfg.user);
                if (admin)
                        pgina_ctx_print(ctx, "saved the profile of %s as version %s", up.cfg.user,
                                        up.state.version[0] ? up.state.version : "(unknown)");
                else
                        upload_saved_after_all(&up);
        } else {
                k = upload_failed(&up, "profile not saved", !admin && upload_retryable(err));
                if (admin)
                        pgina_ctx_message(ctx, "the profile of %s was not saved: %s", up.cfg.user, up.why);
        }
        if (st)
                store_close(st);
        scan_free(&up.record);
out:
        pgina_account_done(&acc);
        pgsmb_cfg_done(&up.cfg);
        return k;
}

int pgsmb_notify(struct pgina_ctx *ctx, enum pgina_event event, struct pgina_user *u) {
        if (event == PGINA_EVENT_LOGOFF)
                return pgsmb_upload(ctx, u, false);
        if (event == PGINA_EVENT_LOGON)
                return pgsmb_logon_tasks(ctx, u);
        return 1;
}
