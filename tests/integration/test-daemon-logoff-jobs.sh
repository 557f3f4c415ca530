#!/bin/bash
# Logoff work runs in the background, one job per user, after the user's last session closes:
# another user's logon is never blocked by it, the same user's new logon waits for it (and is
# told so), and SIGTERM lets pending jobs finish before pginad exits.
. "$(dirname "$0")/lib.sh"
need pamtester

LOG=$T/calls.log
pam_service pgtest <<'PAM'
auth     required pam_pgina.so timeout=30
account  required pam_pgina.so
session  required pam_pgina.so
PAM
pgina_conf <<CONF
[order]
authentication = testplugin
notification = testplugin
[testplugin]
password = secret
notify_sleep_ms = 3000
log_file = $LOG
CONF
pgina_start

step "two sessions of one user: logoff only after the last one closes"
assert_ok pam_run pgtest alice secret authenticate open_session
s1=$(pginactl sessions | grep -c alice)
assert_eq 1 "$s1" "sessions of alice after one open"
assert_ok pam_run pgtest alice secret authenticate open_session close_session
grep -q "event=logoff user=alice" "$LOG" && fail "logoff ran while alice still had a session"

step "closing the last session queues the logoff job; another user logs on at once"
sid=$(pginactl sessions | awk '/alice/ { print $1; exit }')
[ -n "$sid" ] || fail "no session id for alice"
assert_ok pam_run pgtest alice secret authenticate open_session close_session  # opens and closes a 3rd
# The first session is still open; close it through a root client so the job starts now.
pgclient frame 1 4 "$(pgina_close_session_frame "$sid" alice)" >"$T/close.out"
assert_contains "$T/close.out" "result 0"
pginactl status >"$T/status.out"
assert_contains "$T/status.out" "alice"
start=$(date +%s%N)
assert_ok pam_run pgtest bob secret authenticate
took_ms=$((($(date +%s%N) - start) / 1000000))
[ "$took_ms" -lt 2500 ] || fail "bob's logon took $took_ms ms while alice's logoff job ran"

step "alice's new logon waits for her logoff job and says so"
start=$(date +%s%N)
assert_ok pam_run pgtest alice secret authenticate
took_ms=$((($(date +%s%N) - start) / 1000000))
assert_contains "$T/pam.out" "still being completed"
# The job must have finished before the waiting logon ran its chain.
finished=$(grep -n "logoff job of alice finished" "$PGINA_LOG" | tail -n1 | cut -d: -f1)
logon=$(grep -n "logon of alice (service pgtest): ok" "$PGINA_LOG" | tail -n1 | cut -d: -f1)
[ -n "$finished" ] && [ -n "$logon" ] && [ "$logon" -gt "$finished" ] ||
        fail "alice's logon (log line $logon) did not wait for her logoff job (line $finished)"
[ "$took_ms" -ge 500 ] || fail "alice's logon did not wait ($took_ms ms)"

step "pginactl wait: at once without a job, bounded by -t, answered when the job ends"
start=$(date +%s%N)
assert_ok pginactl wait bob
took_ms=$((($(date +%s%N) - start) / 1000000))
[ "$took_ms" -lt 1000 ] || fail "pginactl wait for bob (no job) took $took_ms ms"
assert_ok pam_run pgtest dave secret authenticate open_session close_session
start=$(date +%s%N)
rc=0
pginactl -t 1 wait dave >"$T/wait.out" 2>&1 || rc=$?
assert_eq 3 "$rc" "exit status of pginactl -t 1 wait while dave's 3 s job runs"
assert_contains "$T/wait.out" "1 logoff job(s) of dave still pending after 1 s"
grep -q "logoff job of dave finished" "$PGINA_LOG" && fail "dave's job ended before the bounded wait did"
assert_ok pginactl wait bob # someone else's job is not waited for
assert_ok pginactl wait
took_ms=$((($(date +%s%N) - start) / 1000000))
assert_contains "$PGINA_LOG" "logoff job of dave finished"
assert_contains "$LOG" "event=logoff user=dave"
[ "$took_ms" -ge 2000 ] && [ "$took_ms" -lt 6000 ] ||
        fail "pginactl wait returned after $took_ms ms for a 3 s job"
rc=0
pginactl wait 'no/such user' >"$T/wait.out" 2>&1 || rc=$?
assert_eq 2 "$rc" "exit status of pginactl wait with an impossible user name"
assert_contains "$T/wait.out" "invalid user name"
# pginad checks too: the raw request (str user | u32 seconds) is refused as a bad request
pgclient frame 1 22 "$("$PYTHON" -c 'import struct; u = b"no/such"; print((struct.pack(">I", len(u)) + u + struct.pack(">I", 0)).hex())')" >"$T/wait.raw"
assert_contains "$T/wait.raw" "result 6"

step "SIGTERM waits for a pending logoff job, and a pginactl wait held meanwhile gets its answer"
assert_ok pam_run pgtest carol secret authenticate open_session close_session
pginactl wait carol >"$T/wait-stop.out" 2>&1 &
waiter=$!
sleep 0.5
pgina_stop || fail "pginad exited non-zero"
assert_contains "$LOG" "event=logoff user=carol"
rc=0
wait "$waiter" || rc=$?
assert_eq 0 "$rc" "exit status of pginactl wait across pginad's stop ($(cat "$T/wait-stop.out"))"
