/* Unit tests of pginad's metrics (src/daemon/pginad-metrics.c): worker result rows counted by
 * plugin, stage and result; logons by scenario and result with their phases (and the log line's
 * text); plugin figures by their name's ending; fixed tables that drop what does not fit; and
 * the Prometheus text: one HELP and TYPE per family, cumulative buckets, _sum and _count. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pginad-metrics.h"
#include "proto.h"
#include "util.h"

/* A worker's result as the master parses it: rows of "key", "value", ... NULL, ending with NULL. */
static void result_of_rows(struct proto_result *res, uint32_t status, const char *const *const *rows) {
        _cleanup_pbuf_ struct pbuf b = {0};
        struct pbuf payload;
        uint16_t type;
        uint32_t n = 0;

        while (rows[n])
                n++;
        pbuf_init(&b);
        assert_int_equal(proto_result_begin(&b, status, "", n), 0);
        for (uint32_t i = 0; i < n; i++) {
                uint32_t f = 0;
                while (rows[i][2 * f])
                        f++;
                assert_int_equal(proto_row_begin(&b, f), 0);
                for (uint32_t k = 0; k < f; k++)
                        assert_int_equal(proto_row_field(&b, rows[i][2 * k], rows[i][2 * k + 1]), 0);
        }
        assert_int_equal(proto_frame_end(&b), 0);
        assert_int_equal(proto_frame_open(b.data, b.len, &type, &payload), 0);
        assert_int_equal(proto_result_parse(&payload, res), 0);
}

static const char *const auth_row[] = {"stage", "authentication", "plugin", "ldap", "result", "success",
                                       "message", "", "retry", "", "ms", "120", NULL};
static const char *const authz_row[] = {"stage", "authorization", "plugin", "ldap", "result", "success",
                                        "ms", "3", NULL};
static const char *const gw_row[] = {"stage", "gateway", "plugin", "pgsmb", "result", "success", "ms", "650",
                                     "metric:download_ms", "400", "metric:extract_ms", "150",
                                     "metric:download_bytes", "1048576", NULL};
static const char *const gw2_row[] = {"stage", "gateway", "plugin", "localmachine", "result", "success", "ms",
                                      "12", NULL};
static const char *const final_row[] = {"stage", "final", "result", "success", NULL};
static const char *const user_row[] = {"user", "alice", "uid", "1000", NULL};

static char *render(const struct metrics *mx) {
        struct metrics_gauges g = {.started = 1700000000, .sessions = 2, .jobs = {1, 2, 3}};
        char *text = NULL;
        size_t len = 0;

        assert_int_equal(metrics_render(mx, &g, &text, &len), 0);
        assert_int_equal(strlen(text), len);
        return text;
}

