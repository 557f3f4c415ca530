/* pgSMB internals shared by its files: the settings of one user's call, the store connection. */
#pragma once

#include <pgina/plugin.h>

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pgsmb-archive.h"
#include "pgsmb-store.h"
#include <pgina/secret.h>

#define PGSMB_MARKER "pGina created pgSMB"
#define PGSMB_MARKER_TMP "pGina created pgSMB tmp"

struct pgsmb_cfg {
        const char *user;
        char share[1024]; /* store URL */
        char remote_dir[512]; /* folder of the profile, relative to the store ("" = root) */
        char filename[256];
        char rel_archive[800]; /* remote_dir/filename */
        char home[PATH_MAX];
        unsigned retries, retry_delay, timeout, keep_versions;
        unsigned store_format; /* 1: one archive per profile; 2: delta profiles (pgsmb-manifest.h) */
        unsigned compact_deltas, compact_percent; /* format 2: a new base past these */
        unsigned restore_readers; /* format 2 over smb://: readers of a large archive (pgsmb-fetch.h) */
        uint64_t max_storage_bytes; /* 0 = no limit */
        struct profile_compress comp;
        struct profile_limits lim;
        char **exclude; /* NULL-terminated */
        char **archive_argv, **extract_argv;
        char cred_user[256], cred_domain[256];
        char cred_error[512]; /* the credentials file is unusable: every connect fails with this */
        bool cred_from_user; /* credentials = user: the logon's password (in pginad's memory only) */
        struct secret *cred_password;
};

int pgsmb_expand(const char *in, const char *user, char *out, size_t len);
int pgsmb_cfg_load(struct pgina_ctx *ctx, struct pgina_user *u, struct pgsmb_cfg *c, char *why,
                   size_t whylen);
void pgsmb_cfg_done(struct pgsmb_cfg *c);
/* The store credentials of c (pointing into c's memory, the password included). */
void pgsmb_store_creds(const struct pgsmb_cfg *c, struct store_creds *cr);
/* Connect to c's store (with c's retries). for_writing: also create remote_dir there (an upload
 * needs it; a restore that finds no folder finds no archive, a first logon, and each request
 * costs a round trip). A connection tells pginad the store is reachable (pgina_ctx_retry_now: the
 * uploads waiting for a retry go now). -ENOKEY: an smb:// store with credentials = user and no
 * password in the record (a job pginad resumed after a restart: it never keeps one on disk). */
int pgsmb_connect(struct pgina_ctx *ctx, const struct pgsmb_cfg *c, bool for_writing,
                  struct store **ret, char *why, size_t whylen);

int pgsmb_gateway(struct pgina_ctx *ctx, struct pgina_user *u);
/* Save the home to the store now (logoff, or pginactl profile upload when admin). */
int pgsmb_upload(struct pgina_ctx *ctx, struct pgina_user *u, bool admin);
int pgsmb_admin(struct pgina_ctx *ctx, struct pgina_user *u, int argc, const char *const *argv);
int pgsmb_notify(struct pgina_ctx *ctx, enum pgina_event event, struct pgina_user *u);

/* Tell the admins (notify_emails) about a failure; logs when no mail can be sent. */
void pgsmb_mail_admin(struct pgina_ctx *ctx, struct pgina_user *u, const char *subject,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- logon tasks (pgsmb-logon.c) ---- */
/* Gateway: export home_share/home_mount into the session (record attributes "env:PGINA_HOME_SHARE",
 * "env:PGINA_HOME_MOUNT", which pginad hands to pam_pgina's open_session), mount the home share
 * where a mount helper exists, and apply max_storage_kb as a disk quota where the filesystem has
 * quotas (reported, never fatal). */
void pgsmb_logon_setup(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_cfg *c,
                       uid_t uid, gid_t gid);
/* A setting as the session sees it: the user record's attribute attr, else the option key; %u/%h
 * expanded, a UNC path (\\server\share\dir, pGina's usri4_home_dir) as an smb:// URL.
 * 0 = unset, 1 = out filled, -EINVAL = unusable. *from_attr (may be NULL): it came from attr. */
int pgsmb_session_value(struct pgina_ctx *ctx, struct pgina_user *u, const char *key, const char *attr,
                        char *out, size_t len, bool *from_attr);

/* ---- the home share's mount (pgsmb-mount.c) ---- */
/* Gateway: mount home_share on home_mount with the service credentials, by descriptor. */
void pgsmb_home_share_mount(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_cfg *c,
                            uid_t uid, gid_t gid);
/* Logoff: unmount the home share mounted at logon (before the home is archived). */
void pgsmb_logoff_unmount(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_cfg *c,
                          uid_t uid, gid_t gid);
/* An O_PATH descriptor of the mount point `mount` for uid: relative = inside home, every
 * component a directory of the user's (missing ones are made, 0700, then given to the user);
 * absolute = only when !from_attr, below parents that are root's and writable by no one else.
 * No symlink is followed and no mount crossed at any component. -EALREADY: something is mounted
 * there already; other -errno with why. */
int pgsmb_mount_point_open(const char *home, const char *mount, bool from_attr, uid_t uid, gid_t gid,
                           char *why, size_t whylen);
/* fd is the root of a mount other than parent's. */
bool pgsmb_fd_is_mount(int parent, int fd);
/* Logoff, before archiving (pgsmb-procs.c): wait logoff_process_wait s for the user's processes,
 * then end them (logind TerminateUser, else SIGTERM/SIGKILL) unless configured otherwise. */
void pgsmb_end_user_processes(struct pgina_ctx *ctx, const char *user, uid_t uid, gid_t gid);
/* Notification LOGON: SNTP check (ntp_servers) and the login script, as the user, bounded. */
int pgsmb_logon_tasks(struct pgina_ctx *ctx, struct pgina_user *u);

/* ---- format 2 compaction (pgsmb-compact.c) ---- */
struct manifest;
/* The chain of m passes compact_deltas or compact_percent. */
bool pgsmb_compact_due(const struct pgsmb_cfg *c, const struct manifest *m);
/* Logon notification: a new base when the current version's chain is due (from the stored
 * archives, as the user; the store is unchanged when anything fails). */
void pgsmb_compact(struct pgina_ctx *ctx, struct pgina_user *u);
