/* pginad: the pgina service (pGina's service), entry point: options, config, probe, then the
 * master loop in pginad-manager.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pgina-build.h"
#include "pginad.h"
#include "util.h"

static void help(void) {
        printf("Usage: pginad [OPTIONS]\n"
               "The pgina service: runs the plugin chain for pam_pgina.so and pginactl.\n\n"
               "  -f, --foreground   stay in the foreground and log to stderr\n"
               "  -c, --config FILE  configuration file (default %s)\n"
               "  -t, --test         check the configuration and the plugins, then exit\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n\n"
               "Signals: HUP reloads the configuration (a bad one is refused and the old one\n"
               "kept), TERM finishes pending logoff jobs (shutdown_timeout) and exits.\n"
               "See pginad(8) and pgina.conf(5).\n",
               PGINA_CONF_FILE);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"foreground", no_argument, NULL, 'f'}, {"config", required_argument, NULL, 'c'},
                {"test", no_argument, NULL, 't'},       {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},    {}};
        const char *conf_path = PGINA_CONF_FILE;
        bool foreground = false, test = false;
        _cleanup_free_ char *errors = NULL;
        struct conf *conf = NULL;
        struct plugin_info *infos = NULL;
        struct manager *m = NULL;
        size_t ninfos = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "fc:th", opts, NULL)) >= 0)
                switch (c) {
                case 'f': foreground = true; break;
                case 'c': conf_path = optarg; break;
                case 't': test = true; break;
                case 'h': help(); return 0;
                case 'V': printf("pginad %s (plugin ABI %u)\n", PGINA_VERSION, PGINA_PLUGIN_ABI_VERSION); return 0;
                default: return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "pginad: unexpected argument '%s' (see pginad --help)\n", argv[optind]);
                return 2;
        }
        log_open("pginad", foreground || test || isatty(STDERR_FILENO));
        if (geteuid() != 0) {
                log_error("pginad must run as root (it checks passwords and creates accounts)");
                return 1;
        }
        /* libnss_pgina answers from this daemon: in here (and in every tool a worker starts, such
         * as useradd, which must see only local accounts) it must stay silent. */
        if (setenv("PGINA_NSS_DISABLE", "1", 1) < 0)
                return 1;
        /* Passwords live in this process: no core dumps, no ptrace by non-root. */
        (void)prctl(PR_SET_DUMPABLE, 0);
        umask(022);

        r = conf_load(conf_path, &conf, &errors);
        if (r >= 0) {
                log_set_level(conf->log_level);
                r = probe_run(conf, &infos, &ninfos, &errors);
        }
        if (r < 0) {
                log_error("Configuration refused:\n%s", errors ? errors : strerror(-r));
                conf_free(conf);
                return 1;
        }
        if (test) {
                printf("%s: OK (%zu plugin(s))\n", conf_path, ninfos);
                plugin_infos_free(infos, ninfos);
                conf_free(conf);
                return 0;
        }
        r = manager_new(&m, conf_path, conf, infos, ninfos);
        if (r >= 0)
                r = manager_run(m);
        else if (!m) {
                conf_free(conf);
                plugin_infos_free(infos, ninfos);
        }
        manager_free(m);
        return r < 0 ? 1 : 0;
}
