/* pgSMB at logon, besides the profile itself. Gateway (pgsmb_logon_setup): the home share and its
 * mount point exported into the session, max_storage_kb as a disk quota where the filesystem has
 * quotas. Notification LOGON (pgsmb_logon_tasks, a background worker): the SNTP clock check and
 * the login script. Everything here is reported in the log and never fails a logon. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <pgina/run.h>
#include "pgsmb-logon.h"
#include "pgsmb.h"
#include <pgina/util.h>

#define NS 1000000000LL
#define NTP_TIMEOUT_MS 2000
#define LOGIN_SCRIPT_MAX (1024 * 1024) /* bytes of a script downloaded from the share */
#define LOGIN_SCRIPT_TIMEOUT_DEFAULT 60

static const char *setting(struct pgina_ctx *ctx, struct pgina_user *u, const char *key, const char *attr) {
        const char *v = pgina_user_get(u, attr);
        return v && *v ? v : pgina_conf_get(ctx, key);
}

int pgsmb_session_value(struct pgina_ctx *ctx, struct pgina_user *u, const char *key, const char *attr,
                        char *out, size_t len, bool *from_attr) {
        const char *a = pgina_user_get(u, attr), *v = a && *a ? a : pgina_conf_get(ctx, key);
        bool used = a && *a;
        char tmp[PGINA_VALUE_MAX];

        if (from_attr)
                *from_attr = used;
        if (!v || !*v)
                return 0;
        if (pgsmb_expand(v, pgina_user_name(u), tmp, sizeof tmp) < 0) {
                pgina_log(ctx, LOG_WARNING, "%s: %s '%s' has an unknown %% sequence or is too long, not used",
                          pgina_user_name(u), key, v);
                return -EINVAL;
        }
        if (used && streq(key, "home_share") && strncasecmp(tmp, "smb://", 6) != 0 &&
            !(tmp[0] == '\\' && tmp[1] == '\\')) {
                pgina_log(ctx, LOG_WARNING, "%s: attribute %s '%s' refused (a home share from the user's directory "
                          "entry must be smb:// or \\\\server\\share)", pgina_user_name(u), attr, tmp);
                return -EINVAL;
        }
        if (tmp[0] == '\\' && tmp[1] == '\\') {
                size_t o = (size_t)snprintf(out, len, "smb://");
                for (const char *p = tmp + 2; *p && o + 1 < len; p++)
                        out[o++] = *p == '\\' ? '/' : *p;
                out[o] = 0;
        } else
                snprintf(out, len, "%s", tmp);
        for (const unsigned char *p = (const unsigned char *)out; *p; p++)
                if (*p < ' ' || *p == 0x7f) {
                        pgina_log(ctx, LOG_WARNING, "%s: %s holds control characters, not used", pgina_user_name(u), key);
                        return -EINVAL;
                }
        return 1;
}

/* ---- gateway: the home share ---- */

static void home_share_export(struct pgina_ctx *ctx, struct pgina_user *u) {
        char share[PGINA_VALUE_MAX], mount[PGINA_VALUE_MAX];
        const char *user = pgina_user_name(u);

        if (pgsmb_session_value(ctx, u, "home_share", "usri4_home_dir", share, sizeof share, NULL) > 0) {
                if (pgina_user_set(u, "env:PGINA_HOME_SHARE", share) < 0)
                        pgina_log(ctx, LOG_WARNING, "%s: cannot export PGINA_HOME_SHARE", user);
                else
                        pgina_log(ctx, LOG_INFO, "%s: home share %s exported as PGINA_HOME_SHARE", user, share);
        }
        if (pgsmb_session_value(ctx, u, "home_mount", "usri4_home_dir_drive", mount, sizeof mount, NULL) > 0) {
                if (pgina_user_set(u, "env:PGINA_HOME_MOUNT", mount) < 0)
                        pgina_log(ctx, LOG_WARNING, "%s: cannot export PGINA_HOME_MOUNT", user);
                pgina_log(ctx, LOG_INFO, "%s: home mount point %s exported as PGINA_HOME_MOUNT", user, mount);
        }
}

