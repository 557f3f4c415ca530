/* Logoff jobs: notification work after a user's last session closed, one job per user, run in the
 * background (pGina's non-blocking logoff). Each is in the journal (pginad-journal.c) from before
 * it runs until it is done, so that a crash or a power loss does not lose it; a job a plugin asked
 * to retry (pgina_ctx_retry_later) waits in JOB_RETRY with back-off. While any is queued or
 * running, a logind delay inhibitor holds shutdown (pGina's IPluginLogoffRequestAddTime);
 * SIGTERM waits for them too. A waiting retry holds neither: the journal keeps it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pginad.h"
#include "pgina-build.h"
#include "util.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-bus.h>
#endif

void jobs_append(struct jobs *j, struct job *job) {
        struct job **tail;

        for (tail = &j->head; *tail; tail = &(*tail)->next)
                ;
        *tail = job;
}

struct job *jobs_add(struct jobs *j, struct pgina_user *record, bool session_close) {
        struct job *job = calloc(1, sizeof *job);
        int r;

        if (!job)
                return NULL;
        job->user = strdup(record->name);
        if (!job->user) {
                free(job);
                return NULL;
        }
        job->record = record;
        job->state = JOB_QUEUED;
        job->since = (int64_t)time(NULL);
        job->session_close = session_close;
        /* Before anything runs it: a crash from here on finds it at the next start. */
        if ((r = journal_write(j, job)) < 0)
                log_error_errno(r, "Could not journal the logoff job of %s (it runs, but a crash now would "
                                "lose it): %m", job->user);
        jobs_append(j, job);
        return job;
}

struct job *jobs_find_user(struct jobs *j, const char *user) {
        for (struct job *job = j->head; job; job = job->next)
                if (streq(job->user, user))
                        return job;
        return NULL;
}

void job_free(struct job *job) {
        if (!job)
                return;
        user_free(job->record);
        free(job->user);
        free(job->retry_from);
        free(job->last_error);
        free(job);
}

static void jobs_unlink(struct jobs *j, struct job *job) {
        for (struct job **p = &j->head; *p; p = &(*p)->next)
                if (*p == job) {
                        *p = job->next;
                        break;
                }
}

void jobs_remove(struct jobs *j, struct job *job) {
        jobs_unlink(j, job);
        journal_remove(j, job->user);
        job_free(job);
}

void jobs_free(struct jobs *j) {
        while (j->head) {
                struct job *job = j->head;
                j->head = job->next;
                job_free(job);
        }
        free(j->journal_dir);
        j->journal_dir = NULL;
}

size_t jobs_count(const struct jobs *j) {
        size_t n = 0;
        for (const struct job *job = j->head; job; job = job->next)
                n++;
        return n;
}

size_t jobs_active(const struct jobs *j) {
        size_t n = 0;
        for (const struct job *job = j->head; job; job = job->next)
                n += job->state != JOB_RETRY;
        return n;
}

unsigned jobs_retry_delay(unsigned attempt, unsigned delay, unsigned max_delay) {
        unsigned long long d = delay ? delay : 1;

        if (max_delay < d)
                max_delay = (unsigned)d;
        for (unsigned i = 1; i < attempt && d < max_delay; i++)
                d *= 2;
        return d > max_delay ? max_delay : (unsigned)d;
}

const char *jobs_users(const struct jobs *j, char *buf, size_t size) {
        size_t len;

        buf[0] = 0;
        if (!j->head || size < 16)
                return buf;
        len = (size_t)snprintf(buf, size, " (");
        for (const struct job *job = j->head; job; job = job->next) {
                const char *sep = job == j->head ? "" : ", ";
                if (len + strlen(sep) + strlen(job->user) + sizeof ", …)" > size) {
                        len += (size_t)snprintf(buf + len, size - len, "%s…", sep);
                        break;
                }
                len += (size_t)snprintf(buf + len, size - len, "%s%s", sep, job->user);
        }
        snprintf(buf + len, size - len, ")");
        return buf;
}

#if HAVE_LIBSYSTEMD
static int inhibit_take(void) {
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        int fd = -1, r;

        if (access("/run/systemd/seats/", F_OK) < 0)
                return -ENOENT; /* logind is not running */
        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
                                       "org.freedesktop.login1.Manager", "Inhibit", &err, &reply,
                                       "ssss", "shutdown:sleep", "pgina",
                                       "Finishing logoff work (profile upload, account cleanup)",
                                       "delay");
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd);
        if (r >= 0)
                fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (r < 0)
                log_warning_errno(r, "Could not take a logind delay inhibitor: %s",
                                  err.message ? err.message : strerror(-r));
        sd_bus_error_free(&err);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? r : fd;
}
#else
static int inhibit_take(void) { return -EOPNOTSUPP; }
#endif

void jobs_inhibit_update(struct jobs *j) {
        bool active = jobs_active(j) > 0;

        if (active && j->inhibit_fd < 0) {
                int fd = inhibit_take();
                if (fd >= 0) {
                        j->inhibit_fd = fd;
                        log_debug("Took a logind delay inhibitor while logoff work is pending");
                }
        } else if (!active && j->inhibit_fd >= 0) {
                close(j->inhibit_fd);
                j->inhibit_fd = -1;
        }
}
