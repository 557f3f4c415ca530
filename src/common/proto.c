/* The only code that reads or writes pgina's wire format (see proto.h for the spec). */
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static const char *const status_names[_PROTO_STATUS_MAX] = {
        [PROTO_OK] = "ok",
        [PROTO_AUTH_FAILED] = "authentication failed",
        [PROTO_DENIED] = "authorization denied",
        [PROTO_GATEWAY_FAILED] = "gateway failed",
        [PROTO_UNAVAILABLE] = "service unavailable",
        [PROTO_PERMISSION] = "permission denied",
        [PROTO_BAD_REQUEST] = "bad request",
        [PROTO_NOT_FOUND] = "not found",
        [PROTO_CHANGE_FAILED] = "password change failed",
        [PROTO_SHUTTING_DOWN] = "shutting down",
        [PROTO_CONFIG_INVALID] = "configuration invalid",
};

const char *proto_status_to_string(uint32_t status) {
        if (status >= _PROTO_STATUS_MAX || !status_names[status])
                return "unknown status";
        return status_names[status];
}

int proto_frame_begin(struct pbuf *b, uint16_t type) {
        int r;

        pbuf_reset(b);
        if ((r = pbuf_put_u32(b, 0)) < 0 || (r = pbuf_put_u16(b, PROTO_VERSION)) < 0)
                return r;
        return pbuf_put_u16(b, type);
}

int proto_frame_end(struct pbuf *b) {
        size_t body;

        if (b->len < PROTO_HEADER_LEN)
                return -EINVAL;
        body = b->len - 4;
        if (body > PROTO_FRAME_MAX)
                return -EMSGSIZE;
        b->data[0] = (uint8_t)(body >> 24);
        b->data[1] = (uint8_t)(body >> 16);
        b->data[2] = (uint8_t)(body >> 8);
        b->data[3] = (uint8_t)body;
        return 0;
}

long proto_frame_complete(const uint8_t *buf, size_t len) {
        uint32_t body;

        if (len < PROTO_HEADER_LEN)
                return 0;
        body = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) | buf[3];
        if (body > PROTO_FRAME_MAX)
                return -EMSGSIZE;
        if (body < PROTO_HEADER_LEN - 4)
                return -EBADMSG;
        if ((((uint32_t)buf[4] << 8) | buf[5]) != PROTO_VERSION)
                return -EPROTO;
        if (len - 4 < body)
                return 0;
        return (long)body + 4;
}

int proto_frame_open(const uint8_t *buf, size_t len, uint16_t *type, struct pbuf *payload) {
        long n = proto_frame_complete(buf, len);

        if (n <= 0)
                return n == 0 ? -EBADMSG : (int)n;
        *type = (uint16_t)((buf[6] << 8) | buf[7]);
        pbuf_init(payload);
        payload->data = (uint8_t *)buf + PROTO_HEADER_LEN;
        payload->len = payload->cap = (size_t)n - PROTO_HEADER_LEN;
        return 0;
}

int proto_send(int fd, const struct pbuf *frame) {
        size_t off = 0;

        while (off < frame->len) {
                ssize_t k = send(fd, frame->data + off, frame->len - off, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t)k;
        }
        return 0;
}

static int wait_fd(int fd, short events, long long deadline) {
        for (;;) {
                long long left = deadline - now_ms();
                struct pollfd p = {.fd = fd, .events = events};
                int k;

                if (left <= 0)
                        return -ETIMEDOUT;
                k = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k > 0)
                        return 0;
        }
}

static int read_exact(int fd, uint8_t *p, size_t n, long long deadline) {
        while (n > 0) {
                ssize_t k;
                int r = wait_fd(fd, POLLIN, deadline);

                if (r < 0)
                        return r;
                k = recv(fd, p, n, 0);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -ECONNRESET;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

int proto_recv(int fd, int timeout_ms, uint16_t *type, struct pbuf *payload) {
        long long deadline = now_ms() + timeout_ms;
        uint8_t hdr[PROTO_HEADER_LEN];
        long n;
        int r;

        r = read_exact(fd, hdr, sizeof hdr, deadline);
        if (r < 0)
                return r;
        n = proto_frame_complete(hdr, sizeof hdr);
        if (n < 0)
                return (int)n;
        if (n == 0) {
                /* Header alone is not the frame: read the announced body. */
                uint32_t body = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) |
                                ((uint32_t)hdr[2] << 8) | hdr[3];
                n = (long)body + 4;
        }
        *type = (uint16_t)((hdr[6] << 8) | hdr[7]);
        pbuf_init(payload);
        r = pbuf_reserve(payload, (size_t)n - PROTO_HEADER_LEN);
        if (r < 0)
                return r;
        payload->len = (size_t)n - PROTO_HEADER_LEN;
        r = read_exact(fd, payload->data, payload->len, deadline);
        if (r < 0) {
                pbuf_free(payload);
                return r;
        }
        return 0;
}

int proto_connect(const char *path, int timeout_ms) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A UNIX stream connect blocks while the listener's backlog is full, for at most the
         * send timeout (a non-blocking one would fail with EAGAIN at once). The same timeout
         * bounds every later send. Reads are bounded by poll deadlines. */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                return -errno;
        while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                if (errno == EINTR)
                        continue;
                return errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
        }
        return TAKE_FD(fd);
}

