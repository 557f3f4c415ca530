/* Read-ahead of a home's metadata for a delta's walk (runs as the user). With the page cache cold
 * the walk waits on one directory block or inode at a time, and the disk sits idle between them;
 * a few threads ahead of it, each stat-ing the entries of one directory, keep the disk's queue
 * full (medium bench home, 22k entries: 0.36 s alone, 0.14 s with 8 threads). A regular file that
 * differs from the record is read next by the walk: its data is asked for too.
 *
 * Nothing here decides anything: the walk looks at every entry again itself. The threads only
 * read, never follow a symlink or leave the home's filesystem (openat2's RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV from the home), skip the exclusions, and stop when the
 * walk ends. Any failure just leaves that part to the walk. */
#include "pgsmb-userwork-prefetch.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "pgsmb-userwork-archive-internal.h"

#define PREFETCH_THREADS 8
#define PREFETCH_STACK (256 * 1024)
/* Data asked for, per changed file and in all: the walk reads the rest itself. */
#define PREFETCH_DATA_FILE (16 * 1024 * 1024)
#define PREFETCH_DATA_TOTAL (256ULL * 1024 * 1024)
/* Paths of directories waiting, in all: past it, a directory is left to the walk (a home of a
 * million long-named directories costs no more memory here than this). */
#define PREFETCH_QUEUE_BYTES (16 * 1024 * 1024)

struct prefetch {
        int root; /* the home, O_PATH */
        dev_t dev;
        char *const *ex;
        const struct scan *record;
        pthread_mutex_t lock;
        pthread_cond_t more;
        char **dirs; /* to look at, relative to the home ("" is the home) */
        size_t ndirs, cap, queued; /* queued: bytes of the paths in dirs */
        unsigned busy; /* threads looking at a directory */
        size_t entries; /* stat-ed, in all (bounded by SCAN_ENTRIES_MAX) */
        uint64_t data; /* bytes asked for */
        atomic_bool stop;
        pthread_t threads[PREFETCH_THREADS];
        unsigned nthreads;
};

/* rel below dir, never through a symlink or onto another filesystem. */
static int open_beneath(int dir, const char *rel, uint64_t flags) {
        struct open_how how = {.flags = flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV |
                                          RESOLVE_NO_MAGICLINKS};
        long fd = syscall(SYS_openat2, dir, *rel ? rel : ".", &how, sizeof how);
        return fd < 0 ? -errno : (int)fd;
}

/* Takes path; false when it cannot be queued (left to the walk). Under p->lock. */
static bool queue_dir(struct prefetch *p, char *path) {
        size_t len = strlen(path) + 1;

        if (p->queued + len > PREFETCH_QUEUE_BYTES) {
                free(path);
                return false;
        }
        if (p->ndirs == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 256;
                char **v = realloc(p->dirs, cap * sizeof *v);
                if (!v) {
                        free(path);
                        return false;
                }
                p->dirs = v;
                p->cap = cap;
        }
        p->dirs[p->ndirs++] = path;
        p->queued += len;
        pthread_cond_signal(&p->more);
        return true;
}

static void want_data(struct prefetch *p, int dfd, const char *name, const struct stat *sb) {
        uint64_t n = (uint64_t)sb->st_size < PREFETCH_DATA_FILE ? (uint64_t)sb->st_size : PREFETCH_DATA_FILE;
        struct stat now;
        bool ok;
        int fd;

        if (sb->st_dev != p->dev)
                return; /* a mount on a file: the walk's business */
        pthread_mutex_lock(&p->lock);
        ok = p->data + n <= PREFETCH_DATA_TOTAL;
        pthread_mutex_unlock(&p->lock);
        /* non-blocking: whatever replaced it since, opening never waits (a FIFO); and not
         * onto another filesystem (a mount made since) */
        if (!ok || (fd = open_beneath(dfd, name, O_RDONLY | O_NONBLOCK)) < 0)
                return;
        if (fstat(fd, &now) == 0 && S_ISREG(now.st_mode) && now.st_ino == sb->st_ino && now.st_dev == p->dev) {
                pthread_mutex_lock(&p->lock);
                ok = p->data + n <= PREFETCH_DATA_TOTAL;
                if (ok)
                        p->data += n;
                pthread_mutex_unlock(&p->lock);
                if (ok)
                        (void)posix_fadvise(fd, 0, (off_t)n, POSIX_FADV_WILLNEED);
        }
        close(fd);
}

