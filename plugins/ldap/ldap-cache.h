/* Cached (offline) logons of the ldap plugin (cache_credentials): after an online authentication
 * the user's record, the membership of the groups the rules name and a yescrypt hash of the
 * password go to <state_dir>/cache/<user>.entry (a 0700 directory, 0600 files, replaced
 * atomically). When no server answers, authentication may check the password against that hash
 * for cache_days, and authorization/gateway may judge by the cached membership. The password
 * itself is never written; every buffer that held it or its hash is wiped. */
#pragma once

#include <pgina/plugin.h>

#include <stdbool.h>
#include <stdint.h>

struct pgldap_cache_attr {
        char *key, *value;
};

struct pgldap_cache_group {
        char *dn; /* the group's DN as the rules resolve it (pgldap_group_dn) */
        bool member;
};

struct pgldap_cache_entry {
        char *user;
        long long time; /* when the online authentication succeeded (unix time) */
        char *hash; /* crypt(3) yescrypt hash; NULL before pgldap_cache_save */
        int64_t uid, gid; /* -1 none */
        size_t nattrs, ngroups;
        struct pgldap_cache_attr *attrs;
        struct pgldap_cache_group *groups;
};

void pgldap_cache_entry_done(struct pgldap_cache_entry *e);

/* Add to an entry being built. 0 or -ENOMEM. A group already present is not added again. */
int pgldap_cache_add_attr(struct pgldap_cache_entry *e, const char *key, const char *value);
int pgldap_cache_add_group(struct pgldap_cache_entry *e, const char *dn, bool member);

/* Hash password into e (a new salt) and write the entry atomically, replacing the user's
 * previous one. 0 or -errno (logged). */
int pgldap_cache_save(struct pgina_ctx *ctx, struct pgldap_cache_entry *e, const char *password);

/* The user's entry: 1 found (*e filled), 0 none, -errno (logged: unreadable, unsafe, corrupt). */
int pgldap_cache_load(struct pgina_ctx *ctx, const char *user, struct pgldap_cache_entry *e);

/* When the entry stops being usable (time + cache_days); fresh = still usable now. */
long long pgldap_cache_expires(struct pgina_ctx *ctx, const struct pgldap_cache_entry *e);
bool pgldap_cache_fresh(struct pgina_ctx *ctx, const struct pgldap_cache_entry *e);

/* Does password match the entry's hash? 1 yes, 0 no, -errno. */
int pgldap_cache_verify(const struct pgldap_cache_entry *e, const char *password);

/* The cached membership of group_dn: 1 member, 0 not, -ENOENT not cached. */
int pgldap_cache_member(const struct pgldap_cache_entry *e, const char *group_dn);

/* Copy the cached attributes and uid/gid into u. 0 or -errno. */
int pgldap_cache_fill(const struct pgldap_cache_entry *e, struct pgina_user *u);

/* Admin commands: argv = {"cache", "list"} or {"cache", "drop", USER}. 0 or -errno after a
 * message. */
int pgldap_cache_admin(struct pgina_ctx *ctx, int argc, const char *const *argv);
