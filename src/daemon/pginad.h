/* pginad's internal types. The master (pginad-manager.h and its modules: -loop, -conn, -peer,
 * -queue, -workers, -logon, -admin, -textfile; with -cache, -jobs, -nss, -logind, -metrics) never
 * runs plugin code; pginad-worker.c runs in forked children and is the only file that calls into
 * the chain (host/). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "host.h"
#include "proto.h"
#include "proto-request.h"
#include "secret.h"

/* struct request, request_parse(), request_free(): proto-request.h. */

/* ---- session cache (pginad-cache.c): pGina's m_sessionPropertyCache ---- */
struct cache_entry {
        char *user;
        int64_t uid;
        char *service, *tty, *rhost;
        int64_t opened; /* unix time */
        uint8_t scenario; /* PGINA_SCENARIO_LOGON or _CREDUI */
        struct pgina_user *record; /* without password */
        struct secret *password; /* in memory only, never written; for logoff work */
        char *phases; /* the phases of the logon that opened it ("812 ms (authentication ...)"), or "" */
};

struct session {
        char *id;
        uint32_t leader; /* the pid that opened the PAM session (as pginad sees it) */
        char *logind; /* its logind session where logind runs, "" while not known */
        size_t nentries; /* entries[0] = the logged-in user, then credui users */
        struct cache_entry *entries;
};

struct cache {
        char *path; /* state_dir/sessions */
        struct session *v;
        size_t n;
        uint64_t next_id;
        bool from_previous_boot; /* loaded sessions predate this boot: their logoff is due */
};

int cache_load(struct cache *c, const char *state_dir);
int cache_save(const struct cache *c);
void cache_free(struct cache *c);
struct session *cache_find(struct cache *c, const char *id);
/* Open a session whose first entry is the record's user; returns the new session. */
struct session *cache_open(struct cache *c, struct pgina_user *record, struct secret *password,
                           const char *service, const char *tty, const char *rhost,
                           uint32_t leader);
int cache_append(struct session *s, struct pgina_user *record, struct secret *password,
                 const char *service, const char *tty, const char *rhost);
/* Remove a session; the removed session is returned in *ret for the caller to free. */
int cache_close(struct cache *c, const char *id, struct session *ret);
void session_done(struct session *s);
int cache_entry_set_phases(struct cache_entry *e, const char *phases);
/* The user's login sessions (their user manager's, systemd-user, does not count). */
unsigned cache_user_sessions(const struct cache *c, const char *user);
bool cache_session_is_manager(const struct session *s);

/* ---- logind (pginad-logind.c): where it runs, a logind session's end ends its pgina session ---- */
#define LOGIND_ID_MAX 64
struct logind {
        void *monitor; /* sd_login_monitor *, NULL while logind is not followed */
        int fd; /* its descriptor, or -1 */
        bool failed; /* sd-login refused once: said so, not asked again */
};
enum logind_state { LOGIND_UNKNOWN, LOGIND_OPEN, LOGIND_CLOSING, LOGIND_GONE };

bool logind_running(void);
/* Start following logind's sessions: 1 following, 0 logind does not run here, <0 error. */
int logind_follow(struct logind *l);
void logind_flush(struct logind *l); /* after its fd polled readable */
void logind_close(struct logind *l);
/* The logind session of pid, if logind registered it for uid and the PAM service service. */
int logind_session_of(pid_t pid, uid_t uid, const char *service, char **ret);
enum logind_state logind_session_state(const char *id);
bool logind_user_online(uid_t uid); /* a session of uid that is not closing (true if unknown) */
bool logind_session_id_valid(const char *id);
bool logind_process_gone(pid_t pid);

/* ---- logoff jobs (pginad-jobs.c) and their journal (pginad-journal.c) ---- */
enum job_state {
        JOB_QUEUED, /* to run as soon as a job slot is free */
        JOB_RUNNING,
        JOB_RETRY, /* a plugin asked to run it again later (pgina_ctx_retry_later): at next_try */
};
struct job {
        char *user;
        struct pgina_user *record; /* the password, while pginad runs, in memory only */
        enum job_state state;
        int64_t since; /* unix time queued */
        bool session_close; /* also deliver SESSION_CLOSE before LOGOFF */
        bool resumed; /* found in the journal at start: an earlier pginad did not finish it */
        unsigned attempts; /* retries run so far */
        char *retry_from; /* the plugin a retry starts at; NULL: the whole notification order */
        char *last_error; /* that plugin's reason */
        int64_t failing_since; /* unix time of the first run that asked for a retry; 0 = none */
        int64_t next_try; /* JOB_RETRY: unix time of the next run (status, journal) */
        long long next_try_ms; /* JOB_RETRY: the same on the manager's clock */
        struct job *next;
};

struct jobs {
        struct job *head;
        unsigned running;
        int inhibit_fd; /* logind delay inhibitor while jobs are queued or running, or -1 */
        char *journal_dir; /* state_dir/jobs; NULL: no journal (unit tests) */
};

