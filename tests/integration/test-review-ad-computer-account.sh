#!/bin/bash
# Review of issue 14: with schema = ad, a computer account is no logon account. AD's computers
# are objectClass=user too, so the README's filter (objectClass=user) finds them, and a
# computer's password is known to whoever administers that computer (its secrets) or, on AD with
# the default ms-DS-MachineAccountQuota, to any domain user who added it: "ws1$" logged on here,
# got the local account ws1$ and a uid from its RID. Accounts whose sAMAccountName ends in '$'
# (computers, trusts) are refused, whatever the filter.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba-ad.sh"
need ldapmodify
ad_start

SVC_PW='Svc-Pw.for-pgina1'
WS_PW='Ws1-Machine.Pw9'
ad_user svc-pgina "$SVC_PW"
ad_user alice 'Alice-Pw.start1'
(umask 077 && printf '%s\n' "$SVC_PW" >"$T/svc.pw")
# a plain user adding a computer (AD's default quota lets any user add ten): informational
(umask 077 && printf '%s' 'Alice-Pw.start1' >"$T/alice.pw")
pw64=$(printf '"%s"' "$WS_PW" | iconv -f utf-8 -t utf-16le | base64 -w0)
if LDAPTLS_CACERT=$AD_CA ldapmodify -x -a -H "$AD_URL" -D "alice@acc.test" -y "$T/alice.pw" >"$T/add.log" 2>&1 <<L
dn: CN=WS1,CN=Computers,$AD_BASE
objectClass: computer
sAMAccountName: WS1\$
userAccountControl: 4096
unicodePwd:: $pw64
L
then echo "alice added the computer WS1"
else
        echo "alice may not add a computer: $(tail -n 2 "$T/add.log" | tr '\n' ' ')"
        ad_tool computer create WS1 || fail "cannot create the computer WS1"
        ad_tool user setpassword 'WS1$' --newpassword="$WS_PW" || fail "cannot set WS1's password"
fi
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
session  required pam_pgina.so
P
pgina_conf <<C
[order]
authentication = ldap
authorization = ldap
gateway = localmachine
notification = localmachine

[ldap]
servers = $AD_URL
tls_ca_file = $AD_CA
schema = ad
search_dn = CN=svc-pgina,CN=Users,$AD_BASE
search_password_file = $T/svc.pw
search_contexts = $AD_BASE
search_filter = (&(objectClass=user)(|(sAMAccountName=%u)(userPrincipalName=%u)))
group_attribute = memberOf
group_filter = (objectClass=group)
C
pgina_start

step "the computer's password binds (it is an account of the directory)"
(umask 077 && printf '%s' "$WS_PW" >"$T/ws.pw")
LDAPTLS_CACERT=$AD_CA ldapsearch -x -H "$AD_URL" -D "WS1\$@acc.test" -y "$T/ws.pw" -b "" -s base dn \
        >"$T/bind.log" 2>&1 || echo "(the computer's own bind failed: $(tail -n 1 "$T/bind.log"))"
step "ws1\$ does not log on"
assert_fail pam_run pgtest 'ws1$' "$WS_PW" authenticate acct_mgmt open_session
getent passwd 'ws1$' && fail "a local account ws1\$ was made for the computer WS1"
step "alice still does"
assert_ok pam_run pgtest alice 'Alice-Pw.start1' authenticate acct_mgmt open_session
exit 0
