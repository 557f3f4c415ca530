/* Unit tests of the master's peer back-off (src/daemon/pginad-peer.c) with a fake clock: a
 * failing non-root peer's answers and next requests wait 0, 1, 2, 4 ... s, capped. */
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

static long long fake_now;
static long long fake_clock(void *userdata) {
        (void)userdata;
        return fake_now;
}

static struct conf conf;
static struct manager m;

static int setup(void **state) {
        memset(&m, 0, sizeof m);
        memset(&conf, 0, sizeof conf);
        conf.failure_delay_max = 10;
        m.conf = &conf;
        m.clock = (struct manager_clock){.now_ms = fake_clock};
        fake_now = 5000000;
        return 0;
}

static int teardown(void **state) {
        for (struct peer_fail *f = m.fails, *n; f; f = n) {
                n = f->next;
                free(f);
        }
        m.fails = NULL;
        return 0;
}

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

        m.workers = &w;
        assert_false(peer_must_wait(&m, &c));
        m.queue = &q2;
        assert_true(peer_must_wait(&m, &c)); /* one in a worker, one queued */
        m.workers = NULL;
        m.queue = NULL;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_peer_backoff_doubles_and_caps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_peer_waits_until_backoff_ends, setup, teardown),
                cmocka_unit_test_setup_teardown(test_peer_success_resets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_is_never_slowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_peer_holds_at_most_two_requests, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
