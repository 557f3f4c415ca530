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
                case SIGCHLD:
                        workers_reap(m);
                        break;
                case SIGTERM:
                case SIGINT:
                        if (!m->stopping) {
                                m->stopping = true;
                                m->stop_deadline = manager_now(m) + 1000LL * m->conf->shutdown_timeout;
                                log_info("Stopping: %zu logoff job(s) pending, waiting up to %u s",
                                         jobs_count(&m->jobs), m->conf->shutdown_timeout);
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
        if (!m->jobs.head && workers_count(m, WORKER_REQUEST) == 0 && workers_count(m, WORKER_NOTIFY) == 0)
                return true;
        if (manager_now(m) >= m->stop_deadline) {
                for (struct job *j = m->jobs.head; j; j = j->next)
                        log_error("shutdown_timeout reached: the logoff job of %s did not finish (%s)",
                                  j->user, j->state == JOB_RUNNING ? "running" : "never started");
                return true;
        }
        return false;
}

int manager_run(struct manager *m) {
        struct pollfd *pfd = NULL;
        size_t cap = 0;

        log_info("ready: listening on %s (config %s, %zu plugin(s))", m->conf->socket_path,
                 m->conf_path, m->nplugins);
#if HAVE_LIBSYSTEMD
        (void)sd_notify(0, "READY=1");
#endif
        for (;;) {
                long long now = manager_now(m), next = now + 60000;
                size_t n = 0, need = 3 + m->nconns + 64;
                int timeout, k;

                jobs_count_running(m);
                jobs_start(m);
                jobs_count_running(m);
                parked_resume(m);
                wait_jobs_resume(m);
                queue_run(m);
                logins_expire(m);
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
                for (struct conn *c = m->conns; c; c = c->next) {
                        short ev = 0;
                        long long stuck = conn_send_deadline(c);
                        if (conn_wants_input(c))
                                ev |= POLLIN;
                        if (stuck && stuck < next)
                                next = stuck;
                        if (c->out.len > 0 && now >= c->send_at)
                                ev |= POLLOUT;
                        if (c->out.len > 0 && c->send_at > now && c->send_at < next)
                                next = c->send_at;
                        if (!c->busy && c->peer.uid != 0) {
                                long long until = peer_wait_until(m, c);
                                if (until > now && until < next)
                                        next = until;
                        }
                        if (c->parked && c->parked_ping + PARKED_PING_MS < next)
                                next = c->parked_ping + PARKED_PING_MS;
                        if (!c->busy && !c->closing && !conn_out_full(c) && c->in.len >= PROTO_HEADER_LEN &&
                            proto_frame_complete(c->in.data, c->in.len) != 0 &&
                            !(c->peer.uid != 0 && peer_must_wait(m, c)))
                                next = now; /* a pipelined request waits in the buffer */
                        if (!c->busy && c->idle_since + IDLE_TIMEOUT_MS < next)
                                next = c->idle_since + IDLE_TIMEOUT_MS;
                        c->pidx = (int)n;
                        pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
                }
                for (struct worker *w = m->workers; w; w = w->next) {
                        pfd[n++] = (struct pollfd){.fd = w->eof ? -1 : w->fd, .events = POLLIN};
                        if (w->deadline < next)
                                next = w->deadline;
                }
                if (m->stopping && m->stop_deadline < next)
                        next = m->stop_deadline;
                if (m->queue && m->queue->queued_at + 1000LL * m->conf->request_timeout < next)
                        next = m->queue->queued_at + 1000LL * m->conf->request_timeout;
                keepalives(m, now, &next);
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
                for (struct conn *c = m->conns, *next_c; c; c = next_c) {
                        short rev = c->pidx >= 0 ? pfd[c->pidx].revents : 0;

                        next_c = c->next;
                        c->pidx = -1;
                        if (rev & POLLNVAL) {
                                conn_free(m, c);
                                continue;
                        }
                        if (rev & POLLOUT)
                                conn_write(m, c);
                        if (rev & (POLLIN | POLLHUP | POLLERR))
                                conn_read(m, c); /* may free c */
                }
                if (pfd[1].revents & POLLIN)
                        for (int i = 0; i < ACCEPT_BATCH && conn_accept(m); i++)
                                ;
                for (struct worker *w = m->workers; w; w = w->next)
                        if (!w->eof)
                                worker_read(m, w);
                for (struct worker *w = m->workers; w; w = w->next)
                        if (!w->reaped && !w->timed_out && now >= w->deadline) {
                                log_error("worker %d for %s: request_timeout reached in %s%s%s; killing it",
                                          (int)w->pid, w->user, w->plugin[0] ? "plugin " : "",
                                          w->plugin, w->stage[0] ? "" : "");
                                w->timed_out = true;
                                kill(-w->pid, SIGKILL); /* the worker and whatever it started */
                                kill(w->pid, SIGKILL);
                        }
                workers_reap(m);
                for (struct worker *w = m->workers, *next_w; w; w = next_w) {
                        next_w = w->next;
                        if (w->reaped && !w->eof) {
                                /* Drain what it wrote before it died; a child of the worker that
                                 * still holds the pipe must not keep the request open. */
                                ssize_t got;
                                do
                                        got = pbuf_read_fd(&w->in, w->fd, READ_CHUNK);
                                while (got > 0);
                                worker_frames(m, w);
                                w->eof = true;
                        }
                        if (w->reaped && w->eof)
                                worker_finish(m, w);
                }
                for (struct conn *c = m->conns, *next_c; c; c = next_c) {
                        next_c = c->next;
                        if (!c->busy && !c->closing)
                                conn_process(m, c);
                        if (conn_send_deadline(c) && now >= conn_send_deadline(c)) {
                                log_notice("uid %u (pid %d) took none of its %zu bytes of answers "
                                           "for %d s; closing the connection",
                                           (unsigned)c->peer.uid, (int)c->peer.pid, c->out.len,
                                           SEND_TIMEOUT_MS / 1000);
                                c->closing = true;
                                pbuf_free(&c->out);
                        }
                        if (!c->busy && !c->closing && c->out.len == 0 &&
                            now - c->idle_since > IDLE_TIMEOUT_MS) {
                                log_debug("closing an idle connection of uid %u", (unsigned)c->peer.uid);
                                c->closing = true;
                        }
                        if (c->closing && c->out.len == 0)
                                conn_free(m, c);
                        else if (c->out.len > 0 && now >= c->send_at)
                                conn_write(m, c);
                }
        }
        free(pfd);
        (void)cache_save(&m->cache);
        log_info("pginad stopped");
        return 0;
}
