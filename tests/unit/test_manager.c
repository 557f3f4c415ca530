/* Unit tests of the master's request queue, parking and keepalives (src/daemon/pginad-queue.c),
 * of its peer back-off (src/daemon/pginad-peer.c) and of its connections' idle and send timeouts
 * (src/daemon/pginad-conn.c) with a fake clock: no forks, no sleeps, no sockets but a socket
 * pair per connection test. Workers are stubs here; so are the replies the queue sends (linked
 * with --wrap=reply_simple,--wrap=reply_info: pginad-conn.c's own are the __real_ ones). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "pginad-manager.h"
#include "util.h"

/* ---- the fake clock ---- */
static long long fake_now;
static long long fake_clock(void *userdata) {
        (void)userdata;
        return fake_now;
}

/* ---- stubs of the modules this test does not link ---- */
static unsigned started, dispatched;
static uint32_t last_status;
static uint8_t last_info;
static char last_text[256];
static struct conn *last_conn;

struct worker *worker_start(struct manager *m, struct worker_spec *spec, const char *user) {
        struct worker *w = calloc(1, sizeof *w);

        if (!w)
                return NULL;
        w->kind = spec->kind;
        w->next = m->workers;
        m->workers = w;
        started++;
        return w;
}

void __wrap_reply_simple(struct conn *c, uint32_t status, const char *message) {
        last_conn = c;
        last_status = status;
        snprintf(last_text, sizeof last_text, "%s", message);
}

void __wrap_reply_info(struct conn *c, uint8_t kind, const char *text) {
        last_conn = c;
        last_info = kind;
        snprintf(last_text, sizeof last_text, "%s", text);
}

void request_free(struct request *r) { memset(r, 0, sizeof *r); }
int request_parse(uint16_t type, struct pbuf *payload, struct request *r) {
        (void)type;
        (void)payload;
        (void)r;
        return -EBADMSG; /* the connection tests send no request */
}
void __real_reply_simple(struct conn *c, uint32_t status, const char *message);

static unsigned fake_sessions; /* the user's open sessions, as the session cache would say */
unsigned cache_user_sessions(const struct cache *c, const char *user) {
        (void)c;
        (void)user;
        return fake_sessions;
}

void dispatch(struct manager *m, struct conn *c) {
        last_conn = c;
        dispatched++;
}

/* ---- fixtures ---- */
static struct conf conf;
static struct manager m;
static struct conn conns[16];

static int setup(void **state) {
        memset(&m, 0, sizeof m);
        memset(conns, 0, sizeof conns);
        memset(&conf, 0, sizeof conf);
        conf.max_workers = 1;
        conf.max_queued = 8;
        conf.request_timeout = 30;
        conf.failure_delay_max = 10;
        m.conf = &conf;
        m.clock = (struct manager_clock){.now_ms = fake_clock};
        fake_now = 1000000;
        started = dispatched = 0;
        fake_sessions = 0;
        last_status = 0;
        last_info = 0;
        last_text[0] = '\0';
        last_conn = NULL;
        for (size_t i = 0; i < ELEMENTSOF(conns); i++) {
                conns[i].clock = &m.clock;
                conns[i].req.user = (char *)"erin";
        }
        return 0;
}

static int teardown(void **state) {
        for (struct worker *w = m.workers, *n; w; w = n) {
                n = w->next;
                free(w);
        }
        m.workers = NULL;
        for (struct peer_fail *f = m.fails, *n; f; f = n) {
                n = f->next;
                free(f);
        }
        m.fails = NULL;
        return 0;
}

/* The first worker finishes: the stub list loses its oldest entry. */
static void worker_done(void) {
        struct worker **p = &m.workers;

        while (*p && (*p)->next)
                p = &(*p)->next;
        free(*p);
        *p = NULL;
}

static void test_queue_starts_in_arrival_order(void **state) {
        handle_request_in_worker(&m, &conns[0]);
        assert_int_equal(started, 1);
        handle_request_in_worker(&m, &conns[1]);
        handle_request_in_worker(&m, &conns[2]);
        assert_int_equal(started, 1);
        assert_int_equal(m.nqueued, 2);
        assert_ptr_equal(m.queue, &conns[1]);

        queue_run(&m); /* no free worker: nothing moves */
        assert_int_equal(m.nqueued, 2);

        worker_done();
        fake_now += 5000;
        queue_run(&m);
        assert_int_equal(started, 2);
        assert_int_equal(m.nqueued, 1);
        assert_false(conns[1].queued);
        assert_true(conns[2].queued);
        assert_ptr_equal(m.workers->conn, &conns[1]);
}

