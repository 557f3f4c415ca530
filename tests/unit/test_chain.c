/* Stage semantics of host-chain.c (pGina's PluginDriver), with in-memory plugins: which plugins
 * run, in which order, and what the verdict and its message are. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "host.h"
#include "util.h"

/* Each fake plugin's result per stage, and a log of calls. */
struct fake {
        const char *name;
        int auth, authz, gw, chpw, chpw_restore, notify;
        int retry; /* 1: pgina_ctx_retry_later in notify, 2: pgina_ctx_retry_now (notify and gateway) */
        bool saw_authenticated; /* pgina_ctx_authenticated() seen in its authenticate */
        bool metrics; /* its gateway takes 30 ms and reports figures (pgina_ctx_metric) */
};

static struct fake fakes[3];
static char calls[1024];

static struct fake *fake_of(struct pgina_ctx *ctx) {
        for (size_t i = 0; i < ELEMENTSOF(fakes); i++)
                if (fakes[i].name && streq(fakes[i].name, pgina_ctx_plugin(ctx)))
                        return &fakes[i];
        return NULL;
}

static void called(struct pgina_ctx *ctx, const char *stage) {
        size_t n = strlen(calls);
        snprintf(calls + n, sizeof calls - n, "%s%s:%s", n ? " " : "", pgina_ctx_plugin(ctx), stage);
}

static int f_auth(struct pgina_ctx *ctx, struct pgina_user *u) {
        struct fake *f = fake_of(ctx);
        f->saw_authenticated = pgina_ctx_authenticated(ctx);
        called(ctx, "auth");
        if (f->auth <= 0)
                pgina_ctx_message(ctx, "%s says no", f->name);
        else
                pgina_user_group_add(u, f->name);
        return f->auth;
}

static int f_authz(struct pgina_ctx *ctx, struct pgina_user *u) {
        called(ctx, "authz");
        if (fake_of(ctx)->authz <= 0)
                pgina_ctx_message(ctx, "%s denies", pgina_ctx_plugin(ctx));
        return fake_of(ctx)->authz;
}

static int f_gw(struct pgina_ctx *ctx, struct pgina_user *u) {
        called(ctx, "gw");
        if (fake_of(ctx)->metrics) {
                char name[32];
                struct timespec ts = {0, 30 * 1000 * 1000};
                nanosleep(&ts, NULL);
                pgina_ctx_metric(ctx, "download_ms", 400);
                pgina_ctx_metric(ctx, "download_ms", 50); /* adds up */
                pgina_ctx_metric(ctx, "download_bytes", 1u << 20);
                pgina_ctx_metric(ctx, "Bad-Name", 1); /* ignored */
                pgina_ctx_metric(ctx, NULL, 1);
                pgina_ctx_metric(ctx, "a_name_longer_than_forty_eight_bytes_is_not_a_metric", 1);
                for (int i = 0; i < 30; i++) { /* past PGINA_METRICS_MAX: dropped */
                        snprintf(name, sizeof name, "event%d", i);
                        pgina_ctx_metric(ctx, name, 1);
                }
        }
        if (fake_of(ctx)->retry == 1)
                pgina_ctx_retry_later(ctx); /* not a notification: ignored */
        if (fake_of(ctx)->retry == 2)
                pgina_ctx_retry_now(ctx);
        return fake_of(ctx)->gw;
}

static int f_notify(struct pgina_ctx *ctx, enum pgina_event ev, struct pgina_user *u) {
        struct fake *f = fake_of(ctx);
        called(ctx, ev == PGINA_EVENT_LOGOFF ? "logoff" : "event");
        if (f->retry == 1) {
                pgina_ctx_retry_later(ctx);
                pgina_ctx_message(ctx, "%s: the store is full", f->name);
        } else if (f->retry == 2)
                pgina_ctx_retry_now(ctx);
        return f->notify;
}

static int f_chpw(struct pgina_ctx *ctx, struct pgina_user *u, const char *o, const char *n) {
        struct fake *f = fake_of(ctx);
        bool restore = o && streq(o, "new");
        called(ctx, restore ? "restore" : "chpw");
        return restore ? f->chpw_restore : f->chpw;
}

static struct pgina_plugin descs[3];
static struct loaded_plugin loaded[3];
static struct plugin_set set = {loaded, 3};
static struct conf conf;
static char *orders[_CONF_STAGE_MAX][3];

