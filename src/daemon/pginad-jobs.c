/* Logoff jobs: notification work after a user's last session closed, one job per user, run in the
 * background (pGina's non-blocking logoff). While any is pending, a logind delay inhibitor holds
 * shutdown (pGina's IPluginLogoffRequestAddTime); SIGTERM waits for them too. */
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

struct job *jobs_add(struct jobs *j, struct pgina_user *record, bool session_close) {
        struct job *job = calloc(1, sizeof *job), **tail;

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
        for (tail = &j->head; *tail; tail = &(*tail)->next)
                ;
        *tail = job;
        return job;
}

struct job *jobs_find_user(struct jobs *j, const char *user) {
        for (struct job *job = j->head; job; job = job->next)
                if (streq(job->user, user))
                        return job;
        return NULL;
}

void jobs_remove(struct jobs *j, struct job *job) {
        for (struct job **p = &j->head; *p; p = &(*p)->next)
                if (*p == job) {
                        *p = job->next;
                        break;
                }
        user_free(job->record);
        free(job->user);
        free(job);
}

size_t jobs_count(const struct jobs *j) {
        size_t n = 0;
        for (const struct job *job = j->head; job; job = job->next)
                n++;
        return n;
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
        if (j->head && j->inhibit_fd < 0) {
                int fd = inhibit_take();
                if (fd >= 0) {
                        j->inhibit_fd = fd;
                        log_debug("Took a logind delay inhibitor while logoff work is pending");
                }
        } else if (!j->head && j->inhibit_fd >= 0) {
                close(j->inhibit_fd);
                j->inhibit_fd = -1;
        }
}
