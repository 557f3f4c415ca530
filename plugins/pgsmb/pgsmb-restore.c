/* pgSMB gateway: bring the user's home from the store, or give a temporary one. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <pgina/account.h>
#include <pgina/run.h>
#include "pgsmb-state.h"
#include "pgsmb-helper.h"
#include "pgsmb-userwork.h"
#include "pgsmb.h"
#include "pgsmb-restore.h"
#include <pgina/util.h>


void pgsmb_restore_progress(void *userdata, uint64_t bytes, uint64_t total) {
        struct restore *r = userdata;

        if (total)
                pgina_ctx_progress(r->ctx, "Restoring your profile: %.1f of %.1f MiB",
                                   bytes / 1048576.0, total / 1048576.0);
        else
                pgina_ctx_progress(r->ctx, "Restoring your profile: %.1f MiB", bytes / 1048576.0);
}

/* Remove a directory we made inside the home's parent: contents as the user (never follow a link
 * as root), then the top. */
void pgsmb_restore_remove_tree(struct restore *r, const char *dir) {
        struct userwork_job job = {.kind = USERWORK_RM_CONTENTS, .name = r->pu.name, .home = r->pu.home, .dir = dir};
        struct userwork_report rep;

        if (pgsmb_as_user(&r->pu, &job, &rep) < 0)
                pgina_log(r->ctx, LOG_WARNING, "%s: %s", r->cfg.user, rep.err);
        if (rmdir(dir) < 0 && errno != ENOENT)
                pgina_log(r->ctx, LOG_WARNING, "%s: cannot remove %s: %m (left behind)", r->cfg.user, dir);
}

static int run(struct restore *r, const char *what, const char *const argv[]) {
        struct pgina_run_result res;
        int k = pgina_run_tool(argv, NULL, 0, &res);

        if (k < 0 || res.status != 0) {
                snprintf(r->why, sizeof r->why, "%s failed: %s", what,
                         k < 0 ? strerror(-k) : res.err[0] ? res.err : "non-zero exit status");
                pgina_log(r->ctx, LOG_ERR, "%s: %s", r->cfg.user, r->why);
                return k < 0 ? k : -EIO;
        }
        return 0;
}

static int set_marker(struct restore *r, const char *marker) {
        _cleanup_free_ char *full = NULL, *gecos = NULL;
        const char *argv[] = {"usermod", "-c", NULL, r->cfg.user, NULL};

        /* Only accounts pgina created carry a marker; an admin's own account is left alone. */
        if (!pgina_gecos_is_pgina(r->acc.gecos))
                return 0;
        full = pgina_gecos_fullname(r->acc.gecos);
        gecos = pgina_gecos_build(marker, full);
        if (!gecos)
                return -ENOMEM;
        if (streq(gecos, r->acc.gecos))
                return 0;
        argv[2] = gecos;
        return run(r, "usermod -c", argv);
}

/* A new home from /etc/skel, as shadow-utils makes them. */
int pgsmb_restore_home_from_skel(struct restore *r) {
        const char *argv[] = {"mkhomedir_helper", r->cfg.user, "077", NULL};
        struct stat st;

        if (lstat(r->cfg.home, &st) == 0)
                return 0;
        return run(r, "mkhomedir_helper", argv);
}

/* ---- the account ---- */

