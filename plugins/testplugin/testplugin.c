/* Test-only plugin (never installed): every stage succeeds, fails, errors, crashes or hangs on
 * demand, and every call leaves one line in log_file, so integration tests can pin the chain's
 * semantics. Built twice: testplugin.so and testplugin2.so (-DTESTPLUGIN_NAME="testplugin2"). */
#include <pgina/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifndef TESTPLUGIN_NAME
#define TESTPLUGIN_NAME "testplugin"
#endif

#define OUTCOME_HELP(stage) stage ": success, failure, error, crash (SIGSEGV) or hang"

static const struct pgina_option tp_options[] = {
        {"authenticate", PGINA_OPT_STRING, "success", OUTCOME_HELP("authenticate")},
        {"authorize", PGINA_OPT_STRING, "success", OUTCOME_HELP("authorize")},
        {"gateway", PGINA_OPT_STRING, "success", OUTCOME_HELP("gateway")},
        {"notify", PGINA_OPT_STRING, "success", OUTCOME_HELP("notify")},
        {"change_password", PGINA_OPT_STRING, "success", OUTCOME_HELP("change_password")},
        {"message", PGINA_OPT_STRING, NULL, "the result message of every call"},
        {"add_groups", PGINA_OPT_LIST, NULL,
         "groups added to the user record by a successful authenticate or gateway"},
        {"set_attr", PGINA_OPT_LIST, NULL,
         "KEY=VALUE attributes set by a successful authenticate; keys uid and gid set the record's ids"},
        {"log_file", PGINA_OPT_STRING, NULL, "every call appends one line here (never a password)"},
        {"notify_sleep_ms", PGINA_OPT_INT, "0", "notify sleeps this long on LOGOFF (slow logoff jobs)"},
        {"wait_file", PGINA_OPT_STRING, NULL,
         "every call (after its log_file line) waits until this file exists (busy workers)"},
        {"password", PGINA_OPT_STRING, NULL,
         "when set, authenticate succeeds only for this password"},
        {NULL, 0, NULL, NULL},
};

enum outcome { OUT_SUCCESS, OUT_FAILURE, OUT_ERROR, OUT_CRASH, OUT_HANG, OUT_INVALID };

static enum outcome outcome_parse(const char *s) {
        static const char *const names[] = {"success", "failure", "error", "crash", "hang"};

        for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
                if (strcmp(s, names[i]) == 0)
                        return (enum outcome)i;
        return OUT_INVALID;
}

static const char *event_name(int event) {
        switch (event) {
        case PGINA_EVENT_LOGON: return "logon";
        case PGINA_EVENT_LOGOFF: return "logoff";
        case PGINA_EVENT_SESSION_OPEN: return "session_open";
        case PGINA_EVENT_SESSION_CLOSE: return "session_close";
        case PGINA_EVENT_UNLOCK: return "unlock";
        default: return "-";
        }
}

/* One line per call, appended with a single write so concurrent workers do not interleave. The
 * record's groups follow the fixed fields so tests can see what earlier plugins left there. */
static void log_call(struct pgina_ctx *ctx, const char *stage, int event, struct pgina_user *u,
                     const char *old_password) {
        const char *path = pgina_conf_get(ctx, "log_file");
        char line[4096];
        size_t n = pgina_user_group_count(u);
        int len, fd;

        if (!path || !*path)
                return;
        len = snprintf(line, sizeof line, "plugin=%s stage=%s event=%s user=%s authenticated=%s old=%s groups=",
                       TESTPLUGIN_NAME, stage, event_name(event), pgina_user_name(u),
                       pgina_ctx_authenticated(ctx) ? "yes" : "no", old_password ? "set" : "unset");
        for (size_t i = 0; i < n && len > 0 && (size_t)len < sizeof line; i++)
                len += snprintf(line + len, sizeof line - (size_t)len, "%s%s", i ? "," : "",
                                pgina_user_group(u, i));
        if (len < 0 || (size_t)len >= sizeof line - 1)
                len = (int)sizeof line - 2;
        line[len++] = '\n';
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                pgina_log(ctx, LOG_ERR, "Failed to open log_file %s: %m", path);
                return;
        }
        if (write(fd, line, (size_t)len) != len)
                pgina_log(ctx, LOG_ERR, "Failed to write log_file %s", path);
        close(fd);
}

/* A test holds workers busy for as long as it needs, then releases them all at once by creating
 * the file: no guessed durations. */
static void wait_for_file(struct pgina_ctx *ctx) {
        const char *path = pgina_conf_get(ctx, "wait_file");

        while (path && *path && access(path, F_OK) < 0) {
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
                nanosleep(&ts, NULL);
        }
}

