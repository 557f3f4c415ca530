/* pginad's metrics: counters and fixed-bucket histograms the master keeps from its workers'
 * results (logons by scenario and result, their phases, plugin calls and failures, the figures
 * plugins report with pgina_ctx_metric, logoff jobs), and their Prometheus text format
 * (`pginactl metrics`, the node_exporter textfile). Memory is fixed: no per-user label, plugin
 * names from the config, a bounded table of figures; what does not fit is counted as dropped. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pginad-metrics.h"
#include "util.h"

/* Seconds: a logon's authentication takes milliseconds, a pgSMB restore seconds to minutes, a
 * logoff job up to job_timeout. */
static const double bucket_bounds[METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                      2.5,   5,    10,    30,   60,  300, 1800};

static const char *const scenario_names[_METRICS_SCENARIO_MAX] = {"logon", "unlock", "credui"};
static const char *const result_names[_METRICS_RESULT_MAX] = {"ok", "auth_failed", "denied",
                                                              "gateway_failed", "unavailable"};
static const char *const phase_names[_METRICS_PHASE_MAX] = {"authentication", "authorization",
                                                            "gateway", "total"};
static const char *const job_names[_METRICS_JOB_MAX] = {"ok", "failed", "retry"};
static const char *const call_results[3] = {"success", "failure", "error"};

static void histogram_observe(struct histogram *h, long long ms) {
        double s = ms < 0 ? 0 : (double)ms / 1000.0;

        for (size_t i = 0; i < METRICS_BUCKETS; i++)
                if (s <= bucket_bounds[i]) {
                        h->bucket[i]++;
                        break;
                }
        h->count++;
        h->sum += s;
}

static struct metrics_plugin *plugin_slot(struct metrics *mx, const char *name) {
        for (size_t i = 0; i < mx->nplugins; i++)
                if (streq(mx->plugins[i].name, name))
                        return &mx->plugins[i];
        if (!valid_plugin_name(name) || strlen(name) > METRICS_NAME_MAX) /* never a label's escape */
                return NULL;
        if (mx->nplugins == METRICS_PLUGINS_MAX) {
                mx->dropped++;
                return NULL;
        }
        struct metrics_plugin *p = &mx->plugins[mx->nplugins++];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
        return p;
}

void metrics_plugin_known(struct metrics *mx, const char *plugin) { (void)plugin_slot(mx, plugin); }

static bool ends_with(const char *s, const char *end, size_t *stem) {
        size_t n = strlen(s), k = strlen(end);

        if (n <= k || !streq(s + n - k, end))
                return false;
        *stem = n - k;
        return true;
}

/* "download_ms" -> seconds "download", "download_bytes" -> bytes "download", else an event. */
static enum metrics_figure_kind figure_kind(const char *name, size_t *stem) {
        if (ends_with(name, "_ms", stem))
                return METRICS_FIG_SECONDS;
        if (ends_with(name, "_bytes", stem))
                return METRICS_FIG_BYTES;
        *stem = strlen(name);
        return METRICS_FIG_EVENTS;
}

static struct metrics_figure *figure_slot(struct metrics *mx, const char *plugin, const char *name) {
        size_t stem;
        enum metrics_figure_kind kind = figure_kind(name, &stem);

        if (!valid_plugin_name(name) || stem >= sizeof mx->figures[0].name)
                return NULL;
        for (size_t i = 0; i < mx->nfigures; i++) {
                struct metrics_figure *f = &mx->figures[i];
                if (f->kind == kind && streq(f->plugin, plugin) && strlen(f->name) == stem &&
                    strncmp(f->name, name, stem) == 0)
                        return f;
        }
        if (mx->nfigures == METRICS_FIGURES_MAX) {
                if (mx->dropped++ == 0)
                        log_warning("metrics: more than %d figures reported by plugins; %s's %s and any "
                                    "further new ones are not counted", METRICS_FIGURES_MAX, plugin, name);
                return NULL;
        }
        struct metrics_figure *f = &mx->figures[mx->nfigures++];
        memset(f, 0, sizeof *f);
        snprintf(f->plugin, sizeof f->plugin, "%s", plugin);
        snprintf(f->name, sizeof f->name, "%.*s", (int)stem, name);
        f->kind = kind;
        return f;
}

static int stage_of(const char *name) {
        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                if (streq(conf_stage_name((enum conf_stage)s), name))
                        return s;
        return -1;
}

