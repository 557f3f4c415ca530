#!/bin/bash
# The attribute converter's values reach pgSMB: a user who exists only in LDAP logs on, pgSMB
# creates the account with the LDAP uidNumber, and the profile is saved under the per-user folder
# (usri4_profile <- roomNumber) and file name (pgSMB_Filename <- employeeType) from the directory.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"
need pamtester

slapd_start
STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgina_conf <<C
[order]
authentication = ldap
gateway = ldap pgsmb localmachine
notification = pgsmb localmachine

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test

[ldap.attributes]
usri4_profile = roomNumber
pgSMB_Filename = employeeType

[pgsmb]
share = file://$STORE
retries = 1
retry_delay = 0
C
pgina_start

step "logon of an LDAP-only user: account by pgSMB with the LDAP ids"
assert_fail getent passwd alice
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt open_session
assert_eq "20001" "$(id -u alice)" "uid from uidNumber"
getent passwd alice | grep -q "pGina created pgSMB" || fail "the account is not pgSMB's"
as_user alice bash -c 'echo from-ldap > /home/alice/proof'

step "logoff: the profile goes to the folder and file name the directory gave"
pgina_close_session alice
has_profile "$STORE/room-alice" alice-profile.tar.zst || { ls -laR "$STORE" >&2; fail "no profile room-alice/alice-profile.tar.zst"; }
[ -e "$STORE/alice" ] && fail "the default remote_path/filename were used"
stored "$STORE/room-alice" proof alice-profile.tar.zst >"$T/proof"
assert_eq "from-ldap" "$(cat "$T/proof")" "the file read back from the archive"
