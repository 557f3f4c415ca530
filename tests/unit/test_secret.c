/* Unit tests of src/common/secret.c: the one type a password lives in. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_secret_copies_and_terminates),
                cmocka_unit_test(test_secret_from_cstr_and_empty),
                cmocka_unit_test(test_secret_max_enforced),
                cmocka_unit_test(test_secret_dup_is_independent),
                cmocka_unit_test(test_secret_free_null_and_free_wiped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
