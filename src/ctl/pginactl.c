/* pginactl: the admin's client of pginad (status, sessions, plugins, simulate, reload) and the
 * local config checker. Runs as the caller; only `config check` loads plugin code, in-process. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "config.h"
#include "host.h"
#include "log.h"
#include "pgina-build.h"
#include "proto.h"
#include "proto-request.h"
#include "secret.h"
#include "util.h"

#include "pginactl.h"

/* ---- command line ------------------------------------------------------------------------ */

struct command {
        const char *name;
        const char *args; /* synopsis after the name */
        unsigned min_args, max_args;
        const char *options; /* per-command options, for help */
        const char *summary;
        const char *help;
        int (*run)(const struct ctl *ctl, int argc, char **argv);
};

static const struct command commands[] = {
        {"status", "", 0, 0, NULL, "Show the daemon, its plugins' health and pending jobs",
         "Shows pginad's version, pid, uptime, config file, socket, number of sessions and\n"
         "pending logoff jobs, then each loaded plugin with its stages and health (ok, or\n"
         "failed with the reason: a crash or a timeout in a worker), then the pending jobs:\n"
         "user, state (queued, running, resumed from the journal, or retry N when a plugin\n"
         "asked pginad to try again later), since when, the next try and the last error.\n",
         cmd_status},
        {"sessions", "[-v]", 0, 0,
         "  -v, --verbose   also the phases of the logon that opened each session\n",
         "List the sessions pginad knows",
         "One line per user of each session: index 0 is the user who logged on, 1 and up\n"
         "the users who authenticated inside it (sudo, su, pkexec: scenario credui).\n"
         "With -v, the time the logon took and its phases: authentication, authorization\n"
         "and gateway, with what plugins measured (pgsmb's download and extract), in ms;\n"
         "the logon's log line says the same.\n",
         cmd_sessions},
        {"plugins", "[-v]", 0, 0, "  -v, --verbose   also each plugin's description and options\n",
         "List the loaded plugins",
         "Shows each plugin pginad loaded: name, version, stages it implements, plugin ABI,\n"
         "health, its positions in [order] and its file.\n",
         cmd_plugins},
        {"config", "check [FILE]", 1, 2, NULL, "Check a configuration file (no daemon needed)",
         "config check [FILE] parses FILE (default " PGINA_CONF_FILE "), loads the plugins it\n"
         "names and checks every [order] entry and plugin option, as pginad does on start and\n"
         "reload. Prints each problem as FILE:LINE: ... on stderr, or \"FILE: OK\".\n",
         cmd_config},
        {"simulate", "USER [--gateway]", 1, 1,
         "  -g, --gateway   run the gateway stage too, for real: it creates or changes the\n"
         "                  local account as a logon would\n",
         "Show what each plugin would decide for USER's logon",
         "pGina's simulator. Reads USER's password from the terminal (no echo) or, when\n"
         "standard input is not a terminal, from its first line. Shows each plugin's result\n"
         "and message per stage, then the verdict and the groups the user would have.\n"
         "Exit status 0 when the user would be allowed, 1 when refused.\n",
         cmd_simulate},
        {"reload", "", 0, 0, NULL, "Make pginad re-read its configuration",
         "Like SIGHUP, but reports the result: a configuration with errors is refused (the\n"
         "errors are printed, exit status 1) and pginad keeps the one it has.\n",
         cmd_reload},
        {"profile", "list|upload USER | restore USER VERSION", 2, 3, NULL,
         "Roaming profiles of the pgsmb plugin",
         "profile list USER shows the archive of USER in the profile store and the versions\n"
         "kept beside it (size, date, host), and conflict copies. profile upload USER saves\n"
         "USER's home to the store now (as a logoff would). profile restore USER VERSION makes\n"
         "a kept version the current one again; USER gets it at the next logon (refused while\n"
         "USER is logged on).\n",
         cmd_profile},
        {"wait", "[USER]", 0, 1, NULL, "Wait until the pending logoff jobs have ended",
         "Returns when pginad has no logoff job queued, running or waiting for a retry (of\n"
         "USER only, when given):\n"
         "the profile uploads of the users who logged off are done. pginad answers the moment\n"
         "the last one ends (no polling). With -t SECONDS it gives up after that long and exits\n"
         "with status 3; without, it waits as long as the jobs take. For shutdown and\n"
         "maintenance scripts: pginactl wait && poweroff.\n",
         cmd_wait},
        {"metrics", "", 0, 0, NULL, "Print pginad's metrics (Prometheus text format)",
         "Prints what pginad counted since it started, in Prometheus' text exposition format:\n"
         "logons by scenario and result, histograms of their phases (authentication,\n"
         "authorization, gateway, total), plugin calls by stage and result, plugin failures\n"
         "(crash, timeout), what plugins measured (pgsmb: download, extract, archive,\n"
         "upload and verify seconds, bytes moved, store errors), pending logoff jobs by\n"
         "state, job runs and retries. For node_exporter's textfile collector, set\n"
         "metrics_textfile in [service] of pgina.conf: pginad writes the same text there\n"
         "every metrics_interval seconds.\n",
         cmd_metrics},
        {"cache", "list | drop USER", 1, 2, NULL, "Cached (offline) logons of the ldap plugin",
         "cache list shows the users whose logon the ldap plugin can check while every LDAP\n"
         "server is unreachable (cache_credentials = true), with when each entry was made and\n"
         "when it expires. cache drop USER forgets USER's entry.\n",
         cmd_cache},
        {"plugin", "NAME USER|- [ARGS...]", 2, 64, NULL, "Run a plugin's admin command",
         "Passes ARGS to plugin NAME's admin command inside pginad and prints its output.\n"
         "USER names the user it is about (pginad hands the plugin that user's record), or -.\n"
         "Options of pginactl go before the command here; ARGS are passed on as they are.\n",
         cmd_plugin},
};