static unsigned long long row_number(const struct proto_row *row, const char *key) {
        const char *v = proto_row_get(row, key);
        return v ? strtoull(v, NULL, 10) : 0;
}

void metrics_result(struct metrics *mx, const struct proto_result *res) {
        for (size_t i = 0; res && i < res->nrows; i++) {
                const struct proto_row *row = &res->rows[i];
                const char *plugin = proto_row_get(row, "plugin"), *result = proto_row_get(row, "result");
                int st = stage_of(strempty(proto_row_get(row, "stage")));
                struct metrics_plugin *p;

                if (st < 0 || !plugin || !result || !(p = plugin_slot(mx, plugin)))
                        continue;
                p->calls[st][streq(result, "success") ? 0 : streq(result, "failure") ? 1 : 2]++;
                p->call_seconds[st] += (double)row_number(row, "ms") / 1000.0;
                for (size_t k = 0; k < row->n; k++) {
                        struct metrics_figure *f;
                        unsigned long long v;

                        if (strncmp(row->keys[k], "metric:", 7) != 0 ||
                            !(f = figure_slot(mx, p->name, row->keys[k] + 7)))
                                continue;
                        v = strtoull(row->values[k], NULL, 10);
                        if (f->kind == METRICS_FIG_SECONDS)
                                histogram_observe(&f->h, (long long)v);
                        else
                                f->total += v;
                }
        }
}

static enum metrics_result result_of(uint32_t status) {
        switch (status) {
        case PROTO_OK: return METRICS_OK;
        case PROTO_AUTH_FAILED: return METRICS_AUTH_FAILED;
        case PROTO_DENIED: return METRICS_DENIED;
        case PROTO_GATEWAY_FAILED: return METRICS_GATEWAY_FAILED;
        default: return METRICS_UNAVAILABLE;
        }
}

/* Append to the phases text; a text cut short still ends in a whole word. */
static void text_add(char *buf, size_t len, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void text_add(char *buf, size_t len, size_t *off, const char *fmt, ...) {
        va_list ap;
        int k;

        if (*off >= len)
                return;
        va_start(ap, fmt);
        k = vsnprintf(buf + *off, len - *off, fmt, ap);
        va_end(ap);
        if (k < 0 || (size_t)k >= len - *off)
                buf[*off] = 0, *off = len; /* no half word: stop here */
        else
                *off += (size_t)k;
}

/* The gateway's figures in milliseconds, per plugin: ": pgsmb download 400 ms extract 150 ms". */
static void gateway_figures(const struct proto_result *res, char *buf, size_t len, size_t *off) {
        bool first = true;

        for (size_t i = 0; i < res->nrows; i++) {
                const struct proto_row *row = &res->rows[i];
                bool named = false;

                if (!streq(strempty(proto_row_get(row, "stage")), "gateway"))
                        continue;
                for (size_t k = 0; k < row->n; k++) {
                        size_t stem;
                        if (strncmp(row->keys[k], "metric:", 7) != 0 ||
                            figure_kind(row->keys[k] + 7, &stem) != METRICS_FIG_SECONDS)
                                continue;
                        if (!named)
                                text_add(buf, len, off, "%s%s", first ? ": " : ", ",
                                         strempty(proto_row_get(row, "plugin")));
                        named = true;
                        first = false;
                        text_add(buf, len, off, " %.*s %s ms", (int)stem, row->keys[k] + 7, row->values[k]);
                }
        }
}

void metrics_logon(struct metrics *mx, uint8_t scenario, uint32_t status, const struct proto_result *res,
                   long long total_ms, char *phases, size_t len) {
        long long ms[METRICS_TOTAL] = {0};
        bool ran[METRICS_TOTAL] = {false};
        size_t off = 0;

        if (scenario < _METRICS_SCENARIO_MAX)
                mx->logons[scenario][result_of(status)]++;
        for (size_t i = 0; res && i < res->nrows; i++) {
                int st = stage_of(strempty(proto_row_get(&res->rows[i], "stage")));
                if (st < 0 || st >= METRICS_TOTAL || !proto_row_get(&res->rows[i], "ms"))
                        continue;
                ran[st] = true;
                ms[st] += (long long)row_number(&res->rows[i], "ms");
        }
        histogram_observe(&mx->phases[METRICS_TOTAL], total_ms);
        for (int p = 0; p < METRICS_TOTAL; p++)
                if (ran[p])
                        histogram_observe(&mx->phases[p], ms[p]);
        if (!phases || len == 0)
                return;
        phases[0] = 0;
        text_add(phases, len, &off, "%lld ms", total_ms);
        if (!ran[0] && !ran[1] && !ran[2])
                return;
        text_add(phases, len, &off, " (");
        for (int p = 0, n = 0; p < METRICS_TOTAL; p++)
                if (ran[p])
                        text_add(phases, len, &off, "%s%s %lld ms", n++ ? ", " : "", phase_names[p], ms[p]);
        if (ran[METRICS_GATEWAY])
                gateway_figures(res, phases, len, &off);
        text_add(phases, len, &off, ")");
}

void metrics_plugin_failure(struct metrics *mx, const char *plugin, bool timeout) {
        struct metrics_plugin *p = plugin_slot(mx, plugin);

        if (p)
                p->failures[timeout ? 1 : 0]++;
}

void metrics_job(struct metrics *mx, enum metrics_job outcome, long long ms) {
        if ((unsigned)outcome < _METRICS_JOB_MAX)
                mx->jobs[outcome]++;
        histogram_observe(&mx->job_seconds, ms);
}

/* ---- the text format: one HELP and TYPE per family, base unit seconds ---- */

static void family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* labels: "" or `a="x",b="y"` (values are [a-z0-9_]: nothing to escape) */
static void histogram_print(FILE *f, const char *name, const char *labels, const struct histogram *h) {
        uint64_t cum = 0;
        const char *sep = *labels ? "," : "";

        for (size_t i = 0; i < METRICS_BUCKETS; i++) {
                cum += h->bucket[i];
                fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bucket_bounds[i],
                        (unsigned long long)cum);
        }
        fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->count);
        fprintf(f, "%s_sum%s%s%s %.3f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", h->sum);
        fprintf(f, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
                (unsigned long long)h->count);
}

