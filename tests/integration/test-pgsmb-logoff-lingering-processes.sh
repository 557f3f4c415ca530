#!/bin/bash
# pgSMB at logoff (issue 13): processes of the user that outlive the last session are given
# logoff_process_wait seconds, then ended (no logind here: SIGTERM, then SIGKILL for one that
# ignores it) before the home is archived, so the saved home is quiet; one that ends by itself in
# time is waited for; logoff_keep_processes (@group) leaves them running.
. "$(dirname "$0")/lib.sh"
need pamtester setsid
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
write_conf() { # $1: more [pgsmb] lines
        PGINA_SERVICE_EXTRA="request_timeout = 60" pgsmb_conf secret <<CONF
share = file://$STORE
store_format = 1
retries = 1
logoff_process_wait = 2
$1
CONF
}
write_conf ""
pgina_start
uid_procs() { pgrep -u "$1" | wc -l; }

step "a writer and a process ignoring SIGTERM outlive the session: ended, then the home is saved"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice setsid sh -c 'while :; do date >> /home/alice/writer.log; sleep 0.05; done' </dev/null >/dev/null 2>&1 &
as_user alice setsid sh -c 'trap "" TERM; while :; do sleep 0.2; done' </dev/null >/dev/null 2>&1 &
sleep 0.5
[ "$(uid_procs alice)" -ge 2 ] || fail "alice's processes did not start"
t0=$(date +%s)
pgina_close_session alice
el=$(($(date +%s) - t0))
grep -q "alice: [0-9]* process(es) still running 2 s after the last session: ending them (SIGTERM)" "$PGINA_LOG" || fail "no SIGTERM line for alice"
grep -q "alice: [0-9]* process(es) killed (SIGKILL) after 5 s" "$PGINA_LOG" || fail "no SIGKILL line for alice (the process ignoring SIGTERM)"
assert_eq 0 "$(uid_procs alice)" "alice's processes after the logoff"
[ "$el" -lt 30 ] || fail "the logoff took $el s"
assert_contains "$PGINA_LOG" "alice: saved"
saved=$(archived "$STORE/alice/alice.tar.zst" writer.log | wc -l)
assert_eq "$(wc -l </home/alice/writer.log)" "$saved" "lines of writer.log saved (the home was quiet)"

step "a process that ends within logoff_process_wait is waited for, not killed"
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
as_user bob setsid sh -c 'sleep 1; echo done > /home/bob/late.txt' </dev/null >/dev/null 2>&1 &
sleep 0.2
pgina_close_session bob
assert_not_contains "$PGINA_LOG" "bob: 1 process(es) still running"
assert_not_contains "$PGINA_LOG" "bob: 2 process(es) still running"
assert_eq done "$(archived "$STORE/bob/bob.tar.zst" late.txt)" "late.txt saved"

step "logoff_keep_processes = @group: left running"
groupadd keepers
write_conf "logoff_keep_processes = @keepers"
assert_ok pginactl reload
assert_ok pam_run pgtest carol secret authenticate acct_mgmt open_session
usermod -aG keepers carol
as_user carol setsid sh -c 'sleep 300' </dev/null >/dev/null 2>&1 &
sleep 0.3
pgina_close_session carol
grep -q "carol: [0-9]* process(es) still running 2 s after the last session; left alone (logoff_keep_processes)" "$PGINA_LOG" ||
        fail "carol's processes were not left alone by name"
pgrep -u carol -x sleep >/dev/null || fail "carol's sleep was ended although she is in logoff_keep_processes"
pkill -u carol
exit 0
