/* The master's internal types, shared by its modules (pginad-conn.c, pginad-peer.c, pginad-queue.c,
 * pginad-workers.c, pginad-logon.c, pginad-admin.c, pginad-loop.c, pginad-manager.c,
 * pginad-textfile.c). */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "pginad.h"
#include "pginad-metrics.h"

/* The master's clock: milliseconds, monotonic. Every deadline, back-off, queue and parking time,
 * connection timeout and NSS answer lifetime reads it through here, so that unit tests drive them
 * with a fake clock instead of sleeping. Wall-clock dates that only show or are kept on disk (a
 * job's since, a session's opened, the uptime) are time(NULL); the probe's 15 s bound a real
 * blocking wait and stay real too. */
struct manager_clock {
        long long (*now_ms)(void *userdata);
        void *userdata;
};
extern const struct manager_clock manager_clock_monotonic; /* CLOCK_MONOTONIC */

#define CONNS_MAX 512
#define CONNS_ROOT_RESERVE                                                   \
        64 /* of CONNS_MAX, for root peers only: local users that fill every \
            * other slot still leave login, sshd and sudo room to connect */
#define CONNS_PER_USER_MAX 16 /* non-root peers */
#define OUT_READ_PAUSE                                                        \
        (16 * 1024) /* answers not yet taken by the peer: past this, its next \
                     * requests wait unread (back-pressure) */
#define OUT_MAX                                                                   \
        (4 * PROTO_FRAME_MAX) /* past this (one answer and the INFO frames of one \
                               * request at most), the connection is closed */
#define SEND_TIMEOUT_MS                                                       \
        (10 * 1000) /* a peer that takes none of its pending answers for this \
                     * long is closed: it holds a slot and our memory */
#define WORKERS_PER_USER_MAX                                             \
        2 /* non-root peers: requests in workers or queued; beyond, they \
           * wait unread in their connection */
#define IDLE_TIMEOUT_MS (30 * 1000) /* a connection with no complete request for this long */
#define PARKED_PING_MS (10 * 1000) /* a waiting logon hears from us this often (PAM timeouts) */
#define ACCEPT_BATCH                                                            \
        32 /* connections accepted per round: a burst of logons must not sit in \
            * the listen backlog, whose overflow blocks clients in connect() */
#define JOBS_PARALLEL_MAX 4
#define TOKEN_TTL_MS (5 * 60 * 1000)
/* Authenticated logons waiting for their PAM session (each holds the password's locked page):
 * past these the oldest go, so logons that never open a session cannot grow pginad. */
#define PENDING_LOGINS_PER_USER_MAX 8
#define PENDING_LOGINS_MAX 512
/* Sessions logind ended that PAM may still close (answered OK, not "no such session"): a
 * session's PAM close and its logind end race. */
#define ENDED_MAX 32
#define ENDED_TTL_MS (10 * 60 * 1000)
#define READ_CHUNK 16384

struct conn {
        const struct manager_clock *clock; /* the manager's */
        int fd;
        struct ucred peer;
        struct pbuf in, out;
        bool busy; /* a request is in progress: read nothing more until it is answered */
        bool closing; /* close once out is flushed */
        long long send_at; /* slowed-down failure: hold the answer until then */
        bool parked; /* waiting for a logoff job of req.user */
        bool waiting; /* WAIT_JOBS: answered when no logoff job (of req.user) is left */
        long long wait_until; /* WAIT_JOBS deadline, 0 = none */
        struct request req;
        int pidx; /* index in this round's pollfd array, -1 if not polled */
        long long idle_since; /* last time it became idle (accepted or answered) */
        long long parked_ping; /* last "please wait" sent while parked */
        long long keepalive_at; /* last keepalive sent while a worker runs or it is queued */
        long long drained_at; /* last time out was empty or the peer took some of it */
        bool queued; /* its request waits in manager.queue for a free request worker */
        long long queued_at;
        struct conn *queue_next;
        struct conn *next;
};

struct worker {
        pid_t pid;
        int fd;
        struct pbuf in;
        enum worker_kind kind;
        struct conn *conn; /* REQUEST; NULL once the client left */
        uid_t peer_uid; /* REQUEST: whose request it runs (0: root's, and every notification) */
        struct request req; /* REQUEST */
        struct job *job; /* JOB */
        char *user;
        long long started, deadline;
        bool timed_out;
        char plugin[72], stage[32];
        struct proto_result result;
        bool have_result, eof, reaped;
        int wstatus;
        struct worker *next;
};

struct pending_login {
        char token[33];
        struct pgina_user *record;
        struct secret *password;
        long long expires;
        char phases[METRICS_PHASES_MAX]; /* its logon's phases, for the session it opens */
        struct pending_login *next;
};

struct ended_session {
        char id[32], user[PGINA_NAME_MAX + 1];
        long long at; /* 0: free */
};

struct peer_fail {
        uid_t uid;
        unsigned count;
        long long next_allowed; /* no request of this uid is looked at before then */
        struct peer_fail *next;
};

