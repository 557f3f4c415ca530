/* Connections, failover and binds of the ldap plugin (see ldap-conn.h). */
#include "ldap-conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include <pgina/secret.h>
#include <pgina/util.h>

#define DOWN_FILE "servers-down"
#define DOWN_MAX 64

/* ---- servers marked down ----------------------------------------------------------------------
 * <state_dir>/servers-down holds "EPOCH URI" lines: when each server last failed. */

struct down_list {
        size_t n;
        long long when[DOWN_MAX];
        char *uri[DOWN_MAX];
};

static void down_list_done(struct down_list *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->uri[i]);
        l->n = 0;
}

static void down_path(struct pgina_ctx *ctx, char *path, size_t len) {
        snprintf(path, len, "%s/" DOWN_FILE, pgina_ctx_state_dir(ctx));
}

static void down_load(struct pgina_ctx *ctx, struct down_list *l) {
        char path[4096], line[2048];
        _cleanup_fclose_ FILE *f = NULL;
        int fd;

        down_path(ctx, path, sizeof path);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return;
        f = fdopen(fd, "r");
        if (!f) {
                close(fd);
                return;
        }
        while (l->n < DOWN_MAX && fgets(line, sizeof line, f)) {
                char *sp = strchr(line, ' ');
                if (!sp)
                        continue;
                *sp++ = 0;
                sp[strcspn(sp, "\n")] = 0;
                l->uri[l->n] = strdup(sp);
                if (!l->uri[l->n])
                        break;
                l->when[l->n++] = strtoll(line, NULL, 10);
        }
}

static void down_save(struct pgina_ctx *ctx, const struct down_list *l) {
        char path[4096], buf[DOWN_MAX * 600];
        size_t o = 0;
        int r;

        down_path(ctx, path, sizeof path);
        for (size_t i = 0; i < l->n; i++) {
                int k = snprintf(buf + o, sizeof buf - o, "%lld %s\n", l->when[i], l->uri[i]);
                if (k < 0 || (size_t)k >= sizeof buf - o)
                        break;
                o += (size_t)k;
        }
        r = write_file_atomic(path, buf, o, 0600);
        if (r < 0)
                pgina_log(ctx, LOG_WARNING, "Failed to write %s: %s", path, strerror(-r));
}

/* Record (down) or forget (!down) a server's failure. */
static void server_mark(struct pgina_ctx *ctx, const char *uri, bool down) {
        _cleanup_(down_list_done) struct down_list l = {.n = 0};
        size_t i;

        if (pgina_conf_int(ctx, "server_retry_delay") <= 0)
                return;
        down_load(ctx, &l);
        for (i = 0; i < l.n; i++)
                if (streq(l.uri[i], uri))
                        break;
        if (!down) {
                if (i == l.n)
                        return; /* nothing to forget: no write on the common path */
                free(l.uri[i]);
                l.uri[i] = l.uri[l.n - 1];
                l.when[i] = l.when[l.n - 1];
                l.n--;
        } else {
                if (i == l.n) {
                        if (l.n == DOWN_MAX)
                                return;
                        l.uri[i] = strdup(uri);
                        if (!l.uri[i])
                                return;
                        l.n++;
                }
                l.when[i] = (long long)time(NULL);
        }
        down_save(ctx, &l);
}

/* Seconds the server stays skipped, 0 when it may be tried. */
static long long server_skip_left(const struct down_list *l, const char *uri, long long delay) {
        long long now = (long long)time(NULL);

        for (size_t i = 0; i < l->n; i++)
                if (streq(l->uri[i], uri) && now >= l->when[i] && now - l->when[i] < delay)
                        return delay - (now - l->when[i]);
        return 0;
}

/* ---- connecting ------------------------------------------------------------------------------ */

void pgldap_conn_done(struct pgldap_conn *c) {
        if (c->ld)
                ldap_unbind_ext_s(c->ld, NULL, NULL);
        c->ld = NULL;
        free(c->uri);
        c->uri = NULL;
}

static bool is_down_code(int rc) {
        return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
               rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY;
}

int pgldap_error(struct pgina_ctx *ctx, struct pgldap_conn *c, int rc) {
        if (is_down_code(rc)) {
                if (c->uri)
                        server_mark(ctx, c->uri, true);
                return -EHOSTDOWN;
        }
        return -EIO;
}