static void test_queue_answers_busy_after_request_timeout(void **state) {
        long long next = fake_now + 60000;

        handle_request_in_worker(&m, &conns[0]);
        handle_request_in_worker(&m, &conns[1]);
        queue_deadline(&m, &next);
        assert_int_equal(next, fake_now + 30000);

        fake_now += 29999;
        queue_run(&m);
        assert_true(conns[1].queued);
        assert_int_equal(last_status, 0);

        fake_now += 1;
        queue_run(&m);
        assert_false(conns[1].queued);
        assert_int_equal(m.nqueued, 0);
        assert_ptr_equal(last_conn, &conns[1]);
        assert_int_equal(last_status, PROTO_UNAVAILABLE);
        assert_string_equal(last_text, "pginad is busy; try again");
}

static void test_queue_full_answers_busy(void **state) {
        conf.max_queued = 2;
        handle_request_in_worker(&m, &conns[0]); /* runs */
        handle_request_in_worker(&m, &conns[1]);
        handle_request_in_worker(&m, &conns[2]);
        assert_int_equal(m.nqueued, 2);
        handle_request_in_worker(&m, &conns[3]);
        assert_int_equal(m.nqueued, 2);
        assert_false(conns[3].queued);
        assert_ptr_equal(last_conn, &conns[3]);
        assert_int_equal(last_status, PROTO_UNAVAILABLE);
}

static void test_queue_keeps_root_reserve(void **state) {
        conf.max_workers = 8;
        for (int i = 0; i < 7; i++) {
                conns[i].peer.uid = 1000;
                handle_request_in_worker(&m, &conns[i]);
        }
        assert_int_equal(started, 7);
        conns[7].peer.uid = 1000; /* the last eighth is root's */
        handle_request_in_worker(&m, &conns[7]);
        assert_int_equal(started, 7);
        assert_true(conns[7].queued);
        conns[8].peer.uid = 0;
        handle_request_in_worker(&m, &conns[8]);
        assert_int_equal(started, 8);
        assert_false(conns[8].queued);
}

static void test_queue_shutdown_answers_queued(void **state) {
        handle_request_in_worker(&m, &conns[0]);
        handle_request_in_worker(&m, &conns[1]);
        queue_shutdown(&m);
        assert_int_equal(m.nqueued, 0);
        assert_int_equal(last_status, PROTO_SHUTTING_DOWN);
        m.stopping = true;
        handle_request_in_worker(&m, &conns[2]);
        assert_false(conns[2].queued);
        assert_int_equal(last_status, PROTO_SHUTTING_DOWN);
}

static void test_keepalive_every_interval_while_queued(void **state) {
        long long next;

        handle_request_in_worker(&m, &conns[0]);
        handle_request_in_worker(&m, &conns[1]);
        last_info = 0;
        fake_now += PROTO_KEEPALIVE_MS - 1;
        next = fake_now + 60000;
        keepalives(&m, fake_now, &next);
        assert_int_equal(last_info, 0);
        assert_int_equal(next, fake_now + 1);

        fake_now += 1;
        next = fake_now + 60000;
        keepalives(&m, fake_now, &next);
        assert_int_equal(last_info, PROTO_INFO_KEEPALIVE);
        assert_int_equal(next, fake_now + PROTO_KEEPALIVE_MS);
}

