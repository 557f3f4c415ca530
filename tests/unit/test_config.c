/* Unit tests of pgina.conf parsing (src/common/config.c): a good file, defaults, and every bad
 * line refused with FILE:LINE naming what is wrong. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"

static char dir[] = "/tmp/pgina-test-config.XXXXXX";
static char path[256];

static int setup(void **state) {
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof path, "%s/pgina.conf", dir);
        return 0;
}

static int teardown(void **state) {
        unlink(path);
        rmdir(dir);
        return 0;
}

static void write_conf(const char *text) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* Load text; expect failure; return the errors (caller frees). */
static char *load_bad(const char *text) {
        struct conf *c = NULL;
        char *errors = NULL;

        write_conf(text);
        assert_int_equal(conf_load(path, &c, &errors), -EINVAL);
        assert_null(c);
        assert_non_null(errors);
        return errors;
}

/* The error text contains "PATH:LINE: " followed (somewhere) by needle. */
static void assert_error_at(const char *errors, unsigned line, const char *needle) {
        char prefix[300];
        const char *p;

        snprintf(prefix, sizeof prefix, "%s:%u: ", path, line);
        p = strstr(errors, prefix);
        if (!p)
                fail_msg("no error at %s in:\n%s", prefix, errors);
        {
                const char *eol = strchr(p, '\n');
                size_t n = eol ? (size_t)(eol - p) : strlen(p);
                char *one = strndup(p, n);
                assert_non_null(one);
                if (!strstr(one, needle))
                        fail_msg("error at line %u is '%s', expected it to mention '%s'", line, one,
                                 needle);
                free(one);
        }
}

static void expect_one_error(const char *text, unsigned line, const char *needle) {
        _cleanup_free_ char *errors = load_bad(text);
        assert_error_at(errors, line, needle);
}

