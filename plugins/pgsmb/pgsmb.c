/* pgSMB: roaming profiles as one compressed archive on an SMB share (pGina's pgSMB plugin).
 *
 * Gateway (before localmachine): make sure the local account exists ("pGina created pgSMB"),
 * restore the home from the store into a fresh directory as the user, then move it into place;
 * skip that when the user is logged on here already or the home is the store's version. When every
 * retry fails the user gets a temporary home ("pGina created pgSMB tmp") that is never uploaded.
 * Notification, logoff (a background job after the last session): archive the home as the user
 * straight onto the store under a temporary name, read it back to verify, keep the previous
 * version, and rename it into place, but only over the version this machine restored; otherwise
 * the upload becomes a conflict copy beside it. A failed upload keeps the local home. */
#include <pgina/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/account.h>
#include <pgina/run.h>
#include "pgsmb-archive.h"
#include "pgsmb-state.h"
#include "pgsmb-store.h"
#include "pgsmb-helper.h"
#include "pgsmb.h"
#include <pgina/secret.h>
#include <pgina/util.h>

static const struct pgina_option pgsmb_options[] = {
        {"share", PGINA_OPT_STRING, "file:///srv/pgina/profiles",
         "store URL: smb://server[:port]/share[/dir] or file:///dir (override: pgSMB_SMBshare)"},
        {"remote_path", PGINA_OPT_STRING, "%u", "folder of the user's profile in the store (override: usri4_profile)"},
        {"filename", PGINA_OPT_STRING, "%u.tar.zst", "archive name (override: pgSMB_Filename)"},
        {"extract_to", PGINA_OPT_STRING, "/home/%u", "where the profile is extracted: the home"},
        {"retries", PGINA_OPT_INT, "3", "tries to connect/download/extract/compress/upload"},
        {"retry_delay", PGINA_OPT_INT, "5", "seconds between tries"},
        {"timeout", PGINA_OPT_INT, "15", "seconds one store operation may take"},
        {"compression_level", PGINA_OPT_INT, "3", "zstd level (1-19) of the built-in compression"},
        {"compression_threads", PGINA_OPT_INT, "0", "zstd worker threads (0 = one per CPU, at most 4)"},
        {"program", PGINA_OPT_STRING, NULL, "external (de)compression program, absolute path (pGina's Program)"},
        {"compress_command", PGINA_OPT_LIST, NULL, "its arguments to write the archive of the home (cwd) to stdout"},
        {"uncompress_command", PGINA_OPT_LIST, NULL, "its arguments to extract the archive on stdin into the cwd"},
        {"credentials", PGINA_OPT_STRING, "user",
         "user = the logging-in user's name and password; or a root-only smbclient authentication file"},
        {"exclude", PGINA_OPT_LIST, ".cache", "paths under the home left out of the archive and the size"},
        {"home_share", PGINA_OPT_STRING, NULL, "home share exported as PGINA_HOME_SHARE (override: usri4_home_dir)"},
        {"home_mount", PGINA_OPT_STRING, NULL, "its mount point, PGINA_HOME_MOUNT (override: usri4_home_dir_drive)"},
        {"login_script", PGINA_OPT_STRING, NULL, "script run as the user at logon (override: LoginScript)"},
        {"logoff_process_wait", PGINA_OPT_INT, "10",
         "seconds the user's processes may outlive the last session before they are ended"},
        {"logoff_end_processes", PGINA_OPT_BOOL, "true",
         "end the user's remaining processes before the home is archived (logind TerminateUser, else signals)"},
        {"logoff_keep_processes", PGINA_OPT_LIST, NULL,
         "users (NAME) and groups (@GROUP) whose processes are never ended at logoff"},
        {"login_script_timeout", PGINA_OPT_INT, "60", "seconds the login script may run"},
        {"login_script_dir", PGINA_OPT_STRING, NULL,
         "the only local directory a LoginScript attribute may name a script in (default: none)"},
        {"max_storage_kb", PGINA_OPT_INT, "0", "profile size limit in KiB, 0 = none (override: usri4_max_storage)"},
        {"max_profile_size", PGINA_OPT_INT, "10737418240", "bytes an archive may unpack to (archive bombs stop here)"},
        {"max_entries", PGINA_OPT_INT, "2000000", "entries an archive may hold"},
        {"keep_versions", PGINA_OPT_INT, "3", "previous archives kept in the store for pginactl profile restore"},
        {"store_format", PGINA_OPT_INT, "2",
         "2 = delta profiles (a logoff uploads what changed), 1 = one archive per logoff (older pgina reads it)"},
        {"compact_deltas", PGINA_OPT_INT, "8", "format 2: deltas in a chain before a new base is written"},
        {"compact_percent", PGINA_OPT_INT, "25", "format 2: deltas' size, in % of the base, before a new base"},
        {"restore_readers", PGINA_OPT_INT, "2",
         "format 2 over smb://: connections of their own that read an archive of 64 MiB or more with the restore's "
         "(0 to 4; 0: the restore's connection alone)"},
        {"ntp_servers", PGINA_OPT_LIST, NULL, "SNTP servers asked at logon (host or host:port)"},
        {"ntp_max_skew", PGINA_OPT_INT, "5", "seconds of clock skew logged as a warning"},
        {"ntp_set_clock", PGINA_OPT_BOOL, "false", "correct the clock when it is off by more than ntp_max_skew"},
        {"notify_emails", PGINA_OPT_LIST, NULL, "addresses mailed when a profile cannot be restored or saved"},
        {"smtp_servers", PGINA_OPT_LIST, NULL, "SMTP servers tried in order (host or host:port)"},
        {"smtp_from", PGINA_OPT_STRING, NULL, "sender address (default pgina@<hostname>)"},
        {"smtp_credentials", PGINA_OPT_STRING, "user",
         "user = authenticate with the user's name and password, none, or a root-only authentication file"},
        {NULL, 0, NULL, NULL},
};