/* Append the library's diagnostic about a failure (a TLS handshake's reason) to why. */
static void add_diag(LDAP *ld, char *why, size_t wlen) {
        char *msg = NULL;
        size_t n = strlen(why);

        if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS && msg) {
                if (*msg && n < wlen)
                        snprintf(why + n, wlen - n, " (%s)", msg);
                ldap_memfree(msg);
        }
}

static int set_options(struct pgina_ctx *ctx, LDAP *ld) {
        int version = LDAP_VERSION3, require, zero = 0;
        struct timeval tv = {.tv_sec = (time_t)pgina_conf_int(ctx, "timeout")};
        const char *ca = pgina_conf_get(ctx, "tls_ca_file");

        require = pgina_conf_bool(ctx, "tls_verify") ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
        if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
            ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
            ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
            /* never follow a referral with the user's password */
            ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
            ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS)
                return -EINVAL;
        if (ca && *ca && ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, ca) != LDAP_OPT_SUCCESS)
                return -EINVAL;
        /* per-connection TLS settings take effect only in a new context */
        if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS)
                return -EINVAL;
        return 0;
}

/* Connect to one server: 0, or the LDAP result code of the failure (why says more). */
static int connect_one(struct pgina_ctx *ctx, const char *uri, LDAP **ret, char *why, size_t wlen) {
        LDAP *ld = NULL;
        int rc;

        rc = ldap_initialize(&ld, uri);
        if (rc != LDAP_SUCCESS) {
                snprintf(why, wlen, "invalid URI: %s", ldap_err2string(rc));
                return rc;
        }
        if (set_options(ctx, ld) < 0) {
                ldap_unbind_ext_s(ld, NULL, NULL);
                snprintf(why, wlen, "cannot set the connection options (tls_ca_file?)");
                return LDAP_LOCAL_ERROR;
        }
        rc = ldap_connect(ld);
        if (rc != LDAP_SUCCESS) {
                snprintf(why, wlen, "%s", ldap_err2string(rc));
                add_diag(ld, why, wlen);
                ldap_unbind_ext_s(ld, NULL, NULL);
                return rc;
        }
        if (pgina_conf_bool(ctx, "start_tls") && strncasecmp(uri, "ldaps:", 6) != 0) {
                rc = ldap_start_tls_s(ld, NULL, NULL);
                if (rc != LDAP_SUCCESS) {
                        snprintf(why, wlen, "StartTLS failed: %s", ldap_err2string(rc));
                        add_diag(ld, why, wlen);
                        ldap_unbind_ext_s(ld, NULL, NULL);
                        return rc;
                }
        }
        *ret = ld;
        return 0;
}

int pgldap_connect(struct pgina_ctx *ctx, struct pgldap_conn *c) {
        _cleanup_(down_list_done) struct down_list down = {.n = 0};
        size_t n = pgina_conf_list_len(ctx, "servers");
        long long delay = pgina_conf_int(ctx, "server_retry_delay");
        bool all_skipped = true;

        down_load(ctx, &down);
        /* When every server is marked down, try them all anyway rather than refuse blindly. */
        for (size_t i = 0; i < n; i++)
                if (server_skip_left(&down, pgina_conf_list_item(ctx, "servers", i), delay) == 0)
                        all_skipped = false;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *uri = strdup(strempty(pgina_conf_list_item(ctx, "servers", i)));
                char why[700];
                long long left;
                LDAP *ld = NULL;
                int rc;

                if (!uri)
                        return -ENOMEM;
                left = all_skipped ? 0 : server_skip_left(&down, uri, delay);
                if (left > 0) {
                        pgina_log(ctx, LOG_DEBUG, "Skipping %s: it failed less than %lld s ago "
                                  "(server_retry_delay), %lld s left", uri, delay, left);
                        continue;
                }
                rc = connect_one(ctx, uri, &ld, why, sizeof why);
                if (rc != 0) {
                        pgina_log(ctx, LOG_ERR, "LDAP server %s unavailable: %s%s", uri, why,
                                  delay > 0 ? "; skipped for server_retry_delay" : "");
                        server_mark(ctx, uri, true);
                        continue;
                }
                server_mark(ctx, uri, false);
                pgina_log(ctx, LOG_DEBUG, "Connected to %s", uri);
                c->ld = ld;
                c->uri = TAKE_PTR(uri);
                return 0;
        }
        pgina_log(ctx, LOG_ERR, "No LDAP server of [ldap] servers answered");
        return -EHOSTDOWN;
}

