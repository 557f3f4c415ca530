#!/bin/bash
# LocalMachine, notification at logoff: logoff_action remove (account and home go), scramble (the
# password no longer works), none (nothing), only for "pGina created" accounts and never for users
# in logoff_exceptions or accounts that existed before pgina. A logon of the same user waits for
# its pending logoff work.
. "$(dirname "$0")/lib.sh"

# configure LOCALMACHINE_OPTIONS [TESTPLUGIN_OPTIONS]: testplugin authenticates ("Ext pw"),
# LocalMachine creates the account and acts at logoff; testplugin2 runs after it and logs, so its
# log line says LocalMachine's logoff work is over.
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = testplugin
gateway = localmachine
notification = testplugin localmachine testplugin2

[testplugin]
password = Ext pw
${2:-}

[testplugin2]
log_file = $T/tp2.log

[localmachine]
$1
C
        pgina_start
}
# wait_logoff USER: until testplugin2 logged USER's logoff (15 s).
wait_logoff() {
        local i
        for ((i = 0; i < 150; i++)); do
                grep -q "stage=notification event=logoff user=$1 " "$T/tp2.log" 2>/dev/null && return 0
                sleep 0.1
        done
        fail "the logoff of $1 was not processed within 15 s"
}
logon_logoff() { assert_ok pam_run pgtest "$1" "$2" authenticate acct_mgmt open_session close_session; }

pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
session  required pam_pgina.so
P

step "logoff_action=none (default): the created account stays"
configure ""
logon_logoff keeper 'Ext pw'
wait_logoff keeper
assert_ok getent passwd keeper
assert_ok test -d /home/keeper

step "logoff_action=remove: the pgina-created account and its home are removed"
configure "logoff_action = remove"
logon_logoff goner 'Ext pw'
assert_contains "$T/pam.out" "created local account goner"
wait_logoff goner
assert_fail getent passwd goner
assert_fail test -e /home/goner

step "logoff_action=remove, user in logoff_exceptions: left alone"
configure "logoff_action = remove
logoff_exceptions = other excepted"
logon_logoff excepted 'Ext pw'
wait_logoff excepted
assert_ok getent passwd excepted
assert_ok test -d /home/excepted

step "logoff_action=remove, account that existed before pgina: never removed"
make_user native 'Native pw'
logon_logoff native 'Ext pw'
wait_logoff native
assert_ok getent passwd native
assert_ok test -d /home/native

step "logoff_action=scramble: the account stays, its password is replaced by an unknown one"
configure "logoff_action = scramble" "set_attr = fullname=Scrambled"
logon_logoff scram 'Ext pw'
wait_logoff scram
echo 'scram:Known pw' | chpasswd
before=$(getent shadow scram | cut -d: -f2)
: >"$T/tp2.log"
logon_logoff scram 'Ext pw'
wait_logoff scram
assert_ok getent passwd scram
after=$(getent shadow scram | cut -d: -f2)
case $after in '$y$'*) ;; *) fail "scrambled hash is not yescrypt: ${after:0:4}..." ;; esac
[ "$after" != "$before" ] || fail "the password was not scrambled"
pgina_stop
pgina_conf <<C
[order]
authentication = localmachine
C
pgina_start
assert_fail pam_run pgtest scram 'Known pw' authenticate

step "logoff_action=scramble, account that existed before pgina: its password still works"
configure "logoff_action = scramble"
: >"$T/tp2.log"
logon_logoff native 'Ext pw'
wait_logoff native
pgina_stop
pgina_conf <<C
[order]
authentication = localmachine
C
pgina_start
assert_ok pam_run pgtest native 'Native pw' authenticate

step "a logon waits for the same user's pending removal, then gets a fresh account"
configure "logoff_action = remove" "notify_sleep_ms = 2000"
: >"$T/tp2.log"
logon_logoff again 'Ext pw'
assert_ok pam_run pgtest again 'Ext pw' authenticate
assert_contains "$T/tp2.log" "stage=notification event=logoff user=again "
assert_ok getent passwd again
exit 0
