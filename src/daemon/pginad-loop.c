/* The master's event loop: signals, the poll set built from each module's descriptors, and
 * the earliest of each module's deadlines; shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pgina-build.h"
#include "pginad.h"
#include "util.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "pginad-manager.h"

static void handle_signals(struct manager *m) {
        struct signalfd_siginfo si;

        while (read(m->signal_fd, &si, sizeof si) == sizeof si) {
                switch (si.ssi_signo) {
                case SIGCHLD: workers_reap(m); break;
                case SIGTERM:
                case SIGINT:
                        if (!m->stopping) {
                                m->stopping = true;
                                m->stop_deadline = manager_now(m) + 1000LL * m->conf->shutdown_timeout;
                                char who[256];
                                log_info("Stopping: %zu logoff job(s) pending%s, waiting up to %u s for "
                                         "the %zu not waiting for a retry",
                                         jobs_count(&m->jobs), jobs_users(&m->jobs, who, sizeof who),
                                         m->conf->shutdown_timeout, jobs_active(&m->jobs));
                                queue_shutdown(m);
                        }
                        break;
                case SIGHUP: {
                        _cleanup_free_ char *errors = NULL;
                        if (manager_reload(m, &errors) < 0)
                                log_error("Reload refused, keeping the running configuration:\n%s",
                                          strempty(errors));
                        break;
                }
                }
        }
}

/* pginad is about to exit: a `pginactl wait` still held gets its answer (OK when the jobs are
 * done, else "shutting down"), and what is queued for any client is sent, for at most a second. */
static void conns_last_words(struct manager *m) {
        long long until = manager_now(m) + 1000;

        for (struct conn *c = m->conns; c; c = c->next)
                if (c->waiting)
                        wait_jobs_answer(m, c, manager_now(m), true);
        for (;;) {
                struct pollfd pfd;
                struct conn *c = m->conns;
                long long now = manager_now(m);

                while (c && (c->out.len == 0 || c->closing || c->send_at > now))
                        c = c->next; /* a slowed-down failure keeps its delay */
                if (!c || now >= until)
                        return;
                pfd = (struct pollfd){.fd = c->fd, .events = POLLOUT};
                if (poll(&pfd, 1, (int)(until - now)) > 0)
                        conn_write(m, c);
        }
}

static bool manager_done(struct manager *m) {
        if (!m->stopping)
                return false;
        /* A retry waiting for its time stays in the journal for the next start. */
        if (jobs_active(&m->jobs) == 0 && workers_count(m, WORKER_REQUEST) == 0 &&
            workers_count(m, WORKER_NOTIFY) == 0)
                return true;
        if (manager_now(m) >= m->stop_deadline) {
                for (struct job *j = m->jobs.head; j; j = j->next)
                        if (j->state != JOB_RETRY)
                                log_error("shutdown_timeout reached: the logoff job of %s did not finish "
                                          "(%s); it is in the journal and runs again at the next start",
                                          j->user, j->state == JOB_RUNNING ? "running" : "never started");
                return true;
        }
        return false;
}

int manager_run(struct manager *m) {
        struct pollfd *pfd = NULL;
        size_t cap = 0;

        log_info("ready: listening on %s (config %s, %zu plugin(s))", m->conf->socket_path, m->conf_path,
                 m->nplugins);
#if HAVE_LIBSYSTEMD
        (void)sd_notify(0, "READY=1");
#endif
        for (;;) {
                long long now = manager_now(m), next = now + 60000;
                size_t n = 0, need = 3 + m->nconns + 64;
                int timeout, k;

                jobs_count_running(m);
                jobs_start(m);
                parked_resume(m);
                wait_jobs_resume(m);
                queue_run(m);
                logins_expire(m);
                textfile_write(m, now);
                if (manager_done(m)) {
                        conns_last_words(m);
                        break;
                }

                for (struct worker *w = m->workers; w; w = w->next)
                        need++;
                if (need > cap) {
                        struct pollfd *np = realloc(pfd, need * sizeof *np);
                        if (!np) {
                                free(pfd);
                                return log_error_errno(-ENOMEM, "Out of memory");
                        }
                        pfd = np;
                        cap = need;
                }
                pfd[n++] = (struct pollfd){.fd = m->signal_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = m->logind.fd, .events = POLLIN}; /* -1: none */
                /* Keepalives first: what they queue must be in this round's POLLOUT set, or poll
                 * sleeps a whole interval on it and the peer looks stuck (SEND_TIMEOUT_MS). */
                keepalives(m, now, &next);
                n = conns_poll(m, pfd, n, now, &next);
                n = workers_poll(m, pfd, n, &next);
                if (m->stopping)
                        deadline_min(&next, m->stop_deadline);
                queue_deadline(m, &next);
                jobs_deadline(m, &next);
                textfile_deadline(m, &next);
                timeout = next <= now ? 0 : (int)(next - now);
                k = poll(pfd, n, timeout);
                if (k < 0 && errno != EINTR) {
                        free(pfd);
                        return log_error_errno(-errno, "poll failed: %m");
                }
                if (k < 0)
                        continue;
                now = manager_now(m);

                if (pfd[0].revents & POLLIN)
                        handle_signals(m);
                if (pfd[2].revents & POLLIN) {
                        logind_flush(&m->logind);
                        logind_sync(m);
                }
                conns_events(m, pfd);
                if (pfd[1].revents & POLLIN)
                        for (int i = 0; i < ACCEPT_BATCH && conn_accept(m); i++)
                                ;
                workers_events(m, now);
                conns_sweep(m, now);
        }
        free(pfd);
        (void)cache_save(&m->cache);
        log_info("pginad stopped");
        return 0;
}
