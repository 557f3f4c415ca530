/* Peer back-off: a non-root peer's failures slow down its next answers, and a non-root peer
 * holds at most WORKERS_PER_USER_MAX request workers or queue places at once. */
#include <stdlib.h>

#include "log.h"
#include "pginad-manager.h"

static struct peer_fail *peer_fail_get(struct manager *m, uid_t uid, bool create) {
        struct peer_fail *f;

        for (f = m->fails; f; f = f->next)
                if (f->uid == uid)
                        return f;
        if (!create || !(f = calloc(1, sizeof *f)))
                return NULL;
        f->uid = uid;
        f->next = m->fails;
        m->fails = f;
        return f;
}

void peer_account(struct manager *m, struct conn *c, bool success) {
        struct peer_fail *f;
        unsigned delay;

        if (c->peer.uid == 0)
                return;
        f = peer_fail_get(m, c->peer.uid, !success);
        if (!f)
                return;
        if (success) {
                f->count = 0;
                return;
        }
        f->count++;
        delay = f->count >= 8 ? m->conf->failure_delay_max : (1u << (f->count - 1)) / 2;
        if (delay > m->conf->failure_delay_max)
                delay = m->conf->failure_delay_max;
        /* The answer waits, and so does the next request of this uid on any connection. */
        c->send_at = manager_now(m) + (long long)delay * 1000;
        f->next_allowed = c->send_at;
        if (delay)
                log_notice("uid %u: %u failed request(s) in a row, answering after %u s",
                           (unsigned)c->peer.uid, f->count, delay);
}

/* A non-root peer that failed recently, or has enough requests running or queued, waits its
 * turn: one local user's share of the workers and of the queue is WORKERS_PER_USER_MAX. */
bool peer_must_wait(struct manager *m, const struct conn *c) {
        struct peer_fail *f = peer_fail_get(m, c->peer.uid, false);
        size_t held = 0;

        if (f && f->next_allowed > manager_now(m))
                return true;
        for (const struct worker *w = m->workers; w; w = w->next)
                if (w->conn && w->conn->peer.uid == c->peer.uid)
                        held++;
        for (const struct conn *q = m->queue; q; q = q->queue_next)
                if (q->peer.uid == c->peer.uid)
                        held++;
        return held >= WORKERS_PER_USER_MAX;
}

long long peer_wait_until(struct manager *m, const struct conn *c) {
        struct peer_fail *f = peer_fail_get(m, c->peer.uid, false);
        return f ? f->next_allowed : 0;
}