/* The configured outcome of a stage: crash and hang never return. */
static int outcome_run(struct pgina_ctx *ctx, const char *key) {
        const char *msg = pgina_conf_get(ctx, "message");

        wait_for_file(ctx);
        if (msg)
                pgina_ctx_message(ctx, "%s", msg);
        switch (outcome_parse(pgina_conf_get(ctx, key))) {
        case OUT_SUCCESS:
                return 1;
        case OUT_FAILURE:
                if (!msg)
                        pgina_ctx_message(ctx, "%s: %s failed as configured", TESTPLUGIN_NAME, key);
                return 0;
        case OUT_CRASH:
                signal(SIGSEGV, SIG_DFL);
                raise(SIGSEGV);
                abort();
        case OUT_HANG:
                for (;;)
                        pause();
        case OUT_ERROR:
        default:
                if (!msg)
                        pgina_ctx_message(ctx, "%s: %s error as configured", TESTPLUGIN_NAME, key);
                return -EIO;
        }
}

static int add_groups(struct pgina_ctx *ctx, struct pgina_user *u) {
        size_t n = pgina_conf_list_len(ctx, "add_groups");

        for (size_t i = 0; i < n; i++) {
                int r = pgina_user_group_add(u, pgina_conf_list_item(ctx, "add_groups", i));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int set_attrs(struct pgina_ctx *ctx, struct pgina_user *u) {
        size_t n = pgina_conf_list_len(ctx, "set_attr");

        for (size_t i = 0; i < n; i++) {
                const char *kv = pgina_conf_list_item(ctx, "set_attr", i);
                const char *eq = kv ? strchr(kv, '=') : NULL;
                char key[128];
                int r = 0;

                if (!eq || (size_t)(eq - kv) >= sizeof key)
                        continue;
                memcpy(key, kv, (size_t)(eq - kv));
                key[eq - kv] = '\0';
                if (strcmp(key, "uid") == 0)
                        pgina_user_set_ids(u, strtoll(eq + 1, NULL, 10), pgina_user_gid(u));
                else if (strcmp(key, "gid") == 0)
                        pgina_user_set_ids(u, pgina_user_uid(u), strtoll(eq + 1, NULL, 10));
                else
                        r = pgina_user_set(u, key, eq + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int tp_authenticate(struct pgina_ctx *ctx, struct pgina_user *u) {
        const char *want = pgina_conf_get(ctx, "password");
        const char *given = pgina_user_password(u);
        int r;

        log_call(ctx, "authentication", 0, u, NULL);
        r = outcome_run(ctx, "authenticate");
        if (r > 0 && want && (!given || strcmp(want, given) != 0)) {
                pgina_ctx_message(ctx, "%s: wrong password", TESTPLUGIN_NAME);
                return 0;
        }
        if (r > 0) {
                int k = add_groups(ctx, u);
                if (k >= 0)
                        k = set_attrs(ctx, u);
                if (k < 0)
                        return k;
        }
        return r;
}

static int tp_authorize(struct pgina_ctx *ctx, struct pgina_user *u) {
        log_call(ctx, "authorization", 0, u, NULL);
        return outcome_run(ctx, "authorize");
}

static int tp_gateway(struct pgina_ctx *ctx, struct pgina_user *u) {
        int r;

        log_call(ctx, "gateway", 0, u, NULL);
        r = outcome_run(ctx, "gateway");
        if (r > 0) {
                int k = add_groups(ctx, u);
                if (k < 0)
                        return k;
        }
        return r;
}

static int tp_notify(struct pgina_ctx *ctx, enum pgina_event event, struct pgina_user *u) {
        long long ms = pgina_conf_int(ctx, "notify_sleep_ms");

        log_call(ctx, "notification", (int)event, u, NULL);
        if (event == PGINA_EVENT_LOGOFF && ms > 0) {
                struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
        return outcome_run(ctx, "notify");
}

static int tp_change_password(struct pgina_ctx *ctx, struct pgina_user *u, const char *old_password,
                              const char *new_password) {
        log_call(ctx, "change_password", 0, u, old_password);
        return outcome_run(ctx, "change_password");
}

static int tp_check_config(struct pgina_ctx *ctx) {
        static const char *const keys[] = {"authenticate", "authorize", "gateway", "notify",
                                           "change_password"};

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                const char *v = pgina_conf_get(ctx, keys[i]);
                if (outcome_parse(v) == OUT_INVALID) {
                        pgina_ctx_message(ctx, "%s must be success, failure, error, crash or hang, not \"%s\"",
                                          keys[i], v ? v : "");
                        return -EINVAL;
                }
        }
        return 0;
}

PGINA_PLUGIN_DEFINE(.stages = PGINA_STAGE_AUTHENTICATION | PGINA_STAGE_AUTHORIZATION |
                              PGINA_STAGE_GATEWAY | PGINA_STAGE_NOTIFICATION |
                              PGINA_STAGE_CHANGE_PASSWORD,
                    .name = TESTPLUGIN_NAME, .version = "1.0",
                    .description = "test plugin: configurable results, crash and hang per stage",
                    .options = tp_options, .check_config = tp_check_config,
                    .authenticate = tp_authenticate, .authorize = tp_authorize,
                    .gateway = tp_gateway, .notify = tp_notify,
                    .change_password = tp_change_password);
