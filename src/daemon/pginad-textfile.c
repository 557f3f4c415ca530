/* The metrics as a file for node_exporter's textfile collector ([service] metrics_textfile, every
 * metrics_interval seconds), and the gauges both it and `pginactl metrics` show. The master renders
 * the text (memory only); a short-lived child writes it (temporary file, fsync, rename, fsync of
 * the directory), so a slow or stuck disk never holds the event loop. One writer at a time: while
 * one runs, the next period waits for it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "pginad.h"
#include "util.h"

#include "pginad-manager.h"

void manager_gauges(const struct manager *m, struct metrics_gauges *g) {
        memset(g, 0, sizeof *g);
        g->started = m->started;
        g->sessions = m->cache.n;
        for (const struct job *j = m->jobs.head; j; j = j->next)
                if ((unsigned)j->state < ELEMENTSOF(g->jobs))
                        g->jobs[j->state]++;
        g->request_workers = workers_count(m, WORKER_REQUEST);
        g->requests_queued = m->nqueued;
}

void textfile_deadline(const struct manager *m, long long *next) {
        if (m->conf->metrics_textfile && !m->textfile.writer)
                deadline_min(next, m->textfile.next);
}

static _Noreturn void textfile_child(const char *path, const char *text, size_t len) {
        /* node_exporter reads it as another user: the file is 0644, its directory the admin's. */
        int r = write_file_atomic(path, text, len, 0644);

        if (r < 0)
                log_error_errno(r, "Failed to write the metrics file %s (metrics_textfile): %m", path);
        _exit(r < 0 ? 1 : 0);
}

void textfile_write(struct manager *m, long long now) {
        _cleanup_free_ char *text = NULL;
        struct metrics_gauges g;
        size_t len = 0;
        pid_t pid;

        if (!m->conf->metrics_textfile || m->textfile.writer || now < m->textfile.next)
                return;
        m->textfile.next = now + 1000LL * m->conf->metrics_interval;
        for (size_t i = 0; i < m->nplugins; i++)
                metrics_plugin_known(&m->metrics, m->plugins[i].name);
        manager_gauges(m, &g);
        if (metrics_render(&m->metrics, &g, &text, &len) < 0) {
                log_error("metrics: out of memory; %s not written", m->conf->metrics_textfile);
                return;
        }
        pid = fork();
        if (pid < 0) {
                log_error_errno(-errno, "Failed to start the writer of %s: %m", m->conf->metrics_textfile);
                return;
        }
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                textfile_child(m->conf->metrics_textfile, text, len);
        }
        m->textfile.writer = pid;
}

bool textfile_reaped(struct manager *m, pid_t pid, int status) {
        if (!m->textfile.writer || pid != m->textfile.writer)
                return false;
        m->textfile.writer = 0;
        if (WIFSIGNALED(status))
                log_error("the writer of the metrics file was killed by signal %d", WTERMSIG(status));
        return true;
}
