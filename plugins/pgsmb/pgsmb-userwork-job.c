/* pgSMB: a job for pgsmb-userwork on the wire (pgsmb-userwork.h): encoded by root in pginad's
 * worker (pgsmb-helper.c), decoded by the pgsmb-userwork program running as the user. The only
 * pgsmb-userwork* file linked into pgsmb.so: the program's work (pgsmb-userwork.c and the archive
 * code) is never in root's address space. */
#include "pgsmb-userwork.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pgina/spawn.h>
#include <pgina/util.h>

#define LIST_MAX 4096 /* entries of an argv or an exclude list */

/* ---- encoding (root side) ---- */

static int put_list(struct pbuf *b, const char *const *l) {
        uint32_t n = 0;
        int r;

        while (l && l[n])
                n++;
        if (n > LIST_MAX)
                return -E2BIG;
        if ((r = pbuf_put_u32(b, n)) < 0)
                return r;
        for (uint32_t i = 0; i < n; i++)
                if ((r = pbuf_put_str(b, l[i])) < 0)
                        return r;
        return 0;
}

int userwork_encode(const struct userwork_job *j, struct pbuf *b) {
        size_t at = b->len;
        uint64_t len;
        int r;

        if ((r = pbuf_put_u32(b, 0)) < 0 || /* the length, filled in below */
            (r = pbuf_put_u8(b, (uint8_t)j->kind)) < 0 || (r = pbuf_put_str(b, j->name)) < 0 ||
            (r = pbuf_put_str(b, j->home)) < 0 || (r = pbuf_put_str(b, j->dir)) < 0 ||
            (r = put_list(b, j->exclude)) < 0 || (r = pbuf_put_u64(b, j->lim.max_total_bytes)) < 0 ||
            (r = pbuf_put_u64(b, j->lim.max_entries)) < 0 ||
            (r = pbuf_put_u64(b, j->lim.max_entry_bytes)) < 0 ||
            (r = pbuf_put_u32(b, (uint32_t)j->level)) < 0 ||
            (r = pbuf_put_u32(b, (uint32_t)j->threads)) < 0 || (r = put_list(b, j->archive_argv)) < 0 ||
            (r = put_list(b, j->extract_argv)) < 0 || (r = pbuf_put_u64(b, j->ring_size)) < 0 ||
            (r = pbuf_put_str(b, j->script_path)) < 0 ||
            (r = pbuf_put_blob(b, j->script_data, j->script_data ? j->script_len : 0)) < 0 ||
            (r = pbuf_put_u32(b, j->timeout_s)) < 0 || (r = pbuf_put_str(b, j->home_share)) < 0 ||
            (r = pbuf_put_str(b, j->home_mount)) < 0 || (r = pbuf_put_u32(b, j->flags)) < 0)
                return r;
        len = b->len - at - 4;
        if (len > USERWORK_JOB_MAX)
                return -E2BIG;
        for (int i = 0; i < 4; i++)
                b->data[at + (size_t)i] = (uint8_t)(len >> (24 - 8 * i));
        return 0;
}

/* ---- decoding (the program's side) ---- */

void userwork_decoded_free(struct userwork_decoded *d) {
        for (size_t i = 0; i < ELEMENTSOF(d->str); i++)
                free(d->str[i]);
        for (size_t i = 0; i < ELEMENTSOF(d->list); i++) {
                for (char **p = d->list[i]; p && *p; p++)
                        free(*p);
                free(d->list[i]);
        }
        free(d->script);
}

/* A string field; "" is NULL when `empty_null`. */
static int get_str(struct pbuf *b, struct userwork_decoded *d, size_t slot, bool empty_null, const char **ret) {
        int r = pbuf_get_str(b, &d->str[slot], PATH_MAX);

        if (r < 0)
                return r;
        *ret = empty_null && !d->str[slot][0] ? NULL : d->str[slot];
        return 0;
}

/* A list: NULL when it has no entry. */
static int get_list(struct pbuf *b, struct userwork_decoded *d, size_t slot, const char *const **ret) {
        uint32_t n;
        int r = pbuf_get_u32(b, &n);

        if (r < 0)
                return r;
        if (n > LIST_MAX)
                return -EBADMSG;
        *ret = NULL;
        if (n == 0)
                return 0;
        d->list[slot] = calloc(n + 1, sizeof(char *));
        if (!d->list[slot])
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
                if ((r = pbuf_get_str(b, &d->list[slot][i], PATH_MAX)) < 0)
                        return r;
        *ret = (const char *const *)d->list[slot];
        return 0;
}

int userwork_decode(struct pbuf *b, struct userwork_decoded *d) {
        struct userwork_job *j = &d->j;
        uint32_t level, threads, script_len;
        const void *script;
        uint8_t kind;
        int r;

        if ((r = pbuf_get_u8(b, &kind)) < 0 || (r = get_str(b, d, 0, false, &j->name)) < 0 ||
            (r = get_str(b, d, 1, false, &j->home)) < 0 || (r = get_str(b, d, 2, false, &j->dir)) < 0 ||
            (r = get_list(b, d, 0, &j->exclude)) < 0 ||
            (r = pbuf_get_u64(b, &j->lim.max_total_bytes)) < 0 ||
            (r = pbuf_get_u64(b, &j->lim.max_entries)) < 0 ||
            (r = pbuf_get_u64(b, &j->lim.max_entry_bytes)) < 0 || (r = pbuf_get_u32(b, &level)) < 0 ||
            (r = pbuf_get_u32(b, &threads)) < 0 || (r = get_list(b, d, 1, &j->archive_argv)) < 0 ||
            (r = get_list(b, d, 2, &j->extract_argv)) < 0 || (r = pbuf_get_u64(b, &j->ring_size)) < 0 ||
            (r = get_str(b, d, 3, true, &j->script_path)) < 0 ||
            (r = pbuf_get_blob(b, &script, &script_len, USERWORK_JOB_MAX)) < 0 ||
            (r = pbuf_get_u32(b, &j->timeout_s)) < 0 || (r = get_str(b, d, 4, true, &j->home_share)) < 0 ||
            (r = get_str(b, d, 5, true, &j->home_mount)) < 0 || (r = pbuf_get_u32(b, &j->flags)) < 0 ||
            (r = pbuf_expect_end(b)) < 0)
                return r;
        if (kind < USERWORK_EXTRACT || kind > USERWORK_STAT)
                return -EBADMSG;
        j->kind = kind;
        j->level = (int)level;
        j->threads = (int)threads;
        if (script_len) {
                d->script = malloc(script_len);
                if (!d->script)
                        return -ENOMEM;
                memcpy(d->script, script, script_len);
                j->script_data = d->script;
                j->script_len = script_len;
        }
        return 0;
}


/* ---- the restore ring's positions (both sides) ---- */

int ring_totals_recv(struct ring_totals *rt, int fd, bool wait, uint64_t *latest) {
        unsigned char b[512];
        ssize_t k;

        memcpy(b, rt->part, rt->npart);
        do
                k = recv(fd, b + rt->npart, sizeof b - rt->npart, wait ? 0 : MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        if (k == 0)
                return -EPIPE;
        size_t have = rt->npart + (size_t)k, whole = have / 8 * 8;
        if (whole > 0)
                memcpy(latest, b + whole - 8, 8);
        rt->npart = have - whole;
        memcpy(rt->part, b + whole, rt->npart);
        return whole > 0;
}
