/* Unit tests of the master's request queue, parking and keepalives (src/daemon/pginad-queue.c)
 * and of its peer back-off (src/daemon/pginad-peer.c) with a fake clock: no sockets, no forks,
 * no sleeps. Workers and replies are stubs here. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void reply_simple(struct conn *c, uint32_t status, const char *message) {
        last_conn = c;
        last_status = status;
        snprintf(last_text, sizeof last_text, "%s", message);
}

void reply_info(struct conn *c, uint8_t kind, const char *text) {
        last_conn = c;
        last_info = kind;
        snprintf(last_text, sizeof last_text, "%s", text);
}

void request_free(struct request *r) { memset(r, 0, sizeof *r); }

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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
