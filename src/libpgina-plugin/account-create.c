/* Creating a local account (useradd), the one way localmachine and pgsmb both do it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <pgina/account.h>
#include <pgina/run.h>
#include <pgina/util.h>

bool pgina_valid_account_path(const char *p) {
        if (!p || p[0] != '/' || strlen(p) >= PATH_MAX || strstr(p, "/../") || strstr(p, "/./") ||
            (strlen(p) >= 3 && streq(p + strlen(p) - 3, "/..")))
                return false;
        for (; *p; p++)
                if (*p == ':' || *p == ',' || (unsigned char)*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static int run(const char *const argv[], const char *what, char *why, size_t whylen) {
        struct pgina_run_result res;
        int r = pgina_run_tool(argv, NULL, 0, &res);

        if (r < 0) {
                snprintf(why, whylen, "%s could not be run: %s", argv[0], strerror(-r));
                return r;
        }
        if (res.status != 0) {
                snprintf(why, whylen, "%s (%s) exited with status %d%s%s", argv[0], what, res.status,
                         res.err[0] ? ": " : "", res.err);
                return -EIO;
        }
        return 0;
}

int pgina_account_create(const struct pgina_new_account *c, char *why, size_t whylen) {
        _cleanup_free_ char *gecos = NULL;
        char uidbuf[32], gidbuf[32];
        const char *argv[20], *shell = c->shell;
        size_t n = 0;
        int r;

        if (!valid_user_name(c->name)) {
                snprintf(why, whylen, "'%s' is not a valid account name", c->name);
                return -EINVAL;
        }
        if (c->uid == 0 || c->gid == 0 || c->uid > (int64_t)UINT32_MAX - 1 ||
            c->gid > (int64_t)UINT32_MAX - 1) {
                snprintf(why, whylen, "refusing uid %lld / gid %lld", (long long)c->uid, (long long)c->gid);
                return -EPERM;
        }
        gecos = pgina_gecos_build(c->marker, c->fullname);
        if (!gecos)
                return -ENOMEM;
        argv[n++] = "useradd";
        if (c->create_home) {
                argv[n++] = "-m";
                argv[n++] = "-k";
                argv[n++] = "/etc/skel";
        } else
                argv[n++] = "-M";
        argv[n++] = "-c";
        argv[n++] = gecos;
        if (c->uid > 0) {
                snprintf(uidbuf, sizeof uidbuf, "%lld", (long long)c->uid);
                argv[n++] = "-u";
                argv[n++] = uidbuf;
        }
        if (c->gid > 0) {
                snprintf(gidbuf, sizeof gidbuf, "%lld", (long long)c->gid);
                if (!pgina_local_gid_exists((gid_t)c->gid)) {
                        const char *group = c->group_name && valid_user_name(c->group_name) &&
                                                            !pgina_local_group_exists(c->group_name)
                                                    ? c->group_name
                                                    : c->name;
                        const char *ga[] = {"groupadd", "-g", gidbuf, group, NULL};
                        if ((r = run(ga, "the primary group", why, whylen)) < 0)
                                return r;
                }
                argv[n++] = "-g";
                argv[n++] = gidbuf;
        }
        if (c->home && pgina_valid_account_path(c->home)) {
                argv[n++] = "-d";
                argv[n++] = c->home;
        }
        if (!(shell && pgina_valid_account_path(shell)))
                shell = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : NULL;
        if (shell) {
                argv[n++] = "-s";
                argv[n++] = shell;
        }
        argv[n++] = c->name;
        argv[n] = NULL;
        return run(argv, "the account", why, whylen);
}
