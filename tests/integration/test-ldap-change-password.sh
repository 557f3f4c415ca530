#!/bin/bash
# LDAP, change password: the user binds with the old password and changes their own with the
# password modify extended operation (pamtester chauthtok); a wrong old password changes nothing;
# root's reset without the old password goes through the service account, and is refused
# without one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

slapd_start
(umask 077 && printf '%s\n' "$SLAPD_SVC_PASSWORD" >"$T/svc.pw")
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
password required pam_pgina.so
P
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = ldap
change_password = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
$1
C
        pgina_start
}
can_bind() { # can_bind USER PASSWORD: ldapwhoami as the user
        printf '%s' "$2" >"$T/pw" && chmod 0600 "$T/pw"
        ldapwhoami -x -H "$(slapd_url)" -D "uid=$1,ou=people,dc=pgina,dc=test" -y "$T/pw" >/dev/null 2>&1
}

configure ""
step "the user changes their own password (old, new, new) as a non-root caller"
need setpriv
# a local account only to run pamtester as alice and bob (pginad lets a user change only their own)
useradd -M -u 20001 alice
useradd -M -u 20002 bob
assert_ok pam_run_as alice pgtest alice "$SLAPD_ALICE_PW\nNew alice 1\nNew alice 1" chauthtok
assert_contains "$SLAPD_LOG" "PASSMOD id=\"uid=alice,ou=people,dc=pgina,dc=test\" old new"
can_bind alice 'New alice 1' || fail "alice cannot bind with her new password"
can_bind alice "$SLAPD_ALICE_PW" && fail "alice's old password still binds"
assert_ok pam_run pgtest alice 'New alice 1' authenticate
assert_contains "$PGINA_LOG" "LDAP password of alice (uid=alice,ou=people,dc=pgina,dc=test) changed"

step "a wrong old password changes nothing"
assert_fail pam_run_as bob pgtest bob "wrong\nNew bob 2\nNew bob 2" chauthtok
can_bind bob "$SLAPD_BOB_PW" || fail "bob's password changed"

step "root without the old password and without a service account: refused"
assert_fail pam_run pgtest carol 'New carol 3' chauthtok
can_bind carol "$SLAPD_CAROL_PW" || fail "carol's password changed"

step "root reset through the service account"
configure "search_dn = $SLAPD_SVC_DN
search_password_file = $T/svc.pw"
assert_ok pam_run pgtest carol 'New carol 3' chauthtok
can_bind carol 'New carol 3' || fail "carol cannot bind with her new password"
assert_contains "$PGINA_LOG" "changed by the service account"

for pw in "$SLAPD_ALICE_PW" 'New alice 1' 'New carol 3' "$SLAPD_SVC_PASSWORD"; do
        assert_not_contains "$PGINA_LOG" "$pw"
done