/* ---- gateway: max_storage_kb as a quota ---- */

/* The mount point holding path: walk up while the device stays the same. */
static int mount_point(const char *path, char *out, size_t len) {
        char cur[PATH_MAX];
        struct stat st, up;

        if (!realpath(path, cur) || stat(cur, &st) < 0)
                return -errno;
        while (!streq(cur, "/")) {
                char parent[PATH_MAX], *slash;

                snprintf(parent, sizeof parent, "%s", cur);
                slash = strrchr(parent, '/');
                slash[slash == parent ? 1 : 0] = 0;
                if (stat(parent, &up) < 0)
                        return -errno;
                if (up.st_dev != st.st_dev)
                        break;
                snprintf(cur, sizeof cur, "%s", parent);
        }
        if (strlen(cur) >= len)
                return -ENAMETOOLONG;
        snprintf(out, len, "%s", cur);
        return 0;
}

/* mountinfo's octal escapes (\040 for a space) undone in place. */
static void unescape_octal(char *s) {
        char *o = s;

        for (; *s; s++)
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
                    s[3] <= '7') {
                        *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else
                        *o++ = *s;
        *o = 0;
}

/* The device (mount source) mounted at mnt, from /proc/self/mountinfo; the last mount wins. */
static int mount_source(const char *mnt, char *out, size_t len) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0) {
                char *save = NULL, *field[5], *sep, *src;
                int i;

                for (i = 0; i < 5 && (field[i] = strtok_r(i ? NULL : line, " ", &save)); i++)
                        ;
                if (i < 5 || !(sep = strstr(field[4] + strlen(field[4]) + 1, " - ")))
                        continue;
                unescape_octal(field[4]);
                if (!streq(field[4], mnt))
                        continue;
                save = NULL;
                if (!strtok_r(sep + 3, " ", &save) || !(src = strtok_r(NULL, " ", &save)))
                        continue;
                unescape_octal(src);
                snprintf(out, len, "%s", src);
                r = 0;
        }
        return r;
}

/* glibc's QCMD shifts a signed int past its range for Q_GETINFO (undefined behaviour). */
#define QCMD_U(cmd, type) ((int)(((unsigned)(cmd) << SUBCMDSHIFT) | ((unsigned)(type) & SUBCMDMASK)))

/* 1 = user quotas are on, 0 = off, -ENOSYS = the kernel has no quota support, other -errno =
 * cannot tell. */
static int user_quota_on(const char *mnt) {
        struct dqinfo info;
        char dev[PATH_MAX];
#ifdef SYS_quotactl_fd
        _cleanup_close_ int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (syscall(SYS_quotactl_fd, fd, QCMD_U(Q_GETINFO, USRQUOTA), 0, &info) == 0)
                return 1;
        if (errno == ESRCH || errno == EOPNOTSUPP || errno == ENOTTY)
                return 0;
        if (errno != ENOSYS)
                return -errno;
#endif
        /* No quotactl_fd (Linux < 5.14, or filtered): ask about the mount's device. */
        if (mount_source(mnt, dev, sizeof dev) < 0)
                return -ENOENT;
        if (quotactl(QCMD_U(Q_GETINFO, USRQUOTA), dev, 0, (caddr_t)&info) == 0)
                return 1;
        if (errno == ENOSYS)
                return -ENOSYS;
        if (errno == ESRCH || errno == ENOTBLK || errno == ENODEV || errno == ENOENT || errno == EOPNOTSUPP)
                return 0; /* off, or not a device that can have quotas (tmpfs, overlay...) */
        return -errno;
}

