#!/bin/bash
# Review of issue 14 (schema = ad renames the record): an unlock must authenticate the session's
# own user. The unlock answer was given for whatever account the chain authenticated, and with
# schema = ad the ldap plugin renames the record to the entry's sAMAccountName: the name typed at
# the lock screen ("admin1", the locked session's user, which is all pginad checks) can find
# another directory entry through the README's filter (userPrincipalName=%u), and that entry's
# password then unlocked admin1's screen. Here admin1 is a local account (LocalMachine) and the
# directory account mallory carries the userPrincipalName "admin1". A logon the same way is not
# a problem for pginad (PAM_USER becomes mallory) but is for a caller that keeps the PAM_USER it
# asked for; an unlock or a credui logon must not pass for an account other than the one asked
# for. Only a logon as user@domain may become another name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba-ad.sh"
need ldapmodify
ad_start

SVC_PW='Svc-Pw.for-pgina1'
ad_user svc-pgina "$SVC_PW"
ad_user mallory 'Mal-Pw.start11'
(umask 077 && printf '%s\n' "$SVC_PW" >"$T/svc.pw")
# who may write userPrincipalName (informational: a delegated helpdesk, an account's owner...)
(umask 077 && printf '%s' 'Mal-Pw.start11' >"$T/mal.pw")
if LDAPTLS_CACERT=$AD_CA ldapmodify -x -H "$AD_URL" -D "mallory@acc.test" -y "$T/mal.pw" >"$T/self.log" 2>&1 <<L
dn: CN=mallory,CN=Users,$AD_BASE
changetype: modify
replace: userPrincipalName
userPrincipalName: admin1
L
then echo "mallory set his own userPrincipalName"
else
        echo "mallory may not set his own userPrincipalName: $(tail -n 2 "$T/self.log" | tr '\n' ' ')"
        (umask 077 && printf '%s' "$AD_ADMIN_PASSWORD" >"$T/adm.pw")
        LDAPTLS_CACERT=$AD_CA ldapmodify -x -H "$AD_URL" -D "Administrator@acc.test" -y "$T/adm.pw" \
                >>"$T/self.log" 2>&1 <<L || fail "cannot set mallory's userPrincipalName ($T/self.log)"
dn: CN=mallory,CN=Users,$AD_BASE
changetype: modify
replace: userPrincipalName
userPrincipalName: admin1
L
fi
make_user admin1 'admin1-local-pw'
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
pgina_conf <<C
[order]
authentication = ldap localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine

[ldap]
servers = $AD_URL
tls_ca_file = $AD_CA
schema = ad
search_dn = CN=svc-pgina,CN=Users,$AD_BASE
search_password_file = $T/svc.pw
search_contexts = CN=Users,$AD_BASE
search_filter = (&(objectClass=user)(|(sAMAccountName=%u)(userPrincipalName=%u)))
group_attribute = memberOf
group_filter = (objectClass=group)
C
pgina_start

step "admin1's own password unlocks admin1's screen (the locker runs as admin1)"
out=$(pgclient_as admin1 login admin1 'admin1-local-pw' 1)
assert_eq "result 0" "$(cut -d' ' -f1-2 <<<"$out")" "unlock of admin1 with admin1's password"

step "mallory's directory password does not unlock admin1's screen"
sleep 1.2
out=$(pgclient_as admin1 --wait 15 login admin1 'Mal-Pw.start11' 1)
echo "answer: $out"
assert_contains "$PGINA_LOG" "admin1 is mallory (sAMAccountName)"
[ "$(cut -d' ' -f1-2 <<<"$out")" != "result 0" ] ||
        fail "admin1's screen unlocked with mallory's password: $out"
step "nor, asked by root, as a credui logon"
out=$(pgclient login admin1 'Mal-Pw.start11' 2)
echo "answer: $out"
[ "$(cut -d' ' -f1-2 <<<"$out")" != "result 0" ] ||
        fail "credui logon of admin1 passed with mallory's password: $out"
step "nor does a logon as admin1 (a caller that keeps the PAM_USER it asked for, sudo's way, would take it for admin1)"
assert_fail pam_run pgtest admin1 'Mal-Pw.start11' authenticate
step "mallory still logs on as himself, and admin1 with the local password"
assert_ok pam_run pgtest mallory 'Mal-Pw.start11' authenticate acct_mgmt
assert_ok pam_run pgtest admin1 'admin1-local-pw' authenticate acct_mgmt
exit 0
