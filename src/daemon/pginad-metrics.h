/* pginad's metrics (pginad-metrics.c): what the master counts from its workers' results, kept in
 * fixed tables, and its Prometheus text. No manager in here, so the unit test drives it alone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "proto.h"

#define METRICS_PLUGINS_MAX 32 /* plugin names come from the config: bounded */
#define METRICS_FIGURES_MAX 32 /* (plugin, figure) pairs plugins reported (pgina_ctx_metric) */
#define METRICS_BUCKETS 15 /* finite upper bounds; +Inf is the count */
#define METRICS_NAME_MAX 64 /* a plugin's name on the worker pipe (pginad-workers.c) */
#define METRICS_PHASES_MAX 384 /* the phases text of one logon (log line, session cache) */

enum metrics_scenario { METRICS_LOGON, METRICS_UNLOCK, METRICS_CREDUI, _METRICS_SCENARIO_MAX };
enum metrics_result {
        METRICS_OK,
        METRICS_AUTH_FAILED,
        METRICS_DENIED,
        METRICS_GATEWAY_FAILED,
        METRICS_UNAVAILABLE, /* a plugin crashed or timed out, or pginad could not run it */
        _METRICS_RESULT_MAX,
};
enum metrics_phase {
        METRICS_AUTHENTICATION,
        METRICS_AUTHORIZATION,
        METRICS_GATEWAY,
        METRICS_TOTAL,
        _METRICS_PHASE_MAX,
};
enum metrics_job { METRICS_JOB_OK, METRICS_JOB_FAILED, METRICS_JOB_RETRY, _METRICS_JOB_MAX };
enum metrics_figure_kind { METRICS_FIG_SECONDS, METRICS_FIG_BYTES, METRICS_FIG_EVENTS };

struct histogram {
        uint64_t bucket[METRICS_BUCKETS]; /* observations <= bound i (not yet cumulative) */
        uint64_t count;
        double sum; /* seconds */
};

struct metrics_plugin {
        char name[METRICS_NAME_MAX + 1];
        uint64_t calls[_CONF_STAGE_MAX][3]; /* [enum conf_stage][success, failure, error] */
        double call_seconds[_CONF_STAGE_MAX];
        uint64_t failures[2]; /* crashed (or exited), timed out */
};

struct metrics_figure {
        char plugin[METRICS_NAME_MAX + 1];
        char name[48 + 1]; /* without its _ms/_bytes ending */
        enum metrics_figure_kind kind;
        struct histogram h; /* METRICS_FIG_SECONDS */
        uint64_t total; /* METRICS_FIG_BYTES, METRICS_FIG_EVENTS */
};

struct metrics {
        uint64_t logons[_METRICS_SCENARIO_MAX][_METRICS_RESULT_MAX];
        struct histogram phases[_METRICS_PHASE_MAX];
        uint64_t jobs[_METRICS_JOB_MAX]; /* logoff job runs by outcome; RETRY = retries asked */
        struct histogram job_seconds;
        struct metrics_plugin plugins[METRICS_PLUGINS_MAX];
        size_t nplugins;
        struct metrics_figure figures[METRICS_FIGURES_MAX];
        size_t nfigures;
        uint64_t dropped; /* figures or plugins past the tables' size */
};

/* What the master knows now (gauges), handed to metrics_render. */
struct metrics_gauges {
        time_t started;
        size_t sessions;
        size_t jobs[3]; /* enum job_state: queued, running, retry */
        size_t request_workers, requests_queued;
};

/* Every worker result's step rows: plugin calls by stage and result, their seconds, and the
 * figures plugins reported ("metric:NAME"). */
void metrics_result(struct metrics *mx, const struct proto_result *res);
/* One LOGIN request answered (res NULL: its worker failed): counted by scenario and result, its
 * phases observed; `phases` gets the log line's text ("812 ms (authentication 120 ms, ...)"). */
void metrics_logon(struct metrics *mx, uint8_t scenario, uint32_t status, const struct proto_result *res,
                   long long total_ms, char *phases, size_t len);
/* A plugin's worker crashed or exited (timeout false) or was killed at its time limit. */
void metrics_plugin_failure(struct metrics *mx, const char *plugin, bool timeout);
/* A plugin pginad knows (from the config): its counters show, zero, before its first call. */
void metrics_plugin_known(struct metrics *mx, const char *plugin);
/* A logoff job's run ended after ms: done, failed, or to be retried. */
void metrics_job(struct metrics *mx, enum metrics_job outcome, long long ms);
/* The Prometheus text exposition (version 0.0.4); 0 or -ENOMEM. */
int metrics_render(const struct metrics *mx, const struct metrics_gauges *g, char **text, size_t *len);