/* ---- settings ---- */

/* %u = user, %h = short host name, %% = %. */
int pgsmb_expand(const char *in, const char *user, char *out, size_t len) {
        char host[256];
        size_t o = 0;

        pgsmb_host_short(host, sizeof host);
        for (const char *p = in; *p; p++) {
                const char *add = NULL;
                char one[2] = {*p, 0};

                if (*p == '%' && p[1]) {
                        p++;
                        add = *p == 'u' ? user : *p == 'h' ? host : *p == '%' ? "%" : NULL;
                        if (!add)
                                return -EINVAL;
                } else
                        add = one;
                if (o + strlen(add) >= len)
                        return -ENAMETOOLONG;
                memcpy(out + o, add, strlen(add));
                o += strlen(add);
        }
        out[o] = 0;
        return 0;
}

/* A store-relative path: no absolute path, no "..", no empty or "." components. */
static bool valid_rel(const char *p) {
        const char *c = p;

        if (!*p || *p == '/')
                return false;
        while (*c) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
                if (*c == '/')
                        c++;
        }
        return strcspn(p, "\n\r\\") == strlen(p);
}

/* pGina's usri4_profile is a UNC path (\\server\share\dir): as a URL it names share and folder. */
static void unc_to_url(const char *unc, char *url, size_t len) {
        size_t o = (size_t)snprintf(url, len, "smb://");
        for (const char *p = unc + 2; *p && o + 1 < len; p++)
                url[o++] = *p == '\\' ? '/' : *p;
        url[o < len ? o : len - 1] = 0;
}

/* What a user record may set: a directory attribute may be writable by its user, so it steers
 * root only as far as a user may choose. A store only on an SMB server (never file://, which is
 * this machine's own files, read and renamed as root). */
/* Root makes staging directories beside the home and renames them into place, so the home's
 * parent and every directory above it must be root's and writable by no one else (a sticky
 * directory such as /tmp above a root-owned one is fine: no one else can move that one). */
