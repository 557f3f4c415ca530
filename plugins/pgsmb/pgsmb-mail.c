/* pgSMB: tell the admins (notify_emails) about a failure, by SMTP through libcurl, trying
 * smtp_servers in order until one takes the mail. Runs in pginad's worker, as root.
 *
 * Credentials (smtp_credentials): "user" = the logging-in user's name and password (pGina's way;
 * none when the call has no password), "none", or a root-only file with username=/password=
 * lines. A password is only ever sent inside TLS: with credentials the server must offer STARTTLS
 * (or be smtps://); one that does not gets the mail without authentication instead. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "pgsmb.h"
#include <pgina/secret.h>
#include <pgina/util.h>

#define MAIL_BODY_MAX 8192
#define SMTP_TIMEOUT_S 20L
#define SMTP_CONNECT_TIMEOUT_S 5L

struct mail_auth {
        char user[256];
        struct secret *password; /* NULL = no authentication */
};

struct payload {
        const char *data;
        size_t len, pos;
};

static size_t payload_read(char *buf, size_t size, size_t nmemb, void *userdata) {
        struct payload *p = userdata;
        size_t n = size * nmemb;

        if (n > p->len - p->pos)
                n = p->len - p->pos;
        memcpy(buf, p->data + p->pos, n);
        p->pos += n;
        return n;
}

/* An address we put into an SMTP command or header: no spaces, brackets, quotes or controls. */
static bool valid_address(const char *a) {
        const char *at = strchr(a, '@');

        if (!at || at == a || !at[1] || strlen(a) > 254)
                return false;
        for (const unsigned char *p = (const unsigned char *)a; *p; p++)
                if (*p <= ' ' || *p == 0x7f || strchr("<>()[]\\,;:\"", *p))
                        return false;
        return true;
}

/* Read a root-only username=/password= file (smbclient's authentication-file format). */
static int auth_file_read(const char *path, struct mail_auth *a, char *why, size_t whylen) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char buf[2048], *save = NULL;
        struct stat st;
        ssize_t k;

        if (fd < 0 || fstat(fd, &st) < 0) {
                snprintf(why, whylen, "smtp_credentials file %s: %s", path, strerror(errno));
                return -errno;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
                snprintf(why, whylen, "smtp_credentials file %s must be a regular file owned by root with mode 0600",
                         path);
                return -EPERM;
        }
        k = read(fd, buf, sizeof buf - 1);
        if (k < 0) {
                snprintf(why, whylen, "smtp_credentials file %s: %s", path, strerror(errno));
                return -errno;
        }
        buf[k] = 0;
        for (char *line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
                char *eq = strchr(line, '='), *key = line, *val;

                if (!eq)
                        continue;
                *eq = 0;
                val = eq + 1;
                key += strspn(key, " \t");
                for (char *e = key + strlen(key); e > key && (e[-1] == ' ' || e[-1] == '\t');)
                        *--e = 0;
                val += strspn(val, " \t");
                if (streq(key, "username"))
                        snprintf(a->user, sizeof a->user, "%s", val);
                else if (streq(key, "password")) {
                        secret_free(a->password);
                        a->password = secret_from_cstr(val);
                }
        }
        explicit_bzero(buf, sizeof buf);
        if (!a->user[0] || !a->password) {
                secret_free(a->password);
                a->password = NULL;
                snprintf(why, whylen, "smtp_credentials file %s needs username = and password =", path);
                return -EINVAL;
        }
        return 0;
}

static int auth_load(struct pgina_ctx *ctx, struct pgina_user *u, struct mail_auth *a, char *why,
                     size_t whylen) {
        const char *mode = pgina_conf_get(ctx, "smtp_credentials");

        memset(a, 0, sizeof *a);
        if (!mode || streq(mode, "user")) {
                const char *pw = u ? pgina_user_password(u) : NULL;

                if (!pw || !*pw)
                        return 0; /* this call has no password: send without authentication */
                snprintf(a->user, sizeof a->user, "%s", pgina_user_name(u));
                if (!(a->password = secret_from_cstr(pw)))
                        return -ENOMEM;
                return 0;
        }
        if (streq(mode, "none"))
                return 0;
        if (mode[0] != '/') {
                snprintf(why, whylen, "smtp_credentials must be user, none or an absolute path, not '%s'", mode);
                return -EINVAL;
        }
        return auth_file_read(mode, a, why, whylen);
}

