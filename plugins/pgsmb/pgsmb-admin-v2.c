/* pgSMB admin commands over store format 2: pginactl profile list shows the versions (manifests),
 * the conflict copies and what is left of format 1; profile restore makes an older version or a
 * conflict copy current again by committing a copy of its manifest as the next version (no
 * archive is copied: they are never changed). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/util.h>

#include "pgsmb-admin.h"
#include "pgsmb-manifest.h"
#include "pgsmb-state.h"
#include "pgsmb-v2.h"

static void fmt_time(int64_t t, char *buf, size_t len) {
        time_t tt = (time_t)t;
        struct tm tm;

        strftime(buf, len, "%Y-%m-%d %H:%M:%S", localtime_r(&tt, &tm));
}

static uint64_t chain_bytes(const struct manifest *m) {
        uint64_t sum = 0;

        for (size_t i = 0; i < m->narch; i++)
                sum += m->arch[i].size;
        return sum;
}

static int cmp_names_desc(const void *a, const void *b) {
        return strcmp(((const struct store_entry *)b)->name, ((const struct store_entry *)a)->name);
}

int pgsmb_admin_list_v2(struct pgina_ctx *ctx, const struct pgsmb_cfg *c, struct store *st) {
        struct v2_profile p = {.dir = c->remote_dir, .filename = c->filename};
        struct v2_state vs;
        size_t flen = strlen(c->filename);
        char why[600], when[32];
        int k;

        if ((k = v2_load(st, &p, &vs, why, sizeof why)) < 0) {
                pgina_ctx_message(ctx, "%s", why);
                return k;
        }
        if (vs.top == 0) {
                v2_state_free(&vs);
                return 1; /* format 1 (or nothing): the caller lists */
        }
        qsort(vs.ents, vs.nents, sizeof *vs.ents, cmp_names_desc);
        pgina_ctx_print(ctx, "%-34s %12s  %-19s  %s", "VERSION", "BYTES", "DATE", "KIND");
        for (size_t i = 0; i < vs.nents; i++) {
                const char *name = vs.ents[i].name, *rest = name + flen;
                uint64_t n = manifest_name_number(c->filename, name);
                struct manifest m;

                if (vs.ents[i].is_dir || strncmp(name, c->filename, flen) != 0)
                        continue;
                if (n) {
                        if (v2_read_manifest(st, &p, n, &m, why, sizeof why) < 0) {
                                fmt_time(vs.ents[i].mtime, when, sizeof when);
                                pgina_ctx_print(ctx, "%-34" PRIu64 " %12s  %-19s  damaged (ignored): %s", n, "-", when,
                                                why);
                                continue;
                        }
                        fmt_time(m.time, when, sizeof when);
                        pgina_ctx_print(ctx, "%-34" PRIu64 " %12" PRIu64 "  %-19s  %s, saved by %s, %zu files in %zu "
                                        "archive(s)", n, chain_bytes(&m), when,
                                        n == vs.cur.number ? "current" : n > vs.cur.number ? "newer?" : "previous",
                                        m.host, m.n, m.narch);
                        manifest_free(&m);
                } else if (strncmp(rest, ".c-", 3) == 0) {
                        if (v2_read_manifest_file(st, &p, name, &m, why, sizeof why) < 0) {
                                pgina_ctx_print(ctx, "%-34s %12s  %-19s  damaged conflict copy: %s", name, "-", "-", why);
                                continue;
                        }
                        fmt_time(m.time, when, sizeof when);
                        pgina_ctx_print(ctx, "%-34s %12" PRIu64 "  %-19s  conflict copy, saved by %s", name,
                                        chain_bytes(&m), when, m.host);
                        manifest_free(&m);
                } else if (strncmp(rest, ".v-", 3) == 0) {
                        fmt_time(vs.ents[i].mtime, when, sizeof when);
                        pgina_ctx_print(ctx, "%-34s %12" PRIu64 "  %-19s  previous, store format 1", rest + 3,
                                        vs.ents[i].size, when);
                }
        }
        v2_state_free(&vs);
        return 0;
}