static int home_parent_check(const char *home, char *why, size_t whylen) {
        char parent[PATH_MAX], real[PATH_MAX], *slash;
        struct stat st;

        snprintf(parent, sizeof parent, "%s", home);
        slash = strrchr(parent, '/');
        if (!slash)
                return -EINVAL;
        slash[slash == parent ? 1 : 0] = 0;
        if (!realpath(parent, real)) {
                snprintf(why, whylen, "extract_to: the home's parent %s: %s", parent, strerror(errno));
                return -errno;
        }
        for (bool first = true;; first = false) {
                if (lstat(real, &st) < 0) {
                        snprintf(why, whylen, "extract_to: %s: %s", real, strerror(errno));
                        return -errno;
                }
                if (st.st_uid != 0 || ((st.st_mode & (S_IWGRP | S_IWOTH)) && (first || !(st.st_mode & S_ISVTX)))) {
                        snprintf(why, whylen, "extract_to: the home's parent directories must be root's and writable "
                                 "by no one else, but %s is uid %u, mode %04o", real, (unsigned)st.st_uid,
                                 (unsigned)(st.st_mode & 07777));
                        return -EPERM;
                }
                if (streq(real, "/"))
                        return 0;
                slash = strrchr(real, '/');
                slash[slash == real ? 1 : 0] = 0;
        }
}

static const char *setting(struct pgina_ctx *ctx, struct pgina_user *u, const char *key,
                           const char *attr) {
        const char *v = attr && u ? pgina_user_get(u, attr) : NULL;

        if (v && *v && streq(attr, "pgSMB_SMBshare") && strncasecmp(v, "smb://", 6) != 0) {
                pgina_log(ctx, LOG_WARNING, "%s: attribute pgSMB_SMBshare '%s' refused (a store from the user's "
                          "directory entry must be smb://): [pgsmb] share is used", pgina_user_name(u), v);
                v = NULL;
        }
        return v && *v ? v : pgina_conf_get(ctx, key);
}

static void list_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static char **conf_list(struct pgina_ctx *ctx, const char *key, const char *first) {
        size_t n = pgina_conf_list_len(ctx, key), k = 0;
        char **v = calloc(n + 2, sizeof(char *));

        if (!v)
                return NULL;
        if (first && !(v[k++] = strdup(first))) {
                list_free(v);
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                if (!(v[k++] = strdup(pgina_conf_list_item(ctx, key, i)))) {
                        list_free(v);
                        return NULL;
                }
        return v;
}

void pgsmb_cfg_done(struct pgsmb_cfg *c) {
        list_free(c->exclude);
        list_free(c->archive_argv);
        list_free(c->extract_argv);
        secret_free(c->cred_password);
        memset(c, 0, sizeof *c);
}

/* Read `username =`, `password =`, `domain =` (smbclient's authentication file); root-only. */
static int read_auth_file(const char *path, struct pgsmb_cfg *c, char *why, size_t whylen) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char buf[2048], *save = NULL, *line;
        struct stat st;
        ssize_t k;

        if (fd < 0 || fstat(fd, &st) < 0) {
                snprintf(why, whylen, "credentials file %s: %s", path, strerror(errno));
                return -errno;
        }
        if (st.st_uid != 0 || (st.st_mode & 077)) {
                snprintf(why, whylen, "credentials file %s must be owned by root with mode 0600", path);
                return -EPERM;
        }
        k = read(fd, buf, sizeof buf - 1);
        if (k < 0) {
                snprintf(why, whylen, "credentials file %s: %s", path, strerror(errno));
                return -errno;
        }
        buf[k] = 0;
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '='), *key = line, *val;
                if (!eq)
                        continue;
                *eq = 0;
                val = eq + 1;
                while (*key == ' ' || *key == '\t')
                        key++;
                for (char *e = key + strlen(key); e > key && (e[-1] == ' ' || e[-1] == '\t');)
                        *--e = 0;
                while (*val == ' ' || *val == '\t')
                        val++;
                if (streq(key, "username"))
                        snprintf(c->cred_user, sizeof c->cred_user, "%s", val);
                else if (streq(key, "domain"))
                        snprintf(c->cred_domain, sizeof c->cred_domain, "%s", val);
                else if (streq(key, "password")) {
                        secret_free(c->cred_password);
                        c->cred_password = secret_from_cstr(val);
                }
        }
        explicit_bzero(buf, sizeof buf);
        if (!c->cred_user[0] || !c->cred_password) {
                snprintf(why, whylen, "credentials file %s needs username = and password =", path);
                return -EINVAL;
        }
        return 0;
}