static int account_ensure(struct restore *r) {
        int k = pgina_account_lookup(r->cfg.user, &r->acc);

        if (k < 0) {
                snprintf(r->why, sizeof r->why, "cannot look up the account: %s", strerror(-k));
                return k;
        }
        if (k == 0) {
                struct pgina_new_account spec = {
                        .name = r->cfg.user,
                        .marker = PGSMB_MARKER,
                        .fullname = pgina_user_get(r->u, PGINA_ATTR_FULLNAME),
                        .home = r->cfg.home,
                        .shell = pgina_user_get(r->u, PGINA_ATTR_SHELL),
                        .uid = pgina_user_uid(r->u),
                        .gid = pgina_user_gid(r->u),
                        .group_name = pgina_user_get(r->u, PGINA_ATTR_PRIMARY_GROUP),
                        .create_home = false, /* the profile (or /etc/skel) makes it */
                };
                k = pgina_account_create(&spec, r->why, sizeof r->why);
                if (k < 0) {
                        pgina_log(r->ctx, LOG_ERR, "%s: %s", r->cfg.user, r->why);
                        return k;
                }
                pgina_log(r->ctx, LOG_INFO, "%s: created the local account (%s)", r->cfg.user, PGSMB_MARKER);
                if ((k = pgina_account_lookup(r->cfg.user, &r->acc)) <= 0) {
                        snprintf(r->why, sizeof r->why, "the new account cannot be found");
                        return -ENOENT;
                }
        }
        (void)pgina_user_set(r->u, PGINA_ATTR_DESCRIPTION,
                             pgina_gecos_is_pgina(r->acc.gecos) ? PGSMB_MARKER : NULL);
        r->pu = (struct pgsmb_user){.name = r->cfg.user, .uid = r->acc.uid, .gid = r->acc.gid,
                                    .home = r->cfg.home};
        if (r->acc.uid == 0) {
                snprintf(r->why, sizeof r->why, "refusing to manage the profile of a uid 0 account");
                return -EPERM;
        }
        return 0;
}

/* ---- one restore attempt ---- */

int pgsmb_restore_staging_dir(struct restore *r, const char *kind, char *out, size_t len) {
        char parent[PATH_MAX];
        unsigned char rnd[6];

        snprintf(parent, sizeof parent, "%s", r->cfg.home);
        if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
                return -EIO;
        if (snprintf(out, len, "%s/.pgina-%s-%s-%02x%02x%02x%02x%02x%02x", dirname(parent), kind,
                     r->cfg.user, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) >= (int)len)
                return -ENAMETOOLONG;
        return 0;
}

/* What one attempt knows between its steps. */
struct restore_attempt {
        struct store_stat ss;
        struct pgsmb_meta meta;
        struct pgsmb_transfer t;
        char staging[PATH_MAX];
        bool have_home, have_meta;
        long long t0, t_stream;
};

/* Decide: 1 when no download is needed (the home is current, or a first logon made it from
 * /etc/skel), 0 when the archive must be downloaded (a->ss holds its size), else -errno. */
static int restore_decide(struct restore *r, struct store *st, struct restore_attempt *a) {
        char meta_rel[PATH_MAX];
        struct stat hs;
        int k;

        a->have_home = lstat(r->cfg.home, &hs) == 0;
        snprintf(meta_rel, sizeof meta_rel, "%s.meta", r->cfg.rel_archive);
        /* The .meta first: on a re-logon it is all that is needed (every request is a round
         * trip, and a re-logon should cost a few). */
        a->have_meta = pgsmb_meta_read(st, meta_rel, &a->meta) == 0;
        if (a->have_home && a->have_meta && !r->state.temporary && streq(r->state.version, a->meta.version)) {
                pgina_log(r->ctx, LOG_INFO, "%s: home is already version %s, no download", r->cfg.user, a->meta.version);
                return 1;
        }
        k = store_stat(st, r->cfg.rel_archive, &a->ss);
        if (k == -ENOENT) {
                if (a->have_meta) {
                        snprintf(r->why, sizeof r->why, "%s: the archive is being replaced (its .meta is there, the archive is not)",
                                 store_url(st));
                        return -EAGAIN;
                }
                /* First logon anywhere: a new home. */
                pgina_log(r->ctx, LOG_INFO, "%s: no profile in %s yet: first logon", r->cfg.user, store_url(st));
                if ((k = pgsmb_restore_home_from_skel(r)) < 0)
                        return k;
                r->state.version[0] = 0;
                r->state.temporary = false;
                return 1;
        }
        if (k < 0) {
                snprintf(r->why, sizeof r->why, "%s", store_error(st));
                return k;
        }
        return 0;
}

