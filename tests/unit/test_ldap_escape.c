/* The ldap plugin's string building: RFC 4514 DN values, RFC 4515 filter values, %u patterns,
 * blank-separated words (DNs hold commas). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ldap-escape.h"

static void check_escape(enum pgldap_escape_kind kind, const char *in, const char *want) {
        char out[256];

        assert_int_equal(pgldap_escape(kind, in, out, sizeof out), 0);
        assert_string_equal(out, want);
}

static void test_dn_value(void **state) {
        (void)state;
        check_escape(PGLDAP_ESCAPE_DN, "alice", "alice");
        check_escape(PGLDAP_ESCAPE_DN, "a,b+c\"d\\e<f>g;h=i", "a\\2cb\\2bc\\22d\\5ce\\3cf\\3eg\\3bh\\3di");
        check_escape(PGLDAP_ESCAPE_DN, "#lead", "\\23lead");
        check_escape(PGLDAP_ESCAPE_DN, " both ", "\\20both\\20");
        check_escape(PGLDAP_ESCAPE_DN, "in side", "in side");
        check_escape(PGLDAP_ESCAPE_DN, "a#b", "a#b");
        check_escape(PGLDAP_ESCAPE_DN, "nl\n", "nl\\0a");
        check_escape(PGLDAP_ESCAPE_DN, "", "");
}

static void test_filter_value(void **state) {
        (void)state;
        check_escape(PGLDAP_ESCAPE_FILTER, "alice", "alice");
        check_escape(PGLDAP_ESCAPE_FILTER, "*)(uid=*", "\\2a\\29\\28uid=\\2a");
        check_escape(PGLDAP_ESCAPE_FILTER, "a\\b", "a\\5cb");
        check_escape(PGLDAP_ESCAPE_FILTER, "cn=x,dc=y", "cn=x,dc=y");
}

static void test_escape_too_long(void **state) {
        char out[6];
        (void)state;
        assert_int_equal(pgldap_escape(PGLDAP_ESCAPE_FILTER, "abcde", out, sizeof out), 0);
        assert_int_equal(pgldap_escape(PGLDAP_ESCAPE_FILTER, "abcdef", out, sizeof out), -ENAMETOOLONG);
        assert_int_equal(pgldap_escape(PGLDAP_ESCAPE_FILTER, "ab*", out, sizeof out), 0);
        assert_int_equal(pgldap_escape(PGLDAP_ESCAPE_FILTER, "abc*", out, sizeof out), -ENAMETOOLONG);
}

static void test_expand(void **state) {
        char *s = NULL;
        (void)state;

        assert_int_equal(pgldap_expand("uid=%u,ou=people", 'u', "a,b", PGLDAP_ESCAPE_DN, &s), 0);
        assert_string_equal(s, "uid=a\\2cb,ou=people");
        free(s);
        assert_int_equal(pgldap_expand("(&(uid=%u)(cn=%u))", 'u', "x*", PGLDAP_ESCAPE_FILTER, &s), 0);
        assert_string_equal(s, "(&(uid=x\\2a)(cn=x\\2a))");
        free(s);
        assert_int_equal(pgldap_expand("100%% %u", 'u', "me", PGLDAP_ESCAPE_DN, &s), 0);
        assert_string_equal(s, "100% me");
        free(s);
        s = NULL;
        assert_int_equal(pgldap_expand("cn=%g", 'u', "me", PGLDAP_ESCAPE_DN, &s), -EINVAL);
        assert_null(s);
        assert_int_equal(pgldap_expand("trailing %", 'u', "me", PGLDAP_ESCAPE_DN, &s), -EINVAL);
}

static void test_pattern_has(void **state) {
        (void)state;
        assert_int_equal(pgldap_pattern_has("uid=%u,dc=x", 'u'), 1);
        assert_int_equal(pgldap_pattern_has("uid=alice", 'u'), 0);
        assert_int_equal(pgldap_pattern_has("uid=%x", 'u'), -EINVAL);
        assert_int_equal(pgldap_pattern_has("cn=%g", 'g'), 1);
}

static void test_words(void **state) {
        const char *s = "  allow:cn=a,dc=x\tdeny:!cn=b\\20c,dc=x  ";
        char *w;
        (void)state;

        assert_int_equal(pgldap_words(s), 2);
        assert_int_equal(pgldap_words(NULL), 0);
        assert_int_equal(pgldap_words("   "), 0);
        w = pgldap_word(s, 0);
        assert_string_equal(w, "allow:cn=a,dc=x");
        free(w);
        w = pgldap_word(s, 1);
        assert_string_equal(w, "deny:!cn=b\\20c,dc=x");
        free(w);
        assert_null(pgldap_word(s, 2));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dn_value),     cmocka_unit_test(test_filter_value),
                cmocka_unit_test(test_escape_too_long), cmocka_unit_test(test_expand),
                cmocka_unit_test(test_pattern_has),  cmocka_unit_test(test_words),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
