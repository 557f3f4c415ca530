/* pgSMB: the work pgsmb-userwork does as the user (pgsmb-userwork.h): read the job from
 * descriptor 3 (pgsmb-userwork-job.c decodes it), do it, report. Runs as the user only. */
#include "pgsmb-userwork.h"
#include "pgsmb-userwork-expect.h"
#include "pgsmb-scan.h"

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
#include <sys/stat.h>
#include <unistd.h>

#include <pgina/run.h>
#include <pgina/util.h>

static int read_full(int fd, void *buf, size_t len) {
        char *p = buf;

        while (len > 0) {
                ssize_t k = read(fd, p, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

static int job_read(struct pbuf *b, struct userwork_decoded *d) {
        uint8_t hdr[4];
        uint32_t len;
        int r = read_full(USERWORK_FD_CTL, hdr, sizeof hdr);

        if (r < 0)
                return r;
        len = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
        if (len > USERWORK_JOB_MAX)
                return -EMSGSIZE;
        for (uint32_t got = 0; got < len;) {
                ssize_t k = pbuf_read_fd(b, USERWORK_FD_CTL, len - got);
                if (k == -EINTR)
                        continue;
                if (k < 0)
                        return (int)k;
                if (k == 0)
                        return -EPIPE;
                got += (uint32_t)k;
        }
        return userwork_decode(b, d);
}

/* ---- the work ---- */

/* HOME, USER and LOGNAME of the user, for the programs it runs. */
struct user_env {
        char home[PATH_MAX + 8], user[300], logname[300], share[PATH_MAX + 32], mount[PATH_MAX + 32];
        const char *v[6];
};

static const char *const *user_env(struct user_env *e, const struct userwork_job *j) {
        size_t n = 0;

        snprintf(e->home, sizeof e->home, "HOME=%s", j->home);
        snprintf(e->user, sizeof e->user, "USER=%s", j->name);
        snprintf(e->logname, sizeof e->logname, "LOGNAME=%s", j->name);
        e->v[n++] = e->home;
        e->v[n++] = e->user;
        e->v[n++] = e->logname;
        if (j->kind == USERWORK_SCRIPT && j->home_share) {
                snprintf(e->share, sizeof e->share, "PGINA_HOME_SHARE=%s", j->home_share);
                e->v[n++] = e->share;
        }
        if (j->kind == USERWORK_SCRIPT && j->home_mount) {
                snprintf(e->mount, sizeof e->mount, "PGINA_HOME_MOUNT=%s", j->home_mount);
                e->v[n++] = e->mount;
        }
        e->v[n] = NULL;
        return e->v;
}

/* USERWORK_F_EXPECT: what the caller saw, from FD_AUX, into *x. */
static int read_expect(const struct userwork_job *j, struct expect *x, struct expect **ret,
                       struct userwork_report *rep) {
        size_t line = 0;
        int r;

        *ret = NULL;
        if (!(j->flags & USERWORK_F_EXPECT))
                return 0;
        if ((r = expectation_read_fd(x, USERWORK_FD_AUX, PROFILE_RECORD_MAX, &line)) < 0) {
                snprintf(rep->err, sizeof rep->err, "the entries to expect are invalid at line %zu", line);
                return r;
        }
        *ret = x;
        return 0;
}

static int do_extract(const struct userwork_job *j, struct userwork_report *rep) {
        struct user_env e;
        const struct profile_compress c = {.level = j->level, .threads = j->threads,
                                           .extract_argv = (char *const *)j->extract_argv,
                                           .program_env = user_env(&e, j)};
        struct extract_opts o = {.in_place = j->flags & USERWORK_F_IN_PLACE,
                                 .no_dirfix = j->flags & USERWORK_F_NO_DIRFIX};
        char **want = NULL;
        size_t nwant = 0;
        struct expect xs, *x = NULL;
        void *ring;
        int r;

        if (j->flags & (USERWORK_F_WANT | USERWORK_F_IN_PLACE | USERWORK_F_NO_DIRFIX | USERWORK_F_EXPECT)) {
                /* store format 2: the built-in extractor only */
                if (j->extract_argv) {
                        snprintf(rep->err, sizeof rep->err, "an external program cannot extract a delta profile");
                        return -EOPNOTSUPP;
                }
                if ((j->flags & USERWORK_F_EXPECT) && j->ring_size) {
                        snprintf(rep->err, sizeof rep->err, "entries to expect come with an archive, not a ring");
                        return -EINVAL;
                }
                if ((j->flags & USERWORK_F_WANT) &&
                    (r = userwork_want_list(USERWORK_FD_LIST, &want, &nwant, rep->err, sizeof rep->err)) < 0)
                        return r;
                if ((r = read_expect(j, &xs, &x, rep)) < 0) {
                        pathlist_free(want, nwant);
                        return r;
                }
                o.expect = x;
                o.want = want;
                o.nwant = nwant;
                ring = NULL;
                if (j->ring_size) {
                        if (j->ring_size > SIZE_MAX ||
                            (ring = mmap(NULL, (size_t)j->ring_size, PROT_READ, MAP_SHARED, USERWORK_FD_AUX, 0)) ==
                                    MAP_FAILED) {
                                r = -errno;
                                snprintf(rep->err, sizeof rep->err, "cannot map the restore's ring: %s", strerror(errno));
                                pathlist_free(want, nwant);
                                expectation_free(x);
                                return r ? r : -EINVAL;
                        }
                        close(USERWORK_FD_AUX);
                }
                r = pgsmb_profile_extract_opts(USERWORK_FD_DATA, ring, ring ? (size_t)j->ring_size : 0, j->dir, &j->lim,
                                               &o, &rep->stats, rep->err, sizeof rep->err);
                if (ring)
                        munmap(ring, (size_t)j->ring_size);
                pathlist_free(want, nwant);
                expectation_free(x);
                return r;
        }
        if (!j->ring_size)
                return pgsmb_profile_extract(USERWORK_FD_DATA, j->dir, &j->lim, &c, &rep->stats, rep->err,
                                             sizeof rep->err);
        if (j->ring_size > SIZE_MAX)
                return -EINVAL;
        ring = mmap(NULL, (size_t)j->ring_size, PROT_READ, MAP_SHARED, USERWORK_FD_AUX, 0);
        if (ring == MAP_FAILED) {
                r = -errno;
                snprintf(rep->err, sizeof rep->err, "cannot map the restore's ring: %s", strerror(errno));
                return r;
        }
        close(USERWORK_FD_AUX);
        r = pgsmb_profile_extract_ring(USERWORK_FD_DATA, ring, (size_t)j->ring_size, j->dir, &j->lim,
                                       &rep->stats, rep->err, sizeof rep->err);
        munmap(ring, (size_t)j->ring_size);
        return r;
}

static int do_archive(const struct userwork_job *j, struct userwork_report *rep) {
        struct user_env e;
        const struct profile_compress c = {.level = j->level, .threads = j->threads,
                                           .archive_argv = (char *const *)j->archive_argv,
                                           .program_env = user_env(&e, j)};
        int r = pgsmb_profile_archive(j->dir, j->exclude, &c, USERWORK_FD_DATA, &rep->stats, rep->err,
                                      sizeof rep->err);

        close(USERWORK_FD_DATA); /* the worker sees the stream's end */
        return r;
}

/* DELTA and SCAN (store format 2): the record from FD_AUX (hostile to us as much as we are to it:
 * checked line by line), the scan to FD_LIST, the delta to FD_DATA. */
static int do_delta(const struct userwork_job *j, struct userwork_report *rep) {
        struct user_env e;
        const struct profile_compress c = {.level = j->level, .threads = j->threads,
                                           .archive_argv = (char *const *)j->archive_argv,
                                           .program_env = user_env(&e, j)};
        struct scan record;
        int r = 0;

        scan_init(&record);
        if (j->kind == USERWORK_DELTA && !(j->flags & USERWORK_F_FULL) &&
            (r = pgsmb_profile_record_read(USERWORK_FD_AUX, j->dir, &record, rep->err, sizeof rep->err)) < 0) {
                close(USERWORK_FD_DATA);
                return r;
        }
        r = pgsmb_profile_delta(j->dir, j->exclude, &c, &record, j->kind == USERWORK_DELTA ? USERWORK_FD_DATA : -1,
                                USERWORK_FD_LIST, &rep->stats, rep->err, sizeof rep->err);
        close(USERWORK_FD_DATA); /* the worker sees the stream's end */
        scan_free(&record);
        return r;
}

/* DELETE: the path list on FD_LIST; FIXDIRS: the scan on FD_LIST (its directories). */
static int do_delete(const struct userwork_job *j, struct userwork_report *rep) {
        char **paths = NULL;
        size_t n = 0;
        uint64_t removed = 0;
        struct expect xs, *x;
        int r = userwork_want_list(USERWORK_FD_LIST, &paths, &n, rep->err, sizeof rep->err);

        if (r < 0)
                return r;
        if ((r = read_expect(j, &xs, &x, rep)) == 0)
                r = pgsmb_profile_delete(j->dir, paths, n, x, &removed, rep->err, sizeof rep->err);
        rep->stats.files = removed;
        pathlist_free(paths, n);
        expectation_free(x);
        return r;
}

static int do_stat(const struct userwork_job *j, struct userwork_report *rep) {
        char **paths = NULL;
        size_t n = 0;
        int r = userwork_want_list(USERWORK_FD_AUX, &paths, &n, rep->err, sizeof rep->err);

        if (r < 0)
                return r;
        r = pgsmb_profile_stat(j->dir, paths, n, USERWORK_FD_LIST, rep->err, sizeof rep->err);
        pathlist_free(paths, n);
        return r;
}

static int do_fixdirs(const struct userwork_job *j, struct userwork_report *rep) {
        struct scan s;
        size_t line = 0;
        uint64_t missing = 0;
        int r = scan_read_fd(&s, USERWORK_FD_LIST, PROFILE_RECORD_MAX, &line);

        if (r < 0) {
                snprintf(rep->err, sizeof rep->err, "the list of directories is invalid at line %zu", line);
                return r;
        }
        r = pgsmb_profile_fix_dirs(j->dir, &s, &missing, rep->err, sizeof rep->err);
        rep->stats.skipped_links = missing;
        scan_free(&s);
        return r;
}

static int do_size(const struct userwork_job *j, struct userwork_report *rep) {
        uint64_t bytes = 0;
        int r = pgsmb_profile_size(j->dir, j->exclude, &bytes, rep->err, sizeof rep->err);

        if (r < 0)
                return r;
        snprintf(rep->err, sizeof rep->err, "%" PRIu64, bytes);
        return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
        if (ftw->level == 0)
                return 0; /* the top directory: its parent is root's, the caller removes it */
        if (type == FTW_DP)
                return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
        return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int do_rm_contents(const struct userwork_job *j, struct userwork_report *rep) {
        if (nftw(j->dir, rm_entry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0) {
                int r = -errno;
                snprintf(rep->err, sizeof rep->err, "cannot remove %s: %s", j->dir, strerror(errno));
                return r;
        }
        return 0;
}

/* A private copy of a downloaded script in the home: 0700, its own name. */
static int write_private(const struct userwork_job *j, char *path, size_t len, struct userwork_report *rep) {
        _cleanup_close_ int fd = -1;

        if (snprintf(path, len, "%s/.pgina-login-script.XXXXXX", j->home) >= (int)len)
                return -ENAMETOOLONG;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                snprintf(rep->err, sizeof rep->err, "cannot create a file for the login script in %s: %s",
                         j->home, strerror(errno));
                return r;
        }
        if (fchmod(fd, 0700) < 0 || write_all(fd, j->script_data, j->script_len) < 0) {
                int r = -errno;
                snprintf(rep->err, sizeof rep->err, "cannot write the login script to %s: %s", path,
                         strerror(errno));
                unlink(path);
                return r;
        }
        return 0;
}

/* Run the script with a fixed argv, the user's environment, stdin /dev/null, its output to the
 * worker (which logs it), cwd = home; its process group is killed at the time limit. */
static int do_script(const struct userwork_job *j, struct userwork_report *rep) {
        char tmp[PATH_MAX];
        const char *path = j->script_path;
        struct user_env e;
        struct pgina_run_result res;
        int r;

        if (j->script_data) {
                if ((r = write_private(j, tmp, sizeof tmp, rep)) < 0)
                        return r;
                path = tmp;
        } else if (!path) {
                snprintf(rep->err, sizeof rep->err, "no login script named");
                return -EINVAL;
        } else if (path[0] != '/') {
                snprintf(rep->err, sizeof rep->err, "the login script %s is not an absolute path", path);
                return -EINVAL;
        }
        const char *argv[] = {path, NULL};
        const struct pgina_run run = {.argv = argv, .env_base = SPAWN_ENV_USER, .env = user_env(&e, j),
                                      .stdin_fd = -1, .stdout_fd = USERWORK_FD_AUX,
                                      .stderr_fd = USERWORK_FD_AUX,
                                      .cwd = access(j->home, X_OK) == 0 ? j->home : "/",
                                      .timeout_ms = (long long)j->timeout_s * 1000};
        r = pgina_run(&run, &res);
        close(USERWORK_FD_AUX); /* the script held the output pipe; the worker sees its end */
        if (r == -ETIMEDOUT) {
                rep->code = -1;
                r = 0;
        } else if (r == 0)
                rep->code = res.status;
        else
                snprintf(rep->err, sizeof rep->err, "cannot run it: %s", strerror(-r));
        if (j->script_data)
                (void)unlink(tmp);
        return r;
}

int userwork_main(void) {
        _cleanup_pbuf_ struct pbuf b;
        struct userwork_decoded d = {0};
        struct userwork_report rep = {0};
        int r;

        pbuf_init(&b);
        signal(SIGPIPE, SIG_IGN); /* a closed stream is an error to report, not a silent death */
        r = job_read(&b, &d);
        if (r < 0)
                snprintf(rep.err, sizeof rep.err, "pgsmb-userwork: cannot read its job: %s", strerror(-r));
        else if (chdir("/") < 0)
                r = -errno;
        else
                switch (d.j.kind) {
                case USERWORK_EXTRACT: r = do_extract(&d.j, &rep); break;
                case USERWORK_ARCHIVE: r = do_archive(&d.j, &rep); break;
                case USERWORK_SIZE: r = do_size(&d.j, &rep); break;
                case USERWORK_RM_CONTENTS: r = do_rm_contents(&d.j, &rep); break;
                case USERWORK_SCRIPT: r = do_script(&d.j, &rep); break;
                case USERWORK_DELTA:
                case USERWORK_SCAN: r = do_delta(&d.j, &rep); break;
                case USERWORK_DELETE: r = do_delete(&d.j, &rep); break;
                case USERWORK_FIXDIRS: r = do_fixdirs(&d.j, &rep); break;
                case USERWORK_STAT: r = do_stat(&d.j, &rep); break;
                default:
                        r = -EOPNOTSUPP;
                        snprintf(rep.err, sizeof rep.err, "pgsmb-userwork: job %d is not implemented", (int)d.j.kind);
                        break;
                }
        rep.result = r;
        userwork_decoded_free(&d);
        return write_all(USERWORK_FD_CTL, &rep, sizeof rep) < 0 || r < 0 ? 1 : 0;
}