/* Download: the archive extracted into a new staging directory next to the home, checked
 * against its .meta; on failure nothing of it is left. */
static int restore_download(struct restore *r, struct store *st, struct restore_attempt *a) {
        char hex[65];
        int k;

        a->t0 = now_ms();
        if ((k = pgsmb_restore_staging_dir(r, "restore", a->staging, sizeof a->staging)) < 0)
                return k;
        if (mkdir(a->staging, 0700) < 0 || lchown(a->staging, r->acc.uid, r->acc.gid) < 0) {
                snprintf(r->why, sizeof r->why, "cannot create %s: %s", a->staging, strerror(errno));
                rmdir(a->staging);
                return -errno;
        }
        k = pgsmb_restore_stream(st, r->cfg.rel_archive, a->ss.size, &r->pu, a->staging, &r->cfg.lim,
                                 &r->cfg.comp, pgsmb_restore_progress, r, &a->t);
        a->t_stream = now_ms();
        pgsmb_hex(a->t.sha256, hex);
        if (k == 0 && a->have_meta && a->meta.size == a->ss.size && a->t.hashed && !streq(a->meta.sha256, hex)) {
                snprintf(r->why, sizeof r->why, "%s/%s: checksum does not match its .meta (damaged upload?)",
                         store_url(st), r->cfg.rel_archive);
                k = -EBADMSG;
        } else if (k == 0 && a->have_meta && a->meta.size == a->ss.size && !a->t.hashed && a->t.bytes != a->ss.size) {
                snprintf(r->why, sizeof r->why, "%s/%s: read %" PRIu64 " bytes of %" PRIu64 " (changed while it was read?)",
                         store_url(st), r->cfg.rel_archive, a->t.bytes, a->ss.size);
                k = -EBADMSG;
        } else if (k == 0 && !a->t.hashed && !a->t.stats.checksummed) {
                /* It began with a checksummed zstd frame, so nothing else checked it. */
                snprintf(r->why, sizeof r->why, "%s/%s: not every zstd frame of the archive carries a checksum: "
                         "it cannot be verified", store_url(st), r->cfg.rel_archive);
                k = -EBADMSG;
        } else if (k < 0)
                snprintf(r->why, sizeof r->why, "%s", a->t.err);
        if (k < 0) {
                pgsmb_restore_remove_tree(r, a->staging);
                return k;
        }
        /* For pginad's metrics and the logon's log line ("pgsmb download 400 ms extract 150 ms"). */
        if (!a->t.mid_ms)
                a->t.mid_ms = a->t_stream;
        pgina_ctx_metric(r->ctx, "download_ms", (uint64_t)(a->t.mid_ms - a->t0));
        pgina_ctx_metric(r->ctx, "extract_ms", (uint64_t)(a->t_stream - a->t.mid_ms));
        pgina_ctx_metric(r->ctx, "download_bytes", a->t.bytes);
        return 0;
}

int pgsmb_restore_swap(struct restore *r, const char *staging, bool have_home, long long *t_swap) {
        char old[PATH_MAX];
        int k;

        if (have_home) {
                if ((k = pgsmb_restore_staging_dir(r, "old", old, sizeof old)) < 0 || rename(r->cfg.home, old) < 0) {
                        snprintf(r->why, sizeof r->why, "cannot move the old home %s aside: %s",
                                 r->cfg.home, strerror(k < 0 ? -k : errno));
                        pgsmb_restore_remove_tree(r, staging);
                        return k < 0 ? k : -errno;
                }
        }
        if (rename(staging, r->cfg.home) < 0) {
                k = -errno;
                snprintf(r->why, sizeof r->why, "cannot move the restored home into %s: %s", r->cfg.home,
                         strerror(-k));
                if (have_home)
                        (void)rename(old, r->cfg.home);
                pgsmb_restore_remove_tree(r, staging);
                return k;
        }
        *t_swap = now_ms();
        if (have_home)
                pgsmb_restore_remove_tree(r, old);
        return 0;
}

