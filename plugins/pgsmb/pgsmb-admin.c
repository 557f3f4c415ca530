/* pgSMB admin commands (pginactl profile list|restore|upload USER [VERSION]). */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "pgsmb-admin.h"
#include "pgsmb-state.h"
#include "pgsmb-helper.h"
#include "pgsmb.h"
#include <pgina/util.h>

static void fmt_time(int64_t t, char *buf, size_t len) {
        time_t tt = (time_t)t;
        struct tm tm;

        strftime(buf, len, "%Y-%m-%d %H:%M:%S", localtime_r(&tt, &tm));
}

static int cmp_entries(const void *a, const void *b) {
        return strcmp(((const struct store_entry *)b)->name, ((const struct store_entry *)a)->name);
}

static int profile_list(struct pgina_ctx *ctx, struct pgsmb_cfg *c, struct store *st) {
        struct store_entry *v = NULL;
        struct pgsmb_meta meta;
        char meta_rel[1100], when[32];
        size_t n = 0, flen = strlen(c->filename), shown = 0;
        int r;

        snprintf(meta_rel, sizeof meta_rel, "%s.meta", c->rel_archive);
        r = store_list(st, c->remote_dir, &v, &n);
        if (r < 0) {
                pgina_ctx_message(ctx, "%s", store_error(st));
                return r;
        }
        qsort(v, n, sizeof *v, cmp_entries);
        pgina_ctx_print(ctx, "%-34s %12s  %-19s  %s", "VERSION", "BYTES", "DATE", "KIND");
        for (size_t i = 0; i < n; i++) {
                const char *name = v[i].name, *rest = name + flen;

                if (strncmp(name, c->filename, flen) != 0)
                        continue;
                fmt_time(v[i].mtime, when, sizeof when);
                if (!*rest) {
                        bool have = pgsmb_meta_read(st, meta_rel, &meta) == 0;
                        pgina_ctx_print(ctx, "%-34s %12" PRIu64 "  %-19s  current%s%s", have ? meta.version : "(unknown)",
                                        v[i].size, when, have ? ", saved by " : "", have ? meta.host : "");
                        shown++;
                } else if (strncmp(rest, ".v-", 3) == 0) {
                        pgina_ctx_print(ctx, "%-34s %12" PRIu64 "  %-19s  previous", rest + 3, v[i].size, when);
                        shown++;
                } else if (strncmp(rest, ".conflict-", 10) == 0) {
                        pgina_ctx_print(ctx, "%-34s %12" PRIu64 "  %-19s  conflict copy", name, v[i].size, when);
                        shown++;
                }
        }
        store_entries_free(v, n);
        if (shown == 0)
                pgina_ctx_print(ctx, "(no profile of %s in %s/%s)", c->user, store_url(st),
                                c->remote_dir[0] ? c->remote_dir : ".");
        return 0;
}