static void test_parked_logon_pings_and_resumes(void **state) {
        struct job job = {.user = (char *)"erin", .state = JOB_RUNNING};
        struct conn *c = &conns[0];

        m.jobs.head = &job;
        m.conns = c;
        assert_true(user_has_job(&m, "erin"));
        assert_false(user_has_job(&m, "frank"));
        assert_true(user_has_job(&m, "frank@example.org")); /* a UPN may be any job's */
        park(&m, c);
        assert_true(c->parked);
        assert_int_equal(last_info, PROTO_INFO_TEXT);
        assert_non_null(strstr(last_text, "the logoff of erin"));

        last_info = 0;
        fake_now += PARKED_PING_MS - 1;
        parked_resume(&m);
        assert_int_equal(last_info, 0);
        fake_now += 1;
        parked_resume(&m);
        assert_int_equal(last_info, PROTO_INFO_PROGRESS);
        assert_int_equal(dispatched, 0);

        m.jobs.head = NULL; /* the logoff job ended */
        parked_resume(&m);
        assert_false(c->parked);
        assert_int_equal(dispatched, 1);
        assert_ptr_equal(last_conn, c);
}

/* ---- peer back-off: a failing non-root peer's answers and next requests wait 0, 1, 2, 4 ... s,
 * capped at failure_delay_max ---- */

static void test_peer_backoff_doubles_and_caps(void **state) {
        struct conn c = {.peer = {.uid = 1000}};
        const long long want[] = {0, 1, 2, 4, 8, 10, 10, 10, 10};

        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                peer_account(&m, &c, false);
                assert_int_equal(c.send_at, fake_now + want[i] * 1000);
                assert_int_equal(peer_wait_until(&m, &c), c.send_at);
                fake_now = c.send_at;
        }
}

static void test_peer_waits_until_backoff_ends(void **state) {
        struct conn c = {.peer = {.uid = 1000}}, other = {.peer = {.uid = 1000}};
        struct conn stranger = {.peer = {.uid = 1001}};

        peer_account(&m, &c, false);
        peer_account(&m, &c, false); /* 1 s */
        assert_true(peer_must_wait(&m, &other)); /* any connection of that uid */
        assert_false(peer_must_wait(&m, &stranger));
        fake_now += 999;
        assert_true(peer_must_wait(&m, &other));
        fake_now += 1;
        assert_false(peer_must_wait(&m, &other));
}

static void test_peer_success_resets(void **state) {
        struct conn c = {.peer = {.uid = 1000}};

        for (int i = 0; i < 4; i++)
                peer_account(&m, &c, false);
        peer_account(&m, &c, true);
        fake_now += 60000;
        peer_account(&m, &c, false);
        assert_int_equal(c.send_at, fake_now); /* the first failure again: no delay */
        peer_account(&m, &c, false);
        assert_int_equal(c.send_at, fake_now + 1000);
}

static void test_root_is_never_slowed(void **state) {
        struct conn c = {.peer = {.uid = 0}};

        for (int i = 0; i < 10; i++)
                peer_account(&m, &c, false);
        assert_int_equal(c.send_at, 0);
        assert_null(m.fails);
        assert_int_equal(peer_wait_until(&m, &c), 0);
}

static void test_peer_holds_at_most_two_requests(void **state) {
        struct conn c = {.peer = {.uid = 1000}}, q1 = {.peer = {.uid = 1000}};
        struct conn q2 = {.peer = {.uid = 1000}};
        struct worker w = {.conn = &q1};

        m.workers = &w; /* not the stubs' */
        assert_false(peer_must_wait(&m, &c));
        m.queue = &q2;
        assert_true(peer_must_wait(&m, &c)); /* one in a worker, one queued */
        m.workers = NULL; /* teardown frees the stubs' list */
        m.queue = NULL;
}

/* The SIGTERM line names the users whose logoff work it waits for, cut to its buffer. */
static void test_jobs_users_names_pending_jobs(void **state) {
        struct job a = {.user = (char *)"alice"}, b = {.user = (char *)"bob"};
        struct jobs j = {.head = NULL};
        char buf[64], small[16];

        (void)state;
        assert_string_equal("", jobs_users(&j, buf, sizeof buf));
        j.head = &a;
        assert_string_equal(" (alice)", jobs_users(&j, buf, sizeof buf));
        a.next = &b;
        assert_string_equal(" (alice, bob)", jobs_users(&j, buf, sizeof buf));
        assert_string_equal(" (alice, …)", jobs_users(&j, small, sizeof small));
        b.user = (char *)"a-very-long-user-name";
        assert_string_equal(" (…)", jobs_users(&(struct jobs){.head = &b}, small, sizeof small));
}