/* Queue a job (written to the journal before anything runs it). NULL on ENOMEM. */
struct job *jobs_add(struct jobs *j, struct pgina_user *record, bool session_close);
void jobs_append(struct jobs *j, struct job *job); /* at the end of the list, as it is */
struct job *jobs_find_user(struct jobs *j, const char *user);
/* The job is done (or given up): out of the list and the journal, freed. */
void jobs_remove(struct jobs *j, struct job *job);
/* pginad exits: free every job, the journal keeps them for the next start. */
void jobs_free(struct jobs *j);
size_t jobs_count(const struct jobs *j); /* all, waiting retries included */
size_t jobs_active(const struct jobs *j); /* queued or running */
/* " (alice, bob)": the users of the pending jobs for a log line ("" when none; cut with "…"). */
const char *jobs_users(const struct jobs *j, char *buf, size_t size);
void jobs_inhibit_update(struct jobs *j);
/* The delay before retry number `attempt` (1, 2, ...): delay doubling up to max_delay, seconds. */
unsigned jobs_retry_delay(unsigned attempt, unsigned delay, unsigned max_delay);

/* The journal: state_dir/jobs/USER.job, one per job, written atomically (temporary file,
 * fsync, rename, fsync of the directory); the record without its password. */
int journal_open(struct jobs *j, const char *state_dir); /* creates the directory */
int journal_write(const struct jobs *j, const struct job *job);
void journal_remove(const struct jobs *j, const char *user);
/* Add every job the journal holds (resumed = true, queued); damaged files are set aside as
 * USER.job.damaged with a log line. Returns how many were resumed. */
size_t journal_load(struct jobs *j);
/* Encoding of one job (exposed for the unit and fuzz tests). */
int journal_encode(const struct job *job, struct pbuf *b);
int journal_decode(const uint8_t *data, size_t len, struct job **ret);
void job_free(struct job *job);

/* ---- workers (pginad-worker.c) ---- */
enum worker_kind {
        WORKER_REQUEST, /* a client's LOGIN, AUTHORIZE, CHANGE_PASSWORD, SIMULATE */
        WORKER_NOTIFY, /* session/logon events; nobody waits */
        WORKER_JOB, /* a logoff job */
};

struct worker_spec {
        enum worker_kind kind;
        const struct conf *conf;
        const struct request *req; /* WORKER_REQUEST */
        struct pgina_user *record; /* WORKER_NOTIFY, WORKER_JOB; PLUGIN_ADMIN: the cached one */
        const struct secret *password; /* PLUGIN_ADMIN: the logged-on user's, if cached */
        enum pgina_event events[3];
        size_t nevents;
        unsigned user_sessions;
        const char *notify_from; /* WORKER_JOB retry: the plugin to start from */
        unsigned attempt; /* WORKER_JOB: 0, or the retry's number (PGINA_ATTR_LOGOFF_RETRY) */
};

/* Fork a worker; returns its pid and the read end of its pipe in *fd. */
pid_t worker_spawn(const struct worker_spec *spec, int *fd);

/* Plugin descriptions gathered by the probe worker at start and reload. */
struct plugin_info {
        char *name, *version, *description, *stages, *path, *options;
        bool healthy;
        char *reason;
};

/* Load and check config + plugins in a child; fills infos on success, errors otherwise. */
int probe_run(const struct conf *conf, struct plugin_info **infos, size_t *n, char **errors);
/* Load the libraries the configured plugins link against into pginad, so that workers inherit
 * them instead of loading them per request (pginad-preload.c). Best effort, silent. */
void preload_libraries(const struct conf *conf);
void plugin_infos_free(struct plugin_info *v, size_t n);

/* ---- NSS answers (pginad-nss.c): GETPWNAM/GETGRNAM, remembered briefly ---- */
struct nss_entry;
struct manager_clock;
struct nss_cache {
        const struct manager_clock *clock; /* the manager's: an answer's lifetime */
        struct nss_entry *head; /* newest first */
        size_t n;
};
/* The cache key of a GETPWNAM/GETGRNAM request. */
void nss_key(const struct request *r, char *buf, size_t len);
const struct nss_entry *nss_cache_find(struct nss_cache *c, const char *key); /* NULL: ask */
/* Remember a worker's result for request r: the answer row of a found user or group, or the
 * status. NULL on allocation failure. */
const struct nss_entry *nss_cache_store(struct nss_cache *c, const struct request *r,
                                        const struct proto_result *res);
/* The RESULT frame's payload for a client (b is initialised here). */
int nss_entry_reply(const struct nss_entry *e, struct pbuf *b);
void nss_cache_clear(struct nss_cache *c);

/* ---- the master (pginad-manager.c) ---- */
struct manager;
int manager_new(struct manager **ret, const char *conf_path, struct conf *conf,
                struct plugin_info *infos, size_t ninfos);
int manager_run(struct manager *m);
void manager_free(struct manager *m);