/* "host", "host:port", "[v6]:port" or a smtp:// / smtps:// URL → URL. */
static int server_url(const char *server, char *url, size_t len) {
        const char *colon = strrchr(server, ':');
        int k;

        if (strncmp(server, "smtp://", 7) == 0 || strncmp(server, "smtps://", 8) == 0)
                k = snprintf(url, len, "%s", server);
        else if (server[0] == '[') /* [v6] or [v6]:port */
                k = snprintf(url, len, "smtp://%s%s", server, strstr(server, "]:") ? "" : ":25");
        else if (colon && strchr(server, ':') == colon)
                k = snprintf(url, len, "smtp://%s", server);
        else if (colon) /* a bare IPv6 address */
                k = snprintf(url, len, "smtp://[%s]:25", server);
        else
                k = snprintf(url, len, "smtp://%s:25", server);
        if (k < 0 || (size_t)k >= len)
                return -ENAMETOOLONG;
        for (const unsigned char *p = (const unsigned char *)url; *p; p++)
                if (*p <= ' ' || *p == 0x7f)
                        return -EINVAL;
        return 0;
}

/* RFC 2047 encoded-word for a subject that is not plain ASCII. */
static void header_text(const char *in, char *out, size_t len) {
        bool plain = true;
        char clean[512];
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *)in; *p && n + 1 < sizeof clean; p++) {
                unsigned char c = *p < ' ' || *p == 0x7f ? ' ' : *p;
                if (c >= 0x80)
                        plain = false;
                clean[n++] = (char)c;
        }
        clean[n] = 0;
        if (plain) {
                snprintf(out, len, "%s", clean);
                return;
        }
        unsigned char b64[4 * (sizeof clean + 2) / 3 + 4];
        EVP_EncodeBlock(b64, (const unsigned char *)clean, (int)n);
        snprintf(out, len, "=?UTF-8?B?%s?=", b64);
}

/* The whole message with CRLF line ends (libcurl dot-stuffs and terminates it). */
static char *message_build(const char *from, struct pgina_ctx *ctx, const char *subject,
                           const char *body, size_t *len) {
        static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        size_t n = pgina_conf_list_len(ctx, "notify_emails"), cap = 4096 + 4 * strlen(body) + n * 260;
        _cleanup_free_ char *msg = malloc(cap);
        char subj[1024], date[64];
        time_t now = time(NULL);
        struct tm tm;
        size_t o = 0;

        if (!msg)
                return NULL;
        gmtime_r(&now, &tm);
        snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        header_text(subject, subj, sizeof subj);
        o += (size_t)snprintf(msg + o, cap - o, "Date: %s\r\nFrom: %s\r\nTo: ", date, from);
        for (size_t i = 0, k = 0; i < n; i++) {
                const char *rcpt = pgina_conf_list_item(ctx, "notify_emails", i);
                if (valid_address(rcpt))
                        o += (size_t)snprintf(msg + o, cap - o, "%s%s", k++ ? ", " : "", rcpt);
        }
        o += (size_t)snprintf(msg + o, cap - o,
                              "\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: text/plain; charset=UTF-8\r\n"
                              "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n",
                              subj);
        for (const char *p = body; *p && o + 4 < cap; p++) {
                if (*p == '\n')
                        msg[o++] = '\r';
                if (*p != '\r')
                        msg[o++] = *p;
        }
        if (o >= 2 && !(msg[o - 2] == '\r' && msg[o - 1] == '\n')) {
                msg[o++] = '\r';
                msg[o++] = '\n';
        }
        msg[o] = 0;
        *len = o;
        return TAKE_PTR(msg);
}

/* One server, one try. Returns the curl result; err gets libcurl's words. */
static CURLcode send_via(const char *url, const char *from, struct curl_slist *rcpts,
                         const struct mail_auth *a, bool require_tls, const char *msg, size_t len,
                         char err[CURL_ERROR_SIZE]) {
        struct payload p = {.data = msg, .len = len};
        char mail_from[300];
        CURL *c = curl_easy_init();
        CURLcode r;

        err[0] = 0;
        if (!c) {
                snprintf(err, CURL_ERROR_SIZE, "cannot initialise libcurl");
                return CURLE_OUT_OF_MEMORY;
        }
        snprintf(mail_from, sizeof mail_from, "<%s>", from);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(c, CURLOPT_VERBOSE, 0L); /* the dialogue would show the AUTH line */
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, SMTP_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, SMTP_CONNECT_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
#ifdef CURLOPT_MAIL_RCPT_ALLOWFAILS
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#elif LIBCURL_VERSION_NUM >= 0x074500
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
        curl_easy_setopt(c, CURLOPT_USE_SSL, require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
        if (require_tls) {
                curl_easy_setopt(c, CURLOPT_USERNAME, a->user);
                curl_easy_setopt(c, CURLOPT_PASSWORD, a->password->data);
        }
        curl_easy_setopt(c, CURLOPT_READFUNCTION, payload_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &p);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
        r = curl_easy_perform(c);
        if (r != CURLE_OK && !err[0])
                snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(r));
        curl_easy_cleanup(c);
        return r;
}

static struct curl_slist *recipients(struct pgina_ctx *ctx, char *list, size_t listlen) {
        struct curl_slist *v = NULL;
        size_t n = pgina_conf_list_len(ctx, "notify_emails"), o = 0;

