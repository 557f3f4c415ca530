/* The master's setup and teardown: the listening socket, the state from a previous boot,
 * manager_new() and manager_free(). The loop is in pginad-loop.c. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pgina-build.h"
#include "pginad.h"
#include "util.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "pginad-manager.h"

static long long monotonic_ms(void *userdata) {
        (void)userdata;
        return now_ms();
}

const struct manager_clock manager_clock_monotonic = {.now_ms = monotonic_ms};

/* ---- setup ---- */

static int listen_socket(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        char dir[sizeof sa.sun_path];
        struct stat st;
        char *slash;
        int probe;

        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        if ((slash = strrchr(dir, '/')) && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return log_error_errno(-errno, "Failed to create %s: %m", dir);
        }
        probe = proto_connect(path, 1000);
        if (probe >= 0) {
                close(probe);
                log_error("Another pginad is already answering on %s", path);
                return -EADDRINUSE;
        }
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(-EEXIST, "%s exists and is not a socket; not removing it",
                                               path);
                (void)unlink(path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create a socket: %m");
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return log_error_errno(-errno, "Failed to bind %s: %m", path);
        /* Everyone may connect (screen lockers run as the user); each request checks its peer. */
        if (chmod(path, 0666) < 0)
                return log_error_errno(-errno, "Failed to chmod %s: %m", path);
        if (listen(fd, 128) < 0)
                return log_error_errno(-errno, "Failed to listen on %s: %m", path);
        return TAKE_FD(fd);
}

/* Sessions recorded before a reboot ended without a logoff: do the logoff work now (upload what
 * was left, clean up accounts), once per user, and forget the sessions. */
static void sessions_from_previous_boot(struct manager *m) {
        for (size_t i = 0; i < m->cache.n; i++) {
                struct session *s = &m->cache.v[i];
                struct cache_entry *e = s->nentries ? &s->entries[0] : NULL;

                if (!e || !e->record || jobs_find_user(&m->jobs, e->user))
                        continue;
                log_notice("session %s of %s is from before the last boot: running its logoff work", s->id,
                           e->user);
                if (m->conf->norder[CONF_STAGE_NOTIFICATION] > 0 && jobs_add(&m->jobs, e->record, false))
                        e->record = NULL;
        }
        for (size_t i = 0; i < m->cache.n; i++)
                session_done(&m->cache.v[i]);
        m->cache.n = 0;
        (void)cache_save(&m->cache);
        jobs_inhibit_update(&m->jobs);
}

int manager_new(struct manager **ret, const char *conf_path, struct conf *conf, struct plugin_info *infos,
                size_t ninfos) {
        struct manager *m = calloc(1, sizeof *m);
        sigset_t mask;
        int r;

        if (!m || !(m->conf_path = strdup(conf_path))) {
                free(m);
                return -ENOMEM;
        }
        m->conf = conf;
        m->plugins = infos;
        m->nplugins = ninfos;
        m->listen_fd = m->signal_fd = -1;
        m->jobs.inhibit_fd = -1;
        m->logind.fd = -1;
        m->clock = manager_clock_monotonic;
        m->nss.clock = &m->clock;
        m->started = time(NULL);
        *ret = m;

        if (mkdir(conf->state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create the state directory %s: %m",
                                       conf->state_dir);
        /* Logoff work an earlier pginad did not finish (killed, power loss, a retry pending)
         * first; then sessions a reboot ended without their logoff. */
        if ((r = journal_open(&m->jobs, conf->state_dir)) < 0)
                return r;
        (void)journal_load(&m->jobs);
        r = cache_load(&m->cache, conf->state_dir);
        if (r < 0)
                return r;
        if (m->cache.from_previous_boot && m->cache.n > 0)
                sessions_from_previous_boot(m);
        jobs_inhibit_update(&m->jobs);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        m->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (m->signal_fd < 0)
                return log_error_errno(-errno, "Failed to create a signalfd: %m");
        preload_libraries(conf);
        m->listen_fd = listen_socket(conf->socket_path);
        if (m->listen_fd < 0)
                return m->listen_fd;
        if (!(m->bound_socket = strdup(conf->socket_path)))
                return -ENOMEM;
        /* Sessions logind ended while pginad was not running end now (their workers are
         * reaped through the signalfd). */
        if (logind_follow(&m->logind) > 0)
                logind_sync(m);
        return 0;
}

void manager_free(struct manager *m) {
        if (!m)
                return;
        while (m->conns)
                conn_free(m, m->conns);
        for (struct worker *w = m->workers, *n; w; w = n) {
                n = w->next;
                kill(w->pid, SIGKILL);
                waitpid(w->pid, NULL, 0);
                worker_free(w);
        }
        jobs_free(&m->jobs); /* what is left stays in the journal */
        if (m->jobs.inhibit_fd >= 0)
                close(m->jobs.inhibit_fd);
        logins_expire(m);
        for (struct pending_login *pl = m->logins, *n; pl; pl = n) {
                n = pl->next;
                user_free(pl->record);
                secret_free(pl->password);
                free(pl);
        }
        nss_cache_clear(&m->nss);
        for (struct peer_fail *f = m->fails, *n; f; f = n) {
                n = f->next;
                free(f);
        }
        if (m->listen_fd >= 0) {
                close(m->listen_fd);
                if (m->bound_socket)
                        (void)unlink(m->bound_socket);
        }
        if (m->signal_fd >= 0)
                close(m->signal_fd);
        logind_close(&m->logind);
        cache_free(&m->cache);
        plugin_infos_free(m->plugins, m->nplugins);
        conf_free(m->conf);
        free(m->bound_socket);
        free(m->conf_path);
        free(m);
}
