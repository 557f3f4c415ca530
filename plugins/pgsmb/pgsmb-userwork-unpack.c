/* The disk side of a built-in extraction (see pgsmb-userwork-unpack.h). */
#include "pgsmb-userwork-unpack.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pgina/util.h>

#include "pgsmb-userwork-expect.h"

/* Directories of the current path kept open; deeper ones are opened and closed per entry. */
#define DIR_CACHE_MAX 64

/* A path's name components ("." and empty ones skipped); ".." never reaches here (checked). */
struct comps {
        size_t n;
        const char *p[PATH_MAX / 2];
        size_t len[PATH_MAX / 2];
};

/* What the directory fixes may hold in all: a hostile archive repeating a long directory entry
 * must not make us allocate without end (a real home's list is a few MiB). */
#define FIX_BYTES_MAX (64u * 1024 * 1024)

struct dirfix {
        char *path; /* components joined by '/' */
        size_t depth;
        size_t seq; /* archive order: of two entries for one directory, the later wins */
        mode_t mode;
        struct timespec times[2];
};

struct unpack {
        int root;
        mode_t old_umask;
        size_t depth; /* open directories of the current path */
        char *names[DIR_CACHE_MAX];
        int fds[DIR_CACHE_MAX];
        struct dirfix *fix;
        size_t nfix, capfix, fix_bytes;
        struct comps path, link; /* scratch: the entry's path, a hardlink's target */
        bool in_place; /* unpack_set_in_place */
        struct expect *expect; /* unpack_set_expect */
        /* in place: the regular file being filled under a temporary name, renamed at its end */
        int pending_dir;
        char pending_tmp[NAME_MAX + 1], pending_base[NAME_MAX + 1], pending_path[PATH_MAX];
};

static int split(const char *path, struct comps *c) {
        c->n = 0;
        if (strlen(path) >= PATH_MAX)
                return -ENAMETOOLONG;
        for (const char *s = path; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return -EPERM;
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                if (n > 0 && !(n == 1 && s[0] == '.')) {
                        c->p[c->n] = s;
                        c->len[c->n++] = n;
                }
                s += n;
                s += strspn(s, "/");
        }
        return 0;
}

static void comp_copy(const struct comps *c, size_t i, char out[NAME_MAX + 1]) {
        memcpy(out, c->p[i], c->len[i]);
        out[c->len[i]] = 0;
}

/* The components joined by '/' (split checked the length). */
static void comp_join(const struct comps *c, char out[PATH_MAX]) {
        size_t o = 0;

        for (size_t i = 0; i < c->n; i++) {
                if (i)
                        out[o++] = '/';
                memcpy(out + o, c->p[i], c->len[i]);
                o += c->len[i];
        }
        out[o] = 0;
}

/* Open (creating when missing) directory `name` in dirfd, never through a symlink. */
static int open_dir(int dirfd, const char *name) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0 && errno == ENOENT) {
                /* a parent the archive did not list (or lists later): like tar, 0755 */
                if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
                        return -errno;
                fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        return fd < 0 ? -errno : fd;
}

static void cache_trim(struct unpack *u, size_t keep) {
        while (u->depth > keep) {
                u->depth--;
                close(u->fds[u->depth]);
                free(u->names[u->depth]);
        }
}

static int may_replace(struct unpack *u, int dirfd, const char *base, const char *path);
static void make_writable(int dirfd);

/* In place: component i of c (name in fd) is a file, where the new version has a directory
 * (its entry may come in a later archive of the chain): the file goes, as the check saw it (a
 * regular file only: a symlink there is never followed nor taken for a directory), and the
 * directory is made. */