/* ---- binds ----------------------------------------------------------------------------------- */

/* "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 773, v4563":
 * the 773. 0 for another server's message. */
static unsigned ad_bind_data(LDAP *ld) {
        char *msg = NULL, *p, *end;
        unsigned long v = 0;

        if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) != LDAP_OPT_SUCCESS || !msg)
                return 0;
        if (strstr(msg, "AcceptSecurityContext") && (p = strstr(msg, ", data "))) {
                v = strtoul(p + 7, &end, 16);
                if (end == p + 7 || (*end != ',' && *end != 0) || v > 0xffff)
                        v = 0;
        }
        ldap_memfree(msg);
        return (unsigned)v;
}

int pgldap_bind(struct pgina_ctx *ctx, struct pgldap_conn *c, const char *dn, const char *password) {
        struct berval cred;
        int rc;

        if (!password || !*password)
                return -EPERM;
        cred.bv_val = (char *)password; /* libldap only reads it */
        cred.bv_len = strlen(password);
        c->ad_data = 0;
        rc = ldap_sasl_bind_s(c->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
        if (rc == LDAP_SUCCESS)
                return 1;
        if (rc == LDAP_INVALID_CREDENTIALS) {
                c->ad_data = ad_bind_data(c->ld);
                return 0;
        }
        pgina_log(ctx, LOG_ERR, "Bind as %s on %s failed: %s", dn, c->uri, ldap_err2string(rc));
        return pgldap_error(ctx, c, rc);
}

/* The service password: the whole file minus a final newline; root-owned, no group/other bits. */
static int read_service_password(struct pgina_ctx *ctx, const char *path, struct secret **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char buf[SECRET_MAX + 2];
        struct stat st;
        ssize_t k;

        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                pgina_log(ctx, LOG_ERR, "Failed to open search_password_file %s: %s", path,
                          strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
                pgina_log(ctx, LOG_ERR, "search_password_file %s must be a regular file owned by "
                          "root with mode 0600 or 0400", path);
                return -EPERM;
        }
        k = read(fd, buf, sizeof buf - 1);
        if (k < 0) {
                int r = -errno;
                explicit_bzero(buf, sizeof buf);
                pgina_log(ctx, LOG_ERR, "Failed to read search_password_file %s: %s", path,
                          strerror(-r));
                return r;
        }
        if ((size_t)k > SECRET_MAX) {
                explicit_bzero(buf, sizeof buf);
                pgina_log(ctx, LOG_ERR, "search_password_file %s is longer than %d bytes", path,
                          SECRET_MAX);
                return -E2BIG;
        }
        if (k > 0 && buf[k - 1] == '\n')
                k--;
        if (k > 0 && buf[k - 1] == '\r')
                k--;
        *ret = secret_new(buf, (size_t)k);
        explicit_bzero(buf, sizeof buf);
        return *ret ? 0 : -ENOMEM;
}

int pgldap_bind_service(struct pgina_ctx *ctx, struct pgldap_conn *c) {
        const char *dn = pgina_conf_get(ctx, "search_dn");
        const char *file = pgina_conf_get(ctx, "search_password_file");
        _cleanup_secret_ struct secret *pw = NULL;
        int r;

        if (!dn || !*dn)
                return 1; /* anonymous */
        if (!file || !*file) {
                pgina_log(ctx, LOG_ERR, "search_dn is set but search_password_file is not");
                return -EINVAL;
        }
        r = read_service_password(ctx, file, &pw);
        if (r < 0)
                return r;
        r = pgldap_bind(ctx, c, dn, pw->data);
        if (r == -EPERM)
                pgina_log(ctx, LOG_ERR, "search_password_file %s is empty", file);
        else if (r == 0)
                pgina_log(ctx, LOG_ERR, "The LDAP server %s refused the service account %s: "
                          "invalid credentials (search_dn, search_password_file)", c->uri, dn);
        return r;
}
