/* stub: replaced by the mail helper */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "pgsmb.h"

void pgsmb_mail_admin(struct pgina_ctx *ctx, struct pgina_user *u, const char *subject, const char *fmt, ...) {
        char body[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(body, sizeof body, fmt, ap);
        va_end(ap);
        pgina_log(ctx, LOG_WARNING, "admin notice (%s): %s", subject, body);
}
