/* Logging for pginad and pginactl: syslog/journal style lines, or stderr in the foreground.
 * log_*_errno(r, …) set errno from r so the format may use %m, and return r (negative), so a
 * caller can `return log_error_errno(r, "Failed to …: %m");` — one line where the context is. */
#pragma once

#include "util.h" /* log_escape */

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

void log_open(const char *ident, bool to_stderr);
/* A forked child that rearranges its descriptors: close syslog's socket first (its number may be
 * reused), open it again once the descriptors are in place. */
void log_close_for_fork(void);
void log_reopen(void);
void log_set_level(int priority); /* LOG_DEBUG … LOG_ERR */
int log_get_level(void);
int log_level_from_string(const char *s); /* "debug", "info", "notice", "warning", "error" */
void log_set_prefix(const char *prefix); /* e.g. "worker[localmachine]" ; NULL clears */
bool log_to_stderr_only(void); /* the foreground: no journal to tell processes apart */

int log_internal(int priority, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int log_internalv(int priority, int error, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(r, ...) log_internal(LOG_DEBUG, (r), __VA_ARGS__)
#define log_info_errno(r, ...) log_internal(LOG_INFO, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_internal(LOG_WARNING, (r), __VA_ARGS__)
#define log_error_errno(r, ...) log_internal(LOG_ERR, (r), __VA_ARGS__)