int pgsmb_cfg_load(struct pgina_ctx *ctx, struct pgina_user *u, struct pgsmb_cfg *c, char *why,
                   size_t whylen) {
        const char *name = pgina_user_name(u);
        const char *share = setting(ctx, u, "share", "pgSMB_SMBshare");
        const char *rpath = setting(ctx, u, "remote_path", "usri4_profile");
        const char *fname = setting(ctx, u, "filename", "pgSMB_Filename");
        const char *storage = setting(ctx, u, "max_storage_kb", "usri4_max_storage");
        const char *creds = pgina_conf_get(ctx, "credentials");
        const char *program = pgina_conf_get(ctx, "program");
        char tmp[PATH_MAX];

        memset(c, 0, sizeof *c);
        c->user = name;
        if (rpath && rpath[0] == '\\' && rpath[1] == '\\') {
                /* usri4_profile as pGina has it: a UNC path naming share and folder at once */
                unc_to_url(rpath, tmp, sizeof tmp);
                share = tmp;
                rpath = "";
        }
        if (pgsmb_expand(share, name, c->share, sizeof c->share) < 0 ||
            pgsmb_expand(rpath ? rpath : "", name, c->remote_dir, sizeof c->remote_dir) < 0 ||
            pgsmb_expand(fname, name, c->filename, sizeof c->filename) < 0 ||
            pgsmb_expand(pgina_conf_get(ctx, "extract_to"), name, c->home, sizeof c->home) < 0) {
                snprintf(why, whylen, "a path setting of [pgsmb] has an unknown %% sequence or is too long");
                return -EINVAL;
        }
        if ((c->remote_dir[0] && !valid_rel(c->remote_dir)) || !valid_rel(c->filename) ||
            strchr(c->filename, '/')) {
                snprintf(why, whylen, "remote_path '%s' or filename '%s' leads outside the store",
                         c->remote_dir, c->filename);
                return -EINVAL;
        }
        if (c->home[0] != '/' || strstr(c->home, "/..") || streq(c->home, "/")) {
                snprintf(why, whylen, "extract_to '%s' must be an absolute path", c->home);
                return -EINVAL;
        }
        if (home_parent_check(c->home, why, whylen) < 0)
                return -EPERM;
        snprintf(c->rel_archive, sizeof c->rel_archive, "%s%s%s", c->remote_dir,
                 c->remote_dir[0] ? "/" : "", c->filename);
        c->retries = (unsigned)pgina_conf_int(ctx, "retries");
        if (c->retries == 0)
                c->retries = 1;
        c->retry_delay = (unsigned)pgina_conf_int(ctx, "retry_delay");
        c->timeout = (unsigned)pgina_conf_int(ctx, "timeout");
        c->keep_versions = (unsigned)pgina_conf_int(ctx, "keep_versions");
        c->store_format = pgina_conf_int(ctx, "store_format") == 1 ? 1 : 2;
        c->compact_deltas = (unsigned)pgina_conf_int(ctx, "compact_deltas");
        c->compact_percent = (unsigned)pgina_conf_int(ctx, "compact_percent");
        c->restore_readers = (unsigned)pgina_conf_int(ctx, "restore_readers");
        c->max_storage_bytes = strtoull(storage ? storage : "0", NULL, 10) * 1024ULL;
        c->comp.level = (int)pgina_conf_int(ctx, "compression_level");
        c->comp.threads = (int)pgina_conf_int(ctx, "compression_threads");
        c->lim.max_total_bytes = (uint64_t)pgina_conf_int(ctx, "max_profile_size");
        c->lim.max_entries = (uint64_t)pgina_conf_int(ctx, "max_entries");
        c->lim.max_entry_bytes = c->lim.max_total_bytes;
        if (!(c->exclude = conf_list(ctx, "exclude", NULL)))
                return -ENOMEM;
        if (program && *program) {
                c->archive_argv = conf_list(ctx, "compress_command", program);
                c->extract_argv = conf_list(ctx, "uncompress_command", program);
                if (!c->archive_argv || !c->extract_argv)
                        return -ENOMEM;
                c->comp.archive_argv = c->archive_argv;
                c->comp.extract_argv = c->extract_argv;
        }
        if (creds && !streq(creds, "user")) {
                /* A broken credentials file is like an unreachable store: the user still logs on
                 * (temporary profile), the admin is told. */
                if (read_auth_file(creds, c, c->cred_error, sizeof c->cred_error) < 0)
                        pgina_log(ctx, LOG_ERR, "%s: %s", name, c->cred_error);
        } else {
                snprintf(c->cred_user, sizeof c->cred_user, "%s", name);
                c->cred_from_user = true;
                if (pgina_user_password(u))
                        c->cred_password = secret_from_cstr(pgina_user_password(u));
        }
        return 0;
}

