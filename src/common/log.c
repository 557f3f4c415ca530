/* Log sink: stderr (foreground, with a priority tag) or syslog (journald picks it up). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static bool log_to_stderr = true;
static int log_max = LOG_INFO;
static const char *log_prefix;

static const char *log_ident = "pgina";

void log_open(const char *ident, bool to_stderr) {
        log_to_stderr = to_stderr;
        log_ident = ident;
        if (!to_stderr)
                openlog(ident, LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

void log_close_for_fork(void) {
        if (!log_to_stderr)
                closelog();
}

void log_reopen(void) {
        if (!log_to_stderr)
                openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

void log_set_level(int priority) { log_max = priority; }
int log_get_level(void) { return log_max; }
void log_set_prefix(const char *prefix) { log_prefix = prefix; }
bool log_to_stderr_only(void) { return log_to_stderr; }

int log_level_from_string(const char *s) {
        static const struct {
                const char *name;
                int prio;
        } map[] = {{"debug", LOG_DEBUG},     {"info", LOG_INFO},   {"notice", LOG_NOTICE},
                   {"warning", LOG_WARNING}, {"error", LOG_ERR}, {"err", LOG_ERR}};

        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
                if (strcasecmp(s, map[i].name) == 0)
                        return map[i].prio;
        return -EINVAL;
}

/* One message, one line: control characters (a newline in an archive member's name, an escape
 * sequence in a directory attribute) become \n, \t, \r or \xHH, so nothing that reaches a log
 * line can forge another line or drive a terminal. In place, truncated to len. */
void log_escape(char *line, size_t len) {
        char out[2048];
        size_t o = 0;

        if (!strpbrk(line, "\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020"
                           "\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037\177"))
                return;
        for (const unsigned char *p = (const unsigned char *)line; *p && o + 5 < sizeof out; p++) {
                if (*p >= 0x20 && *p != 0x7f) {
                        out[o++] = (char)*p;
                        continue;
                }
                out[o++] = '\\';
                switch (*p) {
                case '\n': out[o++] = 'n'; break;
                case '\t': out[o++] = 't'; break;
                case '\r': out[o++] = 'r'; break;
                default: o += (size_t)snprintf(out + o, sizeof out - o, "x%02x", *p); break;
                }
        }
        out[o] = 0;
        snprintf(line, len, "%s", out);
}

int log_internalv(int priority, int error, const char *fmt, va_list ap) {
        static const char *const tag[] = {"emerg", "alert", "crit", "error",
                                          "warning", "notice", "info", "debug"};
        char line[2048];
        int saved = errno;

        if (error < 0)
                error = -error;
        if (priority > log_max)
                goto out;
        errno = error; /* for %m */
        vsnprintf(line, sizeof line, fmt, ap);
        log_escape(line, sizeof line);
        if (log_to_stderr)
                fprintf(stderr, "<%s> %s%s%s\n", tag[priority & 7], log_prefix ? log_prefix : "",
                        log_prefix ? ": " : "", line);
        else
                syslog(priority, "%s%s%s", log_prefix ? log_prefix : "", log_prefix ? ": " : "", line);
out:
        errno = saved;
        return error ? -error : 0;
}

int log_internal(int priority, int error, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_internalv(priority, error, fmt, ap);
        va_end(ap);
        return r;
}