static int setup(void **state) {
        static const char *const names[] = {"one", "two", "three"};

        memset(calls, 0, sizeof calls);
        memset(&conf, 0, sizeof conf);
        conf.state_dir = (char *)"/nonexistent";
        for (int i = 0; i < 3; i++) {
                fakes[i] = (struct fake){.name = names[i], .auth = 1, .authz = 1, .gw = 1, .chpw = 1,
                                         .chpw_restore = 1, .notify = 1};
                descs[i] = (struct pgina_plugin){
                        .abi_version = PGINA_PLUGIN_ABI_VERSION, .name = names[i], .stages = 0x1f,
                        .authenticate = f_auth, .authorize = f_authz, .gateway = f_gw,
                        .notify = f_notify, .change_password = f_chpw};
                loaded[i] = (struct loaded_plugin){.name = (char *)names[i], .desc = &descs[i]};
                for (int s = 0; s < _CONF_STAGE_MAX; s++)
                        orders[s][i] = (char *)names[i];
        }
        for (int s = 0; s < _CONF_STAGE_MAX; s++) {
                conf.order[s] = orders[s];
                conf.norder[s] = 3;
        }
        return 0;
}

static struct chain_env env_make(void) {
        return (struct chain_env){.conf = &conf, .plugins = &set, .scenario = PGINA_SCENARIO_LOGON};
}

static void test_authentication_succeeds_if_any_plugin_succeeds(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[0].auth = 0;
        fakes[2].auth = 0;
        assert_int_equal(chain_authenticate(&env, u, &run), 1);
        /* every plugin ran, in order, and later ones saw the earlier success */
        assert_string_equal(calls, "one:auth two:auth three:auth");
        assert_false(fakes[0].saw_authenticated);
        assert_false(fakes[1].saw_authenticated);
        assert_true(fakes[2].saw_authenticated);
        assert_int_equal(run.nsteps, 3);
        assert_true(pgina_user_in_group(u, "two"));
        chain_run_free(&run);
        user_free(u);
}

static void test_authentication_failure_shows_last_failure_message(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[0].auth = fakes[1].auth = fakes[2].auth = 0;
        assert_int_equal(chain_authenticate(&env, u, &run), 0);
        assert_string_equal(run.message, "three says no");
        chain_run_free(&run);
        user_free(u);
}

static void test_no_authentication_plugin_is_a_clear_failure(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        conf.norder[CONF_STAGE_AUTHENTICATION] = 0;
        assert_int_equal(chain_authenticate(&env, u, &run), 0);
        assert_string_equal(run.message, "no authentication plugin configured");
        chain_run_free(&run);
        user_free(u);
}

static void test_authorization_stops_at_first_denial(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[1].authz = 0;
        assert_int_equal(chain_authorize(&env, u, &run), 0);
        assert_string_equal(calls, "one:authz two:authz");
        assert_string_equal(run.message, "two denies");
        chain_run_free(&run);
        user_free(u);
}

static void test_authorization_allows_when_no_plugin(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        conf.norder[CONF_STAGE_AUTHORIZATION] = 0;
        assert_int_equal(chain_authorize(&env, u, &run), 1);
        chain_run_free(&run);
        user_free(u);
}

static void test_gateway_stops_at_first_failure_and_error_counts_as_failure(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[0].gw = -5; /* -EIO */
        assert_int_equal(chain_gateway(&env, u, &run), 0);
        assert_string_equal(calls, "one:gw");
        assert_non_null(strstr(run.message, "plugin one"));
        chain_run_free(&run);
        user_free(u);
}

static void test_change_password_failure_restores_earlier_plugins(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[2].chpw = 0;
        assert_int_equal(chain_change_password(&env, u, "old", "new", &run), 0);
        assert_string_equal(calls, "one:chpw two:chpw three:chpw two:restore one:restore");
        chain_run_free(&run);
        user_free(u);
}

static void test_change_password_without_old_password_restores_nothing(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[1].chpw = 0;
        assert_int_equal(chain_change_password(&env, u, NULL, "new", &run), 0);
        assert_string_equal(calls, "one:chpw two:chpw");
        chain_run_free(&run);
        user_free(u);
}

static void test_missing_plugin_fails_its_step_only(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        orders[CONF_STAGE_AUTHENTICATION][0] = (char *)"ghost";
        assert_int_equal(chain_authenticate(&env, u, &run), 1);
        assert_string_equal(calls, "two:auth three:auth");
        assert_int_equal(run.steps[0].result, -2);
        orders[CONF_STAGE_AUTHENTICATION][0] = (char *)"one";
        chain_run_free(&run);
        user_free(u);
}

