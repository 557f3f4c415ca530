#!/bin/bash
# Change password runs every plugin in order; on a failure the plugins that already changed the
# password are called again with (new, old) to restore it (visible in the test plugins' logs and
# in LocalMachine's local password). A root reset has no old password, so nothing is restored.
. "$(dirname "$0")/lib.sh"
export PGINA_SERVICE_EXTRA="failure_delay_max = 0" # failed changes here are deliberate

configure() {
        pgina_stop
        rm -f "$T/tp1.log" "$T/tp2.log"
        pgina_conf <<C
[order]
authentication = localmachine
$1

[testplugin]
log_file = $T/tp1.log
$2

[testplugin2]
log_file = $T/tp2.log
$3
C
        pgina_start
}
lines() { if [ -e "$1" ]; then grep -c -- "$2" "$1"; else echo 0; fi; }

need setpriv
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
password required pam_pgina.so
P
make_user alice 'Old pw 1'

step "every plugin succeeds: each is called once, in order"
configure "change_password = testplugin testplugin2" "" ""
assert_ok pam_run_as alice pgtest alice 'Old pw 1\nNew pw 2\nNew pw 2' chauthtok
assert_eq 1 "$(lines "$T/tp1.log" 'stage=change_password')" "testplugin calls"
assert_eq 1 "$(lines "$T/tp2.log" 'stage=change_password')" "testplugin2 calls"
assert_contains "$T/tp1.log" "stage=change_password event=- user=alice"
assert_contains "$T/tp1.log" " old=set "

step "the second fails: the first is called again to restore the old password"
configure "change_password = testplugin testplugin2" "" "change_password = failure"
assert_fail pam_run_as alice pgtest alice 'Old pw 1\nNew pw 2\nNew pw 2' chauthtok
assert_eq 2 "$(lines "$T/tp1.log" 'stage=change_password')" "testplugin calls (change + restore)"
assert_eq 1 "$(lines "$T/tp2.log" 'stage=change_password')" "testplugin2 calls"

step "the first fails: nothing to restore, the second is never called"
configure "change_password = testplugin testplugin2" "change_password = failure" ""
assert_fail pam_run_as alice pgtest alice 'Old pw 1\nNew pw 2\nNew pw 2' chauthtok
assert_eq 1 "$(lines "$T/tp1.log" 'stage=change_password')" "testplugin calls"
assert_eq 0 "$(lines "$T/tp2.log" 'stage=change_password')" "testplugin2 calls"

step "LocalMachine changed it, a later plugin fails: the local password is the old one again"
configure "change_password = localmachine testplugin" "change_password = error" ""
assert_fail pam_run_as alice pgtest alice 'Old pw 1\nNew pw 2\nNew pw 2' chauthtok
assert_ok pam_run pgtest alice 'Old pw 1' authenticate
assert_fail pam_run pgtest alice 'New pw 2' authenticate

step "LocalMachine and a later plugin succeed: the local password is the new one"
configure "change_password = localmachine testplugin" "" ""
assert_ok pam_run_as alice pgtest alice 'Old pw 1\nNew pw 2\nNew pw 2' chauthtok
assert_ok pam_run pgtest alice 'New pw 2' authenticate
assert_fail pam_run pgtest alice 'Old pw 1' authenticate

step "a root reset that fails later: no old password, nothing restored"
configure "change_password = testplugin testplugin2" "" "change_password = failure"
assert_fail pam_run pgtest alice 'Root set 3' chauthtok
assert_eq 1 "$(lines "$T/tp1.log" 'stage=change_password')" "testplugin calls"
assert_contains "$T/tp1.log" "old=unset"
exit 0
