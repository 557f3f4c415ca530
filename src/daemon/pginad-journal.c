/* The journal of logoff work: state_dir/jobs/USER.job holds one pending job, from before it first
 * runs until it is done. pginad writes it atomically (write_file_atomic: a temporary file, fsync,
 * rename, fsync of the directory) when the job is queued and each time it waits for a retry, and
 * removes it when the job ends; at start it resumes every job it finds, so a kill -9 or a power
 * loss in the middle of a profile upload loses nothing. The record is kept without its password
 * (never written anywhere): a resumed job that needs one fails in its plugin, which says so.
 *
 * On disk: JOURNAL_MAGIC, then a proto.h result with two rows: the job's fields, the record
 * (user_to_row's fields). Files are root's, 0600, in a 0700 directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pginad.h"
#include "util.h"

#define JOURNAL_MAGIC "PGINA-JOB 1\n"
#define JOURNAL_SUFFIX ".job"
#define JOURNAL_FILE_MAX (1024 * 1024)

int journal_open(struct jobs *j, const char *state_dir) {
        char path[PATH_MAX];

        if (snprintf(path, sizeof path, "%s/jobs", state_dir) >= (int)sizeof path)
                return -ENAMETOOLONG;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create the job journal %s: %m", path);
        free(j->journal_dir);
        if (!(j->journal_dir = strdup(path)))
                return -ENOMEM;
        return 0;
}

static int journal_path(const struct jobs *j, const char *user, char *buf, size_t len) {
        if (!valid_user_name(user))
                return -EINVAL;
        if (snprintf(buf, len, "%s/%s" JOURNAL_SUFFIX, j->journal_dir, user) >= (int)len)
                return -ENAMETOOLONG;
        return 0;
}

int journal_encode(const struct job *job, struct pbuf *b) {
        char num[6][32];
        int r;

        snprintf(num[0], sizeof num[0], "%" PRId64, job->since);
        snprintf(num[1], sizeof num[1], "%u", job->attempts);
        snprintf(num[2], sizeof num[2], "%" PRId64, job->failing_since);
        snprintf(num[3], sizeof num[3], "%" PRId64, job->next_try);
        snprintf(num[4], sizeof num[4], "%d", job->session_close ? 1 : 0);
        snprintf(num[5], sizeof num[5], "%s", job->state == JOB_RETRY ? "retry" : "queued");
        for (const char *m = JOURNAL_MAGIC; *m; m++)
                if ((r = pbuf_put_u8(b, (uint8_t)*m)) < 0)
                        return r;
        /* A result's body without its frame header, as the session cache keeps it. */
        if ((r = pbuf_put_u32(b, 0)) < 0 || (r = pbuf_put_str(b, "")) < 0 || (r = pbuf_put_u32(b, 2)) < 0 ||
            (r = proto_row_begin(b, 9)) < 0 ||
            (r = proto_row_field(b, "job_user", job->user)) < 0 ||
            (r = proto_row_field(b, "since", num[0])) < 0 ||
            (r = proto_row_field(b, "attempts", num[1])) < 0 ||
            (r = proto_row_field(b, "failing_since", num[2])) < 0 ||
            (r = proto_row_field(b, "next_try", num[3])) < 0 ||
            (r = proto_row_field(b, "session_close", num[4])) < 0 ||
            (r = proto_row_field(b, "state", num[5])) < 0 ||
            (r = proto_row_field(b, "retry_from", strempty(job->retry_from))) < 0 ||
            (r = proto_row_field(b, "last_error", strempty(job->last_error))) < 0)
                return r;
        return user_to_row(job->record, b);
}

static int dup_nonempty(const char *v, char **ret) {
        *ret = NULL;
        if (!v || !*v)
                return 0;
        return (*ret = strdup(v)) ? 0 : -ENOMEM;
}

static int parse_i64(const char *v, int64_t *ret) {
        char *end = NULL;
        long long n;

        if (!v || !*v)
                return -EBADMSG;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || *end || n < 0)
                return -EBADMSG;
        *ret = n;
        return 0;
}

int journal_decode(const uint8_t *data, size_t len, struct job **ret) {
        size_t mlen = strlen(JOURNAL_MAGIC);
        struct pbuf b = {.data = (uint8_t *)data, .len = len, .pos = mlen};
        struct proto_result res = {0};
        struct job *job = NULL;
        int64_t since, attempts, failing, next, sc;
        const struct proto_row *row;
        int r = -EBADMSG;

        *ret = NULL;
        if (len < mlen || memcmp(data, JOURNAL_MAGIC, mlen) != 0)
                return -EBADMSG;
        if ((r = proto_result_parse(&b, &res)) < 0)
                return r;
        r = -EBADMSG;
        if (res.nrows != 2)
                goto out;
        row = &res.rows[0];
        if (parse_i64(proto_row_get(row, "since"), &since) < 0 ||
            parse_i64(proto_row_get(row, "attempts"), &attempts) < 0 || attempts > UINT32_MAX ||
            parse_i64(proto_row_get(row, "failing_since"), &failing) < 0 ||
            parse_i64(proto_row_get(row, "next_try"), &next) < 0 ||
            parse_i64(proto_row_get(row, "session_close"), &sc) < 0 || sc > 1)
                goto out;
        if (!(job = calloc(1, sizeof *job))) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = user_from_row(&res.rows[1], &job->record)) < 0)
                goto out;
        r = -EBADMSG;
        if (!streq(strempty(proto_row_get(row, "job_user")), job->record->name))
                goto out;
        r = -ENOMEM;
        if (!(job->user = strdup(job->record->name)) ||
            dup_nonempty(proto_row_get(row, "retry_from"), &job->retry_from) < 0 ||
            dup_nonempty(proto_row_get(row, "last_error"), &job->last_error) < 0)
                goto out;
        job->since = since;
        job->attempts = (unsigned)attempts;
        job->failing_since = failing;
        job->next_try = next;
        job->session_close = sc == 1;
        job->state = JOB_QUEUED; /* whatever it was, a resumed job runs now */
        *ret = TAKE_PTR(job);
        r = 0;
