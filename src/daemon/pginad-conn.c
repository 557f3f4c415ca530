/* The master's client connections: reading requests, queueing replies, closing idle or stuck
 * peers, and slowing down the answers to non-root peers that keep failing. */
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

/* ---- replies ---- */

void conn_queue(struct conn *c, const struct pbuf *frame) {
        if (c->closing)
                return;
        if (c->out.len + frame->len > OUT_MAX) {
                log_warning("uid %u (pid %d) leaves %zu bytes of answers unread; closing the "
                            "connection",
                            (unsigned)c->peer.uid, (int)c->peer.pid, c->out.len);
                c->closing = true;
                pbuf_free(&c->out);
                return;
        }
        if (c->out.len == 0)
                c->drained_at = clock_now(c->clock);
        for (size_t i = 0; i < frame->len; i++)
                if (pbuf_put_u8(&c->out, frame->data[i]) < 0) {
                        c->closing = true;
                        pbuf_free(&c->out);
                        return;
                }
}

/* Back-pressure: a peer that does not read its answers gets no new ones. */
bool conn_out_full(const struct conn *c) { return c->out.len > OUT_READ_PAUSE; }

/* Read more of a peer's requests only when the last one read is done with: a pipelining peer
 * waits in its socket, not in our memory. */
bool conn_wants_input(const struct conn *c) {
        return !c->busy && !c->closing && !conn_out_full(c) &&
               (c->in.len < PROTO_HEADER_LEN || proto_frame_complete(c->in.data, c->in.len) == 0);
}

/* Answers the peer may take now (a slowed-down failure waits for send_at) but has taken none of
 * for SEND_TIMEOUT_MS: the time it is closed at, or 0 when nothing is stuck. */
long long conn_send_deadline(const struct conn *c) {
        long long since = c->drained_at > c->send_at ? c->drained_at : c->send_at;

        return c->out.len > 0 ? since + SEND_TIMEOUT_MS : 0;
}

void reply_simple(struct conn *c, uint32_t status, const char *message) {
        _cleanup_pbuf_ struct pbuf b = {0};

        pbuf_init(&b);
        if (proto_result_begin(&b, status, message, 0) < 0 || proto_frame_end(&b) < 0) {
                c->closing = true;
                return;
        }
        conn_queue(c, &b);
        c->busy = false;
        c->idle_since = clock_now(c->clock);
}

void reply_info(struct conn *c, uint8_t kind, const char *text) {
        _cleanup_pbuf_ struct pbuf b = {0};

        pbuf_init(&b);
        if (proto_frame_begin(&b, PROTO_MSG_INFO) < 0 || pbuf_put_u8(&b, kind) < 0 ||
            pbuf_put_str(&b, text) < 0 || proto_frame_end(&b) < 0)
                return;
        conn_queue(c, &b);
}

void reply_frame(struct conn *c, struct pbuf *b) {
        if (proto_frame_end(b) < 0) {
                reply_simple(c, PROTO_UNAVAILABLE, "answer too large");
                return;
        }
        conn_queue(c, b);
        c->busy = false;
        c->idle_since = clock_now(c->clock);
}

/* ---- connections ---- */

void conn_free(struct manager *m, struct conn *c) {
        for (struct conn **p = &m->conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        if (c->queued) {
                /* The client left while waiting: no worker is started for it. */
                log_debug("uid %u left while its request for '%s' was queued", (unsigned)c->peer.uid,
                          c->req.user);
                queue_remove(m, c);
        }
        for (struct worker *w = m->workers; w; w = w->next)
                if (w->conn == c)
                        w->conn = NULL;
        close(c->fd);
        pbuf_free(&c->in);
        pbuf_free(&c->out);
        request_free(&c->req);
        free(c);
        m->nconns--;
}

/* Accept one connection; false when there was none to accept. */
bool conn_accept(struct manager *m) {
        socklen_t len = sizeof(struct ucred);
        struct conn *c;
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0)
                return false;
        c = calloc(1, sizeof *c);
        if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0) {
                free(c);
                close(fd);
                return true;
        }
        if (m->nconns >= CONNS_MAX || (c->peer.uid != 0 && m->nconns >= CONNS_MAX - CONNS_ROOT_RESERVE)) {
                log_warning("Too many connections (%zu, %d of %d kept for root); refusing one of "
                            "uid %u (pid %d)",
                            m->nconns, CONNS_ROOT_RESERVE, CONNS_MAX, (unsigned)c->peer.uid,
                            (int)c->peer.pid);
                free(c);
                close(fd);
                return true;
        }
        if (c->peer.uid != 0) {
                size_t mine = 0;
                for (struct conn *o = m->conns; o; o = o->next)
                        if (o->peer.uid == c->peer.uid)
                                mine++;
                if (mine >= CONNS_PER_USER_MAX) {
                        log_warning("uid %u has %zu connections open; refusing another",
                                    (unsigned)c->peer.uid, mine);
                        free(c);
                        close(fd);
                        return true;
                }
        }
        c->fd = fd;
        c->clock = &m->clock;
        c->pidx = -1;
        c->idle_since = manager_now(m);
        pbuf_init_secret(&c->in); /* LOGIN frames: passwords, until parsed */
        pbuf_init(&c->out);
        c->next = m->conns;
        m->conns = c;
        m->nconns++;
        return true;
}