static void render_logons(FILE *f, const struct metrics *mx) {
        char l[64];

        family(f, "pgina_logons_total", "counter", "Logon requests (PAM authentication) by scenario and result.");
        for (int s = 0; s < _METRICS_SCENARIO_MAX; s++)
                for (int r = 0; r < _METRICS_RESULT_MAX; r++)
                        fprintf(f, "pgina_logons_total{scenario=\"%s\",result=\"%s\"} %llu\n", scenario_names[s],
                                result_names[r], (unsigned long long)mx->logons[s][r]);
        family(f, "pgina_logon_phase_seconds", "histogram",
               "Time of each phase of a logon request (the plugins' calls of a stage), and its total.");
        for (int p = 0; p < _METRICS_PHASE_MAX; p++) {
                snprintf(l, sizeof l, "phase=\"%s\"", phase_names[p]);
                histogram_print(f, "pgina_logon_phase_seconds", l, &mx->phases[p]);
        }
}

static void render_plugins(FILE *f, const struct metrics *mx) {
        family(f, "pgina_plugin_calls_total", "counter", "Plugin calls by plugin, stage and result.");
        for (size_t i = 0; i < mx->nplugins; i++)
                for (int s = 0; s < _CONF_STAGE_MAX; s++)
                        for (int r = 0; r < 3; r++)
                                if (mx->plugins[i].calls[s][r])
                                        fprintf(f, "pgina_plugin_calls_total{plugin=\"%s\",stage=\"%s\",result=\"%s\"} %llu\n",
                                                mx->plugins[i].name, conf_stage_name((enum conf_stage)s),
                                                call_results[r], (unsigned long long)mx->plugins[i].calls[s][r]);
        family(f, "pgina_plugin_call_seconds", "summary", "Time plugins spent in their calls, by stage.");
        for (size_t i = 0; i < mx->nplugins; i++)
                for (int s = 0; s < _CONF_STAGE_MAX; s++) {
                        const struct metrics_plugin *p = &mx->plugins[i];
                        uint64_t n = p->calls[s][0] + p->calls[s][1] + p->calls[s][2];
                        if (!n)
                                continue;
                        fprintf(f, "pgina_plugin_call_seconds_sum{plugin=\"%s\",stage=\"%s\"} %.3f\n", p->name,
                                conf_stage_name((enum conf_stage)s), p->call_seconds[s]);
                        fprintf(f, "pgina_plugin_call_seconds_count{plugin=\"%s\",stage=\"%s\"} %llu\n", p->name,
                                conf_stage_name((enum conf_stage)s), (unsigned long long)n);
                }
        family(f, "pgina_plugin_failures_total", "counter",
               "Plugin calls that ended their worker: crashed (or exited) or timed out.");
        for (size_t i = 0; i < mx->nplugins; i++)
                for (int r = 0; r < 2; r++)
                        fprintf(f, "pgina_plugin_failures_total{plugin=\"%s\",reason=\"%s\"} %llu\n",
                                mx->plugins[i].name, r ? "timeout" : "crash",
                                (unsigned long long)mx->plugins[i].failures[r]);
}

