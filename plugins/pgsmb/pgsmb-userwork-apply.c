/* Store format 2, the as-user side of a catch-up and of a chain's restore (runs as the user):
 * the want list of an extraction, the removal of what a later version deleted, the modes and
 * times of directories once a chain's archives are all in. Every list comes from root, and is
 * still checked line by line; nothing is ever done through a symlink or outside the directory. */
#include "pgsmb-userwork-archive-internal.h"

#include "pgsmb-userwork.h"
#include "pgsmb-userwork-expect.h"

#define APPLY_LIST_MAX (512u * 1024 * 1024) /* PBUF_LARGE_MAX: what the writers may make */

/* The whole of fd (from offset 0), at most APPLY_LIST_MAX bytes. */
static int read_list(int fd, char **ret, size_t *len) {
        if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
                return -errno;
        return pgsmb_read_all(fd, APPLY_LIST_MAX, ret, len);
}

int userwork_want_list(int fd, char ***ret, size_t *n, char *err, size_t errlen) {
        char *buf = NULL;
        size_t len = 0, line = 0;
        int r = read_list(fd, &buf, &len);

        if (r < 0)
                return fail(err, errlen, r, "cannot read the list of entries: %s", strerror(-r));
        r = pathlist_parse(buf ? buf : "", len, ret, n, &line);
        free(buf);
        if (r < 0)
                return fail(err, errlen, r, "the list of entries is invalid at line %zu", line);
        return 0;
}

/* The parent directory of path below root, never through a symlink: a descriptor, or -errno
 * (-ENOENT, -ENOTDIR, -ELOOP: not below root as a directory). base gets the last component. */
static int parent_of(int root, const char *path, char base[NAME_MAX + 1]) {
        const char *slash = strrchr(path, '/');
        int fd = dup(root);

        if (fd < 0)
                return -errno;
        for (const char *s = path; slash && s < slash;) {
                size_t len = strcspn(s, "/");
                char name[NAME_MAX + 1];
                int nfd;

                if (len == 0 || len > NAME_MAX) {
                        close(fd);
                        return -EINVAL;
                }
                memcpy(name, s, len);
                name[len] = 0;
                nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(fd);
                if (nfd < 0)
                        return -errno;
                fd = nfd;
                s += len + 1;
        }
        snprintf(base, NAME_MAX + 1, "%s", slash ? slash + 1 : path);
        return fd;
}

static size_t depth(const char *p) {
        size_t d = 1;
        for (; *p; p++)
                d += *p == '/';
        return d;
}

static int deepest_first(const void *a, const void *b) {
        const char *x = *(char *const *)a, *y = *(char *const *)b;
        size_t dx = depth(x), dy = depth(y);
        return dx != dy ? (dx < dy ? 1 : -1) : strcmp(x, y);
}

int pgsmb_profile_delete(const char *dir, char **paths, size_t n, struct expect *x, uint64_t *removed, char *err,
                         size_t errlen) {
        _cleanup_close_ int root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        *removed = 0;
        if (root < 0)
                return fail(err, errlen, -errno, "cannot open '%s': %s", dir, strerror(errno));
        qsort(paths, n, sizeof *paths, deepest_first);
        for (size_t i = 0; i < n; i++) {
                char base[NAME_MAX + 1];
                int pfd, r;

                if (!pgsmb_path_valid(paths[i]))
                        return fail(err, errlen, -EINVAL, "invalid path '%s'", paths[i]);
                pfd = parent_of(root, paths[i], base);
                if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP)
                        continue; /* gone already, or not below dir as a directory */
                if (pfd < 0)
                        return fail(err, errlen, pfd, "cannot reach '%s': %s", paths[i], strerror(-pfd));
                struct stat st, pst;
                if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        close(pfd);
                        continue; /* gone already */
                }
                /* a file changed here since the caller looked stays, and stops the job */
                if (!S_ISDIR(st.st_mode) && (r = expectation_check(x, pfd, base, paths[i])) < 0) {
                        close(pfd);
                        if (r == -EBUSY)
                                return fail(err, errlen, r, "'%s' changed here during the catch-up", paths[i]);
                        return fail(err, errlen, r, "cannot look at '%s': %s", paths[i], strerror(-r));
                }
                if (fstat(pfd, &pst) == 0 && (pst.st_mode & 0300) != 0300)
                        (void)fchmod(pfd, (pst.st_mode & 07777) | 0700);
                /* Deepest first, every path the version had listed: a directory is empty by its
                 * turn, unless something was made in it here; that stays, and it with it. */
                r = unlinkat(pfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
                close(pfd);
                if (r == -ENOTEMPTY || r == -EEXIST || r == -ENOENT)
                        continue;
                if (r < 0)
                        return fail(err, errlen, r, "cannot remove '%s': %s", paths[i], strerror(-r));
                (*removed)++;
        }
        return 0;
}