out:
        job_free(job);
        proto_result_free(&res);
        return r;
}

int journal_write(const struct jobs *j, const struct job *job) {
        _cleanup_pbuf_ struct pbuf b = {0};
        char path[PATH_MAX];
        int r;

        if (!j->journal_dir)
                return 0;
        if ((r = journal_path(j, job->user, path, sizeof path)) < 0)
                return r;
        pbuf_init(&b);
        if ((r = journal_encode(job, &b)) < 0)
                return r;
        return write_file_atomic(path, b.data, b.len, 0600);
}

void journal_remove(const struct jobs *j, const char *user) {
        _cleanup_close_ int dfd = -1;
        char path[PATH_MAX];

        if (!j->journal_dir || journal_path(j, user, path, sizeof path) < 0)
                return;
        if (unlink(path) < 0) {
                if (errno != ENOENT)
                        log_error_errno(-errno, "Could not remove %s: %m (the job will run again at the "
                                        "next start)", path);
                return;
        }
        /* The removal is durable too: a power loss now must not bring the job back. */
        dfd = open(j->journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
}

static int read_small_file(int dirfd, const char *name, struct pbuf *b) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;
        ssize_t k;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) /* root's, as pginad is */
                return -EPERM;
        if (st.st_size > JOURNAL_FILE_MAX)
                return -EFBIG;
        while ((k = pbuf_read_fd(b, fd, 65536)) > 0)
                if (b->len > JOURNAL_FILE_MAX)
                        return -EFBIG;
        return k < 0 ? (int)k : 0;
}

/* A file that cannot be a job is kept for the admin under another name, never run, never lost. */
static void set_aside(int dirfd, const char *dir, const char *name, int why) {
        char to[NAME_MAX + 1];

        snprintf(to, sizeof to, "%s.damaged", name);
        if (renameat(dirfd, name, dirfd, to) < 0)
                log_error("%s/%s: not a logoff job (%s), and cannot be set aside: %m", dir, name,
                          strerror(-why));
        else
                log_error("%s/%s: not a logoff job (%s); kept as %s for the admin", dir, name, strerror(-why),
                          to);
}

static const char *when(int64_t t, char *buf, size_t len) {
        time_t tt = (time_t)t;
        struct tm tm;

        if (!t || !localtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
                snprintf(buf, len, "at an unknown time");
        return buf;
}

static bool journal_name(const char *name) {
        size_t n = strlen(name), s = strlen(JOURNAL_SUFFIX);
        return n > s && streq(name + n - s, JOURNAL_SUFFIX);
}

size_t journal_load(struct jobs *j) {
        _cleanup_close_ int dfd = -1;
        DIR *d;
        struct dirent *de;
        size_t n = 0;

        if (!j->journal_dir)
                return 0;
        dfd = open(j->journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || !(d = fdopendir(dup(dfd)))) {
                log_error_errno(-errno, "Failed to read the job journal %s: %m", j->journal_dir);
                return 0;
        }
        while ((de = readdir(d))) {
                _cleanup_pbuf_ struct pbuf b = {0};
                struct job *job = NULL;
                char want[NAME_MAX + 1], t[64];
                int r;

                if (!journal_name(de->d_name))
                        continue;
                pbuf_init(&b);
                if ((r = read_small_file(dfd, de->d_name, &b)) < 0 || (r = journal_decode(b.data, b.len, &job)) < 0) {
                        set_aside(dfd, j->journal_dir, de->d_name, r);
                        continue;
                }
                snprintf(want, sizeof want, "%s" JOURNAL_SUFFIX, job->user);
                if (!streq(want, de->d_name) || jobs_find_user(j, job->user)) {
                        set_aside(dfd, j->journal_dir, de->d_name, -EBADMSG);
                        job_free(job);
                        continue;
                }
                job->resumed = true;
                log_notice("Resuming the logoff job of %s (queued %s by an earlier pginad%s%s)", job->user,
                           when(job->since, t, sizeof t), job->attempts ? ", retried before: " : "",
                           job->attempts ? strempty(job->last_error) : "");
                jobs_append(j, job);
                n++;
        }
        closedir(d);
        return n;
}