/* Copy src to the new file dst inside the store through us, hashing it on the way. */
static int copy_hashed(struct store *st, const char *src, const char *dst, uint64_t *size,
                       unsigned char sha[32]) {
        struct store_file *in = NULL, *out = NULL;
        _cleanup_free_ unsigned char *buf = malloc(1 << 20);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int r, rc;

        *size = 0;
        if (!buf || !md) {
                EVP_MD_CTX_free(md);
                return -ENOMEM;
        }
        if ((r = store_open_read(st, src, &in)) < 0) {
                EVP_MD_CTX_free(md);
                return r;
        }
        if ((r = store_open_write(st, dst, &out)) < 0) {
                store_close_file(in);
                EVP_MD_CTX_free(md);
                return r;
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        for (;;) {
                ssize_t k = store_read(in, buf, 1 << 20);
                if (k <= 0) {
                        r = (int)k;
                        break;
                }
                EVP_DigestUpdate(md, buf, (size_t)k);
                if ((r = store_write(out, buf, (size_t)k)) < 0)
                        break;
                *size += (uint64_t)k;
        }
        store_close_file(in);
        rc = store_close_file(out);
        EVP_DigestFinal_ex(md, sha, NULL);
        EVP_MD_CTX_free(md);
        return r < 0 ? r : rc;
}

/* Make a kept version (or a conflict copy) the current archive; the old current one is kept. */
static int profile_restore(struct pgina_ctx *ctx, struct pgsmb_cfg *c, struct store *st,
                           const char *version) {
        char src[1100], tmp[1100], keep[1100], meta_rel[1100], hex[65];
        struct pgsmb_meta cur, meta = {0};
        struct pgsmb_state state;
        struct store_stat ss;
        unsigned char sha[32];
        uint64_t size;
        int r;

        if (pgina_ctx_user_sessions(ctx) > 0) {
                pgina_ctx_message(ctx, "%s is logged on here: log off first (the home in use would be saved over it)",
                                  c->user);
                return -EBUSY;
        }
        if (strchr(version, '/') || strstr(version, ".."))
                return pgina_ctx_message(ctx, "invalid version '%s'", version), -EINVAL;
        /* A version id as listed, or the full name of a conflict copy. */
        if (strncmp(version, c->filename, strlen(c->filename)) == 0)
                snprintf(src, sizeof src, "%s%s%s", c->remote_dir, c->remote_dir[0] ? "/" : "", version);
        else
                snprintf(src, sizeof src, "%s.v-%s", c->rel_archive, version);
        if (store_stat(st, src, &ss) < 0) {
                pgina_ctx_message(ctx, "no version '%s' of %s (pginactl profile list %s shows them)",
                                  version, c->user, c->user);
                return -ENOENT;
        }
        snprintf(meta_rel, sizeof meta_rel, "%s.meta", c->rel_archive);
        pgsmb_version_new(meta.version);
        snprintf(tmp, sizeof tmp, "%s.tmp-restore-%s", c->rel_archive, meta.version);
        pgina_ctx_print(ctx, "copying %s (%" PRIu64 " bytes)...", src, ss.size);
        if ((r = copy_hashed(st, src, tmp, &size, sha)) < 0 ||
            (r = pgsmb_verify(st, tmp, size, sha, NULL, 0)) < 0) {
                pgina_ctx_message(ctx, "copy failed: %s", store_error(st));
                (void)store_unlink(st, tmp);
                return r;
        }
        if (store_stat(st, c->rel_archive, &ss) == 0) {
                bool have = pgsmb_meta_read(st, meta_rel, &cur) == 0;
                snprintf(keep, sizeof keep, "%s.v-%s", c->rel_archive, have ? cur.version : "unknown");
                /* The current archive is kept as a version (it may be kept already). */
                if (store_stat(st, keep, &ss) == 0)
                        r = store_unlink(st, c->rel_archive);
                else
                        r = store_rename(st, c->rel_archive, keep, false);
                if (r < 0) {
                        pgina_ctx_message(ctx, "%s", store_error(st));
                        (void)store_unlink(st, tmp);
                        return r;
                }
        }
        if ((r = store_rename(st, tmp, c->rel_archive, false)) < 0) {
                pgina_ctx_message(ctx, "%s", store_error(st));
                (void)store_unlink(st, tmp);
                return r;
        }
        pgsmb_hex(sha, hex);
        snprintf(meta.sha256, sizeof meta.sha256, "%s", hex);
        meta.size = size;
        gethostname(meta.host, sizeof meta.host);
        meta.host[sizeof meta.host - 1] = 0;
        meta.host[strcspn(meta.host, ".")] = 0; /* as a logoff's upload names it */
        meta.time = (int64_t)time(NULL);
        if ((r = pgsmb_meta_write(st, meta_rel, &meta)) < 0) {
                pgina_ctx_message(ctx, "the archive is in place but its .meta could not be written: %s",
                                  store_error(st));
                return r;
        }
        /* This machine's copy is no longer the one to keep: the next logon downloads. */
        (void)pgsmb_state_load(pgina_ctx_state_dir(ctx), c->user, &state);
        state.version[0] = 0;
        state.upload_failed = false;
        (void)pgsmb_state_save(pgina_ctx_state_dir(ctx), c->user, &state);
        pgina_log(ctx, LOG_NOTICE, "%s: version %s restored as the current profile (new version %s)",
                  c->user, version, meta.version);
        pgina_ctx_print(ctx, "version %s of %s is the current profile again (as version %s); %s gets it at the next logon",
                        version, c->user, meta.version, c->user);
        return 0;
}

int pgsmb_admin(struct pgina_ctx *ctx, struct pgina_user *u, int argc, const char *const *argv) {
        struct pgsmb_cfg c;
        struct store *st = NULL;
        char why[600];
        int r;

        if (argc < 3 || !streq(argv[0], "profile") || !u) {
                pgina_ctx_message(ctx, "usage: profile list|upload USER, profile restore USER VERSION");
                return -EINVAL;
        }
        if (streq(argv[1], "upload")) {
                r = pgsmb_upload(ctx, u, true);
                return r > 0 ? 0 : -EIO;
        }
        if (pgsmb_cfg_load(ctx, u, &c, why, sizeof why) < 0) {
                pgina_ctx_message(ctx, "%s", why);
                pgsmb_cfg_done(&c);
                return -EINVAL;
        }
        r = pgsmb_connect(ctx, &c, true, &st, why, sizeof why);
        if (r < 0)
                pgina_ctx_message(ctx, "cannot reach the profile store: %s", why);
        else if (streq(argv[1], "list")) {
                if ((r = pgsmb_admin_list_v2(ctx, &c, st)) == 1)
                        r = profile_list(ctx, &c, st);
        } else if (streq(argv[1], "restore") && argc == 4) {
                if ((r = pgsmb_admin_restore_v2(ctx, &c, st, argv[3])) == 1)
                        r = profile_restore(ctx, &c, st, argv[3]);
        }
        else {
                pgina_ctx_message(ctx, "usage: profile list|upload USER, profile restore USER VERSION");
                r = -EINVAL;
        }
        if (st)
                store_close(st);
        pgsmb_cfg_done(&c);
        return r;
}