/* ---- logoff job retries: back-off, what holds them, what wakes them, and the journal ---- */

static void test_retry_delay_doubles_and_caps(void **state) {
        const unsigned want[] = {60, 120, 240, 480, 960, 1800, 1800, 1800};

        (void)state;
        for (unsigned i = 0; i < ELEMENTSOF(want); i++)
                assert_int_equal(jobs_retry_delay(i + 1, 60, 1800), want[i]);
        assert_int_equal(jobs_retry_delay(1000, 60, 1800), 1800); /* no overflow */
        assert_int_equal(jobs_retry_delay(3, 600, 60), 600); /* a max below the delay is the delay */
}

static struct job *retry_job(const char *user) {
        struct job *j = calloc(1, sizeof *j);

        assert_non_null(j);
        j->user = strdup(user);
        j->record = user_new(user);
        j->state = JOB_RUNNING;
        jobs_append(&m.jobs, j);
        return j;
}

static void jobs_teardown(void) {
        jobs_free(&m.jobs);
}

static void test_retry_waits_for_its_time(void **state) {
        struct job *j = retry_job("alice");

        conf.job_retry_delay = 60;
        conf.job_retry_max_delay = 1800;
        jobs_retry_later(&m, j, "pgsmb", "smb://srv/profiles: connection refused");
        assert_int_equal(j->state, JOB_RETRY);
        assert_int_equal(j->attempts, 1);
        assert_string_equal(j->retry_from, "pgsmb");
        assert_string_equal(j->last_error, "smb://srv/profiles: connection refused");
        assert_true(j->failing_since > 0);
        assert_false(user_has_job(&m, "alice")); /* a waiting retry holds no logon */
        assert_int_equal(jobs_count(&m.jobs), 1); /* but pginactl wait sees it */
        assert_int_equal(jobs_active(&m.jobs), 0);

        long long next = fake_now + 3600 * 1000;
        jobs_deadline(&m, &next);
        assert_int_equal(next, fake_now + 60 * 1000);

        fake_now += 59 * 1000;
        jobs_count_running(&m);
        jobs_start(&m);
        assert_int_equal(started, 0);
        fake_now += 1000;
        jobs_start(&m);
        assert_int_equal(started, 1);
        assert_int_equal(j->state, JOB_RUNNING);

        /* It failed again: twice the delay. */
        jobs_retry_later(&m, j, "pgsmb", "still refused");
        assert_int_equal(j->attempts, 2);
        assert_int_equal(j->next_try_ms, fake_now + 120 * 1000);
        jobs_teardown();
}

static void test_retry_holds_while_the_user_logs_on(void **state) {
        struct job *j = retry_job("alice");
        struct conn *c = &conns[0];

        conf.job_retry_delay = 1;
        conf.job_retry_max_delay = 1;
        jobs_retry_later(&m, j, "pgsmb", "share full");
        fake_now += 5000;
        fake_sessions = 1; /* alice is logged on here */
        jobs_start(&m);
        assert_int_equal(started, 0);
        fake_sessions = 0;
        c->req.user = (char *)"alice"; /* a logon of hers waits for a worker */
        c->req.type = PROTO_REQ_LOGIN;
        c->queued = true;
        m.conns = c;
        jobs_start(&m);
        assert_int_equal(started, 0);
        c->queued = false;
        m.conns = NULL;
        m.stopping = true; /* pginad stops: the journal keeps it */
        jobs_start(&m);
        assert_int_equal(started, 0);
        m.stopping = false;
        jobs_start(&m);
        assert_int_equal(started, 1);
        jobs_teardown();
}

static void test_retry_now_wakes_that_plugins_retries(void **state) {
        struct job *a = retry_job("alice"), *b = retry_job("bob");

        conf.job_retry_delay = 600;
        conf.job_retry_max_delay = 600;
        jobs_retry_later(&m, a, "pgsmb", "unreachable");
        jobs_retry_later(&m, b, "other", "unreachable");
        jobs_retry_now(&m, "pgsmb", "a call of carol");
        assert_int_equal(a->next_try_ms, fake_now);
        assert_int_equal(b->next_try_ms, fake_now + 600 * 1000);
        jobs_count_running(&m);
        jobs_start(&m);
        assert_int_equal(started, 1);
        assert_int_equal(a->state, JOB_RUNNING);
        assert_int_equal(b->state, JOB_RETRY);
        jobs_teardown();
}

