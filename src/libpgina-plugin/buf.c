/* libpgina-plugin: struct pbuf (<pgina/buf.h>), the one bounded reader and writer of pgina's
 * byte formats: the wire protocol (src/common/proto.c frames it), pgSMB's job for
 * pgsmb-userwork, state files. */
#include <pgina/buf.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void pbuf_init(struct pbuf *b) { memset(b, 0, sizeof *b); }

void pbuf_init_secret(struct pbuf *b) {
        pbuf_init(b);
        b->secret = true;
}

void pbuf_init_large(struct pbuf *b) {
        pbuf_init(b);
        b->large = true;
}

static void *pbuf_alloc(const struct pbuf *b, size_t cap) {
        void *p;

        if (!b->secret)
                return malloc(cap);
        p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        (void)madvise(p, cap, MADV_DONTDUMP);
        if (madvise(p, cap, MADV_WIPEONFORK) < 0) {
                munmap(p, cap);
                return NULL;
        }
        return p;
}

static void pbuf_release(const struct pbuf *b) {
        if (!b->data)
                return;
        explicit_bzero(b->data, b->cap);
        if (b->secret)
                munmap(b->data, b->cap);
        else
                free(b->data);
}

void pbuf_free(struct pbuf *b) {
        bool secret = b->secret, large = b->large;

        pbuf_release(b);
        pbuf_init(b);
        b->secret = secret;
        b->large = large;
}

void pbuf_reset(struct pbuf *b) {
        if (b->data)
                explicit_bzero(b->data, b->cap);
        b->len = b->pos = 0;
}

int pbuf_reserve(struct pbuf *b, size_t more) {
        size_t max = b->large ? PBUF_LARGE_MAX : PBUF_MAX, need, cap;
        uint8_t *n;

        if (more > max || b->len > max - more)
                return -EMSGSIZE;
        need = b->len + more;
        if (need <= b->cap)
                return 0;
        cap = b->cap ? b->cap : b->secret ? 4096 : 256; /* a secret buffer takes whole pages */
        while (cap < need)
                cap *= 2;
        /* No realloc: the old block may hold a password and must be wiped before it is freed. */
        n = pbuf_alloc(b, cap);
        if (!n)
                return -ENOMEM;
        if (b->data) {
                memcpy(n, b->data, b->len);
                pbuf_release(b);
        }
        b->data = n;
        b->cap = cap;
        return 0;
}

ssize_t pbuf_read_fd(struct pbuf *b, int fd, size_t max) {
        ssize_t k;
        int r = pbuf_reserve(b, max);

        if (r < 0)
                return r;
        do
                k = read(fd, b->data + b->len, max);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        b->len += (size_t)k;
        return k;
}

void pbuf_consume(struct pbuf *b, size_t n) {
        if (n > b->len)
                n = b->len;
        memmove(b->data, b->data + n, b->len - n);
        explicit_bzero(b->data + b->len - n, n);
        b->len -= n;
        b->pos = 0;
}

static int pbuf_put(struct pbuf *b, const void *p, size_t n) {
        int r = pbuf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

int pbuf_put_u8(struct pbuf *b, uint8_t v) { return pbuf_put(b, &v, 1); }

int pbuf_put_u16(struct pbuf *b, uint16_t v) {
        uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
        return pbuf_put(b, x, 2);
}

int pbuf_put_u32(struct pbuf *b, uint32_t v) {
        uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        return pbuf_put(b, x, 4);
}

int pbuf_put_u64(struct pbuf *b, uint64_t v) {
        int r = pbuf_put_u32(b, (uint32_t)(v >> 32));
        return r < 0 ? r : pbuf_put_u32(b, (uint32_t)v);
}

int pbuf_put_bytes_str(struct pbuf *b, const char *s, size_t len) {
        int r;

        if (len > PBUF_STR_MAX || (len && memchr(s, 0, len)))
                return -EINVAL;
        r = pbuf_put_u32(b, (uint32_t)len);
        return r < 0 ? r : pbuf_put(b, s, len);
}

int pbuf_put_str(struct pbuf *b, const char *s) {
        if (!s)
                s = "";
        return pbuf_put_bytes_str(b, s, strlen(s));
}

int pbuf_put_blob(struct pbuf *b, const void *p, uint32_t len) {
        int r = pbuf_put_u32(b, len);
        return r < 0 ? r : pbuf_put(b, p, len);
}

int pbuf_put_secret(struct pbuf *b, const struct secret *s) {
        if (!s)
                return pbuf_put_bytes_str(b, "", 0);
        return pbuf_put_bytes_str(b, s->data, s->len);
}

static int pbuf_get(struct pbuf *b, void *p, size_t n) {
        if (b->pos > b->len || b->len - b->pos < n)
                return -EBADMSG;
        memcpy(p, b->data + b->pos, n);
        b->pos += n;
        return 0;
}

int pbuf_get_u8(struct pbuf *b, uint8_t *v) { return pbuf_get(b, v, 1); }

int pbuf_get_u16(struct pbuf *b, uint16_t *v) {
        uint8_t x[2];
        int r = pbuf_get(b, x, 2);
        if (r < 0)
                return r;
        *v = (uint16_t)((x[0] << 8) | x[1]);
        return 0;
}

int pbuf_get_u32(struct pbuf *b, uint32_t *v) {
        uint8_t x[4];
        int r = pbuf_get(b, x, 4);
        if (r < 0)
                return r;
        *v = ((uint32_t)x[0] << 24) | ((uint32_t)x[1] << 16) | ((uint32_t)x[2] << 8) | x[3];
        return 0;
}

int pbuf_get_u64(struct pbuf *b, uint64_t *v) {
        uint32_t hi, lo;
        int r = pbuf_get_u32(b, &hi);
        if (r < 0 || (r = pbuf_get_u32(b, &lo)) < 0)
                return r;
        *v = ((uint64_t)hi << 32) | lo;
        return 0;
}

/* Validate the next string field and return where its bytes are, without copying. */
static int pbuf_peek_str(struct pbuf *b, const char **p, uint32_t *len, size_t max) {
        uint32_t n;
        int r = pbuf_get_u32(b, &n);

        if (r < 0)
                return r;
        if (n > max || n > PBUF_STR_MAX || b->len - b->pos < n)
                return -EBADMSG;
        if (n && memchr(b->data + b->pos, 0, n))
                return -EBADMSG;
        *p = (const char *)b->data + b->pos;
        *len = n;
        b->pos += n;
        return 0;
}

int pbuf_get_str(struct pbuf *b, char **ret, size_t max) {
        const char *p;
        uint32_t n;
        char *s;
        int r = pbuf_peek_str(b, &p, &n, max);

        if (r < 0)
                return r;
        s = malloc(n + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, p, n);
        s[n] = 0;
        *ret = s;
        return 0;
}

int pbuf_get_blob(struct pbuf *b, const void **ret, uint32_t *len, size_t max) {
        uint32_t n;
        int r = pbuf_get_u32(b, &n);

        if (r < 0)
                return r;
        if (n > max || b->pos > b->len || b->len - b->pos < n)
                return -EBADMSG;
        *ret = b->data + b->pos;
        *len = n;
        b->pos += n;
        return 0;
}

int pbuf_get_secret(struct pbuf *b, struct secret **ret) {
        const char *p;
        uint32_t n;
        struct secret *s;
        int r = pbuf_peek_str(b, &p, &n, SECRET_MAX);

        if (r < 0)
                return r;
        s = secret_new(p, n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int pbuf_expect_end(const struct pbuf *b) { return b->pos == b->len ? 0 : -EBADMSG; }