/* ---- the store ---- */

void pgsmb_store_creds(const struct pgsmb_cfg *c, struct store_creds *cr) {
        *cr = (struct store_creds){
                .user = c->cred_user,
                .domain = c->cred_domain[0] ? c->cred_domain : NULL,
                .password = c->cred_password ? c->cred_password->data : NULL,
        };
}

int pgsmb_connect(struct pgina_ctx *ctx, const struct pgsmb_cfg *c, bool for_writing,
                  struct store **ret, char *why, size_t whylen) {
        struct store_creds cr;
        int r = -EIO;

        pgsmb_store_creds(c, &cr);
        if (c->cred_error[0]) {
                snprintf(why, whylen, "%s", c->cred_error);
                return -EACCES;
        }
        if (c->cred_from_user && !c->cred_password && strncmp(c->share, "smb://", 6) == 0) {
                snprintf(why, whylen, "%s needs the password of %s (credentials = user), which pginad keeps in "
                         "memory only: it was restarted since the logon", c->share, c->user);
                return -ENOKEY;
        }
        for (unsigned i = 0; i < c->retries; i++) {
                if (i > 0) {
                        pgina_ctx_progress(ctx, "Profile store not reachable, trying again (%u of %u)...",
                                           i + 1, c->retries);
                        sleep(c->retry_delay);
                }
                /* connecting with the listing of the user's folder, which every caller starts with */
                r = store_open_listing(c->share, &cr, c->timeout, c->remote_dir, ret, why, whylen);
                if (r >= 0) {
                        pgina_ctx_retry_now(ctx); /* it answers: waiting uploads may go */
                        if (for_writing && c->remote_dir[0] && (r = store_mkdirs(*ret, c->remote_dir)) < 0) {
                                snprintf(why, whylen, "%s", store_error(*ret));
                                store_close(*ret);
                                *ret = NULL;
                                continue;
                        }
                        return 0;
                }
                pgina_log(ctx, LOG_WARNING, "%s: cannot reach the profile store (try %u of %u): %s",
                          c->user, i + 1, c->retries, why);
        }
        return r;
}

/* ---- plugin entry points ---- */