static void test_logon_supersedes_a_waiting_retry(void **state) {
        struct job *a = retry_job("alice"), *b = retry_job("bob");

        (void)a;
        conf.job_retry_delay = 60;
        jobs_retry_later(&m, b, "pgsmb", "unreachable");
        jobs_superseded(&m, "alice"); /* running: kept */
        jobs_superseded(&m, "bob");
        assert_int_equal(jobs_count(&m.jobs), 1);
        assert_string_equal(m.jobs.head->user, "alice");
        jobs_teardown();
}

static void test_journal_round_trip_and_resume(void **state) {
        char dir[] = "/tmp/pgina-test-journal-XXXXXX", path[512];
        struct jobs j = {0};
        struct job *job;
        FILE *f;

        (void)state;
        assert_non_null(mkdtemp(dir));
        assert_int_equal(journal_open(&j, dir), 0);
        job = jobs_add(&j, user_new("alice"), true);
        assert_non_null(job);
        assert_int_equal(pgina_user_set(job->record, "home", "/home/alice"), 0);
        assert_int_equal(pgina_user_group_add(job->record, "staff"), 0);
        user_set_password(job->record, secret_from_cstr("hunter2"));
        job->attempts = 3;
        job->failing_since = 1700000000;
        job->next_try = 1700000600;
        job->state = JOB_RETRY;
        job->retry_from = strdup("pgsmb");
        job->last_error = strdup("the share is full");
        assert_int_equal(journal_write(&j, job), 0);

        /* The file holds no password. */
        {
                char buf[4096];
                size_t n;
                snprintf(path, sizeof path, "%s/jobs/alice.job", dir);
                assert_non_null(f = fopen(path, "rb"));
                n = fread(buf, 1, sizeof buf, f);
                fclose(f);
                assert_null(memmem(buf, n, "hunter2", 7));
        }
        /* A damaged file is set aside, not run, not lost. */
        snprintf(path, sizeof path, "%s/jobs/bob.job", dir);
        assert_non_null(f = fopen(path, "wb"));
        fputs("PGINA-JOB 1\ngarbage", f);
        fclose(f);

        jobs_free(&j); /* pginad exits: the journal keeps the job */
        assert_int_equal(journal_open(&j, dir), 0);
        assert_int_equal(journal_load(&j), 1);
        job = jobs_find_user(&j, "alice");
        assert_non_null(job);
        assert_true(job->resumed);
        assert_int_equal(job->state, JOB_QUEUED); /* a resumed job runs at once */
        assert_int_equal(job->attempts, 3);
        assert_true(job->session_close);
        assert_int_equal(job->failing_since, 1700000000);
        assert_string_equal(job->retry_from, "pgsmb");
        assert_string_equal(job->last_error, "the share is full");
        assert_string_equal(pgina_user_get(job->record, "home"), "/home/alice");
        assert_true(pgina_user_in_group(job->record, "staff"));
        assert_null(pgina_user_password(job->record));
        snprintf(path, sizeof path, "%s/jobs/bob.job.damaged", dir);
        assert_int_equal(access(path, F_OK), 0);

        jobs_remove(&j, job); /* done: out of the journal */
        snprintf(path, sizeof path, "%s/jobs/alice.job", dir);
        assert_int_equal(access(path, F_OK), -1);
        jobs_free(&j);
        assert_int_equal(journal_open(&j, dir), 0);
        assert_int_equal(journal_load(&j), 0);
        jobs_free(&j);
        snprintf(path, sizeof path, "rm -rf '%s'", dir);
        assert_int_equal(system(path), 0);
}

static void test_journal_decode_refuses_what_is_not_a_job(void **state) {
        _cleanup_pbuf_ struct pbuf b = {0};
        struct job job = {.user = (char *)"alice", .record = user_new("alice")}, *out = NULL;

        (void)state;
        pbuf_init(&b);
        assert_int_equal(journal_encode(&job, &b), 0);
        assert_int_equal(journal_decode(b.data, b.len, &out), 0);
        job_free(out);
        for (size_t cut = 0; cut < b.len; cut++) { /* every truncation */
                assert_true(journal_decode(b.data, cut, &out) < 0);
                assert_null(out);
        }
        user_free(job.record);
}

