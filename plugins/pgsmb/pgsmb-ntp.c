/* pgSMB: one SNTPv4 client query (RFC 4330): how far this machine's clock is from a server's.
 * Runs in pginad's worker at logon. The request carries a random transmit timestamp (as chrony's
 * client does): the answer must echo it as its origin, so a stray or forged packet is refused;
 * our own send/receive times stay in memory. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pgsmb-logon.h"
#include <pgina/util.h>

#define NTP_PACKET 48
#define NTP_UNIX_DELTA 2208988800LL /* seconds from 1900 to 1970 */
#define NS 1000000000LL

static int64_t realtime_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static uint64_t get_be64(const unsigned char *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* An NTP timestamp as Unix nanoseconds; the era (the 32-bit seconds wrap in 2036) is the one
 * closest to `pivot`, our own clock. */
static int64_t ntp_to_unix_ns(uint64_t ts, int64_t pivot_ns) {
        uint32_t sec = (uint32_t)(ts >> 32), pivot_sec = (uint32_t)(pivot_ns / NS + NTP_UNIX_DELTA);
        int64_t frac_ns = (int64_t)(((ts & 0xffffffffu) * (uint64_t)NS) >> 32);
        int64_t unix_sec = pivot_ns / NS + (int32_t)(sec - pivot_sec);

        return unix_sec * NS + frac_ns;
}

/* host, host:port, [v6], [v6]:port, or a bare IPv6 address. */
static int split_host_port(const char *server, char *host, size_t hostlen, char *port, size_t portlen) {
        const char *colon = strrchr(server, ':');
        size_t n;

        snprintf(port, portlen, "123");
        if (server[0] == '[') {
                const char *end = strchr(server, ']');
                if (!end || (end[1] && (end[1] != ':' || !end[2])))
                        return -EINVAL;
                n = (size_t)(end - server - 1);
                if (end[1])
                        snprintf(port, portlen, "%s", end + 2);
                server++;
        } else if (colon && strchr(server, ':') == colon) {
                n = (size_t)(colon - server);
                if (!colon[1])
                        return -EINVAL;
                snprintf(port, portlen, "%s", colon + 1);
        } else
                n = strlen(server);
        if (n == 0 || n >= hostlen)
                return -EINVAL;
        memcpy(host, server, n);
        host[n] = 0;
        return strspn(port, "0123456789") == strlen(port) ? 0 : -EINVAL;
}

/* Check an answer; 0 and *res when it is a valid server reply to our request. */
static int sntp_parse(const unsigned char *p, size_t len, uint64_t cookie, int64_t t1, int64_t t4,
                      struct sntp_result *res, char *err, size_t errlen) {
        unsigned leap = p[0] >> 6, version = (p[0] >> 3) & 7, mode = p[0] & 7;
        uint64_t origin, receive, transmit;
        int64_t t2, t3;

        if (len < NTP_PACKET) {
                snprintf(err, errlen, "short answer (%zu bytes)", len);
                return -EBADMSG;
        }
        origin = get_be64(p + 24);
        receive = get_be64(p + 32);
        transmit = get_be64(p + 40);
        if (origin != cookie) {
                snprintf(err, errlen, "answers that do not match our request (origin timestamp differs)");
                return -ESTALE; /* not the answer to our request: keep waiting for that */
        }
        if (mode != 4 || version < 3 || version > 4) {
                snprintf(err, errlen, "not a server answer (version %u, mode %u)", version, mode);
                return -EBADMSG;
        }
        if (p[1] == 0 || p[1] > 15) {
                snprintf(err, errlen, "server is not synchronised (stratum %u%s)", p[1],
                         p[1] == 0 ? ", kiss-o'-death" : "");
                return -EBADMSG;
        }
        if (leap == 3) {
                snprintf(err, errlen, "server reports its clock unsynchronised (leap indicator 3)");
                return -EBADMSG;
        }
        if (transmit == 0 || receive == 0) {
                snprintf(err, errlen, "answer has no receive/transmit time");
                return -EBADMSG;
        }
        t2 = ntp_to_unix_ns(receive, t1);
        t3 = ntp_to_unix_ns(transmit, t1);
        res->stratum = p[1];
        res->offset_ns = ((t2 - t1) + (t3 - t4)) / 2;
        res->delay_ns = (t4 - t1) - (t3 - t2);
        return 0;
}

/* One address: send, wait until deadline (monotonic ms) for the one valid answer. */
static int sntp_ask(const struct addrinfo *ai, long long deadline, struct sntp_result *res, char *err,
                    size_t errlen) {
        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        unsigned char req[NTP_PACKET] = {0}, ans[NTP_PACKET + 64];
        uint64_t cookie;
        bool stray = false;
        int64_t t1;

        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                snprintf(err, errlen, "%s", strerror(errno));
                return -errno;
        }
        if (getrandom(&cookie, sizeof cookie, 0) != sizeof cookie)
                return -EIO;
        cookie |= 1; /* never zero */
        req[0] = 0 << 6 | 4 << 3 | 3; /* no leap warning, version 4, client */
        for (int i = 0; i < 8; i++)
                req[40 + i] = (unsigned char)(cookie >> (56 - 8 * i));
        t1 = realtime_ns();
        if (send(fd, req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req) {
                snprintf(err, errlen, "send: %s", strerror(errno));
                return -errno;
        }
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                long long left = deadline - now_ms();
                ssize_t k;
                int r;

                if (left <= 0) {
                        if (!stray)
                                snprintf(err, errlen, "no answer");
                        return -ETIMEDOUT;
                }
                r = poll(&pfd, 1, (int)left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        snprintf(err, errlen, "poll: %s", strerror(errno));
                        return -errno;
                }
                if (r == 0)
                        continue;
                k = recv(fd, ans, sizeof ans, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        snprintf(err, errlen, "%s", strerror(errno)); /* e.g. port unreachable */
                        return -errno;
                }
                r = sntp_parse(ans, (size_t)k, cookie, t1, realtime_ns(), res, err, errlen);
                if (r != -ESTALE)
                        return r;
                stray = true; /* late, forged or someone else's: keep waiting for ours */
        }
}

int sntp_query(const char *server, unsigned timeout_ms, struct sntp_result *res, char *err, size_t errlen) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
        long long deadline = now_ms() + timeout_ms;
        char host[256], port[16];
        int r;

        memset(res, 0, sizeof *res);
        if (split_host_port(server, host, sizeof host, port, sizeof port) < 0) {
                snprintf(err, errlen, "'%s' is not host[:port]", server);
                return -EINVAL;
        }
        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0) {
                snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(r));
                return -EHOSTUNREACH;
        }
        r = -EHOSTUNREACH;
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                char addr[INET6_ADDRSTRLEN] = "?";

                if (a->ai_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, addr, sizeof addr);
                else if (a->ai_family == AF_INET6)
                        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, addr, sizeof addr);
                r = sntp_ask(a, deadline, res, err, errlen);
                if (r == 0) {
                        snprintf(res->address, sizeof res->address, "%s", addr);
                        break;
                }
                if (now_ms() >= deadline)
                        break;
        }
        freeaddrinfo(ai);
        return r;
}