        list[0] = 0;
        for (size_t i = 0; i < n; i++) {
                const char *a = pgina_conf_list_item(ctx, "notify_emails", i);
                char rcpt[300];
                struct curl_slist *t;

                if (!valid_address(a)) {
                        pgina_log(ctx, LOG_WARNING, "notify_emails: '%s' is not a mail address, skipped", a);
                        continue;
                }
                snprintf(rcpt, sizeof rcpt, "<%s>", a);
                if (!(t = curl_slist_append(v, rcpt))) {
                        curl_slist_free_all(v);
                        return NULL;
                }
                v = t;
                if (o < listlen) {
                        int k = snprintf(list + o, listlen - o, "%s%s", o ? ", " : "", a);
                        o = k < 0 || (size_t)k >= listlen - o ? listlen : o + (size_t)k;
                }
        }
        return v;
}

/* Try the servers in order; log one line per server tried. Returns 0 when one took the mail. */
static int mail_send(struct pgina_ctx *ctx, const char *from, struct curl_slist *rcpts, const char *to,
                     const struct mail_auth *a, const char *subject, const char *msg, size_t len) {
        size_t n = pgina_conf_list_len(ctx, "smtp_servers");

        for (size_t i = 0; i < n; i++) {
                char url[512], err[CURL_ERROR_SIZE];
                const char *server = pgina_conf_list_item(ctx, "smtp_servers", i);
                bool with_auth = a->password != NULL;
                CURLcode r;

                if (server_url(server, url, sizeof url) < 0) {
                        pgina_log(ctx, LOG_WARNING, "smtp_servers: '%s' is not host[:port] or an smtp:// URL, skipped",
                                  server);
                        continue;
                }
                r = send_via(url, from, rcpts, a, with_auth, msg, len, err);
                if (r == CURLE_USE_SSL_FAILED && with_auth) {
                        /* No STARTTLS: the password stays home, the mail goes anyway. */
                        pgina_log(ctx, LOG_WARNING, "mail server %s offers no TLS: sending without authentication",
                                  url);
                        with_auth = false;
                        r = send_via(url, from, rcpts, a, false, msg, len, err);
                }
                if (r == CURLE_OK) {
                        pgina_log(ctx, LOG_INFO, "mailed '%s' to %s via %s%s", subject, to, url,
                                  with_auth ? " (authenticated)" : "");
                        return 0;
                }
                pgina_log(ctx, LOG_WARNING, "mail '%s' to %s via %s failed: %s", subject, to, url, err);
        }
        return -EHOSTUNREACH;
}

void pgsmb_mail_admin(struct pgina_ctx *ctx, struct pgina_user *u, const char *subject,
                      const char *fmt, ...) {
        const char *user = u ? pgina_user_name(u) : "(no user)";
        const char *from_conf = pgina_conf_get(ctx, "smtp_from");
        char body[MAIL_BODY_MAX], host[256], from[300], subj[600], to[2048], why[512] = "";
        struct mail_auth auth = {0};
        struct curl_slist *rcpts = NULL;
        _cleanup_free_ char *msg = NULL;
        size_t len = 0;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(body, sizeof body, fmt, ap);
        va_end(ap);
        /* The notice always reaches the log, mail or not. */
        pgina_log(ctx, LOG_WARNING, "admin notice (%s) for %s: %.*s", subject, user,
                  (int)strcspn(body, "\n"), body);
        if (pgina_conf_list_len(ctx, "notify_emails") == 0 || pgina_conf_list_len(ctx, "smtp_servers") == 0) {
                pgina_log(ctx, LOG_DEBUG, "no notify_emails/smtp_servers configured: notice not mailed");
                return;
        }
        if (gethostname(host, sizeof host) < 0)
                snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = 0;
        if (from_conf && *from_conf)
                snprintf(from, sizeof from, "%s", from_conf);
        else
                snprintf(from, sizeof from, "pgina@%s", host);
        if (!valid_address(from)) {
                pgina_log(ctx, LOG_ERR, "smtp_from '%s' is not a mail address: notice not mailed", from);
                return;
        }
        if (!(rcpts = recipients(ctx, to, sizeof to))) {
                pgina_log(ctx, LOG_ERR, "notify_emails holds no valid address: notice not mailed");
                return;
        }
        if (auth_load(ctx, u, &auth, why, sizeof why) < 0) {
                pgina_log(ctx, LOG_ERR, "%s: notice not mailed", why);
                curl_slist_free_all(rcpts);
                return;
        }
        snprintf(subj, sizeof subj, "pgina on %s: %s for %s", host, subject, user);
        if (!(msg = message_build(from, ctx, subj, body, &len)))
                pgina_log(ctx, LOG_ERR, "out of memory building the notice mail");
        else if (mail_send(ctx, from, rcpts, to, &auth, subj, msg, len) < 0)
                pgina_log(ctx, LOG_ERR, "notice '%s' not mailed to %s: no SMTP server of smtp_servers took it",
                          subj, to);
        secret_free(auth.password);
        curl_slist_free_all(rcpts);
}
