/* A plugin built out of tree (tests/integration/test-plugin-out-of-tree.sh): it sees only the
 * installed headers (<pgina/...>) and libpgina-plugin through pkg-config, and uses what a plugin
 * of ours uses: the host API, request data, the tool runner and the account lookup. */
#include <pgina/account.h>
#include <pgina/plugin.h>
#include <pgina/run.h>
#include <pgina/util.h>

#include <stdio.h>
#include <syslog.h>

static const struct pgina_option oot_options[] = {
        {"password", PGINA_OPT_STRING, NULL, "authenticate succeeds for this password only"},
        {"log_file", PGINA_OPT_STRING, NULL, "every call appends one line here"},
        {NULL, 0, NULL, NULL},
};

static void log_line(const char *path, const char *what, const char *user, const char *extra) {
        _cleanup_fclose_ FILE *f = path ? fopen(path, "ae") : NULL;

        if (f)
                fprintf(f, "%s user=%s %s\n", what, user, extra);
}

/* The request data's cleanup: runs once, at the end of the request. */
struct seen {
        char *log_file;
        char *user;
};
static void seen_free(void *p) {
        struct seen *s = p;

        log_line(s->log_file, "cleanup", s->user, "");
        free(s->log_file);
        free(s->user);
        free(s);
}

static int oot_authenticate(struct pgina_ctx *ctx, struct pgina_user *u) {
        const char *want = pgina_conf_get(ctx, "password"), *log_file = pgina_conf_get(ctx, "log_file");
        const char *const argv[] = {"true", NULL};
        struct pgina_run_result res;
        struct pgina_account root = {0};
        struct seen *s;
        char extra[128];
        int r, found;

        if (!want || !streq_ptr(pgina_user_password(u), want)) {
                pgina_ctx_message(ctx, "oot: wrong password");
                return 0;
        }
        r = pgina_run_tool(argv, NULL, 0, &res);
        found = pgina_account_lookup("root", &root);
        snprintf(extra, sizeof extra, "run=%d status=%d root=%d uid=%d", r, res.status, found,
                 found > 0 ? (int)root.uid : -1);
        pgina_account_done(&root);
        log_line(log_file, "authenticate", pgina_user_name(u), extra);
        s = calloc(1, sizeof *s);
        if (!s || !(s->user = strdup(pgina_user_name(u))) ||
            !(s->log_file = strdup(strempty(log_file)))) {
                if (s)
                        free(s->user);
                free(s);
                return -ENOMEM;
        }
        r = pgina_ctx_set_data(ctx, "seen", s, seen_free);
        if (r < 0) {
                seen_free(s);
                return r;
        }
        pgina_log(ctx, LOG_INFO, "out-of-tree plugin authenticated %s", pgina_user_name(u));
        pgina_ctx_metric(ctx, "oot_checks", 1); /* ABI 7: pginactl metrics counts it */
        return 1;
}

static int oot_authorize(struct pgina_ctx *ctx, struct pgina_user *u) {
        const struct seen *s = pgina_ctx_get_data(ctx, "seen");

        log_line(pgina_conf_get(ctx, "log_file"), "authorize", pgina_user_name(u),
                 s ? s->user : "(no request data)");
        return s && streq(s->user, pgina_user_name(u)) ? 1 : 0;
}

PGINA_PLUGIN_DEFINE(.stages = PGINA_STAGE_AUTHENTICATION | PGINA_STAGE_AUTHORIZATION, .name = "oot",
                    .version = "1", .description = "built out of tree against the installed SDK",
                    .options = oot_options, .authenticate = oot_authenticate,
                    .authorize = oot_authorize);
