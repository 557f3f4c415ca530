/* pgSMB admin commands (pginactl profile ...): the format-2 side (pgsmb-admin-v2.c). */
#pragma once

#include "pgsmb-store.h"
#include "pgsmb.h"

/* 0 when listed, 1 when the profile is not of format 2 (the caller lists format 1), -errno. */
int pgsmb_admin_list_v2(struct pgina_ctx *ctx, const struct pgsmb_cfg *c, struct store *st);
/* 0 when VERSION (a number or a conflict copy's name) is current again, 1 when the profile is
 * not of format 2, -errno (the message said why). */
int pgsmb_admin_restore_v2(struct pgina_ctx *ctx, const struct pgsmb_cfg *c, struct store *st, const char *version);