/* The entries of directory rel: stat-ed; directories queued; changed files' data asked for. */
static void look_at(struct prefetch *p, const char *rel) {
        int fd = open_beneath(p->root, rel, O_RDONLY | O_DIRECTORY);
        size_t rlen = strlen(rel), seen = 0;
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return;
        if (!(d = fdopendir(fd))) {
                close(fd);
                return;
        }
        while (!atomic_load_explicit(&p->stop, memory_order_relaxed) && (de = readdir(d))) {
                const char *name = de->d_name;
                struct stat sb;
                char *child;

                if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
                        continue;
                if (asprintf(&child, "%s%s%s", rel, rlen ? "/" : "", name) < 0)
                        break;
                if (pgsmb_is_excluded(p->ex, child) || fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
                        free(child);
                        continue;
                }
                seen++;
                if (S_ISDIR(sb.st_mode) && sb.st_dev == p->dev) {
                        pthread_mutex_lock(&p->lock);
                        (void)queue_dir(p, child); /* or left to the walk */
                        pthread_mutex_unlock(&p->lock);
                        continue;
                }
                if (S_ISREG(sb.st_mode) && sb.st_size > 0 && p->record) {
                        const struct scan_entry *e = scan_find(p->record, child);
                        if (!e || !scan_entry_matches(e, &sb))
                                want_data(p, dirfd(d), name, &sb);
                }
                free(child);
        }
        closedir(d);
        pthread_mutex_lock(&p->lock);
        if ((p->entries += seen) > SCAN_ENTRIES_MAX)
                atomic_store(&p->stop, true); /* the walk says so, in words */
        pthread_mutex_unlock(&p->lock);
}

static void *prefetch_thread(void *arg) {
        struct prefetch *p = arg;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (!atomic_load(&p->stop) && p->ndirs == 0 && p->busy > 0)
                        pthread_cond_wait(&p->more, &p->lock);
                if (atomic_load(&p->stop) || p->ndirs == 0)
                        break; /* stopped, or nothing left anywhere */
                char *rel = p->dirs[--p->ndirs];
                p->queued -= strlen(rel) + 1;
                p->busy++;
                pthread_mutex_unlock(&p->lock);
                look_at(p, rel);
                free(rel);
                pthread_mutex_lock(&p->lock);
                p->busy--;
        }
        pthread_cond_broadcast(&p->more); /* the others see the end too */
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

struct prefetch *pgsmb_prefetch_start(const char *home, char *const *ex, const struct scan *record) {
        struct prefetch *p = calloc(1, sizeof *p);
        pthread_attr_t attr;
        struct stat sb;
        char *top;

        if (!p)
                return NULL;
        p->ex = ex;
        p->record = record && record->n > 0 ? record : NULL;
        p->root = open(home, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        top = strdup("");
        if (p->root < 0 || fstat(p->root, &sb) < 0 || !top || pthread_mutex_init(&p->lock, NULL) != 0) {
                free(top);
                if (p->root >= 0)
                        close(p->root);
                free(p);
                return NULL;
        }
        if (pthread_cond_init(&p->more, NULL) != 0) {
                pthread_mutex_destroy(&p->lock);
                free(top);
                close(p->root);
                free(p);
                return NULL;
        }
        p->dev = sb.st_dev;
        (void)queue_dir(p, top);
        if (pthread_attr_init(&attr) == 0) {
                (void)pthread_attr_setstacksize(&attr, PREFETCH_STACK);
                for (; p->nthreads < PREFETCH_THREADS; p->nthreads++)
                        if (pthread_create(&p->threads[p->nthreads], &attr, prefetch_thread, p) != 0)
                                break;
                pthread_attr_destroy(&attr);
        }
        return p;
}

void pgsmb_prefetch_stop(struct prefetch *p) {
        if (!p)
                return;
        atomic_store(&p->stop, true);
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->more);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->nthreads; i++)
                pthread_join(p->threads[i], NULL);
        for (size_t i = 0; i < p->ndirs; i++)
                free(p->dirs[i]);
        free(p->dirs);
        pthread_cond_destroy(&p->more);
        pthread_mutex_destroy(&p->lock);
        close(p->root);
        free(p);
}
