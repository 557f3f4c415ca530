#!/bin/bash
# With pginad down (no socket, or a socket nobody answers), pam_pgina fails closed and quickly:
# never success, never a hang past its timeout; pginactl says pginad is unavailable (exit 3).
. "$(dirname "$0")/lib.sh"

pgina_conf <<'CONF'
[order]
authentication = localmachine
CONF
pam_service pgina-test <<'PAM'
auth     required pam_pgina.so timeout=3
account  required pam_pgina.so timeout=3
session  required pam_pgina.so timeout=3
PAM
make_user dave 'dave-pw-1'

step "no socket at all: authenticate fails at once"
rm -f /run/pgina/pginad.sock
t0=$(date +%s)
assert_fail pam_run pgina-test dave dave-pw-1 authenticate
assert_not_contains "$T/pam.out" "successfully authenticated"
[ $(($(date +%s) - t0)) -le 5 ] || fail "authenticate took more than 5 s with no daemon"

step "pginactl: exit 3, naming the socket"
rc=0
pginactl status >"$T/ctl.out" 2>&1 || rc=$?
cat "$T/ctl.out"
assert_eq 3 "$rc" "pginactl status exit status with pginad down"
assert_contains "$T/ctl.out" "/run/pgina/pginad.sock"

step "a stale socket file (pginad killed): refused connection, still fails closed"
pgina_start
kill -KILL "$PGINA_PID"
wait "$PGINA_PID" 2>/dev/null
PGINA_PID=
[ -S /run/pgina/pginad.sock ] || echo "(socket removed)"
assert_fail pam_run pgina-test dave dave-pw-1 authenticate
assert_fail pam_run pgina-test dave dave-pw-1 open_session

step "a daemon that accepts but never answers: fails after the module's timeout (3 s)"
rm -f /run/pgina/pginad.sock
"$PYTHON" -c '
import socket, time, sys
s = socket.socket(socket.AF_UNIX); s.bind("/run/pgina/pginad.sock"); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' &
mute=$!
at_exit kill "$mute"
sleep 0.5
t0=$(date +%s)
assert_fail pam_run pgina-test dave dave-pw-1 authenticate
elapsed=$(($(date +%s) - t0))
echo "authenticate with a mute daemon failed after ${elapsed} s"
[ "$elapsed" -le 10 ] || fail "pam_pgina waited ${elapsed} s for a mute daemon (timeout=3)"
assert_not_contains "$T/pam.out" "successfully authenticated"
rc=0
pginactl -t 2 status >"$T/ctl.out" 2>&1 || rc=$?
assert_eq 3 "$rc" "pginactl status against a mute daemon"

step "pamtester reports the PAM error: authentication information unavailable"
grep -i "unavailable\|Authentication service cannot retrieve" "$T/pam.log" || true
