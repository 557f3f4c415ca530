/* stub: replaced by the logon-tasks helper */
#include "pgsmb.h"

void pgsmb_logon_setup(struct pgina_ctx *ctx, struct pgina_user *u, const struct pgsmb_cfg *c, uid_t uid,
                       gid_t gid) {}
int pgsmb_logon_tasks(struct pgina_ctx *ctx, struct pgina_user *u) { return 1; }
