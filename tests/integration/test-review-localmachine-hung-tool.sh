#!/bin/bash
# A shadow-utils tool that hangs (here: a useradd that never returns) costs one logon, not the
# service: request_timeout kills the worker, the client gets an answer naming localmachine, and the
# next request is served. The hung tool must not keep the worker's result pipe open (LocalMachine
# spawns tools with every fd above stderr closed), or pginad would wait for that worker forever.
. "$(dirname "$0")/lib.sh"

need python3
# Inside the sandbox's private mount namespace: a useradd that sleeps, keeping every fd it got.
cat >"$T/useradd" <<'SH'
#!/bin/sh
echo "fake useradd: hanging" >&2
exec sleep 300
SH
chmod 0755 "$T/useradd"
mount --bind "$T/useradd" /usr/sbin/useradd || skip "cannot bind-mount over /usr/sbin/useradd"
at_exit umount /usr/sbin/useradd

PGINA_SERVICE_EXTRA="request_timeout = 3" pgina_conf <<'CONF'
[order]
authentication = testplugin
gateway = localmachine
[testplugin]
CONF
pgina_start

step "logon of a user without an account: the gateway's useradd hangs"
t0=$(date +%s)
out=$(pgclient --wait 15 login newbie secret)
t1=$(date +%s)
echo "answer: $out after $((t1 - t0)) s"
case $out in
"result 4 "*) ;; # PROTO_UNAVAILABLE: the plugin timed out
*) fail "expected an UNAVAILABLE answer after request_timeout, got '$out'" ;;
esac
[ $((t1 - t0)) -le 10 ] || fail "the answer took $((t1 - t0)) s with request_timeout = 3"
assert_contains "$PGINA_LOG" "localmachine"

step "pginad serves the next request and shows localmachine as failed"
assert_ok pginactl status >"$T/status.out"
cat "$T/status.out"
assert_contains "$T/status.out" "timed out"
