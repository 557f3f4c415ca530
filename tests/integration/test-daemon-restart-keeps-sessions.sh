#!/bin/bash
# The session cache lives under state_dir: a restart of pginad forgets no open session, and the
# session can still be closed afterwards.
. "$(dirname "$0")/lib.sh"

pgina_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
CONF
pam_service pgina-test <<'PAM'
auth     required pam_pgina.so
account  required pam_pgina.so
session  required pam_pgina.so
PAM
make_user carol 'carol-pw-1'
pgina_start

step "open a session through PAM (never closed by this pamtester)"
assert_ok pam_run pgina-test carol carol-pw-1 authenticate acct_mgmt open_session
pginactl sessions | tee "$T/before.out"
assert_contains "$T/before.out" carol
session=$(awk '$3 == "carol" { print $1; exit }' "$T/before.out")
[ -n "$session" ] || fail "no session id for carol in pginactl sessions"

step "restart pginad"
assert_ok pgina_stop
ls -la /var/lib/pgina
pgina_start

step "the session is still known, with the same id"
pginactl sessions | tee "$T/after.out"
assert_contains "$T/after.out" "$session"
assert_contains "$T/after.out" carol

step "a SIGKILLed pginad (no clean shutdown) keeps it too"
kill -KILL "$PGINA_PID"
wait "$PGINA_PID" 2>/dev/null
PGINA_PID=
pgina_start
pginactl sessions | tee "$T/after-kill.out"
assert_contains "$T/after-kill.out" "$session"