/* Swap in: the old home moves aside first, so a crash leaves one or the other whole. */
static int restore_swap_in(struct restore *r, struct store *st, struct restore_attempt *a) {
        long long t_swap;
        int k;

        if ((k = pgsmb_restore_swap(r, a->staging, a->have_home, &t_swap)) < 0)
                return k;
        pgina_log(r->ctx, LOG_INFO, "%s: restored %" PRIu64 " files (%.1f MiB, %.1f MiB compressed) from %s/%s "
                  "in %.1f s (download and extraction %.1f s, old home removed in %.1f s)",
                  r->cfg.user, a->t.stats.files, a->t.stats.bytes / 1048576.0, a->t.bytes / 1048576.0,
                  store_url(st), r->cfg.rel_archive, (now_ms() - a->t0) / 1000.0, (a->t_stream - a->t0) / 1000.0,
                  (now_ms() - t_swap) / 1000.0);
        snprintf(r->state.version, sizeof r->state.version, "%s", a->have_meta ? a->meta.version : "");
        r->state.temporary = false;
        r->state.upload_failed = false;
        return 1;
}

/* One restore attempt: decide, download, swap in. 1 when the home is in place, else -errno. */
static int attempt(struct restore *r, struct store *st) {
        struct restore_attempt a = {0};
        int k = pgsmb_restore_v2(r, st);
        if (k != 0)
                return k; /* format 2: done (or failed) there */
        k = restore_decide(r, st, &a);
        if (k != 0)
                return k;
        if ((k = restore_download(r, st, &a)) < 0)
                return k;
        return restore_swap_in(r, st, &a);
}

/* A home whose last upload failed holds the only copy of the user's latest work: it is used as it
 * is, whether or not the store answers, and is never made a temporary profile (whose logoff skips
 * the upload and lets localmachine remove it). Decided before connecting, so an unreachable store
 * cannot route it to temporary_profile(). */
static bool home_unsaved(struct restore *r) {
        struct stat hs;

        if (!r->state.upload_failed || r->state.temporary || lstat(r->cfg.home, &hs) < 0)
                return false;
        /* Shown at once (the result message may carry another note). */
        pgina_ctx_progress(r->ctx, "Your profile on this machine is newer than the saved one: your last changes "
                                   "are not saved to the server yet (the last upload failed). Using it; it is saved "
                                   "again at logoff.");
        pgina_log(r->ctx, LOG_NOTICE, "%s: the local home holds changes that are not saved yet (last upload failed): "
                  "used as it is, not downloaded", r->cfg.user);
        return true;
}

static int temporary_profile(struct restore *r) {
        char why[sizeof r->why];

        snprintf(why, sizeof why, "%s", r->why);
        pgina_log(r->ctx, LOG_ERR, "%s: profile not restored, temporary profile: %s", r->cfg.user, why);
        /* An existing home is never replaced by an empty one: it stays, marked temporary. */
        if (pgsmb_restore_home_from_skel(r) < 0)
                pgina_log(r->ctx, LOG_ERR, "%s: %s", r->cfg.user, r->why);
        (void)set_marker(r, PGSMB_MARKER_TMP);
        (void)pgina_user_set(r->u, PGINA_ATTR_DESCRIPTION, PGSMB_MARKER_TMP);
        r->state.temporary = true;
        (void)pgsmb_state_save(r->state_dir, r->cfg.user, &r->state);
        pgina_ctx_message(r->ctx, "Your roaming profile could not be loaded (%s). You are logged on with a "
                                  "temporary profile: its changes will not be saved.", why);
        pgsmb_mail_admin(r->ctx, r->u, "profile not restored",
                         "The profile of %s could not be restored on this machine (%u %s):\n%s\n"
                         "The user was given a temporary profile that will not be uploaded.\n",
                         r->cfg.user, r->tries, r->tries == 1 ? "try" : "tries", why);
        return 1; /* the user still logs on: pGina's temporary profile */
}