/* ---- connections (pginad-conn.c) ---- */

/* A connection of uid 1000 as conn_accept makes one, on a socket pair: *peer is the client's end. */
static struct conn *conn_open(int *peer) {
        struct conn *c = calloc(1, sizeof *c);
        int sv[2];

        assert_non_null(c);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        c->fd = sv[0];
        *peer = sv[1];
        c->peer.uid = 1000;
        c->clock = &m.clock;
        c->pidx = -1;
        c->idle_since = manager_now(&m);
        pbuf_init(&c->in);
        pbuf_init(&c->out);
        c->next = m.conns;
        m.conns = c;
        m.nconns++;
        return c;
}

/* The peer reads nothing: fill the socket until it takes no more. */
static void conn_fill(struct conn *c) {
        static const char block[4096];
        int small = 4096;

        assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        while (send(c->fd, block, sizeof block, MSG_DONTWAIT) > 0)
                ;
}

/* The peer reads everything there is; returns how much. */
static size_t peer_drain(int peer) {
        char buf[4096];
        size_t total = 0;
        ssize_t k;

        while ((k = read(peer, buf, sizeof buf)) > 0)
                total += (size_t)k;
        return total;
}

/* An answer of len bytes waiting in c->out. */
static void conn_queue_bytes(struct conn *c, size_t len) {
        _cleanup_pbuf_ struct pbuf b = {0};

        pbuf_init(&b);
        for (size_t i = 0; i < len; i++)
                assert_int_equal(pbuf_put_u8(&b, (uint8_t)i), 0);
        conn_queue(c, &b);
        assert_int_equal(c->out.len, len);
}

static long long poll_deadline(void) {
        struct pollfd pfd[4];
        long long next = fake_now + 3600 * 1000;

        (void)conns_poll(&m, pfd, 0, fake_now, &next);
        return next;
}

static void test_conn_idle_closed_after_idle_timeout(void **state) {
        int peer;
        struct conn *c = conn_open(&peer);

        assert_int_equal(poll_deadline(), fake_now + IDLE_TIMEOUT_MS);
        fake_now += IDLE_TIMEOUT_MS;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 1); /* at the limit, not past it */

        /* An answer makes it idle anew from then on. */
        __real_reply_simple(c, PROTO_OK, "ok");
        conns_sweep(&m, fake_now); /* flushed to the peer */
        assert_int_equal(c->out.len, 0);
        assert_true(peer_drain(peer) > 0);
        fake_now += IDLE_TIMEOUT_MS;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 1);
        fake_now += 1;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 0);
        assert_null(m.conns);
        assert_int_equal(read(peer, &(char){0}, 1), 0); /* the client sees the end */
        close(peer);
}

static void test_conn_busy_is_never_idle(void **state) {
        int peer;
        struct conn *c = conn_open(&peer);

        c->busy = true; /* a worker runs its request */
        assert_int_equal(poll_deadline(), fake_now + 3600 * 1000); /* no idle deadline */
        fake_now += 10 * IDLE_TIMEOUT_MS;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 1);
        c->busy = false;
        conn_free(&m, c);
        close(peer);
}

static void test_conn_send_timeout_closes_a_peer_that_takes_nothing(void **state) {
        int peer;
        struct conn *c = conn_open(&peer);
        long long t0 = fake_now;

        conn_fill(c);
        conn_queue_bytes(c, 1000);
        assert_int_equal(conn_send_deadline(c), t0 + SEND_TIMEOUT_MS);
        assert_int_equal(poll_deadline(), t0 + SEND_TIMEOUT_MS);
        fake_now += SEND_TIMEOUT_MS - 1;
        conns_sweep(&m, fake_now); /* tries to send: the peer takes nothing */
        assert_int_equal(m.nconns, 1);
        assert_int_equal(c->out.len, 1000);
        fake_now += 1;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 0); /* closed, its answers dropped */
        close(peer);
}