static int replace_by_dir(struct unpack *u, int fd, const char *name, const struct comps *c, size_t i) {
        char path[PATH_MAX];
        size_t o = 0;
        struct stat st;
        int r;

        for (size_t k = 0; k <= i; k++) {
                if (k)
                        path[o++] = '/';
                memcpy(path + o, c->p[k], c->len[k]);
                o += c->len[k];
        }
        path[o] = 0;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOTDIR;
        if ((r = may_replace(u, fd, name, path)) < 0)
                return r;
        make_writable(fd);
        if (unlinkat(fd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return open_dir(fd, name);
}

/* The directory holding component n-1 of c: the cached chain where it matches, opened from
 * there on. Returns a descriptor; *tmp is set when it is not cached (the caller closes it). */
static int parent_fd(struct unpack *u, const struct comps *c, bool *tmp) {
        size_t np = c->n - 1, i = 0;
        int fd = u->root;

        *tmp = false;
        while (i < u->depth && i < np && strlen(u->names[i]) == c->len[i] &&
               memcmp(u->names[i], c->p[i], c->len[i]) == 0)
                i++;
        cache_trim(u, i);
        if (i > 0)
                fd = u->fds[i - 1];
        for (; i < np; i++) {
                char name[NAME_MAX + 1];
                int nfd;

                comp_copy(c, i, name);
                nfd = open_dir(fd, name);
                if (nfd == -ENOTDIR && u->in_place)
                        nfd = replace_by_dir(u, fd, name, c, i);
                if (*tmp)
                        close(fd);
                if (nfd < 0)
                        return nfd;
                fd = nfd;
                if (i < DIR_CACHE_MAX && !*tmp) {
                        if (!(u->names[i] = strdup(name))) {
                                close(nfd);
                                return -ENOMEM;
                        }
                        u->fds[i] = nfd;
                        u->depth = i + 1;
                } else
                        *tmp = true;
        }
        return fd;
}

/* The parent of an arbitrary path, not cached (hardlink targets, directory fixes). */
static int walk_parent(int root, const struct comps *c) {
        int fd = root;

        for (size_t i = 0; i + 1 < c->n; i++) {
                char name[NAME_MAX + 1];
                int nfd;

                comp_copy(c, i, name);
                nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        nfd = -errno;
                if (fd != root)
                        close(fd);
                if (nfd < 0)
                        return nfd;
                fd = nfd;
        }
        return fd == root ? dup(root) : fd;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2]) {
        ts[1] = archive_entry_mtime_is_set(e)
                        ? (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)}
                        : (struct timespec){0, UTIME_OMIT};
        ts[0] = archive_entry_atime_is_set(e)
                        ? (struct timespec){archive_entry_atime(e), archive_entry_atime_nsec(e)}
                        : ts[1];
}

int unpack_new(int target_fd, struct unpack **ret) {
        struct unpack *u = calloc(1, sizeof *u);

        if (!u)
                return -ENOMEM;
        u->root = target_fd;
        u->pending_dir = -1;
        u->old_umask = umask(0);
        *ret = u;
        return 0;
}

void unpack_set_in_place(struct unpack *u, bool on) { u->in_place = on; }

void unpack_set_expect(struct unpack *u, struct expect *x) { u->expect = x; }

const char *unpack_busy(const struct unpack *u) { return u->expect ? u->expect->busy : ""; }

/* In place: may base (path) in dirfd be replaced? (what the caller saw there: unpack_set_expect) */
static int may_replace(struct unpack *u, int dirfd, const char *base, const char *path) {
        return u->in_place ? expectation_check(u->expect, dirfd, base, path) : 0;
}

/* In place: base in dirfd is the job's own now. */
static int made_here(struct unpack *u, int dirfd, const char *base) {
        struct stat st;

        if (!u->expect)
                return 0;
        if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return expectation_made(u->expect, &st);
}

/* ---- in place: replacing what is there, never through a symlink ---- */

/* A directory of the path the user may not write to (in place it is the user's own): writable
 * for now; FIXDIRS gives it its mode again. */
static void make_writable(int dirfd) {
        struct stat st;

        if (fstat(dirfd, &st) == 0 && (st.st_mode & 0300) != 0300)
                (void)fchmod(dirfd, (st.st_mode & 07777) | 0700);
}