struct manager {
        struct manager_clock clock;
        char *conf_path;
        char *bound_socket; /* the path we bound (a reload may name another) */
        struct conf *conf;
        struct plugin_info *plugins;
        size_t nplugins;
        int listen_fd, signal_fd;
        struct conn *conns;
        size_t nconns;
        struct worker *workers;
        struct conn *queue, *queue_tail; /* FIFO of requests waiting for a request worker */
        size_t nqueued;
        struct cache cache;
        struct jobs jobs;
        struct pending_login *logins;
        struct peer_fail *fails;
        struct nss_cache nss;
        struct logind logind;
        struct ended_session ended[ENDED_MAX];
        size_t ended_next;
        bool stopping;
        long long stop_deadline;
        time_t started;
        struct metrics metrics; /* pginad-metrics.c */
        struct textfile {
                long long next; /* the next write, on the manager's clock */
                pid_t writer; /* the process writing it now, or 0 */
        } textfile; /* pginad-textfile.c: metrics_textfile */
};
static inline long long clock_now(const struct manager_clock *k) { return k->now_ms(k->userdata); }
/* Lower *next to t: each module offers its deadlines to the loop's poll timeout this way. */
static inline void deadline_min(long long *next, long long t) {
        if (t < *next)
                *next = t;
}
static inline long long manager_now(const struct manager *m) { return clock_now(&m->clock); }

/* ---- pginad-conn.c ---- */
void conn_queue(struct conn *c, const struct pbuf *frame);
bool conn_out_full(const struct conn *c);
bool conn_wants_input(const struct conn *c);
long long conn_send_deadline(const struct conn *c);
void reply_simple(struct conn *c, uint32_t status, const char *message);
void reply_info(struct conn *c, uint8_t kind, const char *text);
void reply_frame(struct conn *c, struct pbuf *b);
void peer_account(struct manager *m, struct conn *c, bool success);
void conn_free(struct manager *m, struct conn *c);
bool conn_accept(struct manager *m);
bool peer_must_wait(struct manager *m, const struct conn *c);
long long peer_wait_until(struct manager *m, const struct conn *c);
void conn_process(struct manager *m, struct conn *c);
void conn_read(struct manager *m, struct conn *c);
void conn_write(struct manager *m, struct conn *c);
size_t conns_poll(struct manager *m, struct pollfd *pfd, size_t n, long long now, long long *next_deadline);
void conns_events(struct manager *m, const struct pollfd *pfd);
void conns_sweep(struct manager *m, long long now);

/* ---- pginad-workers.c ---- */
struct worker *worker_start(struct manager *m, struct worker_spec *spec, const char *user);
size_t workers_count(const struct manager *m, enum worker_kind kind);
void notify_start(struct manager *m, struct pgina_user *record, const struct secret *password,
                  const enum pgina_event *ev, size_t nev);
void worker_free(struct worker *w);
void worker_finish(struct manager *m, struct worker *w);
void worker_frames(struct manager *m, struct worker *w);
void worker_read(struct manager *m, struct worker *w);
void workers_reap(struct manager *m);
size_t workers_poll(struct manager *m, struct pollfd *pfd, size_t n, long long *next);
void workers_events(struct manager *m, long long now);

/* ---- pginad-queue.c ---- */
int user_uid(const char *user, uid_t *uid);
void keepalives(struct manager *m, long long now, long long *next);
void queue_remove(struct manager *m, struct conn *c);
void handle_request_in_worker(struct manager *m, struct conn *c);
void queue_run(struct manager *m);
void queue_deadline(const struct manager *m, long long *next);
void queue_shutdown(struct manager *m);
bool user_has_job(struct manager *m, const char *user);
void park(struct manager *m, struct conn *c);
void jobs_start(struct manager *m); /* queued jobs and retries that are due */
void jobs_deadline(struct manager *m, long long *next); /* the next retry's time */
/* Plugin `plugin` asked for a retry of job j (pgina_ctx_retry_later): back-off, journal, log. */
void jobs_retry_later(struct manager *m, struct job *j, const char *plugin, const char *why);
/* Plugin `plugin` works again (pgina_ctx_retry_now in `who`'s call): its retries run now. */
void jobs_retry_now(struct manager *m, const char *plugin, const char *who);
/* A session of user opened here: a retry of their logoff work waiting for its time is dropped. */
void jobs_superseded(struct manager *m, const char *user);
void jobs_count_running(struct manager *m);
void parked_resume(struct manager *m);
void logins_expire(struct manager *m);
void logins_bound(struct manager *m); /* after a new pending login: PENDING_LOGINS_*_MAX */

/* ---- pginad-logon.c ---- */
void handle_login(struct manager *m, struct conn *c);
void handle_open_session(struct manager *m, struct conn *c);
void handle_close_session(struct manager *m, struct conn *c);
void logind_sync(struct manager *m);
void handle_change_password(struct manager *m, struct conn *c);
void handle_worker_request(struct manager *m, struct conn *c);

/* ---- pginad-textfile.c: the metrics for node_exporter's textfile collector ---- */
void manager_gauges(const struct manager *m, struct metrics_gauges *g); /* what metrics show now */
void textfile_deadline(const struct manager *m, long long *next);
void textfile_write(struct manager *m, long long now); /* when its time has come */
bool textfile_reaped(struct manager *m, pid_t pid, int status); /* its writer's end */

/* ---- pginad-admin.c ---- */
void nss_reply(struct conn *c, const struct nss_entry *e);
void wait_jobs_answer(struct manager *m, struct conn *c, long long now, bool last);
void wait_jobs_resume(struct manager *m);
int manager_reload(struct manager *m, char **errors);
void dispatch(struct manager *m, struct conn *c);