static void test_record_row_round_trip(void **state) {
        struct pgina_user *u = user_new("alice"), *back = NULL;
        struct proto_result res;
        struct pbuf b, view;
        uint16_t type;

        pgina_user_set(u, "fullname", "Alice Liddell");
        pgina_user_set(u, "usri4_profile", "\\\\srv\\profiles\\alice");
        pgina_user_group_add(u, "staff");
        pgina_user_group_add(u, "sudo");
        pgina_user_set_ids(u, 5000, 5001);
        user_set_password(u, secret_from_cstr("hunter2"));
        pbuf_init(&b);
        assert_int_equal(proto_result_begin(&b, 0, "", 1), 0);
        assert_int_equal(user_to_row(u, &b), 0);
        assert_int_equal(proto_frame_end(&b), 0);
        /* the password never travels in a record */
        assert_null(memmem(b.data, b.len, "hunter2", 7));
        assert_int_equal(proto_frame_open(b.data, b.len, &type, &view), 0);
        assert_int_equal(proto_result_parse(&view, &res), 0);
        assert_int_equal(user_from_row(&res.rows[0], &back), 0);
        assert_string_equal(pgina_user_get(back, "fullname"), "Alice Liddell");
        assert_string_equal(pgina_user_get(back, "usri4_profile"), "\\\\srv\\profiles\\alice");
        assert_int_equal(pgina_user_group_count(back), 2);
        assert_string_equal(pgina_user_group(back, 1), "sudo");
        assert_int_equal(pgina_user_uid(back), 5000);
        assert_int_equal(pgina_user_gid(back), 5001);
        assert_null(pgina_user_password(back));
        proto_result_free(&res);
        user_free(back);
        user_free(u);
        pbuf_free(&b);
}

/* pgina_ctx_set_data: per plugin, replaced with the old cleanup run, all cleanups at the end. */
static int cleanups;
static void count_cleanup(void *data) {
        cleanups++;
        free(data);
}

static void test_request_data_is_per_plugin_and_cleaned_up(void **state) {
        struct ctx_data data = {0};
        struct chain_env env = env_make();
        struct pgina_ctx one = {.conf = &conf, .plugin = &loaded[0], .env = &env};
        struct pgina_ctx two = {.conf = &conf, .plugin = &loaded[1], .env = &env};
        struct pgina_ctx none = {.conf = &conf, .plugin = &loaded[0], .env = &env};

        char *refused = strdup("x"); /* not taken on failure: still the caller's */
        assert_int_equal(pgina_ctx_set_data(&none, "k", refused, NULL) == -EOPNOTSUPP, 1);
        free(refused);
        env.data = &data;
        cleanups = 0;
        assert_int_equal(pgina_ctx_set_data(&one, "k", strdup("a"), count_cleanup), 0);
        assert_null(pgina_ctx_get_data(&two, "k"));
        assert_string_equal(pgina_ctx_get_data(&one, "k"), "a");
        assert_int_equal(pgina_ctx_set_data(&one, "k", strdup("b"), count_cleanup), 0);
        assert_int_equal(cleanups, 1);
        assert_string_equal(pgina_ctx_get_data(&one, "k"), "b");
        assert_int_equal(pgina_ctx_set_data(&two, "k", strdup("c"), count_cleanup), 0);
        assert_int_equal(pgina_ctx_set_data(&one, "k", NULL, NULL), 0);
        assert_int_equal(cleanups, 2);
        assert_null(pgina_ctx_get_data(&one, "k"));
        assert_string_equal(pgina_ctx_get_data(&two, "k"), "c");
        ctx_data_clear(&data);
        assert_int_equal(cleanups, 3);
        assert_int_equal(data.n, 0);
}


/* Retries: a failed LOGOFF notification may ask for one (the step says "later"); anything else
 * may say its server works again ("now"); a retry starts at the plugin that asked. */
