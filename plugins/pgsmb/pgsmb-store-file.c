/* The file:// profile store: a local directory, or a share the admin has already mounted. Every
 * path is resolved beneath the root one component at a time with O_NOFOLLOW, so a symlink inside
 * the store never leads out of it; files are written new (O_EXCL), fsync'ed with their directory,
 * and moved into place with rename(2)/renameat2(2). Local calls cannot be timed out: a hung
 * network mount below file:// hangs them (use smb:// for a remote store). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgsmb-store-internal.h"
#include <pgina/util.h>

#define COPY_CHUNK (1u << 20)

struct file_store {
        struct store s;
        int root_fd;
};

struct file_file {
        struct store_file f;
        int fd;
        int dir_fd; /* the file's directory, for fsync after a write */
};

static int root_fd(struct store *s) { return ((struct file_store *)s)->root_fd; }

/* Open the directory made of the first len bytes of rel ("" = the root) beneath the root,
 * refusing symlinks on the way. */
static int open_dir_beneath(struct store *s, const char *rel, size_t len) {
        _cleanup_close_ int fd = openat(root_fd(s), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const char *p = rel, *end = rel + len;

        if (fd < 0)
                return -errno;
        while (p < end) {
                char comp[NAME_MAX + 1];
                size_t n = strcspn(p, "/");
                int nfd;

                if (n > (size_t)(end - p))
                        n = (size_t)(end - p);
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, n);
                comp[n] = 0;
                nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        return -errno; /* ELOOP/ENOTDIR: a symlink or a file on the way */
                close(fd);
                fd = nfd;
                p += n + 1;
        }
        return TAKE_FD(fd);
}

/* The directory holding rel's last component, and that component. */
static int open_parent(struct store *s, const char *rel, const char **base) {
        const char *slash = strrchr(rel, '/');

        *base = slash ? slash + 1 : rel;
        if (strlen(*base) > NAME_MAX)
                return -ENAMETOOLONG;
        return open_dir_beneath(s, rel, slash ? (size_t)(slash - rel) : 0);
}

static int fsync_fd(int fd) { return fsync(fd) < 0 ? -errno : 0; }

static int file_mkdirs(struct store *s, const char *rel) {
        _cleanup_close_ int fd = openat(root_fd(s), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const char *p = rel;

        if (fd < 0)
                return store_fail(s, -errno, NULL, NULL);
        while (*p) {
                char comp[NAME_MAX + 1];
                size_t n = strcspn(p, "/");
                int nfd;

                if (n > NAME_MAX)
                        return store_fail(s, -ENAMETOOLONG, rel, NULL);
                memcpy(comp, p, n);
                comp[n] = 0;
                if (mkdirat(fd, comp, 0700) == 0) {
                        if (fsync(fd) < 0)
                                return store_fail(s, -errno, rel, "fsync after mkdir");
                } else if (errno != EEXIST)
                        return store_fail(s, -errno, rel, "mkdir \"%s\"", comp);
                nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        return store_fail(s, -errno, rel, "open \"%s\"", comp);
                close(fd);
                fd = nfd;
                p += n;
                if (*p == '/')
                        p++;
        }
        return 0;
}

static void fill_stat(const struct stat *st, struct store_stat *ret) {
        ret->size = (uint64_t)st->st_size;
        ret->mtime = (int64_t)st->st_mtime;
        ret->is_dir = S_ISDIR(st->st_mode);
}

static int file_stat(struct store *s, const char *rel, struct store_stat *ret) {
        _cleanup_close_ int dfd = -1;
        const char *base;
        struct stat st;

        if (!*rel) {
                if (fstat(root_fd(s), &st) < 0)
                        return store_fail(s, -errno, NULL, NULL);
                fill_stat(&st, ret);
                return 0;
        }
        dfd = open_parent(s, rel, &base);
        if (dfd < 0)
                return store_fail(s, dfd, rel, NULL);
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return store_fail(s, -errno, rel, NULL);
        fill_stat(&st, ret);
        return 0;
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const struct store_entry *)a)->name, ((const struct store_entry *)b)->name);
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static int file_list(struct store *s, const char *rel, struct store_entry **ret, size_t *ret_n) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct store_entry *v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        int fd, r = 0;

        fd = open_dir_beneath(s, rel, strlen(rel));
        if (fd < 0)
                return store_fail(s, fd, rel, NULL);
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return store_fail(s, r, rel, NULL);
        }
        for (errno = 0; (de = readdir(d)); errno = 0) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT) /* removed meanwhile */
                                continue;
                        r = store_fail(s, -errno, rel, "stat \"%s\"", de->d_name);
                        goto fail;
                }
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct store_entry *nv = reallocarray(v, ncap, sizeof *v);

                        if (!nv) {
                                r = store_fail(s, -ENOMEM, rel, NULL);
                                goto fail;
                        }
                        v = nv;
                        cap = ncap;
                }
                v[n].name = strdup(de->d_name);
                if (!v[n].name) {
                        r = store_fail(s, -ENOMEM, rel, NULL);
                        goto fail;
                }
                v[n].size = (uint64_t)st.st_size;
                v[n].mtime = (int64_t)st.st_mtime;
                v[n].mtime_ns = (uint32_t)st.st_mtim.tv_nsec;
                v[n].is_dir = S_ISDIR(st.st_mode);
                n++;
        }
        if (errno != 0) {
                r = store_fail(s, -errno, rel, "readdir");
                goto fail;
        }
        if (n > 0)
                qsort(v, n, sizeof *v, entry_cmp);
        *ret = v;
        *ret_n = n;
        return (int)(n > INT_MAX ? INT_MAX : n);
