/* LocalMachine: the only file that touches password hashes. Every buffer that held a password or
 * a hash is wiped before it is freed. crypt_rn is libxcrypt's crypt_r with the size of the
 * struct crypt_data given and NULL on failure (no "*0" token); unlike crypt_r it is not
 * intercepted by ASan, whose crypt_r interceptor calls NULL when the executable that dlopen()s
 * this plugin does not itself link libcrypt. */
#include "lm-crypt.h"

#include <crypt.h>
#include <shadow.h>
#include <stdbool.h>
#include <sys/random.h>

#include <pgina/util.h>

/* crypt_r("pgina-dummy-password-never-matches", "$y$j9T$…"): default yescrypt cost, as Debian 12
 * hashes new passwords, so an unknown user costs what a real one does. */
static const char dummy_hash[] = "$y$j9T$QgWpZUlewTK.TyaTYgII60$ZVCny/5avf9SFbnvUUOchUAUqRT4LyoQkNzqTi/jiD7";

static void crypt_data_freep(struct crypt_data **d) {
        if (*d) {
                explicit_bzero(*d, sizeof **d);
                free(*d);
        }
}

static bool hash_usable(const char *hash) {
        return hash && hash[0] != '\0' && hash[0] != '!' && hash[0] != '*';
}

/* Equal strings, in time that depends only on the lengths. */
static bool streq_consttime(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
        unsigned char d = la != lb;

        for (size_t i = 0; i < n; i++)
                d |= (unsigned char)(a[i] ^ b[i]);
        return d == 0;
}

/* The shadow entry's hash, copied into hash (wiped by the caller). Returns 1 found, 0 unknown. */
static int shadow_hash(const char *user, char *hash, size_t len) {
        _cleanup_free_ char *buf = NULL;
        size_t buflen = 1024;
        struct spwd sp, *res = NULL;
        int r;

        for (;;) {
                char *nbuf = realloc(buf, buflen);
                if (!nbuf)
                        return -ENOMEM;
                buf = nbuf;
                r = getspnam_r(user, &sp, buf, buflen, &res);
                if (r != ERANGE)
                        break;
                explicit_bzero(buf, buflen);
                if (buflen >= 1024 * 1024)
                        return -ERANGE;
                buflen *= 2;
        }
        if (r == 0 && res && res->sp_pwdp && strlen(res->sp_pwdp) < len) {
                strcpy(hash, res->sp_pwdp);
                r = 1;
        } else if (r == 0 || r == ENOENT) {
                r = 0;
        } else {
                r = -r;
        }
        explicit_bzero(buf, buflen);
        return r;
}

int lm_password_verify(const char *user, const char *password) {
        _cleanup_(crypt_data_freep) struct crypt_data *cd = NULL;
        char hash[CRYPT_OUTPUT_SIZE] = "";
        const char *out;
        bool usable, match;
        int r;

        if (!password)
                password = "";
        cd = calloc(1, sizeof *cd);
        if (!cd)
                return -ENOMEM;
        r = valid_user_name(user) ? shadow_hash(user, hash, sizeof hash) : 0;
        if (r < 0)
                return r;
        usable = r > 0 && hash_usable(hash);
        out = crypt_rn(password, usable ? hash : dummy_hash, cd, (int)sizeof *cd);
        match = out && out[0] != '*' && streq_consttime(out, usable ? hash : dummy_hash);
        explicit_bzero(hash, sizeof hash);
        return usable && match;
}

int lm_password_hash(const char *password, char *out, size_t len) {
        _cleanup_(crypt_data_freep) struct crypt_data *cd = NULL;
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        const char *h;
        int r = 0;

        cd = calloc(1, sizeof *cd);
        if (!cd)
                return -ENOMEM;
        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
                return errno > 0 ? -errno : -EINVAL;
        h = crypt_rn(password, salt, cd, (int)sizeof *cd);
        if (!h || h[0] == '*')
                r = errno > 0 ? -errno : -EINVAL;
        else if (strlen(h) >= len)
                r = -ENOBUFS;
        else
                strcpy(out, h);
        explicit_bzero(salt, sizeof salt);
        return r;
}

int lm_password_random(char *out, size_t len) {
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        unsigned char raw[33] = {0}; /* 32 random bytes, padded to a multiple of 3 */
        size_t got = 0, o = 0;

        if (len < LM_RANDOM_PASSWORD_SIZE)
                return -ENOBUFS;
        while (got < 32) {
                ssize_t k = getrandom(raw + got, 32 - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        explicit_bzero(raw, sizeof raw);
                        return -errno;
                }
                got += (size_t)k;
        }
        for (size_t i = 0; i < 33; i += 3) {
                unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
                out[o++] = b64[(v >> 18) & 63];
                out[o++] = b64[(v >> 12) & 63];
                out[o++] = b64[(v >> 6) & 63];
                out[o++] = i + 3 < 33 ? b64[v & 63] : '=';
        }
        out[o] = '\0';
        explicit_bzero(raw, sizeof raw);
        return 0;
}
