/* RFC 4514 / RFC 4515 escaping and %u pattern expansion (see ldap-escape.h). */
#include "ldap-escape.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* RFC 4514 section 2.4: escape the specials everywhere, a space or '#' at the start, a space at
 * the end; NUL cannot occur in a C string. Control bytes are hex-escaped too, so a DN never holds
 * a raw newline. */
static bool dn_needs_escape(const char *v, size_t i, size_t n) {
        unsigned char c = (unsigned char)v[i];

        if (strchr(",+\"\\<>;=", c))
                return true;
        if (c < 0x20 || c == 0x7f)
                return true;
        if (i == 0 && (c == ' ' || c == '#'))
                return true;
        return i == n - 1 && c == ' ';
}

/* RFC 4515 section 3: '*', '(', ')', '\' and NUL as \XX; control bytes as well. */
static bool filter_needs_escape(unsigned char c) {
        return c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c == 0x7f;
}

int pgldap_escape(enum pgldap_escape_kind kind, const char *value, char *out, size_t len) {
        size_t n = strlen(value), o = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)value[i];
                bool esc = kind == PGLDAP_ESCAPE_DN ? dn_needs_escape(value, i, n)
                                                  : filter_needs_escape(c);
                if (esc) {
                        if (o + 3 >= len)
                                return -ENAMETOOLONG;
                        snprintf(out + o, 4, "\\%02x", c);
                        o += 3;
                } else {
                        if (o + 1 >= len)
                                return -ENAMETOOLONG;
                        out[o++] = (char)c;
                }
        }
        if (o >= len)
                return -ENAMETOOLONG;
        out[o] = 0;
        return 0;
}

char *pgldap_escape_dup(enum pgldap_escape_kind kind, const char *value) {
        size_t len = 3 * strlen(value) + 1;
        char *out = malloc(len);

        if (out && pgldap_escape(kind, value, out, len) < 0) {
                free(out); /* cannot happen: 3 bytes per input byte always fit */
                return NULL;
        }
        return out;
}

int pgldap_expand(const char *pattern, char key, const char *value, enum pgldap_escape_kind kind,
                  char **ret) {
        char *esc, *out;
        size_t cap, o = 0;

        esc = pgldap_escape_dup(kind, value);
        if (!esc)
                return -ENOMEM;
        cap = strlen(pattern) * (strlen(esc) + 1) + 1;
        out = malloc(cap);
        if (!out) {
                free(esc);
                return -ENOMEM;
        }
        for (const char *p = pattern; *p; p++) {
                if (*p != '%') {
                        out[o++] = *p;
                        continue;
                }
                p++;
                if (*p == key) {
                        memcpy(out + o, esc, strlen(esc));
                        o += strlen(esc);
                } else if (*p == '%') {
                        out[o++] = '%';
                } else {
                        free(esc);
                        free(out);
                        return -EINVAL;
                }
        }
        out[o] = 0;
        free(esc);
        *ret = out;
        return 0;
}

int pgldap_pattern_has(const char *pattern, char key) {
        bool has = false;

        for (const char *p = pattern; *p; p++) {
                if (*p != '%')
                        continue;
                p++;
                if (*p == key)
                        has = true;
                else if (*p != '%')
                        return -EINVAL;
        }
        return has;
}

static const char *word_at(const char *s, size_t want, size_t *len, size_t *count) {
        size_t n = 0;

        while (s && *s) {
                size_t k;

                s += strspn(s, " \t");
                if (!*s)
                        break;
                k = strcspn(s, " \t");
                if (n == want) {
                        *len = k;
                        return s;
                }
                n++;
                s += k;
        }
        *count = n;
        return NULL;
}

size_t pgldap_words(const char *s) {
        size_t len = 0, n = 0;
        (void)word_at(s, SIZE_MAX, &len, &n);
        return n;
}

char *pgldap_word(const char *s, size_t i) {
        size_t len = 0, n = 0;
        const char *w = word_at(s, i, &len, &n);
        return w ? strndup(w, len) : NULL;
}
