#!/bin/bash
# Active Directory (a Samba AD DC), password changes (issue 14): AD has no RFC 3062 password
# modify operation; pgina changes a password by a modify of unicodePwd over LDAPS, chosen by
# `password_change = auto` from the server's rootDSE (AD's capability 1.2.840.113556.1.4.800).
# The user's own change (old, new, new) deletes the old value and adds the new one in one
# modify; root's reset through the service account replaces it. AD's refusal (complexity,
# history) reaches the user in AD's words; a wrong old password changes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba-ad.sh"
need setpriv ldapsearch
ad_start

SVC_PW='Svc-Pw.for-pgina1'
ALICE_PW='Alice-Pw.start1'
CAROL_PW='Carol-Pw.start1'
ad_user svc-pgina "$SVC_PW"
ad_tool group addmembers "Domain Admins" svc-pgina || fail "cannot make svc-pgina an admin"
ad_user alice "$ALICE_PW"
ad_user carol "$CAROL_PW"
(umask 077 && printf '%s\n' "$SVC_PW" >"$T/svc.pw")
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
servers = $AD_URL
tls_ca_file = $AD_CA
search_dn = CN=svc-pgina,CN=Users,$AD_BASE
search_password_file = $T/svc.pw
search_contexts = CN=Users,$AD_BASE
search_filter = (&(objectClass=user)(sAMAccountName=%u))
group_attribute = memberOf
$1
C
        pgina_start
}
can_bind() { # can_bind USER PASSWORD: a bind as USER@acc.test over LDAPS (AD has no whoami operation)
        (umask 077 && printf '%s' "$2" >"$T/pw")
        LDAPTLS_CACERT=$AD_CA ldapsearch -x -H "$AD_URL" -D "$1@acc.test" -y "$T/pw" -b "" -s base dn >>"$T/bind.log" 2>&1
}
# a local account only to run pamtester as alice (pginad lets a user change only their own)
useradd -M -u 20001 alice

configure ""
step "alice logs on with her AD password; a wrong one is refused"
assert_ok pam_run pgtest alice "$ALICE_PW" authenticate
assert_fail pam_run pgtest alice 'Wrong-Pw.1' authenticate

step "alice changes her own password (old, new, new): unicodePwd, the server found to be AD"
assert_ok pam_run_as alice pgtest alice "$ALICE_PW\nAlice-Pw.second2\nAlice-Pw.second2" chauthtok
can_bind alice 'Alice-Pw.second2' || fail "alice cannot bind with her new password"
can_bind alice "$ALICE_PW" && fail "alice's old password still binds"
assert_contains "$PGINA_LOG" "LDAP password of alice (CN=alice,CN=Users,$AD_BASE) changed"
assert_contains "$PGINA_LOG" "Active Directory"
assert_ok pam_run pgtest alice 'Alice-Pw.second2' authenticate

step "AD refuses a password too simple: alice reads why, in AD's words"
assert_fail pam_run_as alice pgtest alice "Alice-Pw.second2\nabcdefghijk\nabcdefghijk" chauthtok
assert_contains "$T/pam.out" "complexity"
can_bind alice 'Alice-Pw.second2' || fail "a refused change changed alice's password"

step "AD refuses a password from her history"
assert_fail pam_run_as alice pgtest alice "Alice-Pw.second2\n$ALICE_PW\n$ALICE_PW" chauthtok
assert_contains "$T/pam.out" "history"
can_bind alice 'Alice-Pw.second2' || fail "a refused change changed alice's password"

step "a wrong old password changes nothing"
assert_fail pam_run_as alice pgtest alice "Wrong-Pw.1\nAlice-Pw.third3\nAlice-Pw.third3" chauthtok
can_bind alice 'Alice-Pw.second2' || fail "alice's password changed"

step "root resets carol's password through the service account (replace)"
assert_ok pam_run pgtest carol 'Carol-Pw.reset2' chauthtok
can_bind carol 'Carol-Pw.reset2' || fail "carol cannot bind with her new password"
assert_contains "$PGINA_LOG" "changed by the service account"

step "password_change = rfc3062 against AD: the operation AD lacks, refused with the server's reason"
configure "password_change = rfc3062"
assert_fail pam_run pgtest carol 'Carol-Pw.reset3' chauthtok
can_bind carol 'Carol-Pw.reset2' || fail "carol's password changed"

step "password_change = ad, said outright"
configure "password_change = ad"
assert_ok pam_run pgtest carol 'Carol-Pw.reset4' chauthtok
can_bind carol 'Carol-Pw.reset4' || fail "carol cannot bind with her new password"

for pw in "$ALICE_PW" 'Alice-Pw.second2' 'Carol-Pw.reset2' 'Carol-Pw.reset4' "$SVC_PW"; do
        assert_not_contains "$PGINA_LOG" "$pw"
done
