/* Unit tests of src/libpgina-plugin/secret.c: the one type a password lives in. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "secret.h"
#include "util.h"

static void test_secret_copies_and_terminates(void **state) {
        char src[] = "hunter2XYZ";
        _cleanup_secret_ struct secret *s = secret_new(src, 7);

        assert_non_null(s);
        assert_int_equal(s->len, 7);
        assert_string_equal(s->data, "hunter2");
        assert_true(s->map_len >= sizeof *s + 8);
        memset(src, 0, sizeof src); /* a copy, not a reference */
        assert_string_equal(s->data, "hunter2");
}

static void test_secret_from_cstr_and_empty(void **state) {
        _cleanup_secret_ struct secret *a = secret_from_cstr("pw"), *e = secret_from_cstr(""),
                                       *n = secret_from_cstr(NULL);

        assert_non_null(a);
        assert_int_equal(a->len, 2);
        assert_non_null(e);
        assert_int_equal(e->len, 0);
        assert_string_equal(e->data, "");
        assert_non_null(n);
        assert_int_equal(n->len, 0);
}

static void test_secret_max_enforced(void **state) {
        char buf[SECRET_MAX + 1];
        struct secret *s;

        memset(buf, 'p', sizeof buf);
        s = secret_new(buf, SECRET_MAX);
        assert_non_null(s);
        assert_int_equal(s->len, SECRET_MAX);
        secret_free(s);
        errno = 0;
        assert_null(secret_new(buf, SECRET_MAX + 1));
        assert_int_equal(errno, E2BIG);
}

static void test_secret_dup_is_independent(void **state) {
        _cleanup_secret_ struct secret *a = secret_from_cstr("one"), *b = NULL;

        b = secret_dup(a);
        assert_non_null(b);
        assert_ptr_not_equal(a->data, b->data);
        assert_string_equal(b->data, "one");
        a->data[0] = 'X';
        assert_string_equal(b->data, "one");
        assert_null(secret_dup(NULL));
}

static void test_secret_free_null_and_free_wiped(void **state) {
        char *s = strdup("temporary password");

        secret_free(NULL);
        free_wiped(NULL);
        assert_non_null(s);
        free_wiped(s);
}

/* What a fork child sees of s: 0 = zeros (len 0, no data), 1 = "hunter2", 2 = anything else.
 * grandchild: the child forks once more and reports what its own child saw. */
static int seen_by_child(const struct secret *s, bool grandchild) {
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                if (grandchild) {
                        (void)secret_inherit(s, false);
                        _exit(seen_by_child(s, false));
                }
                if (s->len == 0 && s->map_len == 0 && !s->data)
                        _exit(0);
                _exit(s->data && strcmp(s->data, "hunter2") == 0 ? 1 : 2);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void test_secret_wiped_in_fork_child_unless_handed_over(void **state) {
        _cleanup_secret_ struct secret *s = secret_from_cstr("hunter2");

        assert_non_null(s);
        assert_int_equal(seen_by_child(s, false), 0);
        assert_string_equal(s->data, "hunter2"); /* the parent's copy is untouched */
        assert_int_equal(secret_inherit(s, true), 0);
        assert_int_equal(seen_by_child(s, false), 1);
        /* the child that got it hands it to no one */
        assert_int_equal(seen_by_child(s, true), 0);
        assert_int_equal(secret_inherit(s, false), 0);
        assert_int_equal(seen_by_child(s, false), 0);
        assert_int_equal(secret_inherit(NULL, true), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_secret_copies_and_terminates),
                cmocka_unit_test(test_secret_from_cstr_and_empty),
                cmocka_unit_test(test_secret_max_enforced),
                cmocka_unit_test(test_secret_dup_is_independent),
                cmocka_unit_test(test_secret_free_null_and_free_wiped),
                cmocka_unit_test(test_secret_wiped_in_fork_child_unless_handed_over),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