/* Parse one complete frame from c->in, if there is one, and dispatch it. */
void conn_process(struct manager *m, struct conn *c) {
        struct pbuf payload;
        uint16_t type;
        long n;
        int r;

        if (c->busy || c->closing || conn_out_full(c))
                return;
        n = proto_frame_complete(c->in.data, c->in.len);
        if (n == 0)
                return;
        if (n > 0 && c->peer.uid != 0 && peer_must_wait(m, c))
                return; /* looked at again on a later round */
        if (n < 0) {
                log_warning("uid %u (pid %d): malformed frame (%s); closing the connection",
                            (unsigned)c->peer.uid, (int)c->peer.pid, strerror((int)-n));
                c->closing = true;
                c->in.len = 0;
                return;
        }
        request_free(&c->req); /* whatever the last request left (admin requests keep theirs) */
        r = proto_frame_open(c->in.data, (size_t)n, &type, &payload);
        if (r == 0)
                r = request_parse(type, &payload, &c->req);
        pbuf_consume(&c->in, (size_t)n);
        if (r < 0) {
                log_warning("uid %u (pid %d): invalid request of type %u (%s); closing the connection",
                            (unsigned)c->peer.uid, (int)c->peer.pid, type, strerror(-r));
                c->closing = true;
                return;
        }
        dispatch(m, c);
}

void conn_read(struct manager *m, struct conn *c) {
        ssize_t k = pbuf_read_fd(&c->in, c->fd, READ_CHUNK);

        if (k == -EAGAIN)
                return;
        if (k <= 0) {
                conn_free(m, c);
                return;
        }
        if (c->in.len > PROTO_FRAME_MAX + PROTO_HEADER_LEN + READ_CHUNK) {
                log_warning("uid %u (pid %d) sent %zu bytes ahead of their answers; closing the "
                            "connection",
                            (unsigned)c->peer.uid, (int)c->peer.pid, c->in.len);
                c->closing = true;
                return;
        }
        conn_process(m, c);
}

void conn_write(struct manager *m, struct conn *c) {
        ssize_t k = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (k < 0) {
                /* Never freed here: the loop that called us may still use c. */
                if (errno != EAGAIN && errno != EINTR) {
                        c->closing = true;
                        pbuf_reset(&c->out);
                }
                return;
        }
        if (k > 0)
                c->drained_at = manager_now(m);
        pbuf_consume(&c->out, (size_t)k);
}

/* Add the connections' descriptors to this round's poll set (at pfd[n], returns the new n) and
 * their earliest deadline: a held answer, a stuck or idle peer, a back-off's end, a parked ping. */
size_t conns_poll(struct manager *m, struct pollfd *pfd, size_t n, long long now, long long *next_deadline) {
        long long next = *next_deadline;

        for (struct conn *c = m->conns; c; c = c->next) {
                short ev = 0;
                long long stuck = conn_send_deadline(c);
                if (conn_wants_input(c))
                        ev |= POLLIN;
                if (stuck)
                        deadline_min(&next, stuck);
                if (c->out.len > 0 && now >= c->send_at)
                        ev |= POLLOUT;
                if (c->out.len > 0 && c->send_at > now)
                        deadline_min(&next, c->send_at);
                if (!c->busy && c->peer.uid != 0) {
                        long long until = peer_wait_until(m, c);
                        if (until > now)
                                deadline_min(&next, until);
                }
                if (c->parked)
                        deadline_min(&next, c->parked_ping + PARKED_PING_MS);
                if (!c->busy && !c->closing && !conn_out_full(c) && c->in.len >= PROTO_HEADER_LEN &&
                    proto_frame_complete(c->in.data, c->in.len) != 0 &&
                    !(c->peer.uid != 0 && peer_must_wait(m, c)))
                        next = now; /* a pipelined request waits in the buffer */
                if (!c->busy)
                        deadline_min(&next, c->idle_since + IDLE_TIMEOUT_MS);
                c->pidx = (int)n;
                pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        *next_deadline = next;
        return n;
}

/* After poll: write to and read from the connections whose descriptors are ready. */
void conns_events(struct manager *m, const struct pollfd *pfd) {
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
}

/* Once a round: process complete requests, close stuck, idle and finished connections, flush. */
void conns_sweep(struct manager *m, long long now) {
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
                if (!c->busy && !c->closing && c->out.len == 0 && now - c->idle_since > IDLE_TIMEOUT_MS) {
                        log_debug("closing an idle connection of uid %u", (unsigned)c->peer.uid);
                        c->closing = true;
                }
                if (c->closing && c->out.len == 0)
                        conn_free(m, c);
                else if (c->out.len > 0 && now >= c->send_at)
                        conn_write(m, c);
        }
}
