/* LocalMachine: local accounts and groups, read through NSS and changed through shadow-utils.
 *
 * The "pGina created" marker: pGina tracks the accounts it created by their comment. A Linux
 * account has one comment, the GECOS field, so the marker is the GECOS's first comma-separated
 * field ("pGina created", or a plugin's longer variant such as "pGina created pgSMB"); the full
 * name, when the record has one, goes to the GECOS's fifth ("other") field. An account is
 * pgina-created exactly when its first GECOS field starts with "pGina created". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define LM_MARKER "pGina created"

struct lm_account {
        uid_t uid;
        gid_t gid;
        char *gecos;
};
void lm_account_done(struct lm_account *a);

/* 1 and *a filled when the account exists, 0 when not, -errno on a lookup error. */
int lm_account_lookup(const char *name, struct lm_account *a);
bool lm_gecos_is_pgina(const char *gecos);
/* The full name a GECOS holds (first field, or the fifth for a pgina-created account); malloc'd,
 * NULL when none. */
char *lm_gecos_fullname(const char *gecos);
/* GECOS text from marker and full name, with ':' ',' and control characters replaced. */
char *lm_gecos_build(const char *marker, const char *fullname);

/* Names of all groups of the account (primary first), as getgrouplist() sees them. */
struct lm_names {
        char **v;
        size_t n;
};
void lm_names_done(struct lm_names *l);
bool lm_names_has(const struct lm_names *l, const char *name);
int lm_names_add(struct lm_names *l, const char *name); /* no duplicates */
int lm_account_groups(const char *name, gid_t primary, struct lm_names *ret);
/* Group name of gid, malloc'd; NULL when the gid has no group. */
char *lm_group_name(gid_t gid);
bool lm_group_exists(const char *name);
bool lm_gid_exists(gid_t gid);