/* A new temporary name in dirfd for what replaces base. */
static void tmp_name(char out[NAME_MAX + 1]) {
        static unsigned long seq;
        snprintf(out, NAME_MAX + 1, ".pgina-new-%ld-%lu", (long)getpid(), ++seq);
}

/* Remove name in parent with all it holds, never through a symlink. With x, everything in it
 * must be as x says the caller saw it (a path made or changed since: -EBUSY, x->busy names it,
 * and what is left stays), path being name's path below the target; a directory goes only once
 * empty. x NULL: no check (path unused, may be NULL). */
static int remove_tree(struct expect *x, int parent, const char *name, const char *path) {
        struct stat st;
        int fd, r = 0;
        DIR *d;

        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (x && (r = expectation_check(x, parent, name, path)) < 0)
                return r;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        /* our own directory: make it ours to empty */
        if ((st.st_mode & 0700) != 0700)
                (void)!fchmodat(parent, name, (st.st_mode & 07777) | 0700, 0);
        if ((fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return -errno;
        if (!(d = fdopendir(fd))) {
                r = -errno;
                close(fd);
                return r;
        }
        for (struct dirent *de; (de = readdir(d));) {
                char child[PATH_MAX];
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (x && snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child) {
                        r = -ENAMETOOLONG;
                        break;
                }
                if ((r = remove_tree(x, dirfd(d), de->d_name, x ? child : NULL)) < 0)
                        break;
        }
        closedir(d);
        if (r == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                r = x && (errno == ENOTEMPTY || errno == EEXIST) ? -EBUSY : -errno;
                if (r == -EBUSY)
                        snprintf(x->busy, sizeof x->busy, "%s", path);
        }
        return r;
}

int unpack_remove_tree(int parent, const char *name) { return remove_tree(NULL, parent, name, NULL); }

/* tmp (made in dirfd) takes base's place (path: base's below the target): a file, link or
 * symlink over anything but a directory in one rename; over a directory, once the directory
 * (and all it holds) is gone: with an expectation, only when all it holds is as the caller saw
 * it (a file a lingering process wrote in it since stays, and the job stops). */
static int replace_with(struct unpack *u, int dirfd, const char *tmp, const char *base, const char *path) {
        int r;

        if (renameat(dirfd, tmp, dirfd, base) == 0)
                return 0;
        r = -errno;
        if (r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST) {
                r = remove_tree(u->expect, dirfd, base, path);
                if (r == 0 && renameat(dirfd, tmp, dirfd, base) == 0)
                        return 0;
                if (r == 0)
                        r = -errno;
        }
        (void)unlinkat(dirfd, tmp, 0);
        return r;
}

int unpack_may_replace_path(struct unpack *u, const char *path, bool dir) {
        struct comps *c = &u->path;
        char base[NAME_MAX + 1];
        struct stat st;
        int pfd, r;

        if (!u->in_place || !u->expect)
                return 0;
        if ((r = split(path, c)) < 0)
                return r;
        if (c->n == 0)
                return 0;
        pfd = walk_parent(u->root, c);
        if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP)
                return expectation_check(u->expect, -1, NULL, path); /* it is not there */
        if (pfd < 0)
                return pfd;
        comp_copy(c, c->n - 1, base);
        /* a directory entry keeps a directory that is there (its mode and times are the
         * manifest's at the end): nothing of it is replaced */
        if (dir && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                r = 0;
        else
                r = expectation_check(u->expect, pfd, base, path);
        close(pfd);
        return r;
}

void unpack_free(struct unpack *u) {
        if (!u)
                return;
        cache_trim(u, 0);
        for (size_t i = 0; i < u->nfix; i++)
                free(u->fix[i].path);
        free(u->fix);
        umask(u->old_umask);
        free(u);
}

bool unpack_wants(struct archive_entry *e) {
        return archive_entry_acl_types(e) == 0 && archive_entry_xattr_count(e) == 0;
}

static int fix_add(struct unpack *u, const struct comps *c, struct archive_entry *e) {
        struct dirfix *f;
        size_t len = 0;
        char *p;

        if (u->nfix == u->capfix) {
                size_t cap = u->capfix ? 2 * u->capfix : 64;
                struct dirfix *v = realloc(u->fix, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                u->fix = v;
                u->capfix = cap;
        }
        for (size_t i = 0; i < c->n; i++)
                len += c->len[i] + 1;
        if (u->fix_bytes + len + sizeof *f > FIX_BYTES_MAX)
                return -E2BIG;
        if (!(p = malloc(len)))
                return -ENOMEM;
        u->fix_bytes += len + sizeof *f;
        f = &u->fix[u->nfix];
        *f = (struct dirfix){.path = p, .depth = c->n, .seq = u->nfix, .mode = archive_entry_perm(e) & 0777};
        u->nfix++;
        for (size_t i = 0; i < c->n; i++) {
                memcpy(p, c->p[i], c->len[i]);
                p += c->len[i];
                *p++ = i + 1 < c->n ? '/' : 0;
        }
        entry_times(e, f->times);
        return 0;
}

static int make_hardlink(struct unpack *u, int dirfd, const char *base, const char *target) {
        struct comps *t = &u->link;
        char tbase[NAME_MAX + 1];
        struct stat st;
        int tfd, r;

        if ((r = split(target, t)) < 0)
                return r;
        if (t->n == 0)
                return -EINVAL;
        tfd = walk_parent(u->root, t);
        if (tfd < 0)
                return tfd;
        comp_copy(t, t->n - 1, tbase);
        /* only to a regular file: a link to a symlink would carry its relative target elsewhere */
        if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode))
                r = -EPERM;
        else if (linkat(tfd, tbase, dirfd, base, 0) < 0)
                r = -errno;
        close(tfd);
        return r;
}

int unpack_begin(struct unpack *u, struct archive_entry *e, int *fd) {
        struct comps *c = &u->path;
        const char *hardlink = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        char base[NAME_MAX + 1];
        struct timespec ts[2];
        struct stat st;
        bool tmp = false;
        int dirfd, r = 0;

        *fd = -1;
        if ((r = split(archive_entry_pathname(e), c)) < 0)
                return r;
        if (c->n == 0)
                return type == AE_IFDIR && !hardlink ? 0 : -EINVAL; /* "./": the target itself */
        dirfd = parent_fd(u, c, &tmp);
        if (dirfd < 0)
                return dirfd;
        comp_copy(c, c->n - 1, base);
        entry_times(e, ts);
        /* In place, what is made goes under a temporary name first and replaces base at once
         * (a regular file with data: at unpack_end). */
        char made[NAME_MAX + 1];
        const char *name = base;
        if (u->in_place && type != AE_IFDIR) {
                tmp_name(made);
                name = made;
                make_writable(dirfd);
        }
        if (hardlink)
                r = make_hardlink(u, dirfd, name, hardlink);
        else if (type == AE_IFREG) {
                int f = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                               archive_entry_perm(e) & 0777);
                if (f < 0)
                        r = -errno;
                else if (archive_entry_size(e) > 0) {
                        *fd = f;
                        if (u->in_place) {
                                /* renamed into place by unpack_end */
                                if ((u->pending_dir = dup(dirfd)) < 0) {
                                        r = -errno;
                                        close(f);
                                        *fd = -1;
                                        (void)unlinkat(dirfd, name, 0);
                                }
                                snprintf(u->pending_tmp, sizeof u->pending_tmp, "%s", name);
                                snprintf(u->pending_base, sizeof u->pending_base, "%s", base);
                                comp_join(c, u->pending_path);
                                name = base; /* nothing to rename here */
                        }
                } else {
                        if (futimens(f, ts) < 0)
                                r = -errno;
                        if (close(f) < 0 && r == 0)
                                r = -errno;
                }
        } else if (type == AE_IFLNK) {
                const char *target = archive_entry_symlink(e);
                if (!target || symlinkat(target, dirfd, name) < 0)
                        r = target ? -errno : -EINVAL;
                else if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        r = -errno;
        } else if (type == AE_IFDIR) {
                /* writable until unpack_finish gives it the archive's mode */
                if (u->in_place)
                        make_writable(dirfd);
                if (mkdirat(dirfd, base, 0700) < 0) {
                        r = -errno;
                        /* listed twice, or made as a parent of an earlier entry: fine */
                        if (r == -EEXIST && fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                                if (S_ISDIR(st.st_mode))
                                        r = 0;
                                else if (u->in_place) {
                                        char path[PATH_MAX];
                                        comp_join(c, path);
                                        if ((r = may_replace(u, dirfd, base, path)) == 0)
                                                r = unlinkat(dirfd, base, 0) < 0 || mkdirat(dirfd, base, 0700) < 0
                                                            ? -errno : 0;
                                }
                        }
                }
                if (r == 0)
                        r = fix_add(u, c, e);
        } else
                r = -EPERM;
        if (u->in_place && name != base) {
                char path[PATH_MAX];
                comp_join(c, path);
                if (r == 0 && (r = may_replace(u, dirfd, base, path)) == 0 &&
                    (r = replace_with(u, dirfd, name, base, path)) == 0)
                        r = made_here(u, dirfd, base);
                else if (r < 0)
                        (void)unlinkat(dirfd, name, 0);
        }
        if (tmp)
                close(dirfd);
        return r;
}