fail:
        store_entries_free(v, n);
        return r;
}

static int file_new_handle(struct store *s, const char *rel, int fd, int dir_fd, bool writing,
                           struct store_file **ret) {
        struct file_file *f = calloc(1, sizeof *f);

        if (!f || !(f->f.rel = strdup(rel))) {
                free(f);
                return store_fail(s, -ENOMEM, rel, NULL);
        }
        f->f.store = s;
        f->f.writing = writing;
        f->f.size = -1;
        f->fd = fd;
        f->dir_fd = dir_fd;
        *ret = &f->f;
        return 0;
}

static int file_open_read(struct store *s, const char *rel, struct store_file **ret) {
        _cleanup_close_ int dfd = -1, fd = -1;
        const char *base;
        struct stat st;
        int r;

        dfd = open_parent(s, rel, &base);
        if (dfd < 0)
                return store_fail(s, dfd, rel, NULL);
        fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return store_fail(s, -errno, rel, NULL);
        if (fstat(fd, &st) < 0)
                return store_fail(s, -errno, rel, NULL);
        if (!S_ISREG(st.st_mode))
                return store_fail(s, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, rel,
                                  "not a regular file");
        r = file_new_handle(s, rel, fd, -1, false, ret);
        if (r >= 0) {
                TAKE_FD(fd);
                (*ret)->size = st.st_size;
        }
        return r;
}