static const char exit_codes_help[] =
        "Exit status:\n"
        "  0  success\n"
        "  1  refused or invalid (authentication failed, denied, gateway failed, invalid config)\n"
        "  2  usage error\n"
        "  3  pginad unavailable (cannot connect, timeout, unavailable, shutting down)\n"
        "  4  permission denied (admin requests need root)\n"
        "  5  not found\n"
        "  6  protocol error (bad request, malformed reply)\n";

static void help_main(FILE *f) {
        fprintf(f,
                "Usage: pginactl [OPTIONS] COMMAND [ARGS]\n"
                "\n"
                "Control and inspect pginad, the pgina daemon.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char head[64];

                snprintf(head, sizeof head, "%s%s%s", commands[i].name, *commands[i].args ? " " : "",
                         commands[i].args);
                fprintf(f, "  %-26s %s\n", head, commands[i].summary);
        }
        fprintf(f,
                "  help [COMMAND]             Show this help, or a command's\n"
                "\n"
                "Options:\n"
                "  -s, --socket PATH  pginad's socket (default $PGINA_SOCKET, else %s)\n"
                "  -t, --timeout S    seconds to wait for an answer (default %u)\n"
                "  -h, --help         show this help\n"
                "      --version      show the version\n"
                "\n"
                "%s"
                "\n"
                "See pginactl(8).\n",
                PGINA_SOCKET_DEFAULT, DEFAULT_TIMEOUT_S, exit_codes_help);
}

