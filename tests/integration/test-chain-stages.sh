#!/bin/bash
# pGina's stage semantics, pinned with two test plugins that log every call: authentication
# succeeds when any plugin succeeds and every plugin still runs, seeing earlier results;
# authorization runs only for an authenticated user and stops at the first denial; the gateway
# stops at the first failure, which fails the logon; the user record travels along the chain.
. "$(dirname "$0")/lib.sh"

# configure "ORDER LINES" "TESTPLUGIN OPTIONS" "TESTPLUGIN2 OPTIONS"
configure() {
        pgina_stop
        rm -f "$T/tp1.log" "$T/tp2.log"
        pgina_conf <<C
[order]
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

pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P

step "authentication: the first fails, the second succeeds: authenticated"
configure "authentication = testplugin testplugin2" "authenticate = failure" ""
assert_ok pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_contains "$T/tp2.log" "stage=authentication event=- user=u1 authenticated=no"

step "authentication: after a success later plugins still run and see it"
configure "authentication = testplugin testplugin2" "" "authenticate = failure"
assert_ok pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_contains "$T/tp1.log" "stage=authentication event=- user=u1 authenticated=no"
assert_contains "$T/tp2.log" "stage=authentication event=- user=u1 authenticated=yes"

step "authentication: all fail: refused with the last failure's message"
configure "authentication = testplugin testplugin2" "authenticate = failure
message = first-plugin-says-no" "authenticate = failure
message = second-plugin-says-no"
assert_fail pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_fail pgina_simulate 'pw' u1
has_line "$T/sim.out" 'would be refused:.*second-plugin-says-no'

step "authentication: a wrong password for the only plugin: refused"
configure "authentication = testplugin" "password = right" ""
assert_fail pam_run pgtest u1 'wrong' authenticate acct_mgmt
assert_ok pam_run pgtest u1 'right' authenticate acct_mgmt

step "authentication: no plugin configured: refused with a clear message"
configure "authorization = testplugin" "" ""
assert_fail pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_fail pgina_simulate 'pw' u1
assert_contains "$T/sim.out" "no authentication plugin configured"

step "the record travels: groups and attributes set at authentication reach later stages"
configure "authentication = testplugin
authorization = testplugin2
gateway = testplugin2" "add_groups = g1 g2" ""
assert_ok pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_contains "$T/tp2.log" "stage=authorization event=- user=u1 authenticated=yes old=unset groups=g1,g2"
assert_contains "$T/tp2.log" "stage=gateway event=- user=u1 authenticated=yes old=unset groups=g1,g2"

step "authorization: runs only for an authenticated user"
configure "authentication = testplugin
authorization = testplugin2" "authenticate = failure" ""
assert_fail pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_not_contains "$T/tp2.log" "stage=authorization"

step "authorization: the first denial stops it"
configure "authentication = testplugin
authorization = testplugin testplugin2" "authorize = failure" ""
assert_fail pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_contains "$T/tp1.log" "stage=authorization"
assert_not_contains "$T/tp2.log" "stage=authorization"

step "authorization: every plugin must allow"
configure "authentication = testplugin
authorization = testplugin testplugin2" "" "authorize = failure"
assert_fail pam_run pgtest u1 'pw' authenticate acct_mgmt
configure "authentication = testplugin
authorization = testplugin testplugin2" "" ""
assert_ok pam_run pgtest u1 'pw' authenticate acct_mgmt
assert_contains "$T/tp2.log" "stage=authorization"

step "authorization: no plugin configured: allowed"
configure "authentication = testplugin" "" ""
assert_ok pam_run pgtest u1 'pw' authenticate acct_mgmt

step "gateway: the first failure stops it and fails the logon"
configure "authentication = testplugin
gateway = testplugin testplugin2 localmachine" "gateway = failure" ""
assert_fail pam_run pgtest gwuser 'pw' authenticate acct_mgmt
assert_contains "$T/tp1.log" "stage=gateway"
assert_not_contains "$T/tp2.log" "stage=gateway"
assert_fail getent passwd gwuser

step "gateway: an error (not only a refusal) fails the logon too"
configure "authentication = testplugin
gateway = testplugin testplugin2" "" "gateway = error"
assert_fail pam_run pgtest gwuser 'pw' authenticate acct_mgmt

step "gateway: groups added by an earlier gateway plugin reach LocalMachine"
groupadd gwgroup
configure "authentication = testplugin2
gateway = testplugin localmachine" "add_groups = gwgroup" ""
assert_ok pam_run pgtest gwuser 'pw' authenticate acct_mgmt
assert_not_contains "$T/tp1.log" "stage=authentication"
assert_ok getent passwd gwuser
id -nG gwuser | grep -qw gwgroup || fail "gwuser is not in gwgroup: $(id -nG gwuser)"
exit 0