static void test_logoff_retry_is_recorded_per_step(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[1].retry = 1;
        fakes[1].notify = 0;
        assert_int_equal(chain_notify(&env, PGINA_EVENT_LOGOFF, u, &run), 0);
        assert_string_equal(calls, "one:logoff two:logoff three:logoff"); /* the rest still runs */
        assert_int_equal(run.nsteps, 3);
        assert_int_equal(run.steps[0].retry, CHAIN_RETRY_NONE);
        assert_int_equal(run.steps[1].retry, CHAIN_RETRY_LATER);
        assert_string_equal(run.steps[1].message, "two: the store is full");
        assert_int_equal(run.steps[2].retry, CHAIN_RETRY_NONE);
        chain_run_free(&run);

        /* Not LOGOFF work, or not a failure: no retry. */
        memset(&run, 0, sizeof run);
        assert_int_equal(chain_notify(&env, PGINA_EVENT_SESSION_CLOSE, u, &run), 0);
        assert_int_equal(run.steps[1].retry, CHAIN_RETRY_NONE);
        chain_run_free(&run);
        fakes[1].notify = 1;
        memset(&run, 0, sizeof run);
        assert_int_equal(chain_notify(&env, PGINA_EVENT_LOGOFF, u, &run), 1);
        assert_int_equal(run.steps[1].retry, CHAIN_RETRY_NONE);
        chain_run_free(&run);
        memset(&run, 0, sizeof run);
        assert_int_equal(chain_gateway(&env, u, &run), 1);
        assert_int_equal(run.steps[1].retry, CHAIN_RETRY_NONE);
        chain_run_free(&run);
        user_free(u);
}

/* Each step carries how long its call took and the figures the plugin reported, bounded. */
static void test_step_duration_and_metrics(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[1].metrics = true;
        assert_int_equal(chain_gateway(&env, u, &run), 1);
        assert_int_equal(run.nsteps, 3);
        assert_true(run.steps[1].ms >= 30);
        assert_true(run.steps[0].ms < 30 && run.steps[2].ms < 30);
        assert_int_equal(run.steps[0].metrics.n, 0);
        assert_int_equal(run.steps[1].metrics.n, PGINA_METRICS_MAX);
        assert_string_equal(run.steps[1].metrics.v[0].name, "download_ms");
        assert_int_equal(run.steps[1].metrics.v[0].value, 450);
        assert_string_equal(run.steps[1].metrics.v[1].name, "download_bytes");
        assert_int_equal(run.steps[1].metrics.v[1].value, 1u << 20);
        assert_string_equal(run.steps[1].metrics.v[2].name, "event0");
        assert_string_equal(run.steps[1].metrics.v[PGINA_METRICS_MAX - 1].name, "event13");
        chain_run_free(&run);
        user_free(u);
}

static void test_retry_now_and_notify_from(void **state) {
        struct chain_env env = env_make();
        struct pgina_user *u = user_new("alice");
        struct chain_run run = {0};

        fakes[2].retry = 2;
        assert_int_equal(chain_gateway(&env, u, &run), 1);
        assert_int_equal(run.steps[2].retry, CHAIN_RETRY_NOW);
        assert_string_equal(chain_retry_string(run.steps[2].retry), "now");
        chain_run_free(&run);

        calls[0] = 0;
        env.notify_from = "two";
        memset(&run, 0, sizeof run);
        assert_int_equal(chain_notify(&env, PGINA_EVENT_LOGOFF, u, &run), 1);
        assert_string_equal(calls, "two:logoff three:logoff");
        chain_run_free(&run);

        calls[0] = 0;
        env.notify_from = "gone"; /* no longer in the order: nothing to retry */
        memset(&run, 0, sizeof run);
        assert_int_equal(chain_notify(&env, PGINA_EVENT_LOGOFF, u, &run), 1);
        assert_string_equal(calls, "");
        chain_run_free(&run);
        user_free(u);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_authentication_succeeds_if_any_plugin_succeeds, setup),
                cmocka_unit_test_setup(test_authentication_failure_shows_last_failure_message, setup),
                cmocka_unit_test_setup(test_no_authentication_plugin_is_a_clear_failure, setup),
                cmocka_unit_test_setup(test_authorization_stops_at_first_denial, setup),
                cmocka_unit_test_setup(test_authorization_allows_when_no_plugin, setup),
                cmocka_unit_test_setup(test_gateway_stops_at_first_failure_and_error_counts_as_failure, setup),
                cmocka_unit_test_setup(test_change_password_failure_restores_earlier_plugins, setup),
                cmocka_unit_test_setup(test_change_password_without_old_password_restores_nothing, setup),
                cmocka_unit_test_setup(test_missing_plugin_fails_its_step_only, setup),
                cmocka_unit_test_setup(test_record_row_round_trip, setup),
                cmocka_unit_test_setup(test_request_data_is_per_plugin_and_cleaned_up, setup),
                cmocka_unit_test_setup(test_logoff_retry_is_recorded_per_step, setup),
                cmocka_unit_test_setup(test_retry_now_and_notify_from, setup),
                cmocka_unit_test_setup(test_step_duration_and_metrics, setup),
        };
        return cmocka_run_group_tests_name("chain", tests, NULL, NULL);
}