static void assert_line(const char *text, const char *line) {
        size_t n = strlen(line);

        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return;
        fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_logon_phases_and_log_text(void **state) {
        static const char *const *const rows[] = {auth_row, authz_row, gw_row, gw2_row, final_row, user_row, NULL};
        _cleanup_free_ struct metrics *mx = calloc(1, sizeof *mx);
        struct proto_result res;
        char phases[METRICS_PHASES_MAX];

        assert_non_null(mx);
        result_of_rows(&res, PROTO_OK, rows);
        metrics_result(mx, &res);
        metrics_logon(mx, METRICS_LOGON, PROTO_OK, &res, 812, phases, sizeof phases);
        proto_result_free(&res);
        assert_string_equal(phases, "812 ms (authentication 120 ms, authorization 3 ms, gateway 662 ms: "
                                    "pgsmb download 400 ms extract 150 ms)");
        assert_int_equal(mx->logons[METRICS_LOGON][METRICS_OK], 1);
        assert_int_equal(mx->phases[METRICS_GATEWAY].count, 1);
        assert_int_equal(mx->nplugins, 3);

        _cleanup_free_ char *text = render(mx);
        assert_line(text, "pgina_logons_total{scenario=\"logon\",result=\"ok\"} 1");
        assert_line(text, "pgina_logons_total{scenario=\"unlock\",result=\"auth_failed\"} 0");
        /* 0.662 s: in le=1 and above, not in le=0.5; cumulative */
        assert_line(text, "pgina_logon_phase_seconds_bucket{phase=\"gateway\",le=\"0.5\"} 0");
        assert_line(text, "pgina_logon_phase_seconds_bucket{phase=\"gateway\",le=\"1\"} 1");
        assert_line(text, "pgina_logon_phase_seconds_bucket{phase=\"gateway\",le=\"1800\"} 1");
        assert_line(text, "pgina_logon_phase_seconds_bucket{phase=\"gateway\",le=\"+Inf\"} 1");
        assert_line(text, "pgina_logon_phase_seconds_sum{phase=\"gateway\"} 0.662");
        assert_line(text, "pgina_logon_phase_seconds_count{phase=\"total\"} 1");
        assert_line(text, "pgina_logon_phase_seconds_bucket{phase=\"authorization\",le=\"0.005\"} 1");
        assert_line(text, "pgina_plugin_calls_total{plugin=\"pgsmb\",stage=\"gateway\",result=\"success\"} 1");
        assert_line(text, "pgina_plugin_call_seconds_sum{plugin=\"ldap\",stage=\"authentication\"} 0.120");
        assert_line(text, "pgina_plugin_seconds_bucket{plugin=\"pgsmb\",figure=\"download\",le=\"0.5\"} 1");
        assert_line(text, "pgina_plugin_seconds_count{plugin=\"pgsmb\",figure=\"extract\"} 1");
        assert_line(text, "pgina_plugin_bytes_total{plugin=\"pgsmb\",figure=\"download\"} 1048576");
        assert_line(text, "pgina_plugin_failures_total{plugin=\"pgsmb\",reason=\"crash\"} 0");
        assert_line(text, "pgina_sessions 2");
        assert_line(text, "pgina_logoff_jobs{state=\"retry\"} 3");
        assert_line(text, "# TYPE pgina_logon_phase_seconds histogram");
        assert_line(text, "# TYPE pgina_plugin_call_seconds summary");
}

/* A denied logon ran no gateway: no gateway phase, and its text says only what ran. */
static void test_phases_of_what_ran(void **state) {
        static const char *const deny_row[] = {"stage", "authorization", "plugin", "ldap", "result", "failure",
                                               "ms", "7", NULL};
        static const char *const *const rows[] = {auth_row, deny_row, final_row, NULL};
        _cleanup_free_ struct metrics *mx = calloc(1, sizeof *mx);
        struct proto_result res;
        char phases[METRICS_PHASES_MAX];

        assert_non_null(mx);
        result_of_rows(&res, PROTO_DENIED, rows);
        metrics_result(mx, &res);
        metrics_logon(mx, METRICS_CREDUI, PROTO_DENIED, &res, 140, phases, sizeof phases);
        proto_result_free(&res);
        assert_string_equal(phases, "140 ms (authentication 120 ms, authorization 7 ms)");
        assert_int_equal(mx->logons[METRICS_CREDUI][METRICS_DENIED], 1);
        assert_int_equal(mx->phases[METRICS_GATEWAY].count, 0);
        assert_int_equal(mx->plugins[0].calls[CONF_STAGE_AUTHORIZATION][1], 1);

        /* its worker died: unavailable, the total only */
        metrics_logon(mx, METRICS_LOGON, PROTO_UNAVAILABLE, NULL, 30, phases, sizeof phases);
        assert_string_equal(phases, "30 ms");
        assert_int_equal(mx->logons[METRICS_LOGON][METRICS_UNAVAILABLE], 1);
        assert_int_equal(mx->phases[METRICS_TOTAL].count, 2);
}

/* A text cut short ends before the word that did not fit. */
static void test_phases_text_bounded(void **state) {
        static const char *const *const rows[] = {auth_row, authz_row, gw_row, NULL};
        _cleanup_free_ struct metrics *mx = calloc(1, sizeof *mx);
        struct proto_result res;
        char phases[40];

        assert_non_null(mx);
        result_of_rows(&res, PROTO_OK, rows);
        metrics_logon(mx, METRICS_LOGON, PROTO_OK, &res, 812, phases, sizeof phases);
        proto_result_free(&res);
        assert_string_equal(phases, "812 ms (authentication 120 ms");
}

static void test_plugin_failures_and_jobs(void **state) {
        _cleanup_free_ struct metrics *mx = calloc(1, sizeof *mx);

        assert_non_null(mx);
        metrics_plugin_known(mx, "testplugin");
        metrics_plugin_failure(mx, "testplugin", false);
        metrics_plugin_failure(mx, "testplugin", true);
        metrics_plugin_failure(mx, "testplugin", true);
        metrics_plugin_failure(mx, "../bad", true); /* never a label */
        metrics_job(mx, METRICS_JOB_RETRY, 2500);
        metrics_job(mx, METRICS_JOB_OK, 100);
        assert_int_equal(mx->nplugins, 1);

        _cleanup_free_ char *text = render(mx);
        assert_line(text, "pgina_plugin_failures_total{plugin=\"testplugin\",reason=\"crash\"} 1");
        assert_line(text, "pgina_plugin_failures_total{plugin=\"testplugin\",reason=\"timeout\"} 2");
        assert_line(text, "pgina_logoff_job_retries_total 1");
        assert_line(text, "pgina_logoff_job_runs_total{outcome=\"ok\"} 1");
        assert_line(text, "pgina_logoff_job_seconds_bucket{le=\"0.1\"} 1");
        assert_line(text, "pgina_logoff_job_seconds_bucket{le=\"2.5\"} 2");
        assert_line(text, "pgina_logoff_job_seconds_count 2");
        assert_line(text, "pgina_logoff_job_seconds_sum 2.600");
        assert_null(strstr(text, "bad"));
}

/* Events add up; figure names that are no label value are ignored; past the table, dropped. */
static void test_figures_bounded(void **state) {
        _cleanup_free_ struct metrics *mx = calloc(1, sizeof *mx);
        char names[METRICS_FIGURES_MAX + 5][40];
        const char *row[2 * (METRICS_FIGURES_MAX + 5) + 9];
        const char *const *rows[] = {row, NULL};
        struct proto_result res;
        size_t n = 0;

        assert_non_null(mx);
        row[n++] = "stage", row[n++] = "notification", row[n++] = "plugin", row[n++] = "pgsmb";
        row[n++] = "result", row[n++] = "failure", row[n++] = "metric:Bad-Name", row[n++] = "5";
        for (size_t i = 0; i < METRICS_FIGURES_MAX + 2; i++) {
                snprintf(names[i], sizeof names[i], "metric:event%zu", i);
                row[n++] = names[i];
                row[n++] = "2";
        }
        row[n] = NULL;
        result_of_rows(&res, PROTO_OK, rows);
        metrics_result(mx, &res);
        metrics_result(mx, &res);
        proto_result_free(&res);
        assert_int_equal(mx->nfigures, METRICS_FIGURES_MAX);
        assert_int_equal(mx->dropped, 4); /* two past the table, twice */
        assert_int_equal(mx->figures[0].kind, METRICS_FIG_EVENTS);
        assert_int_equal(mx->figures[0].total, 4);

        _cleanup_free_ char *text = render(mx);
        assert_line(text, "pgina_plugin_events_total{plugin=\"pgsmb\",event=\"event0\"} 4");
        assert_line(text, "pgina_metrics_dropped_total 4");
        assert_null(strstr(text, "Bad-Name"));
}

/* Every sample line belongs to the family the last TYPE line declared, and no family is
 * declared twice (a scraper refuses both). */
static void test_text_families(void **state) {
        static const char *const *const rows[] = {auth_row, authz_row, gw_row, gw2_row, NULL};
        _cleanup_free_ struct metrics *mx = calloc(1, sizeof *mx);
        struct proto_result res;
        char family[128] = "", seen[4096] = " ";

        assert_non_null(mx);
        result_of_rows(&res, PROTO_OK, rows);
        metrics_result(mx, &res);
        metrics_logon(mx, METRICS_LOGON, PROTO_OK, &res, 812, NULL, 0);
        proto_result_free(&res);
        metrics_plugin_failure(mx, "pgsmb", false);

        _cleanup_free_ char *text = render(mx);
        for (char *line = text, *next; *line; line = next) {
                char name[128];
                size_t k;

                next = strchr(line, '\n');
                assert_non_null(next);
                *next++ = 0;
                if (sscanf(line, "# TYPE %127s", name) == 1) {
                        char key[132];
                        snprintf(key, sizeof key, " %s ", name);
                        assert_null(strstr(seen, key));
                        assert_true(strlen(seen) + strlen(key) < sizeof seen);
                        strcat(seen, key + 1);
                        snprintf(family, sizeof family, "%s", name);
                        continue;
                }
                if (line[0] == '#')
                        continue;
                k = strlen(family);
                assert_true(k > 0);
                assert_memory_equal(line, family, k);
                assert_true(line[k] == ' ' || line[k] == '{' || line[k] == '_');
        }
}

/* Full tables with the longest names: the text pginactl metrics gets as INFO frames stays under
 * what a connection may hold unsent (pginad-manager.h's OUT_MAX, 4 frames). */
static void test_full_tables_fit_one_answer(void **state) {
        _cleanup_free_ struct metrics *mx = calloc(1, sizeof *mx);
        char plugin[METRICS_NAME_MAX + 1];
        _cleanup_free_ char *text = NULL;

        assert_non_null(mx);
        for (size_t i = 0; i < METRICS_PLUGINS_MAX; i++) {
                struct metrics_plugin *p = &mx->plugins[mx->nplugins++];
                memset(plugin, 'p', METRICS_NAME_MAX);
                snprintf(plugin + METRICS_NAME_MAX - 3, 4, "%03zu", i);
                snprintf(p->name, sizeof p->name, "%s", plugin);
                for (int st = 0; st < _CONF_STAGE_MAX; st++)
                        for (int r = 0; r < 3; r++)
                                p->calls[st][r] = UINT64_MAX;
                p->failures[0] = p->failures[1] = UINT64_MAX;
        }
        for (size_t i = 0; i < METRICS_FIGURES_MAX; i++) {
                struct metrics_figure *f = &mx->figures[mx->nfigures++];
                snprintf(f->plugin, sizeof f->plugin, "%s", mx->plugins[i % METRICS_PLUGINS_MAX].name);
                memset(f->name, 'f', sizeof f->name - 1);
                snprintf(f->name + sizeof f->name - 4, 4, "%03zu", i);
                f->kind = METRICS_FIG_SECONDS;
                f->h.count = UINT64_MAX;
        }
        text = render(mx);
        print_message("full tables: %zu bytes\n", strlen(text));
        assert_true(strlen(text) < 4 * PROTO_FRAME_MAX);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_logon_phases_and_log_text),
                cmocka_unit_test(test_phases_of_what_ran),
                cmocka_unit_test(test_phases_text_bounded),
                cmocka_unit_test(test_plugin_failures_and_jobs),
                cmocka_unit_test(test_figures_bounded),
                cmocka_unit_test(test_text_families),
                cmocka_unit_test(test_full_tables_fit_one_answer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