static int pgsmb_check_config(struct pgina_ctx *ctx) {
        const char *share = pgina_conf_get(ctx, "share");
        const char *program = pgina_conf_get(ctx, "program");
        const char *creds = pgina_conf_get(ctx, "credentials");
        long long level = pgina_conf_int(ctx, "compression_level");
        char out[PATH_MAX];

        if (!share || (strncmp(share, "smb://", 6) != 0 && strncmp(share, "file:///", 8) != 0)) {
                pgina_ctx_message(ctx, "share must be smb://server/share[/dir] or file:///dir, not '%s'",
                                  strempty(share));
                return -EINVAL;
        }
        if (pgsmb_expand(pgina_conf_get(ctx, "remote_path"), "user", out, sizeof out) < 0 ||
            pgsmb_expand(pgina_conf_get(ctx, "filename"), "user", out, sizeof out) < 0 ||
            pgsmb_expand(pgina_conf_get(ctx, "extract_to"), "user", out, sizeof out) < 0) {
                pgina_ctx_message(ctx, "remote_path, filename and extract_to may use %%u, %%h and %%%% only");
                return -EINVAL;
        }
        if (!strchr(pgina_conf_get(ctx, "extract_to"), '/') ||
            pgina_conf_get(ctx, "extract_to")[0] != '/') {
                pgina_ctx_message(ctx, "extract_to '%s' must be an absolute path", pgina_conf_get(ctx, "extract_to"));
                return -EINVAL;
        }
        {
                /* The parent, when it does not depend on the user: checked now (else at each logon). */
                const char *tpl = pgina_conf_get(ctx, "extract_to"), *last = strrchr(tpl, '/');
                char why[PATH_MAX + 200];
                if (!memchr(tpl, '%', (size_t)(last - tpl)) && home_parent_check(out, why, sizeof why) < 0) {
                        pgina_ctx_message(ctx, "%s", why);
                        return -EINVAL;
                }
        }
        if (level < 1 || level > 19) {
                pgina_ctx_message(ctx, "compression_level must be between 1 and 19, not %lld", level);
                return -EINVAL;
        }
        {
                long long format = pgina_conf_int(ctx, "store_format");
                long long deltas = pgina_conf_int(ctx, "compact_deltas"), pct = pgina_conf_int(ctx, "compact_percent");
                if (format != 1 && format != 2) {
                        pgina_ctx_message(ctx, "store_format must be 1 or 2, not %lld", format);
                        return -EINVAL;
                }
                if (deltas < 0 || deltas > 4000 || pct < 0 || pct > 10000) {
                        pgina_ctx_message(ctx, "compact_deltas must be 0 to 4000 and compact_percent 0 to 10000");
                        return -EINVAL;
                }
                long long readers = pgina_conf_int(ctx, "restore_readers");
                if (readers < 0 || readers > PGSMB_READERS_MAX) {
                        pgina_ctx_message(ctx, "restore_readers must be 0 to %d, not %lld", PGSMB_READERS_MAX, readers);
                        return -EINVAL;
                }
        }
        if (program && *program) {
                if (program[0] != '/' || access(program, X_OK) < 0) {
                        pgina_ctx_message(ctx, "program '%s' must be an absolute path to an executable", program);
                        return -EINVAL;
                }
                if (pgina_conf_list_len(ctx, "compress_command") == 0 ||
                    pgina_conf_list_len(ctx, "uncompress_command") == 0) {
                        pgina_ctx_message(ctx, "program needs both compress_command and uncompress_command");
                        return -EINVAL;
                }
        }
        if (creds && !streq(creds, "user") && creds[0] != '/') {
                pgina_ctx_message(ctx, "credentials must be 'user' or the absolute path of an authentication file");
                return -EINVAL;
        }
        return 0;
}

PGINA_PLUGIN_DEFINE(
        .stages = PGINA_STAGE_GATEWAY | PGINA_STAGE_NOTIFICATION,
        .name = "pgsmb",
        .version = "1.0",
        .description = "Roaming profiles: the home as one compressed archive on an SMB share",
        .options = pgsmb_options,
        .check_config = pgsmb_check_config,
        .gateway = pgsmb_gateway,
        .notify = pgsmb_notify,
        .admin = pgsmb_admin,
);
