/* libpgina-plugin: local accounts and groups, read through NSS and created through shadow-utils
 * (what localmachine and pgsmb both need; link with pkg-config's pgina-plugin). These functions
 * are the plugin's own code, not pginad's exports.
 *
 * The "pGina created" marker: pGina tracks the accounts it created by their comment. A Linux
 * account has one comment, the GECOS field, so the marker is the GECOS's first comma-separated
 * field ("pGina created", or a plugin's longer variant such as "pGina created pgSMB"); the full
 * name, when the record has one, goes to the GECOS's fifth ("other") field. An account is
 * pgina-created exactly when its first GECOS field starts with "pGina created". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PGINA_ACCOUNT_MARKER "pGina created"

struct pgina_account {
        uid_t uid;
        gid_t gid;
        char *gecos;
};
void pgina_account_done(struct pgina_account *a);

/* 1 and *a filled when the account exists, 0 when not, -errno on a lookup error. */
int pgina_account_lookup(const char *name, struct pgina_account *a);
bool pgina_gecos_is_pgina(const char *gecos);
/* The full name a GECOS holds (first field, or the fifth for a pgina-created account); malloc'd,
 * NULL when none. */
char *pgina_gecos_fullname(const char *gecos);
/* GECOS text from marker and full name, with ':' ',' and control characters replaced. */
char *pgina_gecos_build(const char *marker, const char *fullname);

/* Names of all groups of the account (primary first), as getgrouplist() sees them. */
struct pgina_names {
        char **v;
        size_t n;
};
void pgina_names_done(struct pgina_names *l);
bool pgina_names_has(const struct pgina_names *l, const char *name);
int pgina_names_add(struct pgina_names *l, const char *name); /* no duplicates */
int pgina_account_groups(const char *name, gid_t primary, struct pgina_names *ret);
/* Group name of gid, malloc'd; NULL when the gid has no group. */
char *pgina_local_group_name(gid_t gid);
bool pgina_local_group_exists(const char *name);
bool pgina_local_gid_exists(gid_t gid);

/* Create a local account with useradd (localmachine's and pgsmb's). uid/gid < 0 = let
 * useradd choose; a gid that no group has yet gets a group named like the user. uid/gid 0 are
 * refused. The GECOS is pgina_gecos_build(marker, fullname). On failure why says what went wrong. */
struct pgina_new_account {
        const char *name;
        const char *marker; /* "pGina created" or a plugin's variant */
        const char *fullname; /* may be NULL */
        const char *home; /* NULL = useradd's default */
        const char *shell; /* NULL = /bin/bash when present */
        int64_t uid, gid;
        /* The name for a new local group of gid (the directory's, PGINA_ATTR_PRIMARY_GROUP);
         * NULL, invalid or already taken = the user's name. */
        const char *group_name;
        bool create_home; /* -m -k /etc/skel */
};
int pgina_account_create(const struct pgina_new_account *c, char *why, size_t whylen);
bool pgina_valid_account_path(const char *p);
