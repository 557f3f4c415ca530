#!/bin/bash
# LocalMachine, change password: the local password changes (yescrypt hash through chpasswd's
# stdin, never argv or the log); an account pgina does not know is refused.
. "$(dirname "$0")/lib.sh"
export PGINA_SERVICE_EXTRA="failure_delay_max = 0" # failed changes here are deliberate

pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
password required pam_pgina.so
P
make_user alice 'Old pw 1'
pgina_conf <<C
[order]
authentication = localmachine
change_password = localmachine
C
pgina_start

step "root changes alice's password: the new one works, the old one no longer"
assert_ok pam_run pgtest alice 'New pw 2' chauthtok
assert_ok pam_run pgtest alice 'New pw 2' authenticate
assert_fail pam_run pgtest alice 'Old pw 1' authenticate
case $(getent shadow alice | cut -d: -f2) in '$y$'*) ;; *) fail "the new hash is not yescrypt" ;; esac

step "neither password nor hash reaches the log"
assert_not_contains "$PGINA_LOG" 'New pw 2'
assert_not_contains "$PGINA_LOG" 'Old pw 1'
assert_not_contains "$PGINA_LOG" "$(getent shadow alice | cut -d: -f2)"

step "alice changes her own password (current password asked)"
need setpriv
rc=0
pam_run_as alice pgtest alice 'New pw 2\nThird pw 3\nThird pw 3' chauthtok || rc=$?
assert_eq 0 "$rc" "pamtester chauthtok as alice"
assert_ok pam_run pgtest alice 'Third pw 3' authenticate

step "a user without a local account: the change fails"
assert_fail pam_run pgtest nosuchuser 'Whatever 1' chauthtok
exit 0