int pgsmb_gateway(struct pgina_ctx *ctx, struct pgina_user *u) {
        struct restore r = {.ctx = ctx, .u = u};
        struct store *st = NULL;
        int k = 0;

        r.state_dir = pgina_ctx_state_dir(ctx);
        if (pgsmb_cfg_load(ctx, u, &r.cfg, r.why, sizeof r.why) < 0) {
                pgina_log(ctx, LOG_ERR, "%s: %s", pgina_user_name(u), r.why);
                pgina_ctx_message(ctx, "Roaming profile settings are invalid: %s", r.why);
                pgsmb_cfg_done(&r.cfg);
                return -EINVAL;
        }
        if (pgina_ctx_dry_run(ctx)) {
                pgina_ctx_message(ctx, "would restore the profile of %s from %s/%s into %s", r.cfg.user,
                                  r.cfg.share, r.cfg.rel_archive, r.cfg.home);
                goto out_ok;
        }
        if ((k = account_ensure(&r)) < 0) {
                pgina_ctx_message(ctx, "Could not prepare the local account %s: %s", r.cfg.user, r.why);
                goto out;
        }
        if (pgina_ctx_user_sessions(ctx) > 0) {
                pgina_log(ctx, LOG_INFO, "%s is logged on here already: the home is in use, not restored",
                          r.cfg.user);
                pgsmb_logon_setup(ctx, u, &r.cfg, r.acc.uid, r.acc.gid);
                k = 1;
                goto out;
        }
        (void)pgsmb_state_load(r.state_dir, r.cfg.user, &r.state);
        if (home_unsaved(&r))
                k = 1;
        for (unsigned i = 0; k <= 0 && i < r.cfg.retries; i++) {
                if (i > 0) {
                        pgina_ctx_progress(ctx, "Restoring your profile failed (%s); trying again (%u of %u)...",
                                           r.why, i + 1, r.cfg.retries);
                        sleep(r.cfg.retry_delay);
                }
                r.tries++;
                if (!st && pgsmb_connect(ctx, &r.cfg, false, &st, r.why, sizeof r.why) < 0) {
                        r.tries = r.cfg.retries; /* pgsmb_connect did its own retries */
                        pgina_ctx_metric(ctx, "store_errors", 1);
                        break;
                }
                k = attempt(&r, st);
                if (k > 0)
                        break;
                if (k == -EAGAIN || k == -ETIMEDOUT || k == -EIO || k == -ECONNRESET || k == -EHOSTUNREACH ||
                    k == -ECONNREFUSED)
                        pgina_ctx_metric(ctx, "store_errors", 1); /* the store's, not the archive's */
                pgina_log(ctx, LOG_WARNING, "%s: restore try %u of %u failed: %s", r.cfg.user, i + 1,
                          r.cfg.retries, r.why);
                if (k != -EAGAIN && k != -ETIMEDOUT && k != -EIO && k != -ECONNRESET && k != -EBADMSG &&
                    k != -EHOSTUNREACH && k != -ECONNREFUSED)
                        break; /* not worth another try (e.g. a hostile archive) */
        }
        if (k > 0) {
                /* Said last, so it is the message the user sees. */
                if (r.state.over_limit)
                        pgina_ctx_message(ctx, "Your profile was over its size limit at your last logoff and "
                                               "was not saved to the server; this machine's copy is used. "
                                               "Please make room.");
                if (r.state.temporary)
                        r.state.temporary = false;
                (void)set_marker(&r, PGSMB_MARKER);
                if (pgsmb_state_save(r.state_dir, r.cfg.user, &r.state) < 0)
                        pgina_log(ctx, LOG_ERR, "%s: cannot save the profile state in %s", r.cfg.user, r.state_dir);
        } else
                k = temporary_profile(&r);
        if (st)
                store_close(st);
        pgsmb_logon_setup(ctx, u, &r.cfg, r.acc.uid, r.acc.gid);
out:
        pgina_account_done(&r.acc);
        pgsmb_cfg_done(&r.cfg);
        return k;
out_ok:
        pgsmb_cfg_done(&r.cfg);
        return 1;
}
