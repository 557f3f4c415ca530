#!/bin/bash
# The journal of logoff work (issue 16): a logoff job is in /var/lib/pgina/jobs/USER.job from
# before it runs until it is done, without the password.
#   - pginad SIGKILLed while a job runs: the restarted pginad resumes it, and the user's logon
#     waits for the resumed job as for any pending one;
#   - SIGTERM past shutdown_timeout leaves an unfinished job in the journal: the next start runs it;
#   - a journal file that is not a job is set aside (USER.job.damaged), never run, pginad starts.
. "$(dirname "$0")/lib.sh"
need pamtester

LOG=$T/calls.log
JOURNAL=/var/lib/pgina/jobs
pam_service pgtest <<'PAM'
auth     required pam_pgina.so timeout=30
account  required pam_pgina.so
session  required pam_pgina.so
PAM
write_conf() {
        PGINA_SERVICE_EXTRA="shutdown_timeout = 1" pgina_conf <<CONF
[order]
authentication = testplugin
notification = testplugin
[testplugin]
password = Journal-pw-9
notify_sleep_ms = $1
log_file = $LOG
CONF
}
write_conf 4000
pgina_start

step "pginad SIGKILLed during a logoff job: the job is journaled, without the password"
assert_ok pam_run pgtest alice Journal-pw-9 authenticate open_session close_session
pgina_wait_log "logoff job of alice started"
[ -s "$JOURNAL/alice.job" ] || fail "no journal entry for alice's running job"
assert_eq 600 "$(stat -c %a "$JOURNAL/alice.job")" "mode of the journal entry"
assert_eq 700 "$(stat -c %a "$JOURNAL")" "mode of the journal directory"
grep -qa "Journal-pw-9" "$JOURNAL/alice.job" && fail "the journal holds alice's password"
pgina_kill

step "restarted, pginad resumes the job; alice's logon waits for it"
pgina_start
assert_contains "$PGINA_LOG" "Resuming the logoff job of alice"
assert_contains "$PGINA_LOG" "logoff job of alice started (resumed)"
pginactl status >"$T/status.out"
has_line "$T/status.out" '^alice +running \(resumed\) '
assert_ok pam_run pgtest alice Journal-pw-9 authenticate
assert_contains "$T/pam.out" "still being completed"
finished=$(grep -n "logoff job of alice finished" "$PGINA_LOG" | tail -n1 | cut -d: -f1)
logon=$(grep -n "logon of alice (service pgtest): ok" "$PGINA_LOG" | tail -n1 | cut -d: -f1)
[ -n "$finished" ] && [ -n "$logon" ] && [ "$logon" -gt "$finished" ] ||
        fail "alice's logon (log line $logon) did not wait for the resumed job (line $finished)"
[ -z "$(ls -A "$JOURNAL")" ] || fail "the journal still holds: $(ls -A "$JOURNAL")"

step "SIGTERM past shutdown_timeout: the unfinished job runs at the next start"
assert_ok pam_run pgtest bob Journal-pw-9 authenticate open_session close_session
pgina_wait_log "logoff job of bob started"
pgina_stop || fail "pginad exited non-zero"
assert_contains "$PGINA_LOG" "the logoff job of bob did not finish (running); it is in the journal"
[ -s "$JOURNAL/bob.job" ] || fail "bob's unfinished job is not in the journal"
write_conf 0
pgina_start
assert_contains "$PGINA_LOG" "Resuming the logoff job of bob"
pgina_wait_jobs
[ -z "$(ls -A "$JOURNAL")" ] || fail "the journal still holds: $(ls -A "$JOURNAL")"

step "a damaged journal file is set aside, not run"
pgina_stop
printf 'PGINA-JOB 1\ngarbage' >"$JOURNAL/carol.job"
printf 'not a job at all' >"$JOURNAL/dave.job"
pgina_start
assert_contains "$PGINA_LOG" "$JOURNAL/carol.job: not a logoff job"
[ -e "$JOURNAL/carol.job.damaged" ] || fail "carol.job was not set aside"
[ -e "$JOURNAL/dave.job.damaged" ] || fail "dave.job was not set aside"
assert_not_contains "$PGINA_LOG" "logoff job of carol started"
assert_ok pginactl wait
