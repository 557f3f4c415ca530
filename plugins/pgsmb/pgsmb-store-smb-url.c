/* The smb:// store's URLs and server (pgsmb-store-smb.c): parsing smb://server[:port]/share[/dir],
 * %-encoding names for libsmbclient, the names a share can hold, and a bounded probe of the
 * server's port (libsmbclient's own connect waits 20 s whatever the timeout). Root, in the worker. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pgsmb-store-internal.h"
#include "pgsmb-store-smb-url.h"
#include <pgina/util.h>

/* Characters a Windows/Samba share cannot hold in a name, or reads as a separator or a stream
 * (':' would open an alternate data stream). */
bool smb_name_ok(const char *rel) {
        for (const unsigned char *p = (const unsigned char *)rel; *p; p++)
                if (*p < 0x20 || strchr("\\:*?\"<>|", *p))
                        return false;
        return true;
}

int smb_append_encoded(char **out, size_t *len, const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        char *b = realloc(*out, *len + n * 3 + 1), *p;

        if (!b)
                return -ENOMEM;
        *out = b;
        p = b + *len;
        for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
                if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    (*c >= '0' && *c <= '9') || strchr("-._~/", *c))
                        *p++ = (char)*c;
                else {
                        *p++ = '%';
                        *p++ = hex[*c >> 4];
                        *p++ = hex[*c & 15];
                }
        }
        *p = 0;
        *len = (size_t)(p - b);
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* %-decode in place; -EINVAL on a bad escape or an encoded NUL or '/'. */
static int url_decode(char *s) {
        char *w = s;

        for (char *p = s; *p; p++) {
                if (*p == '%') {
                        int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0) || (hi == 2 && lo == 15))
                                return -EINVAL;
                        *w++ = (char)(hi << 4 | lo);
                        p += 2;
                } else
                        *w++ = *p;
        }
        *w = 0;
        return 0;
}

/* smb://server[:port]/share[/dir…] → server, port, and "share[/dir…]" (decoded, checked). */
int smb_parse_url(const char *url, char **ret_server, uint16_t *ret_port, char **ret_path, char *err,
                  size_t errlen) {
        const char *p = url + strlen("smb://"), *slash = strchr(p, '/'), *colon;
        _cleanup_free_ char *server = NULL, *path = NULL;
        size_t len;

        if (!slash || slash == p)
                return store_open_fail(err, errlen, -EINVAL, "%s: expected smb://server[:port]/share[/dir]", url);
        if (memchr(p, '@', (size_t)(slash - p)))
                return store_open_fail(err, errlen, -EINVAL,
                                       "%s: no user or password in the URL; they come from the "
                                       "credentials setting",
                                       url);
        colon = memchr(p, ':', (size_t)(slash - p));
        server = strndup(p, (size_t)((colon ? colon : slash) - p));
        if (!server)
                return store_open_fail(err, errlen, -ENOMEM, "%s: %s", url, strerror(ENOMEM));
        if (!*server || strpbrk(server, "[]%\\ "))
                return store_open_fail(err, errlen, -EINVAL, "%s: bad server name \"%s\"", url, server);
        *ret_port = 0;
        if (colon) {
                unsigned long v = 0;
                const char *d = colon + 1;

                if (d == slash)
                        return store_open_fail(err, errlen, -EINVAL, "%s: empty port", url);
                for (; d < slash; d++) {
                        if (*d < '0' || *d > '9' || (v = v * 10 + (unsigned long)(*d - '0')) > 65535)
                                return store_open_fail(err, errlen, -EINVAL, "%s: bad port", url);
                }
                if (v == 0)
                        return store_open_fail(err, errlen, -EINVAL, "%s: bad port", url);
                *ret_port = (uint16_t)v;
        }
        path = strdup(slash + 1);
        if (!path)
                return store_open_fail(err, errlen, -ENOMEM, "%s: %s", url, strerror(ENOMEM));
        len = strlen(path);
        while (len > 0 && path[len - 1] == '/')
                path[--len] = 0;
        if (url_decode(path) < 0 || !store_rel_valid(path, false) || !smb_name_ok(path))
                return store_open_fail(err, errlen, -EINVAL, "%s: bad share or folder name", url);
        *ret_server = TAKE_PTR(server);
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int probe_addr(const struct addrinfo *ai, int timeout_ms) {
        _cleanup_close_ int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                        ai->ai_protocol);
        struct pollfd pfd;
        socklen_t len = sizeof(int);
        int err = 0, r;

        if (fd < 0)
                return -errno;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                return 0;
        if (errno != EINPROGRESS)
                return -errno;
        pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
        do
                r = poll(&pfd, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                return -errno;
        return -err;
}

/* Is anything listening? libsmbclient's own connect waits up to 20 s whatever the timeout. A
 * name that getaddrinfo cannot resolve (a NetBIOS name) is left to libsmbclient. */
int smb_probe_server(const char *server, uint16_t port, int timeout_ms) {
        static const uint16_t defaults[] = { 445, 139 };
        int r = -EHOSTUNREACH;

        for (size_t i = 0; i < (port ? 1 : ELEMENTSOF(defaults)); i++) {
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
                struct addrinfo *res = NULL;
                char serv[8];

                snprintf(serv, sizeof serv, "%u", port ? port : defaults[i]);
                if (getaddrinfo(server, serv, &hints, &res) != 0)
                        return 0;
                for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                        r = probe_addr(ai, timeout_ms);
                        if (r == 0)
                                break;
                }
                freeaddrinfo(res);
                if (r == 0)
                        return 0;
        }
        return r;
}