static void quota_apply(struct pgina_ctx *ctx, const struct pgsmb_cfg *c) {
        uint64_t kb = c->max_storage_bytes / 1024;
        char mnt[PATH_MAX], limit[32];
        const char *argv[] = {"setquota", "-u", c->user, limit, limit, "0", "0", mnt, NULL};
        struct pgina_run_result res;
        int r;

        if (kb == 0)
                return;
        if ((r = mount_point(c->home, mnt, sizeof mnt)) < 0) {
                pgina_log(ctx, LOG_WARNING, "%s: no disk quota (max_storage_kb): cannot find the filesystem of %s: %s",
                          c->user, c->home, strerror(-r));
                return;
        }
        r = user_quota_on(mnt);
        if (r == 0 || r == -ENOSYS) {
                pgina_log(ctx, LOG_INFO, "%s: %s%s: max_storage_kb (%" PRIu64 " KiB) is checked at logoff only",
                          c->user, r == 0 ? "no user quotas on " : "the kernel has no disk quota support",
                          r == 0 ? mnt : "", kb);
                return;
        }
        /* On, or the kernel cannot say (no quotactl_fd): setquota decides. */
        snprintf(limit, sizeof limit, "%" PRIu64, kb);
        r = pgina_run_tool(argv, NULL, 0, &res);
        if (r == -ENOENT)
                pgina_log(ctx, LOG_INFO, "%s: setquota is not installed (package quota): max_storage_kb is checked at logoff only",
                          c->user);
        else if (r < 0 || res.status != 0)
                pgina_log(ctx, LOG_WARNING, "%s: setquota of %" PRIu64 " KiB on %s failed: %s", c->user, kb, mnt,
                          r < 0 ? strerror(-r) : res.err[0] ? res.err : "non-zero exit status");
        else
                pgina_log(ctx, LOG_INFO, "%s: disk quota of %" PRIu64 " KiB set on %s", c->user, kb, mnt);
}

void pgsmb_logon_setup(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_cfg *c, uid_t uid,
                       gid_t gid) {
        if (pgina_ctx_dry_run(ctx))
                return;
        home_share_export(ctx, u);
        if (uid != 0)
                pgsmb_home_share_mount(ctx, u, c, uid, gid);
        if (uid != 0)
                quota_apply(ctx, c);
}

/* ---- notification: the clock ---- */

static void clock_correct(struct pgina_ctx *ctx, int64_t offset_ns) {
        struct timespec ts;
        int64_t t;

        clock_gettime(CLOCK_REALTIME, &ts);
        t = (int64_t)ts.tv_sec * NS + ts.tv_nsec + offset_ns;
        ts.tv_sec = (time_t)(t / NS);
        ts.tv_nsec = (long)(t % NS);
        if (clock_settime(CLOCK_REALTIME, &ts) < 0)
                pgina_log(ctx, LOG_ERR, "cannot correct the clock by %+.3f s: %m", (double)offset_ns / NS);
        else
                pgina_log(ctx, LOG_NOTICE, "clock corrected by %+.3f s (ntp_set_clock)", (double)offset_ns / NS);
}

static void ntp_check(struct pgina_ctx *ctx) {
        size_t n = pgina_conf_list_len(ctx, "ntp_servers");
        long long max_skew = pgina_conf_int(ctx, "ntp_max_skew");

        if (n == 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const char *server = pgina_conf_list_item(ctx, "ntp_servers", i);
                struct sntp_result res;
                char err[256];
                double skew;

                if (sntp_query(server, NTP_TIMEOUT_MS, &res, err, sizeof err) < 0) {
                        pgina_log(ctx, LOG_WARNING, "NTP server %s: %s", server, err);
                        continue;
                }
                skew = (double)res.offset_ns / NS;
                pgina_log(ctx, LOG_INFO, "clock skew against NTP server %s (%s, stratum %u): %+.3f s, round trip %.1f ms",
                          server, res.address, res.stratum, skew, (double)res.delay_ns / 1e6);
                if (llabs(res.offset_ns) <= max_skew * NS)
                        return;
                pgina_log(ctx, LOG_WARNING, "the clock is off by %+.3f s against %s, more than ntp_max_skew = %lld s%s",
                          skew, server, max_skew,
                          pgina_conf_bool(ctx, "ntp_set_clock") ? "" : "; not corrected (ntp_set_clock = false)");
                if (pgina_conf_bool(ctx, "ntp_set_clock"))
                        clock_correct(ctx, res.offset_ns);
                return;
        }
        pgina_log(ctx, LOG_WARNING, "no server of ntp_servers answered: the clock was not checked");
}

