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