static void help_command(const struct command *c, FILE *f) {
        fprintf(f, "Usage: pginactl [OPTIONS] %s%s%s\n\n%s.\n\n%s", c->name, *c->args ? " " : "",
                c->args, c->summary, c->help);
        if (c->options)
                fprintf(f, "\nOptions:\n%s", c->options);
        fprintf(f, "\n%s", exit_codes_help);
}

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static int parse_timeout(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (!*s || *end || errno || v == 0 || v > 3600 || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

enum { ARG_VERSION = 0x100 };
enum { ARGS_RUN, ARGS_HELP, ARGS_VERSION };

/* Options are accepted before and after the command (getopt permutes). */
static int parse_argv(int argc, char **argv, struct ctl *ctl) {
        static const struct option opts[] = {
                {"socket", required_argument, NULL, 's'}, {"timeout", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, ARG_VERSION},
                {"verbose", no_argument, NULL, 'v'},      {"gateway", no_argument, NULL, 'g'},
                {},
        };
        int c, ret = ARGS_RUN;
        const char *optstring = ":s:t:hvg";

        /* `plugin NAME ARGS...` passes ARGS on untouched: options only before the command. */
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "-s") || streq(argv[i], "-t") || streq(argv[i], "--socket") ||
                    streq(argv[i], "--timeout")) {
                        i++;
                        continue;
                }
                if (argv[i][0] == '-')
                        continue;
                if (streq(argv[i], "plugin"))
                        optstring = "+:s:t:hvg";
                break;
        }
        opterr = 0;
        while ((c = getopt_long(argc, argv, optstring, opts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        if (!*optarg) {
                                fprintf(stderr, "pginactl: --socket needs a path\n");
                                return -EINVAL;
                        }
                        ctl->socket_path = optarg;
                        break;
                case 't':
                        if (parse_timeout(optarg, &ctl->timeout_s) < 0) {
                                fprintf(stderr, "pginactl: invalid --timeout '%s' (seconds, 1-3600)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        ctl->timeout_given = true;
                        break;
                case 'h':
                        ret = ARGS_HELP;
                        break;
                case ARG_VERSION:
                        if (ret == ARGS_RUN)
                                ret = ARGS_VERSION;
                        break;
                case 'v':
                        ctl->verbose = true;
                        break;
                case 'g':
                        ctl->gateway = true;
                        break;
                case ':':
                        fprintf(stderr, "pginactl: option '%s' needs an argument\n", argv[optind - 1]);
                        return -EINVAL;
                default:
                        fprintf(stderr, "pginactl: unknown option '%s' (see pginactl --help)\n",
                                argv[optind - 1]);
                        return -EINVAL;
                }
        }
        return ret;
}

int main(int argc, char **argv) {
        struct ctl ctl = {.socket_path = PGINA_SOCKET_DEFAULT, .timeout_s = DEFAULT_TIMEOUT_S};
        const struct command *cmd;
        const char *env = getenv("PGINA_SOCKET");
        char **args;
        int nargs, r;
        bool want_help;

        setlocale(LC_ALL, "");
        log_open("pginactl", true);
        if (env && *env)
                ctl.socket_path = env;

        r = parse_argv(argc, argv, &ctl);
        if (r < 0)
                return EXIT_USAGE;
        if (r == ARGS_VERSION) {
                printf("pginactl %s\n", PGINA_VERSION);
                return EXIT_OK;
        }
        want_help = r == ARGS_HELP;
        args = argv + optind;
        nargs = argc - optind;
        if (want_help && nargs == 0) {
                help_main(stdout);
                return EXIT_OK;
        }
        if (nargs == 0) {
                help_main(stderr);
                return EXIT_USAGE;
        }
        if (streq(args[0], "help")) {
                if (nargs == 1) {
                        help_main(stdout);
                        return EXIT_OK;
                }
                cmd = find_command(args[1]);
                if (!cmd) {
                        fprintf(stderr, "pginactl: unknown command '%s'\n", args[1]);
                        return EXIT_USAGE;
                }
                help_command(cmd, stdout);
                return EXIT_OK;
        }
        cmd = find_command(args[0]);
        if (!cmd) {
                fprintf(stderr, "pginactl: unknown command '%s' (see pginactl --help)\n", args[0]);
                return EXIT_USAGE;
        }
        if (want_help) {
                help_command(cmd, stdout);
                return EXIT_OK;
        }
        args++;
        nargs--;
        if ((unsigned)nargs < cmd->min_args || (unsigned)nargs > cmd->max_args) {
                fprintf(stderr, "pginactl: usage: pginactl %s%s%s\n", cmd->name, *cmd->args ? " " : "",
                        cmd->args);
                return EXIT_USAGE;
        }
        if ((ctl.verbose && cmd->run != cmd_plugins && cmd->run != cmd_sessions) || (ctl.gateway && cmd->run != cmd_simulate)) {
                fprintf(stderr, "pginactl: %s: option %s does not apply\n", cmd->name,
                        ctl.verbose ? "--verbose" : "--gateway");
                return EXIT_USAGE;
        }
        return cmd->run(&ctl, nargs, args);
}