int unpack_data(int fd, const void *blk, size_t len, int64_t off) {
        const char *p = blk;

        while (len > 0) {
                ssize_t k = pwrite(fd, p, len, off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                off += k;
                len -= (size_t)k;
        }
        return 0;
}

int unpack_end(struct unpack *u, struct archive_entry *e, int fd, uint64_t end) {
        struct timespec ts[2];
        int r = 0;

        /* a sparse file's hole at its end has no data block to make it */
        if (end < (uint64_t)archive_entry_size(e) && ftruncate(fd, archive_entry_size(e)) < 0)
                r = -errno;
        entry_times(e, ts);
        if (r == 0 && futimens(fd, ts) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (u->pending_dir >= 0) {
                if (r == 0 && (r = may_replace(u, u->pending_dir, u->pending_base, u->pending_path)) == 0 &&
                    (r = replace_with(u, u->pending_dir, u->pending_tmp, u->pending_base, u->pending_path)) == 0)
                        r = made_here(u, u->pending_dir, u->pending_base);
                else if (r < 0)
                        (void)unlinkat(u->pending_dir, u->pending_tmp, 0);
                close(u->pending_dir);
                u->pending_dir = -1;
        }
        return r;
}

/* Deepest first; one directory listed twice: in archive order, so the later entry wins. */
static int fix_cmp(const void *a, const void *b) {
        const struct dirfix *x = a, *y = b;

        if (x->depth != y->depth)
                return x->depth < y->depth ? 1 : -1;
        return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

int unpack_finish(struct unpack *u) {
        struct comps *c = &u->path;

        cache_trim(u, 0);
        /* deepest first: a parent keeps its writable mode until its children are done */
        if (u->nfix > 0)
                qsort(u->fix, u->nfix, sizeof *u->fix, fix_cmp);
        for (size_t i = 0; i < u->nfix; i++) {
                const struct dirfix *f = &u->fix[i];
                char base[NAME_MAX + 1];
                int pfd, dfd, r = 0;

                if (split(f->path, c) < 0 || c->n == 0)
                        return -EINVAL;
                pfd = walk_parent(u->root, c);
                if (pfd < 0)
                        return pfd;
                comp_copy(c, c->n - 1, base);
                dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0 || fchmod(dfd, f->mode) < 0 || futimens(dfd, f->times) < 0)
                        r = -errno;
                if (dfd >= 0)
                        close(dfd);
                close(pfd);
                if (r < 0)
                        return r;
        }
        return 0;
}