static int file_open_write(struct store *s, const char *rel, struct store_file **ret) {
        _cleanup_close_ int dfd = -1, fd = -1;
        const char *base;
        int r;

        dfd = open_parent(s, rel, &base);
        if (dfd < 0)
                return store_fail(s, dfd, rel, NULL);
        /* read-write: store_reread reads it back on this descriptor */
        fd = openat(dfd, base, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return store_fail(s, -errno, rel, NULL);
        r = file_new_handle(s, rel, fd, dfd, true, ret);
        if (r >= 0) {
                TAKE_FD(fd);
                TAKE_FD(dfd);
        }
        return r;
}

static ssize_t file_read(struct store_file *f, void *buf, size_t len) {
        struct file_file *ff = (struct file_file *)f;

        for (;;) {
                ssize_t n = read(ff->fd, buf, len);

                if (n >= 0)
                        return n;
                if (errno != EINTR)
                        return store_fail(f->store, -errno, f->rel, NULL);
        }
}

static int file_write(struct store_file *f, const void *buf, size_t len) {
        struct file_file *ff = (struct file_file *)f;
        int r = write_all(ff->fd, buf, len);

        return r < 0 ? store_fail(f->store, r, f->rel, NULL) : 0;
}

static int file_reread(struct store_file *f) {
        struct file_file *ff = (struct file_file *)f;

        return lseek(ff->fd, 0, SEEK_SET) < 0 ? store_fail(f->store, -errno, f->rel, "seek") : 0;
}

static int file_seek(struct store_file *f, uint64_t off) {
        struct file_file *ff = (struct file_file *)f;

        return lseek(ff->fd, (off_t)off, SEEK_SET) < 0 ? store_fail(f->store, -errno, f->rel, "seek") : 0;
}

static int file_close_file(struct store_file *f) {
        struct file_file *ff = (struct file_file *)f;
        int r = 0;

        if (f->writing) {
                if (fsync(ff->fd) < 0)
                        r = store_fail(f->store, -errno, f->rel, "fsync");
                if (close(ff->fd) < 0 && r == 0 && errno != EINTR)
                        r = store_fail(f->store, -errno, f->rel, "close");
                if (r == 0 && fsync(ff->dir_fd) < 0)
                        r = store_fail(f->store, -errno, f->rel, "fsync of its directory");
                close(ff->dir_fd);
        } else
                close(ff->fd);
        free(f->rel);
        free(ff);
        return r;
}

/* renameat2(RENAME_NOREPLACE), or where the file system lacks it (EINVAL: some network file
 * systems), link + unlink, which fails as atomically with EEXIST. */
static int rename_noreplace(int fdir, const char *fbase, int tdir, const char *tbase) {
        if (renameat2(fdir, fbase, tdir, tbase, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        if (linkat(fdir, fbase, tdir, tbase, 0) < 0)
                return -errno;
        if (unlinkat(fdir, fbase, 0) < 0)
                return -errno;
        return 0;
}

static int file_rename(struct store *s, const char *from, const char *to, bool replace) {
        _cleanup_close_ int fdir = -1, tdir = -1;
        const char *fbase, *tbase;
        int r;

        fdir = open_parent(s, from, &fbase);
        if (fdir < 0)
                return store_fail(s, fdir, from, NULL);
        tdir = open_parent(s, to, &tbase);
        if (tdir < 0)
                return store_fail(s, tdir, to, NULL);
        if (replace)
                r = renameat(fdir, fbase, tdir, tbase) < 0 ? -errno : 0;
        else
                r = rename_noreplace(fdir, fbase, tdir, tbase);
        if (r < 0)
                return store_fail(s, r, from, "rename to \"%s\"", to);
        r = fsync_fd(tdir);
        if (r == 0)
                r = fsync_fd(fdir);
        if (r < 0)
                return store_fail(s, r, to, "fsync of the directory after rename");
        return 0;
}

/* Copy all of in to out: copy_file_range (reflinks or server-side copy where the file system
 * can), else read/write. */
static int copy_data(int in, int out) {
        _cleanup_free_ char *buf = NULL;
        bool use_cfr = true;

        for (;;) {
                ssize_t n;

                if (use_cfr) {
                        n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
                        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                                      errno == EOPNOTSUPP)) {
                                use_cfr = false;
                                continue;
                        }
                } else {
                        if (!buf && !(buf = malloc(COPY_CHUNK)))
                                return -ENOMEM;
                        n = read(in, buf, COPY_CHUNK);
                        if (n > 0) {
                                int r = write_all(out, buf, (size_t)n);

                                if (r < 0)
                                        return r;
                        }
                }
                if (n == 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

static int file_copy(struct store *s, const char *from, const char *to) {
        _cleanup_close_ int fdir = -1, tdir = -1, in = -1, out = -1;
        _cleanup_free_ char *tmp = NULL;
        const char *fbase, *tbase, *tmpbase;
        struct stat st;
        int r;

        fdir = open_parent(s, from, &fbase);
        if (fdir < 0)
                return store_fail(s, fdir, from, NULL);
        in = openat(fdir, fbase, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (in < 0)
                return store_fail(s, -errno, from, NULL);
        if (fstat(in, &st) < 0)
                return store_fail(s, -errno, from, NULL);
        if (!S_ISREG(st.st_mode))
                return store_fail(s, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, from,
                                  "not a regular file");
        tdir = open_parent(s, to, &tbase);
        if (tdir < 0)
                return store_fail(s, tdir, to, NULL);
        tmp = store_temp_name(tbase, "copy");
        if (!tmp)
                return store_fail(s, -ENOMEM, to, NULL);
        tmpbase = tmp;
        out = openat(tdir, tmpbase, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return store_fail(s, -errno, to, "create temporary \"%s\"", tmpbase);
        r = copy_data(in, out);
        if (r < 0) {
                store_fail(s, r, from, "copy to \"%s\"", to);
                goto fail;
        }
        if (fsync(out) < 0 || close(TAKE_FD(out)) < 0) {
                r = store_fail(s, -errno, to, "fsync");
                goto fail;
        }
        /* Like store_open_write, a copy never replaces an existing file. */
        r = rename_noreplace(tdir, tmpbase, tdir, tbase);
        if (r < 0) {
                store_fail(s, r, to, NULL);
                goto fail;
        }
        r = fsync_fd(tdir);
        if (r < 0)
                return store_fail(s, r, to, "fsync of its directory");
        return 0;
fail:
        (void)unlinkat(tdir, tmpbase, 0);
        return r;
}

static int file_unlink(struct store *s, const char *rel) {
        _cleanup_close_ int dfd = -1;
        const char *base;

        dfd = open_parent(s, rel, &base);
        if (dfd < 0)
                return store_fail(s, dfd, rel, NULL);
        if (unlinkat(dfd, base, 0) < 0)
                return store_fail(s, -errno, rel, NULL);
        if (fsync(dfd) < 0)
                return store_fail(s, -errno, rel, "fsync of its directory");
        return 0;
}

static void file_close(struct store *s) {
        struct file_store *fs = (struct file_store *)s;

        if (fs->root_fd >= 0)
                close(fs->root_fd);
        free(s->url);
        free(fs);
}

static const struct store_ops file_ops = {
        .mkdirs = file_mkdirs,
        .stat = file_stat,
        .list = file_list,
        .open_read = file_open_read,
        .open_write = file_open_write,
        .read = file_read,
        .write = file_write,
        .close_file = file_close_file,
        .reread = file_reread,
        .seek = file_seek,
        .rename = file_rename,
        .copy = file_copy,
        .unlink = file_unlink,
        .close = file_close,
};

/* The path is what follows "file://", i.e. "/dir" (no host part, no %-decoding); no credentials.
 * The root must exist: a missing mount point is an error, never created, or profiles would land
 * on the local disk and the next logon would find none. */
int store_file_open(const char *url, const struct store_creds *creds, unsigned timeout_s, const char *first_list,
                    struct store **ret, char *err, size_t errlen) {
        const char *path = url + strlen("file://");
        struct file_store *fs;
        struct stat st;
        size_t len;
        int fd;

        (void)creds;
        (void)first_list; /* a local listing costs no round trip */
        if (path[0] != '/')
                return store_open_fail(err, errlen, -EINVAL,
                                       "%s: a file store URL names an absolute directory: "
                                       "file:///dir",
                                       url);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return store_open_fail(err, errlen, -errno, "%s: %s", url, strerror(errno));
        if (fstat(fd, &st) < 0) {
                int r = -errno;

                close(fd);
                return store_open_fail(err, errlen, r, "%s: %s", url, strerror(-r));
        }
        fs = calloc(1, sizeof *fs);
        if (!fs || !(fs->s.url = strdup(url))) {
                free(fs);
                close(fd);
                return store_open_fail(err, errlen, -ENOMEM, "%s: %s", url, strerror(ENOMEM));
        }
        len = strlen(fs->s.url);
        while (len > strlen("file:///") && fs->s.url[len - 1] == '/')
                fs->s.url[--len] = 0;
        fs->s.ops = &file_ops;
        fs->s.timeout_s = timeout_s;
        fs->root_fd = fd;
        *ret = &fs->s;
        return 0;
}