static void test_good_config_is_loaded(void **state) {
        _cleanup_conf_ struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;
        char **names = NULL;
        size_t n;
        const struct conf_entry *e;

        write_conf("# pgina.conf\n"
                   "[service]\n"
                   "socket = /run/test/p.sock\n"
                   "state_dir = /var/lib/ptest\n"
                   "plugin_dir = /opt/plugins\n"
                   "request_timeout = 30\n"
                   "shutdown_timeout = 0\n"
                   "failure_delay_max = 600\n"
                   "max_workers = 8\n"
                   "max_queued = 0\n"
                   "log_level = debug\n"
                   "\n"
                   "[order]\n"
                   "authentication = ldap localmachine\n"
                   "authorization = localmachine\n"
                   "gateway = localmachine pgsmb\n"
                   "notification = pgsmb localmachine\n"
                   "change_password = localmachine\n"
                   "\n"
                   "[localmachine]\n"
                   "always_authenticate = false\n"
                   "authz_groups = staff users\n"
                   "[localmachine]\n"
                   "always_authenticate = true\n");
        assert_int_equal(conf_load(path, &c, &errors), 0);
        assert_null(errors);
        assert_non_null(c);
        assert_string_equal(c->path, path);
        assert_string_equal(c->socket_path, "/run/test/p.sock");
        assert_string_equal(c->state_dir, "/var/lib/ptest");
        assert_string_equal(c->plugin_dir, "/opt/plugins");
        assert_int_equal(c->request_timeout, 30);
        assert_int_equal(c->shutdown_timeout, 0);
        assert_int_equal(c->failure_delay_max, 600);
        assert_int_equal(c->max_workers, 8);
        assert_int_equal(c->max_queued, 0);
        assert_int_equal(c->log_level, LOG_DEBUG);

        assert_int_equal(c->norder[CONF_STAGE_AUTHENTICATION], 2);
        assert_string_equal(c->order[CONF_STAGE_AUTHENTICATION][0], "ldap");
        assert_string_equal(c->order[CONF_STAGE_AUTHENTICATION][1], "localmachine");
        assert_int_equal(c->norder[CONF_STAGE_AUTHORIZATION], 1);
        assert_int_equal(c->norder[CONF_STAGE_GATEWAY], 2);
        assert_string_equal(c->order[CONF_STAGE_NOTIFICATION][0], "pgsmb");
        assert_int_equal(c->norder[CONF_STAGE_CHANGE_PASSWORD], 1);

        e = conf_find(c, "localmachine", "always_authenticate");
        assert_non_null(e);
        assert_string_equal(e->value, "true");
        assert_int_equal(e->line, 24);
        e = conf_find(c, "localmachine", "authz_groups");
        assert_non_null(e);
        assert_string_equal(e->value, "staff users");
        assert_int_equal(e->line, 22);
        assert_null(conf_find(c, "localmachine", "nope"));
        assert_null(conf_find(c, "other", "authz_groups"));

        n = conf_plugin_names(c, &names);
        assert_int_equal(n, 3);
        assert_string_equal(names[0], "ldap");
        assert_string_equal(names[1], "localmachine");
        assert_string_equal(names[2], "pgsmb");
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static void test_empty_config_gets_defaults(void **state) {
        _cleanup_conf_ struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;

        write_conf("");
        assert_int_equal(conf_load(path, &c, &errors), 0);
        assert_null(errors);
        assert_string_equal(c->socket_path, "/run/pgina/pginad.sock");
        assert_string_equal(c->state_dir, PGINA_STATE_DIR_DEFAULT);
        assert_string_equal(c->plugin_dir, PGINA_PLUGIN_DIR_DEFAULT);
        assert_int_equal(c->request_timeout, 300);
        assert_int_equal(c->shutdown_timeout, 60);
        assert_int_equal(c->failure_delay_max, 8);
        assert_int_equal(c->max_workers, 64);
        assert_int_equal(c->max_queued, 256);
        assert_int_equal(c->log_level, LOG_INFO);
        assert_null(c->metrics_textfile);
        assert_int_equal(c->metrics_interval, 60);
        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                assert_int_equal(c->norder[s], 0);
}

static void test_later_order_line_replaces_earlier(void **state) {
        _cleanup_conf_ struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;

        write_conf("[order]\nauthentication = a b\nauthentication = c\n");
        assert_int_equal(conf_load(path, &c, &errors), 0);
        assert_int_equal(c->norder[CONF_STAGE_AUTHENTICATION], 1);
        assert_string_equal(c->order[CONF_STAGE_AUTHENTICATION][0], "c");
}

static void test_missing_file_is_named(void **state) {
        struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;
        char missing[300];

        snprintf(missing, sizeof missing, "%s/absent.conf", dir);
        assert_int_equal(conf_load(missing, &c, &errors), -ENOENT);
        assert_null(c);
        assert_non_null(errors);
        assert_non_null(strstr(errors, missing));
}

static void test_bad_socket_path(void **state) {
        expect_one_error("[service]\nsocket = relative.sock\n", 2, "socket");
}

static void test_overlong_socket_path(void **state) {
        char text[400];
        char longp[121]; /* sun_path holds 108 bytes with the NUL */

        memset(longp, 'a', sizeof longp - 1);
        longp[0] = '/';
        longp[sizeof longp - 1] = 0;
        snprintf(text, sizeof text, "[service]\n\nsocket = %s\n", longp);
        expect_one_error(text, 3, "socket");
}

static void test_relative_state_and_plugin_dir(void **state) {
        _cleanup_free_ char *errors = load_bad("[service]\nstate_dir = var/lib\nplugin_dir = plugins\n");
        assert_error_at(errors, 2, "state_dir");
        assert_error_at(errors, 3, "plugin_dir");
}

static void test_bad_timeouts(void **state) {
        _cleanup_free_ char *errors = load_bad("[service]\n"
                                               "request_timeout = 0\n"
                                               "request_timeout = 12x\n"
                                               "shutdown_timeout = -1\n"
                                               "failure_delay_max = 601\n"
                                               "request_timeout = 86401\n"
                                               "shutdown_timeout =\n");
        assert_error_at(errors, 2, "request_timeout");
        assert_error_at(errors, 3, "12x");
        assert_error_at(errors, 4, "shutdown_timeout");
        assert_error_at(errors, 5, "failure_delay_max");
        assert_error_at(errors, 6, "request_timeout");
        assert_error_at(errors, 7, "shutdown_timeout");
}

static void test_bad_worker_limits(void **state) {
        _cleanup_free_ char *errors = load_bad("[service]\n"
                                               "max_workers = 0\n"
                                               "max_workers = 257\n"
                                               "max_queued = 513\n"
                                               "max_queued = -1\n"
                                               "max_workers = many\n");
        assert_error_at(errors, 2, "max_workers");
        assert_error_at(errors, 3, "max_workers");
        assert_error_at(errors, 4, "max_queued");
        assert_error_at(errors, 5, "max_queued");
        assert_error_at(errors, 6, "many");
}

static void test_metrics_textfile(void **state) {
        _cleanup_conf_ struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;
        _cleanup_free_ char *bad = load_bad("[service]\n"
                                            "metrics_textfile = pgina.prom\n"
                                            "metrics_textfile = /var/lib/prometheus/\n"
                                            "metrics_interval = 0\n"
                                            "metrics_interval = 86401\n"
                                            "metrics_interval = soon\n");

        assert_error_at(bad, 2, "pgina.prom");
        assert_error_at(bad, 3, "/var/lib/prometheus/");
        assert_error_at(bad, 4, "metrics_interval");
        assert_error_at(bad, 5, "metrics_interval");
        assert_error_at(bad, 6, "soon");
        write_conf("[service]\nmetrics_textfile = /var/lib/prometheus/node-exporter/pgina.prom\n"
                   "metrics_interval = 15\n");
        assert_int_equal(conf_load(path, &c, &errors), 0);
        assert_string_equal(c->metrics_textfile, "/var/lib/prometheus/node-exporter/pgina.prom");
        assert_int_equal(c->metrics_interval, 15);
        conf_free(TAKE_PTR(c));
        /* empty: none (a later line turns an earlier one off) */
        write_conf("[service]\nmetrics_textfile = /x.prom\nmetrics_textfile =\n");
        assert_int_equal(conf_load(path, &c, &errors), 0);
        assert_null(c->metrics_textfile);
}

static void test_bad_log_level(void **state) {
        expect_one_error("[service]\nlog_level = chatty\n", 2, "chatty");
}

static void test_unknown_core_key(void **state) {
        expect_one_error("[service]\nsocket = /run/x.sock\nsockett = /run/y.sock\n", 3, "sockett");
}

static void test_unknown_stage_in_order(void **state) {
        expect_one_error("[order]\nauthentication = localmachine\nauthorisation = localmachine\n", 3,
                         "authorisation");
}

static void test_bad_plugin_name_in_order(void **state) {
        expect_one_error("[order]\n\n\nauthentication = localmachine Local-Machine\n", 4,
                         "Local-Machine");
}

static void test_duplicate_plugin_in_a_stage(void **state) {
        expect_one_error("[order]\ngateway = localmachine pgsmb localmachine\n", 2, "twice");
}

static void test_same_plugin_in_two_stages_is_fine(void **state) {
        _cleanup_conf_ struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;

        write_conf("[order]\nauthentication = localmachine\ngateway = localmachine\n");
        assert_int_equal(conf_load(path, &c, &errors), 0);
        assert_null(errors);
}

static void test_syntax_error_line(void **state) {
        expect_one_error("[service]\nlog_level = info\nthis line has no equals sign\n", 3, "syntax");
}

static void test_unterminated_section_header(void **state) {
        expect_one_error("[service]\nlog_level = info\n[order\n", 3, "syntax");
}

static void test_key_outside_any_section(void **state) {
        expect_one_error("# top\nsocket = /run/x.sock\n", 2, "outside");
}

static void test_bad_plugin_section_name(void **state) {
        expect_one_error("[service]\n[Local-Machine]\nfoo = bar\n", 3, "Local-Machine");
}

static void test_long_line(void **state) {
        size_t n = 5000;
        char *text = malloc(n + 100);
        char *errors;

        assert_non_null(text);
        strcpy(text, "[localmachine]\nauthz_groups = ");
        size_t off = strlen(text);
        memset(text + off, 'g', n);
        strcpy(text + off + n, "\nmirror_groups = true\n");
        errors = load_bad(text);
        assert_error_at(errors, 2, "longer than");
        free(errors);
        free(text);
}

/* fuzz_config's find: a NUL byte was read as a long line, and the line after it swallowed. */
static void test_nul_byte_named_on_its_line_and_next_line_kept(void **state) {
        static const char text[] = "[service]\nmax_workers = 4\0junk\nbogus = 1\n";
        struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(conf_load(path, &c, &errors), -EINVAL);
        assert_error_at(errors, 2, "NUL byte");
        assert_error_at(errors, 3, "bogus");
        assert_null(strstr(errors, "longer than"));
}

static void test_every_bad_line_reported_not_just_first(void **state) {
        _cleanup_free_ char *errors = load_bad("[service]\n"
                                               "log_level = loud\n"
                                               "nonsense = 1\n"
                                               "[order]\n"
                                               "gateway = a a\n");
        assert_error_at(errors, 2, "loud");
        assert_error_at(errors, 3, "nonsense");
        assert_error_at(errors, 5, "twice");
}

static void test_conf_error_format(void **state) {
        _cleanup_free_ char *e = NULL;

        conf_error(&e, "/etc/x.conf", 7, "bad %s", "thing");
        conf_error(&e, "/etc/x.conf", 0, "cannot open");
        assert_string_equal(e, "/etc/x.conf:7: bad thing\n/etc/x.conf: cannot open\n");
}

static void test_stage_names_and_bits(void **state) {
        assert_string_equal(conf_stage_name(CONF_STAGE_AUTHENTICATION), "authentication");
        assert_string_equal(conf_stage_name(CONF_STAGE_CHANGE_PASSWORD), "change_password");
        assert_int_equal(conf_stage_bit(CONF_STAGE_AUTHENTICATION), 1u << 0);
        assert_int_equal(conf_stage_bit(CONF_STAGE_GATEWAY), 1u << 2);
        assert_true(conf_is_core_section("service"));
        assert_true(conf_is_core_section("order"));
        assert_false(conf_is_core_section("localmachine"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_config_is_loaded),
                cmocka_unit_test(test_empty_config_gets_defaults),
                cmocka_unit_test(test_later_order_line_replaces_earlier),
                cmocka_unit_test(test_missing_file_is_named),
                cmocka_unit_test(test_bad_socket_path),
                cmocka_unit_test(test_overlong_socket_path),
                cmocka_unit_test(test_relative_state_and_plugin_dir),
                cmocka_unit_test(test_bad_timeouts),
                cmocka_unit_test(test_bad_worker_limits),
                cmocka_unit_test(test_metrics_textfile),
                cmocka_unit_test(test_bad_log_level),
                cmocka_unit_test(test_unknown_core_key),
                cmocka_unit_test(test_unknown_stage_in_order),
                cmocka_unit_test(test_bad_plugin_name_in_order),
                cmocka_unit_test(test_duplicate_plugin_in_a_stage),
                cmocka_unit_test(test_same_plugin_in_two_stages_is_fine),
                cmocka_unit_test(test_syntax_error_line),
                cmocka_unit_test(test_unterminated_section_header),
                cmocka_unit_test(test_key_outside_any_section),
                cmocka_unit_test(test_bad_plugin_section_name),
                cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_nul_byte_named_on_its_line_and_next_line_kept),
                cmocka_unit_test(test_every_bad_line_reported_not_just_first),
                cmocka_unit_test(test_conf_error_format),
                cmocka_unit_test(test_stage_names_and_bits),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
