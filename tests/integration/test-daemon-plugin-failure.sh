#!/bin/bash
# A plugin that crashes or hangs fails that request only: the logon is refused with a message
# naming the plugin, pginad keeps serving, and `pginactl status` shows the plugin as failed with
# the reason (pGina's "plugin status false") until the configuration is reloaded.
. "$(dirname "$0")/lib.sh"
need pamtester

pam_service pgtest <<'PAM'
auth     required pam_pgina.so timeout=20
account  required pam_pgina.so
PAM

step "a plugin crashing in authentication fails the logon, names the plugin, pginad lives on"
pgina_conf <<'CONF'
[order]
authentication = testplugin testplugin2
[testplugin]
authenticate = crash
[testplugin2]
password = secret
CONF
pgina_start
assert_fail pam_run pgtest alice secret authenticate
assert_contains "$T/pam.out" "testplugin"
assert_contains "$PGINA_LOG" "plugin testplugin crashed"
pginactl status >"$T/status.out" || fail "pginactl status failed after a plugin crash"
grep -E '^ *testplugin +failed' "$T/status.out" >/dev/null ||
        grep -E 'testplugin.*failed.*crashed' "$T/status.out" >/dev/null ||
        { cat "$T/status.out"; fail "status does not show testplugin as failed"; }
assert_contains "$T/status.out" "crashed"
kill -0 "$PGINA_PID" || fail "pginad died with the plugin"

step "after a reload with a healthy config, the same user logs on and the plugin is ok again"
sed -i 's/^authenticate = crash/authenticate = failure/' /etc/pgina/pgina.conf
assert_ok pginactl reload
assert_ok pam_run pgtest alice secret authenticate
pginactl status >"$T/status2.out"
assert_not_contains "$T/status2.out" "crashed"

step "a plugin hanging past request_timeout fails the logon in bounded time"
pgina_stop
PGINA_SERVICE_EXTRA="request_timeout = 2" pgina_conf <<'CONF'
[order]
authentication = testplugin2 testplugin
[testplugin]
authenticate = hang
[testplugin2]
password = secret
CONF
pgina_start
start=$(date +%s)
assert_fail pam_run pgtest alice secret authenticate
took=$(($(date +%s) - start))
[ "$took" -le 8 ] || fail "a hanging plugin held the logon for $took s (request_timeout = 2)"
assert_contains "$T/pam.out" "testplugin"
assert_contains "$PGINA_LOG" "request_timeout reached"
pginactl status >"$T/status3.out"
assert_contains "$T/status3.out" "timed out"

step "another request right after is served normally (no hang left behind)"
sed -i 's/^authenticate = hang/authenticate = failure/' /etc/pgina/pgina.conf
kill -HUP "$PGINA_PID"
for _ in $(seq 50); do grep -q "reloaded" "$PGINA_LOG" && break; sleep 0.1; done
assert_ok pam_run pgtest alice secret authenticate