int pgsmb_profile_stat(const char *dir, char **paths, size_t n, int fd, char *err, size_t errlen) {
        _cleanup_close_ int root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct pbuf b;
        int r = 0;

        if (root < 0)
                return fail(err, errlen, -errno, "cannot open '%s': %s", dir, strerror(errno));
        pbuf_init_large(&b);
        for (size_t i = 0; i < n && r == 0; i++) {
                char base[NAME_MAX + 1];
                struct scan_entry e;
                struct stat st;
                int pfd;

                if (!pgsmb_path_valid(paths[i])) {
                        r = fail(err, errlen, -EINVAL, "invalid path '%s'", paths[i]);
                        break;
                }
                pfd = parent_of(root, paths[i], base);
                if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP)
                        continue;
                if (pfd < 0) {
                        r = fail(err, errlen, pfd, "cannot reach '%s': %s", paths[i], strerror(-pfd));
                        break;
                }
                r = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
                close(pfd);
                if (r == -ENOENT) {
                        r = 0;
                        continue;
                }
                if (r < 0) {
                        r = fail(err, errlen, r, "cannot stat '%s': %s", paths[i], strerror(-r));
                        break;
                }
                if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
                        continue; /* no entry of a profile */
                if ((r = scan_entry_from_stat(&e, '=', paths[i], &st)) < 0)
                        break;
                r = scan_format(&e, &b);
                free(e.path);
        }
        if (r == 0 && write_all(fd, b.data, b.len) < 0)
                r = fail(err, errlen, -errno, "cannot hand the entries over: %s", strerror(errno));
        pbuf_free(&b);
        return r;
}

static int dirs_deepest_first(const void *a, const void *b) {
        const struct scan_entry *x = a, *y = b;
        size_t dx = depth(x->path), dy = depth(y->path);
        return dx != dy ? (dx < dy ? 1 : -1) : strcmp(x->path, y->path);
}

int pgsmb_profile_fix_dirs(const char *dir, struct scan *s, uint64_t *missing, char *err, size_t errlen) {
        _cleanup_close_ int root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        *missing = 0;
        if (root < 0)
                return fail(err, errlen, -errno, "cannot open '%s': %s", dir, strerror(errno));
        if (s->n > 1)
                qsort(s->v, s->n, sizeof *s->v, dirs_deepest_first);
        s->sorted = false;
        for (size_t i = 0; i < s->n; i++) {
                const struct scan_entry *e = &s->v[i];
                struct timespec ts[2] = {{e->mtime_s, e->mtime_ns}, {e->mtime_s, e->mtime_ns}};
                char base[NAME_MAX + 1];
                int pfd, fd, r = 0;

                if (e->type != 'd')
                        continue;
                pfd = parent_of(root, e->path, base);
                fd = pfd < 0 ? pfd : openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (pfd >= 0)
                        close(pfd);
                if (fd < 0) {
                        (*missing)++;
                        continue;
                }
                /* plain permissions only, as every extraction */
                if (fchmod(fd, e->mode & 0777) < 0 || futimens(fd, ts) < 0)
                        r = -errno;
                close(fd);
                if (r < 0)
                        return fail(err, errlen, r, "cannot set the mode and times of '%s': %s", e->path,
                                    strerror(-r));
        }
        return 0;
}