static void test_conn_send_timeout_counts_from_what_the_peer_takes(void **state) {
        int peer;
        struct conn *c = conn_open(&peer);
        size_t left;

        conn_fill(c);
        conn_queue_bytes(c, 60000); /* more than the socket holds */
        fake_now += SEND_TIMEOUT_MS - 1;
        assert_true(peer_drain(peer) > 0); /* a slow peer reads at last */
        conns_sweep(&m, fake_now);
        left = c->out.len;
        assert_true(left > 0 && left < 60000); /* some went out: the clock starts again */
        assert_int_equal(conn_send_deadline(c), fake_now + SEND_TIMEOUT_MS);
        fake_now += SEND_TIMEOUT_MS - 1;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 1);
        assert_int_equal(c->out.len, left);
        fake_now += 1;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 0);
        close(peer);
}

/* A slowed-down failure's answer is held until send_at: the peer cannot take it before, so the
 * send timeout counts from then. */
static void test_conn_send_timeout_counts_from_a_held_answer(void **state) {
        int peer;
        struct conn *c = conn_open(&peer);
        long long held = fake_now + 4000;

        conn_fill(c);
        c->send_at = held;
        conn_queue_bytes(c, 1000);
        assert_int_equal(conn_send_deadline(c), held + SEND_TIMEOUT_MS);
        fake_now = held + SEND_TIMEOUT_MS - 1;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 1);
        fake_now += 1;
        conns_sweep(&m, fake_now);
        assert_int_equal(m.nconns, 0);
        close(peer);
}

/* Logons that authenticate and never open their session cannot grow pginad: the oldest go. */
static void test_pending_logins_are_bounded(void **state) {
        size_t alice = 0, bob = 0;

        for (int i = 0; i < PENDING_LOGINS_PER_USER_MAX + 3; i++) {
                struct pending_login *pl = calloc(1, sizeof *pl);
                assert_non_null(pl);
                pl->record = user_new(i == 1 || i == 2 ? "bob" : "alice");
                snprintf(pl->token, sizeof pl->token, "%d", i);
                pl->next = m.logins;
                m.logins = pl;
                logins_bound(&m);
        }
        for (struct pending_login *pl = m.logins; pl; pl = pl->next) {
                alice += streq(pl->record->name, "alice");
                bob += streq(pl->record->name, "bob");
        }
        assert_int_equal(alice, PENDING_LOGINS_PER_USER_MAX);
        assert_int_equal(bob, 2);
        /* The newest stay: alice's oldest (token 0) and the next ones went first. */
        assert_string_equal(m.logins->token, "10");
        fake_now += TOKEN_TTL_MS + 1;
        logins_expire(&m);
        assert_null(m.logins);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                TEST(test_queue_starts_in_arrival_order),
                TEST(test_queue_answers_busy_after_request_timeout),
                TEST(test_queue_full_answers_busy),
                TEST(test_queue_keeps_root_reserve),
                TEST(test_queue_shutdown_answers_queued),
                TEST(test_keepalive_every_interval_while_queued),
                TEST(test_parked_logon_pings_and_resumes),
                TEST(test_peer_backoff_doubles_and_caps),
                TEST(test_peer_waits_until_backoff_ends),
                TEST(test_peer_success_resets),
                TEST(test_root_is_never_slowed),
                TEST(test_peer_holds_at_most_two_requests),
                cmocka_unit_test(test_jobs_users_names_pending_jobs),
                cmocka_unit_test(test_retry_delay_doubles_and_caps),
                TEST(test_pending_logins_are_bounded),
                TEST(test_retry_waits_for_its_time),
                TEST(test_retry_holds_while_the_user_logs_on),
                TEST(test_retry_now_wakes_that_plugins_retries),
                TEST(test_logon_supersedes_a_waiting_retry),
                cmocka_unit_test(test_journal_round_trip_and_resume),
                cmocka_unit_test(test_journal_decode_refuses_what_is_not_a_job),
                TEST(test_conn_idle_closed_after_idle_timeout),
                TEST(test_conn_busy_is_never_idle),
                TEST(test_conn_send_timeout_closes_a_peer_that_takes_nothing),
                TEST(test_conn_send_timeout_counts_from_what_the_peer_takes),
                TEST(test_conn_send_timeout_counts_from_a_held_answer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
