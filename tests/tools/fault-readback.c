/* Test-only LD_PRELOAD for pginad: a manifest commit whose read-back fails although the create
 * and the write succeeded (the store went away between the two). While the file named by
 * PGINA_FAULT_READBACK holds a number n > 0, the next n read-backs of the manifest
 * (NAME.mNNNNNNNN) this process last created exclusively fail with EIO, n counted down in the
 * file: a read on the descriptor that created it (the commit reads it back on that handle), or
 * an open of it for reading. While the file named by PGINA_FAULT_ARCHIVE_FLIP holds n > 0, the
 * next n reads on the descriptor that created an archive (NAME.a-*) return its bytes with the
 * first one flipped: a store that keeps other bytes than it was given. Nothing else is
 * touched. */
#undef _FILE_OFFSET_BITS /* define openat and openat64 both, not one redirected to the other */
#include <dlfcn.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static char created[512];
static int created_fd = -1, created_arch_fd = -1;

static bool take(const char *ctl);

static bool is_manifest(const char *base) {
        const char *m = strrchr(base, '.');
        return m && m[1] == 'm' && strlen(m + 2) == 8 && strspn(m + 2, "0123456789") == 8;
}

static bool fault(const char *path, int flags) {
        const char *ctl = getenv("PGINA_FAULT_READBACK"), *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        if (!ctl || !is_manifest(base))
                return false;
        if (flags & O_CREAT) {
                snprintf(created, sizeof created, "%s", base);
                return false;
        }
        if ((flags & O_ACCMODE) != O_RDONLY || strcmp(created, base) != 0)
                return false;
        return take(ctl);
}

/* One fault of the count, when there is one left. */
static bool take(const char *ctl) {
        FILE *f;
        int n = 0;

        if (!ctl || !(f = fopen(ctl, "r+e")))
                return false;
        if (fscanf(f, "%d", &n) == 1 && n > 0) {
                rewind(f);
                fprintf(f, "%d\n", n - 1);
        }
        fclose(f);
        return n > 0;
}

#define WRAP(name)                                                                              \
        int name(int dfd, const char *path, int flags, ...) {                                   \
                static int (*real)(int, const char *, int, ...);                                \
                mode_t mode = 0;                                                                \
                if (flags & (O_CREAT | __O_TMPFILE)) {                                          \
                        va_list ap;                                                             \
                        va_start(ap, flags);                                                    \
                        mode = va_arg(ap, mode_t);                                              \
                        va_end(ap);                                                             \
                }                                                                               \
                if (fault(path, flags)) {                                                       \
                        errno = EIO;                                                            \
                        return -1;                                                              \
                }                                                                               \
                if (!real)                                                                      \
                        real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name);   \
                int fd = real(dfd, path, flags, mode);                                          \
                if (fd >= 0 && (flags & O_CREAT)) {                                             \
                        const char *b = strrchr(path, '/');                                     \
                        b = b ? b + 1 : path;                                                   \
                        if (getenv("PGINA_FAULT_READBACK") && is_manifest(b))                   \
                                created_fd = fd;                                                \
                        if (getenv("PGINA_FAULT_ARCHIVE_FLIP") && strstr(b, ".a-"))             \
                                created_arch_fd = fd;                                           \
                }                                                                               \
                return fd;                                                                      \
        }

WRAP(openat)
WRAP(openat64)

/* The created manifest read back on its own descriptor. */
ssize_t read(int fd, void *buf, size_t len) {
        static ssize_t (*real)(int, void *, size_t);
        if (fd >= 0 && fd == created_fd && take(getenv("PGINA_FAULT_READBACK"))) {
                errno = EIO;
                return -1;
        }
        if (!real)
                real = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
        ssize_t n = real(fd, buf, len);
        if (n > 0 && fd >= 0 && fd == created_arch_fd && take(getenv("PGINA_FAULT_ARCHIVE_FLIP")))
                ((unsigned char *)buf)[0] ^= 0xff;
        return n;
}

int close(int fd) {
        static int (*real)(int);
        if (fd == created_fd)
                created_fd = -1;
        if (fd == created_arch_fd)
                created_arch_fd = -1;
        if (!real)
                real = (int (*)(int))dlsym(RTLD_NEXT, "close");
        return real(fd);
}
