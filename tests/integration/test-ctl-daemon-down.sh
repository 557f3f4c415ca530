#!/bin/bash
# pginactl exits 3 and names the socket when pginad cannot be reached: no socket, a stale socket
# nobody listens on, a --socket / $PGINA_SOCKET override, and pginad stopped after running.
. "$(dirname "$0")/lib.sh"

expect_down() { # expect_down CMD... : exit 3 and "cannot reach pginad at SOCKET"
        local rc=0 sock=$1
        shift
        "$@" >"$T/ctl.out" 2>"$T/ctl.err.log" || rc=$?
        assert_eq 3 "$rc" "exit status of $*"
        assert_contains "$T/ctl.err.log" "cannot reach pginad at $sock"
        assert_contains "$T/ctl.err.log" "is pginad running?"
}

step "no socket at the default path"
for cmd in status sessions plugins reload; do
        expect_down /run/pgina/pginad.sock pginactl "$cmd"
done
assert_contains "$T/ctl.err.log" "No such file or directory"

step "simulate does not ask for a password when the daemon is down"
expect_down /run/pgina/pginad.sock pginactl simulate alice </dev/null
assert_not_contains "$T/ctl.err.log" "Password"

step "--socket and \$PGINA_SOCKET override the path"
expect_down "$T/other.sock" pginactl --socket "$T/other.sock" status
expect_down "$T/env.sock" env PGINA_SOCKET="$T/env.sock" "$BUILD/pginactl" status
expect_down "$T/flag.sock" env PGINA_SOCKET="$T/env.sock" "$BUILD/pginactl" status --socket "$T/flag.sock"

step "a stale socket: connection refused"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
expect_down "$T/stale.sock" pginactl --socket "$T/stale.sock" status
assert_contains "$T/ctl.err.log" "Connection refused"

step "a daemon that does not answer: exit 3 after --timeout"
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(5)
c = []
while True:
    c.append(s.accept()[0])
' "$T/mute.sock" &
mute=$!
at_exit kill "$mute"
for ((i = 0; i < 50; i++)); do [ -S "$T/mute.sock" ] && break; sleep 0.1; done
rc=0
start=$(date +%s)
pginactl --socket "$T/mute.sock" --timeout 1 status >"$T/ctl.out" 2>"$T/ctl.err.log" || rc=$?
assert_eq 3 "$rc" "exit status against a mute daemon"
assert_contains "$T/ctl.err.log" "did not answer within 1 s"
[ $(($(date +%s) - start)) -le 5 ] || fail "pginactl waited more than 5 s with --timeout 1"

step "pginad stopped after running"
pgina_conf <<'C'
[order]
authentication = localmachine
C
pgina_start
assert_ok pginactl status >/dev/null
pgina_stop || true
expect_down /run/pgina/pginad.sock pginactl status
exit 0
