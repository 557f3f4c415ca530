/* pginactl's output: daemon text made safe for a terminal, aligned tables, times and durations. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "config.h"
#include "host.h"
#include "log.h"
#include "pgina-build.h"
#include "proto.h"
#include "proto-request.h"
#include "secret.h"
#include "util.h"

#include "pginactl.h"

/* ---- output helpers ---------------------------------------------------------------------- */

/* Daemon text may come from plugins (LDAP attributes, remote servers): never let it reach the
 * terminal as control sequences. Returns a malloc'd copy with control characters as '?' and,
 * unless keep_newlines, newlines as spaces. */
char *sanitize(const char *s, bool keep_newlines) {
        char *c = strdup(strempty(s));

        if (!c)
                return NULL;
        for (unsigned char *p = (unsigned char *)c; *p; p++) {
                if (*p == '\n' && keep_newlines)
                        continue;
                if (*p == '\n' || *p == '\t')
                        *p = ' ';
                else if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
        }
        return c;
}

/* Display width of a UTF-8 string in the current locale (bytes when it does not decode). */
static size_t display_width(const char *s) {
        mbstate_t st = {0};
        size_t w = 0, len = strlen(s);

        while (len > 0) {
                wchar_t wc;
                size_t n = mbrtowc(&wc, s, len, &st);
                int cw;

                if (n == (size_t)-1 || n == (size_t)-2)
                        return strlen(s);
                if (n == 0)
                        break;
                cw = wcwidth(wc);
                w += cw > 0 ? (size_t)cw : 0;
                s += n;
                len -= n;
        }
        return w;
}

void table_free(struct table *t) {
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        memset(t, 0, sizeof *t);
}

/* Append one row of ncols cells; NULL or "" cells are shown as "-". */
int table_add(struct table *t, const char *const *cells) {
        char **n = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));

        if (!n)
                return -ENOMEM;
        t->cells = n;
        for (size_t i = 0; i < t->ncols; i++) {
                const char *v = cells[i] && cells[i][0] ? cells[i] : "-";
                char *c = sanitize(v, false);

                if (!c) {
                        for (size_t j = 0; j < i; j++)
                                free(t->cells[t->nrows * t->ncols + j]);
                        return -ENOMEM;
                }
                t->cells[t->nrows * t->ncols + i] = c;
        }
        t->nrows++;
        return 0;
}

void table_print(const struct table *t, FILE *f) {
        size_t width[16] = {0};

        for (size_t r = 0; r < t->nrows; r++)
                for (size_t c = 0; c < t->ncols && c < ELEMENTSOF(width); c++) {
                        size_t w = display_width(t->cells[r * t->ncols + c]);
                        if (w > width[c])
                                width[c] = w;
                }
        for (size_t r = 0; r < t->nrows; r++) {
                for (size_t c = 0; c < t->ncols; c++) {
                        const char *cell = t->cells[r * t->ncols + c];

                        fputs(cell, f);
                        if (c + 1 < t->ncols)
                                fprintf(f, "%*s", (int)(width[c] - display_width(cell) + 2), "");
                }
                fputc('\n', f);
        }
}

const char *row_get(const struct proto_row *row, const char *key) {
        return strempty(proto_row_get(row, key));
}

/* "1700000000" → local "2023-11-14 23:13:20"; anything else is shown as it came. */
const char *format_time(const char *unix_time, char *buf, size_t len) {
        char *end;
        long long v;
        time_t t;
        struct tm tm;

        errno = 0;
        v = strtoll(unix_time, &end, 10);
        if (!*unix_time || *end || errno || v < 0)
                return unix_time;
        t = (time_t)v;
        if (!localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                return unix_time;
        return buf;
}

const char *format_duration(const char *seconds, char *buf, size_t len) {
        char *end;
        unsigned long long s;

        errno = 0;
        s = strtoull(seconds, &end, 10);
        if (!*seconds || *end || errno)
                return seconds;
        if (s >= 86400)
                snprintf(buf, len, "%llud %lluh %llumin", s / 86400, s % 86400 / 3600, s % 3600 / 60);
        else if (s >= 3600)
                snprintf(buf, len, "%lluh %llumin", s / 3600, s % 3600 / 60);
        else if (s >= 60)
                snprintf(buf, len, "%llumin %llus", s / 60, s % 60);
        else
                snprintf(buf, len, "%llus", s);
        return buf;
}

void print_text(FILE *f, const char *prefix, const char *text) {
        _cleanup_free_ char *c = sanitize(text, true);

        if (c)
                fprintf(f, "%s%s\n", prefix, c);
}
