#!/bin/bash
# A bad config line is refused with FILE:LINE: at start (pginad exits non-zero) and at reload
# (SIGHUP or pginactl reload), where the running configuration is kept.
. "$(dirname "$0")/lib.sh"

good() {
        pgina_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
CONF
}

step "start with an unknown stage in [order]: refused, FILE:LINE named"
pgina_conf <<'CONF'
[order]
authentication = localmachine
bogus_stage = localmachine
CONF
line=$(grep -n '^bogus_stage' /etc/pgina/pgina.conf | cut -d: -f1)
rc=0
timeout 10 "$BUILD/pginad" -f >"$T/start.out" 2>&1 || rc=$?
cat "$T/start.out"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "pginad started (or hung) with a bad config (exit $rc)"
assert_contains "$T/start.out" "/etc/pgina/pgina.conf:$line:"
assert_contains "$T/start.out" "bogus_stage"
[ ! -S /run/pgina/pginad.sock ] || fail "pginad left a socket behind after refusing its config"

step "start with an unknown plugin option: refused with its line"
pgina_conf <<'CONF'
[order]
authentication = localmachine

[localmachine]
always_authenticate = yes
no_such_option = 1
CONF
line=$(grep -n '^no_such_option' /etc/pgina/pgina.conf | cut -d: -f1)
rc=0
timeout 10 "$BUILD/pginad" -f >"$T/start2.out" 2>&1 || rc=$?
cat "$T/start2.out"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "pginad started with an unknown plugin option"
assert_contains "$T/start2.out" "/etc/pgina/pgina.conf:$line:"

step "start with a wrongly typed plugin option: refused"
pgina_conf <<'CONF'
[order]
authentication = localmachine
[localmachine]
always_authenticate = perhaps
CONF
rc=0
timeout 10 "$BUILD/pginad" -f >"$T/start3.out" 2>&1 || rc=$?
cat "$T/start3.out"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "pginad started with always_authenticate = perhaps"
assert_contains "$T/start3.out" "pgina.conf:"

step "start with a plugin that does not exist: refused"
pgina_conf <<'CONF'
[order]
authentication = localmachine nosuchplugin
CONF
rc=0
timeout 10 "$BUILD/pginad" -f >"$T/start4.out" 2>&1 || rc=$?
cat "$T/start4.out"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "pginad started with a plugin that does not exist"
assert_contains "$T/start4.out" "nosuchplugin"
# the line of [order] that names it
assert_contains "$T/start4.out" "/etc/pgina/pgina.conf:$(grep -n nosuchplugin /etc/pgina/pgina.conf | cut -d: -f1):"

step "pginactl config check prints the same FILE:LINE and exits 1"
pgina_conf <<'CONF'
[order]
authentication = local-machine
CONF
rc=0
pginactl config check /etc/pgina/pgina.conf >"$T/check.out" 2>&1 || rc=$?
cat "$T/check.out"
assert_eq 1 "$rc" "pginactl config check exit status"
assert_contains "$T/check.out" "/etc/pgina/pgina.conf:$(grep -n local-machine /etc/pgina/pgina.conf | cut -d: -f1):"

step "reload (pginactl reload) with a bad line: refused, errors shown, old config kept"
good
pgina_start
pginactl plugins >"$T/plugins-before.out"
cat >>/etc/pgina/pgina.conf <<'CONF'
gateway = localmachine
[service]
request_timeout = forever
CONF
line=$(grep -n 'request_timeout = forever' /etc/pgina/pgina.conf | cut -d: -f1)
rc=0
pginactl reload >"$T/reload.out" 2>&1 || rc=$?
cat "$T/reload.out"
assert_eq 1 "$rc" "pginactl reload exit status for a bad config"
assert_contains "$T/reload.out" "/etc/pgina/pgina.conf:$line:"
pginactl plugins >"$T/plugins-after.out"
# the refused config added a gateway stage: it must not be in effect
assert_eq "$(cat "$T/plugins-before.out")" "$(cat "$T/plugins-after.out")" "plugins after a refused reload"

step "SIGHUP with a bad line: refused in the log, daemon keeps serving the old config"
kill -HUP "$PGINA_PID"
for _ in $(seq 1 50); do
        grep -q "pgina.conf:$line:" "$PGINA_LOG" && break
        sleep 0.1
done
assert_contains "$PGINA_LOG" "/etc/pgina/pgina.conf:$line:"
kill -0 "$PGINA_PID" || fail "pginad exited on a bad SIGHUP reload"
assert_ok pginactl status >/dev/null
pginactl plugins >"$T/plugins-hup.out"
assert_eq "$(cat "$T/plugins-before.out")" "$(cat "$T/plugins-hup.out")" "plugins after a refused SIGHUP"

step "a good config then reloads fine"
good
assert_ok pginactl reload
