#!/bin/bash
# A request pginad holds longer than two keepalive intervals (PROTO_KEEPALIVE_MS, 10 s) still gets
# its answer. The keepalive used to be queued after the round's poll set was built: poll slept a
# whole interval on it, the client looked stuck (SEND_TIMEOUT_MS, also 10 s) and was cut off, so
# `pginactl wait` on a 25-second logoff job failed with "closed the connection without an answer",
# and a logon whose chain ran that long silently was dropped the same way.
. "$(dirname "$0")/lib.sh"
need pamtester

pam_service pgtest <<'PAM'
auth     required pam_pgina.so timeout=60
account  required pam_pgina.so
session  required pam_pgina.so
PAM
pgina_conf <<CONF
[order]
authentication = testplugin
notification = testplugin
[testplugin]
password = secret
notify_sleep_ms = 25000
CONF
pgina_start

step "pginactl wait outlasts a 25 s logoff job"
assert_ok pam_run pgtest alice secret authenticate open_session close_session
start=$(date +%s)
pginactl -t 60 wait >"$T/wait.out" 2>&1 || fail "pginactl wait failed: $(cat "$T/wait.out")"
took=$(($(date +%s) - start))
[ "$took" -ge 20 ] || fail "pginactl wait returned after $took s, before the job ended"
assert_not_contains "$PGINA_LOG" "took none of its"

step "a logon whose chain runs 25 s without a word is answered"
pgina_stop
pgina_conf <<CONF
[order]
authentication = testplugin
[testplugin]
password = secret
wait_file = $T/go
CONF
pgina_start
(sleep 25; touch "$T/go") &
toucher=$!
assert_ok pam_run pgtest bob secret authenticate
wait "$toucher"
assert_not_contains "$PGINA_LOG" "took none of its"