void proto_result_free(struct proto_result *r) {
        for (size_t i = 0; i < r->nrows; i++) {
                for (size_t j = 0; j < r->rows[i].n; j++) {
                        free(r->rows[i].keys[j]);
                        free(r->rows[i].values[j]);
                }
                free(r->rows[i].keys);
                free(r->rows[i].values);
        }
        free(r->rows);
        free(r->message);
        memset(r, 0, sizeof *r);
}

static int row_parse(struct pbuf *p, struct proto_row *row) {
        uint32_t n;
        int r = pbuf_get_u32(p, &n);

        if (r < 0)
                return r;
        if (n > PROTO_FIELDS_MAX)
                return -EBADMSG;
        row->keys = calloc(n ? n : 1, sizeof(char *));
        row->values = calloc(n ? n : 1, sizeof(char *));
        if (!row->keys || !row->values)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                if ((r = pbuf_get_str(p, &row->keys[i], 256)) < 0)
                        return r;
                row->n = i + 1; /* keys[i] owned from here; values[i] may still be NULL */
                if ((r = pbuf_get_str(p, &row->values[i], PROTO_STR_MAX)) < 0)
                        return r;
        }
        return 0;
}

int proto_result_parse(struct pbuf *p, struct proto_result *res) {
        uint32_t nrows;
        int r;

        memset(res, 0, sizeof *res);
        if ((r = pbuf_get_u32(p, &res->status)) < 0 ||
            (r = pbuf_get_str(p, &res->message, PROTO_STR_MAX)) < 0 ||
            (r = pbuf_get_u32(p, &nrows)) < 0)
                goto fail;
        if (nrows > PROTO_ROWS_MAX) {
                r = -EBADMSG;
                goto fail;
        }
        res->rows = calloc(nrows ? nrows : 1, sizeof(struct proto_row));
        if (!res->rows) {
                r = -ENOMEM;
                goto fail;
        }
        for (uint32_t i = 0; i < nrows; i++) {
                res->nrows = i + 1;
                if ((r = row_parse(p, &res->rows[i])) < 0)
                        goto fail;
        }
        if ((r = pbuf_expect_end(p)) < 0)
                goto fail;
        return 0;
fail:
        proto_result_free(res);
        return r;
}

const char *proto_row_get(const struct proto_row *row, const char *key) {
        for (size_t i = 0; i < row->n; i++)
                if (row->keys[i] && streq(row->keys[i], key))
                        return row->values[i];
        return NULL;
}

int proto_result_begin(struct pbuf *b, uint32_t status, const char *message, uint32_t nrows) {
        int r;

        if ((r = proto_frame_begin(b, PROTO_MSG_RESULT)) < 0 || (r = pbuf_put_u32(b, status)) < 0 ||
            (r = pbuf_put_str(b, message)) < 0)
                return r;
        return pbuf_put_u32(b, nrows);
}

int proto_row_begin(struct pbuf *b, uint32_t nfields) { return pbuf_put_u32(b, nfields); }

int proto_row_field(struct pbuf *b, const char *key, const char *value) {
        int r = pbuf_put_str(b, key);
        return r < 0 ? r : pbuf_put_str(b, value);
}

int proto_call(int fd, const struct pbuf *request, int timeout_ms, proto_info_fn on_info,
               void *userdata, struct proto_result *result) {
        int r = proto_send(fd, request);

        if (r < 0)
                return r;
        for (;;) {
                _cleanup_pbuf_ struct pbuf p = {0};
                uint16_t type;

                pbuf_init(&p);
                r = proto_recv(fd, timeout_ms, &type, &p);
                if (r < 0)
                        return r;
                if (type == PROTO_MSG_INFO) {
                        _cleanup_free_ char *text = NULL;
                        uint8_t kind;

                        if ((r = pbuf_get_u8(&p, &kind)) < 0 ||
                            (r = pbuf_get_str(&p, &text, PROTO_STR_MAX)) < 0 ||
                            (r = pbuf_expect_end(&p)) < 0)
                                return r;
                        if (on_info && kind != PROTO_INFO_KEEPALIVE)
                                on_info(userdata, kind, text);
                        continue;
                }
                if (type != PROTO_MSG_RESULT)
                        return -EBADMSG;
                return proto_result_parse(&p, result);
        }
}