static void render_figures(FILE *f, const struct metrics *mx) {
        static const struct {
                const char *name, *type, *help, *label;
        } fam[] = {
                [METRICS_FIG_SECONDS] = {"pgina_plugin_seconds", "histogram",
                                         "Durations plugins reported (pgSMB: download, extract, archive, upload, verify).",
                                         "figure"},
                [METRICS_FIG_BYTES] = {"pgina_plugin_bytes_total", "counter",
                                       "Bytes plugins reported moving (pgSMB: download, upload).", "figure"},
                [METRICS_FIG_EVENTS] = {"pgina_plugin_events_total", "counter",
                                        "Events plugins reported (pgSMB: store_errors).", "event"},
        };
        char l[160];

        for (size_t k = 0; k < ELEMENTSOF(fam); k++) {
                family(f, fam[k].name, fam[k].type, fam[k].help);
                for (size_t i = 0; i < mx->nfigures; i++) {
                        const struct metrics_figure *g = &mx->figures[i];
                        if (g->kind != (enum metrics_figure_kind)k)
                                continue;
                        snprintf(l, sizeof l, "plugin=\"%s\",%s=\"%s\"", g->plugin, fam[k].label, g->name);
                        if (g->kind == METRICS_FIG_SECONDS)
                                histogram_print(f, fam[k].name, l, &g->h);
                        else
                                fprintf(f, "%s{%s} %llu\n", fam[k].name, l, (unsigned long long)g->total);
                }
        }
}

static void render_jobs(FILE *f, const struct metrics *mx, const struct metrics_gauges *g) {
        static const char *const states[3] = {"queued", "running", "retry"};

        family(f, "pgina_logoff_jobs", "gauge", "Pending logoff jobs by state.");
        for (int s = 0; s < 3; s++)
                fprintf(f, "pgina_logoff_jobs{state=\"%s\"} %zu\n", states[s], g->jobs[s]);
        family(f, "pgina_logoff_job_runs_total", "counter",
               "Logoff job runs by outcome: done, failed (a plugin failed, or its worker did), or to be retried.");
        for (int r = 0; r < _METRICS_JOB_MAX; r++)
                fprintf(f, "pgina_logoff_job_runs_total{outcome=\"%s\"} %llu\n", job_names[r],
                        (unsigned long long)mx->jobs[r]);
        family(f, "pgina_logoff_job_retries_total", "counter",
               "Retries of logoff work plugins asked for (pgina_ctx_retry_later).");
        fprintf(f, "pgina_logoff_job_retries_total %llu\n", (unsigned long long)mx->jobs[METRICS_JOB_RETRY]);
        family(f, "pgina_logoff_job_seconds", "histogram", "Time of each logoff job run.");
        histogram_print(f, "pgina_logoff_job_seconds", "", &mx->job_seconds);
}

int metrics_render(const struct metrics *mx, const struct metrics_gauges *g, char **text, size_t *len) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);

        if (!f)
                return -ENOMEM;
        family(f, "pgina_start_time_seconds", "gauge", "When pginad started (unix time).");
        fprintf(f, "pgina_start_time_seconds %lld\n", (long long)g->started);
        family(f, "pgina_sessions", "gauge", "Sessions pginad knows (pginactl sessions).");
        fprintf(f, "pgina_sessions %zu\n", g->sessions);
        family(f, "pgina_request_workers", "gauge", "Requests running in workers.");
        fprintf(f, "pgina_request_workers %zu\n", g->request_workers);
        family(f, "pgina_requests_queued", "gauge", "Requests waiting for a free worker.");
        fprintf(f, "pgina_requests_queued %zu\n", g->requests_queued);
        render_logons(f, mx);
        render_plugins(f, mx);
        render_figures(f, mx);
        render_jobs(f, mx, g);
        family(f, "pgina_metrics_dropped_total", "counter",
               "Plugins or plugin figures not counted: past the fixed size of pginad's tables.");
        fprintf(f, "pgina_metrics_dropped_total %llu\n", (unsigned long long)mx->dropped);
        if (fclose(f) != 0 || !buf) {
                free(buf);
                return -ENOMEM;
        }
        *text = buf;
        *len = n;
        return 0;
}