/* ---- notification: the login script ---- */

static bool valid_rel(const char *p) {
        if (!*p || *p == '/')
                return false;
        for (const char *c = p; *c;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
                c += *c == '/';
        }
        return true;
}

/* Read a small file of the store into memory. */
static int store_slurp(struct store *st, const char *rel, char **ret, size_t *len, char *why, size_t whylen) {
        struct store_file *f = NULL;
        _cleanup_free_ char *buf = malloc(LOGIN_SCRIPT_MAX + 1);
        size_t n = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        if ((r = store_open_read(st, rel, &f)) < 0) {
                snprintf(why, whylen, "%s", store_error(st));
                return r;
        }
        for (;;) {
                ssize_t k = store_read(f, buf + n, LOGIN_SCRIPT_MAX + 1 - n);
                if (k < 0) {
                        snprintf(why, whylen, "%s", store_error(st));
                        store_close_file(f);
                        return (int)k;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
                if (n > LOGIN_SCRIPT_MAX) {
                        snprintf(why, whylen, "%s/%s is larger than %d bytes", store_url(st), rel, LOGIN_SCRIPT_MAX);
                        store_close_file(f);
                        return -EFBIG;
                }
        }
        store_close_file(f);
        *ret = TAKE_PTR(buf);
        *len = n;
        return 0;
}

/* A script on the share: an smb:// (or file://) URL, or a path relative to the share's root. */
static int share_script_run(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_user *pu,
                            const struct login_script *s, const char *where, bool from_attr) {
        struct pgsmb_cfg cfg;
        struct store_creds cr;
        struct store *st = NULL;
        _cleanup_free_ char *data = NULL;
        char url[1024], rel[1024], why[600] = "";
        const char *scheme = strstr(where, "://");
        size_t len = 0, sl;
        int r;

        if ((r = pgsmb_cfg_load(ctx, u, &cfg, why, sizeof why)) < 0)
                goto out;
        sl = strlen(cfg.share);
        if (strncmp(where, cfg.share, sl) == 0 && where[sl] == '/') {
                snprintf(url, sizeof url, "%s", cfg.share);
                snprintf(rel, sizeof rel, "%s", where + sl + 1);
        } else if (scheme && from_attr) {
                /* A LoginScript attribute names a file of the user's own store, nothing else. */
                pgina_log(ctx, LOG_WARNING, "%s: attribute LoginScript '%s' refused (a script from the user's directory "
                          "entry must be in the store %s or in login_script_dir): not run", pu->name, where, cfg.share);
                pgsmb_cfg_done(&cfg);
                return -EPERM;
        } else if (scheme) { /* elsewhere: the URL's folder is the store, its last part the file */
                const char *slash = strrchr(where, '/');
                if (slash < scheme + 3 || !strchr(scheme + 3, '/'))
                        slash = where + strlen(where);
                snprintf(url, sizeof url, "%.*s", (int)(slash - where), where);
                snprintf(rel, sizeof rel, "%s", *slash ? slash + 1 : "");
        } else {
                snprintf(url, sizeof url, "%s", cfg.share);
                snprintf(rel, sizeof rel, "%s", where);
        }
        if (!valid_rel(rel)) {
                snprintf(why, sizeof why, "'%s' is neither an absolute path, the URL of a file nor a path in the share",
                         where);
                r = -EINVAL;
                goto out;
        }
        cr = (struct store_creds){
                .user = cfg.cred_user,
                .domain = cfg.cred_domain[0] ? cfg.cred_domain : NULL,
                .password = cfg.cred_password ? cfg.cred_password->data : NULL,
        };
        if ((r = store_open(url, &cr, cfg.timeout, &st, why, sizeof why)) < 0)
                goto out;
        r = store_slurp(st, rel, &data, &len, why, sizeof why);
        store_close(st);
        if (r >= 0)
                r = login_script_run_data(ctx, pu, s, data, len);
out:
        if (r < 0 && why[0])
                pgina_log(ctx, LOG_ERR, "%s: login script %s not run: %s", pu->name, s->label, why);
        if (data)
                explicit_bzero(data, len);
        pgsmb_cfg_done(&cfg);
        return r;
}

/* path (resolved) lies inside the admin's login_script_dir: the only local scripts a LoginScript
 * attribute may name. */
static bool in_script_dir(struct pgina_ctx *ctx, const char *path) {
        const char *dir = pgina_conf_get(ctx, "login_script_dir");
        char real[PATH_MAX];
        size_t n;

        if (!dir || !*dir || !realpath(dir, real))
                return false;
        n = strlen(real);
        return strncmp(path, real, n) == 0 && (path[n] == '/' || streq(real, "/"));
}

static void login_script(struct pgina_ctx *ctx, struct pgina_user *u) {
        const char *name = pgina_user_name(u), *v = setting(ctx, u, "login_script", "LoginScript");
        const char *attr = pgina_user_get(u, "LoginScript");
        bool from_attr = attr && *attr;
        char where[PATH_MAX], share[PGINA_VALUE_MAX], mount[PGINA_VALUE_MAX], pwbuf[4096], path[PATH_MAX],
                err[600];
        struct passwd pw, *pwp = NULL;
        struct pgsmb_user pu;
        struct login_script s = {.label = where};
        long long timeout = pgina_conf_int(ctx, "login_script_timeout");

        if (!v || !*v)
                return;
        if (pgsmb_expand(v, name, where, sizeof where) < 0) {
                pgina_log(ctx, LOG_ERR, "%s: login script '%s' has an unknown %% sequence or is too long", name, v);
                return;
        }
        if (getpwnam_r(name, &pw, pwbuf, sizeof pwbuf, &pwp) != 0 || !pwp) {
                pgina_log(ctx, LOG_WARNING, "%s: no local account: login script %s not run", name, where);
                return;
        }
        if (pw.pw_uid == 0) {
                pgina_log(ctx, LOG_WARNING, "%s: uid 0: login script %s not run", name, where);
                return;
        }
        pu = (struct pgsmb_user){.name = name, .uid = pw.pw_uid, .gid = pw.pw_gid, .home = pw.pw_dir};
        s.timeout_s = timeout > 0 && timeout < 86400 ? (unsigned)timeout : LOGIN_SCRIPT_TIMEOUT_DEFAULT;
        if (pgsmb_session_value(ctx, u, "home_share", "usri4_home_dir", share, sizeof share, NULL) > 0)
                s.home_share = share;
        if (pgsmb_session_value(ctx, u, "home_mount", "usri4_home_dir_drive", mount, sizeof mount, NULL) > 0)
                s.home_mount = mount;
        if (where[0] != '/') {
                (void)share_script_run(ctx, u, &pu, &s, where, from_attr);
                return;
        }
        if (login_script_check(where, pu.uid, path, err, sizeof err) < 0) {
                pgina_log(ctx, LOG_ERR, "%s: %s: not run", name, err);
                return;
        }
        if (from_attr && !in_script_dir(ctx, path)) {
                pgina_log(ctx, LOG_WARNING, "%s: attribute LoginScript '%s' refused (a local script from the user's "
                          "directory entry must lie in login_script_dir%s): not run", name, where,
                          pgina_conf_get(ctx, "login_script_dir") ? "" : ", which is not set");
                return;
        }
        s.path = path;
        (void)login_script_run(ctx, &pu, &s);
}

int pgsmb_logon_tasks(struct pgina_ctx *ctx, struct pgina_user *u) {
        if (pgina_ctx_dry_run(ctx))
                return 1;
        ntp_check(ctx);
        login_script(ctx, u);
        pgsmb_compact(ctx, u);
        return 1; /* a logon notification never blocks the logon: failures are in the log */
}
