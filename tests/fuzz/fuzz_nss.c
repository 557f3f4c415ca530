/* libFuzzer target: libnss_pgina's reading of pginad's answer. The module's source is compiled
 * in (its parser is static); the daemon is played by a socketpair that sends the input.
 *
 * Input: u8 flags (bit 0: group lookup, bit 1: by id) | u16 buflen | u8 misalignment | the
 * daemon's byte stream (INFO frames, then a RESULT). The lookup is of "alice" or id 1000. */
#include "../../src/nss/nss_pgina.c"

#include "fuzz-common.h"

#define ASKED_NAME "alice"
#define ASKED_ID 1000u

/* s lies, NUL included, inside [buf, buf + len). */
static void check_inside(const char *s, const char *buf, size_t len) {
        FUZZ_ASSERT(s && s >= buf && s < buf + len);
        FUZZ_ASSERT(memchr(s, 0, (size_t)(buf + len - s)));
}

static void check_passwd(const struct passwd *pw, bool by_id, const char *buf, size_t len) {
        const char *f[] = {pw->pw_name, pw->pw_passwd, pw->pw_gecos, pw->pw_dir, pw->pw_shell};

        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                check_inside(f[i], buf, len);
                FUZZ_ASSERT(!strpbrk(f[i], ":\n"));
        }
        FUZZ_ASSERT(pw->pw_uid != 0 && pw->pw_gid != 0);
        FUZZ_ASSERT(by_id ? pw->pw_uid == ASKED_ID : streq(pw->pw_name, ASKED_NAME));
        FUZZ_ASSERT(valid_user_name(pw->pw_name) && pw->pw_dir[0] == '/' && pw->pw_shell[0] == '/');
}

static void check_group(const struct group *gr, bool by_id, const char *buf, size_t len) {
        size_t n = 0;

        check_inside(gr->gr_name, buf, len);
        check_inside(gr->gr_passwd, buf, len);
        FUZZ_ASSERT(gr->gr_gid != 0);
        FUZZ_ASSERT(by_id ? gr->gr_gid == ASKED_ID : streq(gr->gr_name, ASKED_NAME));
        FUZZ_ASSERT((const char *)gr->gr_mem >= buf && (uintptr_t)gr->gr_mem % sizeof(char *) == 0);
        for (;; n++) {
                FUZZ_ASSERT((const char *)(gr->gr_mem + n + 1) <= buf + len);
                if (!gr->gr_mem[n])
                        break;
                check_inside(gr->gr_mem[n], buf, len);
                FUZZ_ASSERT(valid_user_name(gr->gr_mem[n]));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct proto_result res = {0};
        _cleanup_close_ int peer = -1, fd = -1;
        _cleanup_free_ char *block = NULL;
        bool group, by_id;
        size_t buflen, skew;
        enum nss_status st;
        char *buf;
        int err = ENOENT;

        if (size < 4)
                return -1; /* not an input of this target: kept out of the corpus */
        group = data[0] & 1;
        by_id = data[0] & 2;
        buflen = (((size_t)data[1] << 8) | data[2]) % 4096;
        skew = data[3] % 8;
        data += 4;
        size -= 4;

        fd = fuzz_stream_of(data, size, &peer);
        if (nss_exchange(fd, now_ms() + 5000, group ? PROTO_REQ_GETGRNAM : PROTO_REQ_GETPWNAM,
                         by_id ? "" : ASKED_NAME, by_id ? ASKED_ID : 0, &res) < 0)
                return 0;
        /* The caller's buffer, exactly buflen bytes from a skewed start: ASan sees every byte
         * written past it. */
        block = malloc(skew + buflen ? skew + buflen : 1);
        FUZZ_ASSERT(block);
        buf = block + skew;
        if (group) {
                struct group gr;
                st = group_from_result(&res, by_id ? NULL : ASKED_NAME, by_id ? ASKED_ID : 0, &gr,
                                       buf, buflen, &err);
                if (st == NSS_STATUS_SUCCESS)
                        check_group(&gr, by_id, buf, buflen);
        } else {
                struct passwd pw;
                st = passwd_from_result(&res, by_id ? NULL : ASKED_NAME, by_id ? ASKED_ID : 0, &pw,
                                        buf, buflen, &err);
                if (st == NSS_STATUS_SUCCESS)
                        check_passwd(&pw, by_id, buf, buflen);
        }
        FUZZ_ASSERT(st == NSS_STATUS_SUCCESS || st == NSS_STATUS_NOTFOUND ||
                    st == NSS_STATUS_UNAVAIL || (st == NSS_STATUS_TRYAGAIN && err == ERANGE));
        proto_result_free(&res);
        return 0;
}