int pgsmb_admin_restore_v2(struct pgina_ctx *ctx, const struct pgsmb_cfg *c, struct store *st, const char *version) {
        struct v2_profile p = {.dir = c->remote_dir, .filename = c->filename};
        struct manifest m = {0};
        struct pgsmb_state state;
        struct v2_state vs;
        char why[600], host[256], marks[PATH_MAX], *end;
        uint64_t n = 0;
        int k;

        /* this machine's prunes wait until the restored version is in the store (a prune lists
         * the store again before it removes archives: another machine's sees it too) */
        snprintf(marks, sizeof marks, "%s/%s", pgina_ctx_state_dir(ctx), c->user);
        _cleanup_close_ int prune_lock = v2_prune_lock(marks);
        if (prune_lock < 0)
                pgina_log(ctx, LOG_WARNING, "%s: cannot lock %s.prune: %s", c->user, marks, strerror(-prune_lock));
        if ((k = v2_load(st, &p, &vs, why, sizeof why)) < 0) {
                pgina_ctx_message(ctx, "%s", why);
                return k;
        }
        if (vs.top == 0) {
                v2_state_free(&vs);
                return 1; /* format 1: the caller restores */
        }
        if (pgina_ctx_user_sessions(ctx) > 0) {
                pgina_ctx_message(ctx, "%s is logged on here: log off first (the home in use would be saved over it)",
                                  c->user);
                v2_state_free(&vs);
                return -EBUSY;
        }
        errno = 0;
        n = strtoull(version, &end, 10);
        if (!errno && *end == 0 && n > 0)
                k = v2_read_manifest(st, &p, n, &m, why, sizeof why);
        else if (strncmp(version, c->filename, strlen(c->filename)) == 0 &&
                 strncmp(version + strlen(c->filename), ".c-", 3) == 0 && !strchr(version, '/'))
                k = v2_read_manifest_file(st, &p, version, &m, why, sizeof why);
        else {
                pgina_ctx_message(ctx, "no version '%s' of %s of store format 2 (pginactl profile list %s shows them%s)",
                                  version, c->user, c->user,
                                  strchr(version, '-') ? "; a version of store format 1 cannot be restored over one of "
                                                         "format 2"
                                                       : "");
                v2_state_free(&vs);
                return -ENOENT;
        }
        if (k < 0) {
                pgina_ctx_message(ctx, "cannot read version %s: %s", version, why);
                v2_state_free(&vs);
                return k;
        }
        pgsmb_host_short(host, sizeof host);
        for (unsigned tries = 0; tries < 5; tries++) {
                m.parent = vs.cur.number;
                m.number = (vs.top > vs.cur.number ? vs.top : vs.cur.number) + 1;
                manifest_new_id(m.id);
                snprintf(m.host, sizeof m.host, "%s", host);
                m.time = (int64_t)time(NULL);
                if ((k = v2_commit(st, &p, &m, NULL, why, sizeof why)) != -EEXIST)
                        break;
                v2_state_free(&vs);
                if ((k = v2_load(st, &p, &vs, why, sizeof why)) < 0)
                        break;
        }
        if (k < 0) {
                pgina_ctx_message(ctx, "cannot commit the restored version: %s", k == -EEXIST ? "the store is busy" : why);
                goto out;
        }
        (void)pgsmb_state_load(pgina_ctx_state_dir(ctx), c->user, &state);
        state.version[0] = 0;
        state.upload_failed = false;
        (void)pgsmb_state_save(pgina_ctx_state_dir(ctx), c->user, &state);
        pgina_log(ctx, LOG_NOTICE, "%s: version %s restored as the current profile (new version %" PRIu64 ")", c->user,
                  version, m.number);
        pgina_ctx_print(ctx, "version %s of %s is the current profile again (as version %" PRIu64 "); %s gets it at the "
                        "next logon", version, c->user, m.number, c->user);
out:
        manifest_free(&m);
        v2_state_free(&vs);
        return k < 0 ? k : 0;
}
