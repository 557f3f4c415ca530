#!/bin/bash
# Active Directory (a Samba AD DC), `schema = ad` (issue 14): AD's own attributes as pGina's
# attribute converter maps them (displayName, profilePath -> usri4_profile, homeDirectory ->
# usri4_home_dir, homeDrive -> usri4_home_dir_drive, scriptPath -> LoginScript); logon names
# sAMAccountName and userPrincipalName (alice@acc.test logs on as the local account alice);
# memberOf with nested groups (the in-chain rule); ids from the RFC 2307 attributes where set,
# else ad_id_base + the objectSid's RID and the primaryGroupID (winbind's idmap rid), the
# primary group named after AD's ("Domain Users" -> domain-users). The accounts LocalMachine
# creates carry those ids.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba-ad.sh"
ad_start

SVC_PW='Svc-Pw.for-pgina1'
ad_user svc-pgina "$SVC_PW"
ad_user alice 'Alice-Pw.start1' --given-name=Alice --surname=Liddell \
        --profile-path='\\fs1\profiles\alice' --home-directory='\\fs1\home\alice' --home-drive=H: \
        --script-path=logon.sh
ad_user bob 'Bob-Pw.start11' --uid-number=20050 --gid-number=20000 --unix-home=/home/bob \
        --login-shell=/bin/sh --nis-domain=acc
ad_user carl 'Carl-Pw.start1'
ad_tool group add Lab || fail "cannot add group Lab"
ad_tool group add Lab-Staff || fail "cannot add group Lab-Staff"
ad_tool group addmembers Lab Lab-Staff || fail "cannot nest Lab-Staff in Lab"
ad_tool group addmembers Lab-Staff alice,bob || fail "cannot add alice and bob to Lab-Staff"
rid() { ad_show "$1" objectSid | sed -n 's/^objectSid: S-1-5-21-[0-9-]*-\([0-9]*\)$/\1/p'; }
alice_rid=$(rid alice)
[ -n "$alice_rid" ] || fail "cannot read alice's RID"
(umask 077 && printf '%s\n' "$SVC_PW" >"$T/svc.pw")
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
search_contexts = CN=Users,$AD_BASE
search_filter = (&(objectClass=user)(|(sAMAccountName=%u)(userPrincipalName=%u)))
group_attribute = memberOf
group_filter = (objectClass=group)
authz_rules = allow:CN=Lab,CN=Users,$AD_BASE
authz_default = deny
C
pgina_start

step "alice logs on by her userPrincipalName: the local account is alice, ids from her objectSid"
assert_ok pam_run pgtest alice@acc.test 'Alice-Pw.start1' authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice@acc.test is alice (sAMAccountName)"
assert_eq $((100000 + alice_rid)) "$(id -u alice)" "alice's uid (ad_id_base + RID $alice_rid)"
assert_eq $((100000 + 513)) "$(id -g alice)" "alice's gid (ad_id_base + primaryGroupID 513)"
assert_eq domain-users "$(id -gn alice)" "alice's primary group"
assert_contains "$PGINA_LOG" "fullname = Alice Liddell (from displayName)"
for kv in 'usri4_profile = \\fs1\profiles\alice (from profilePath)' \
        'usri4_home_dir = \\fs1\home\alice (from homeDirectory)' \
        'usri4_home_dir_drive = H: (from homeDrive)' 'LoginScript = logon.sh (from scriptPath)'; do
        assert_contains "$PGINA_LOG" ": $kv"
done
step "alice is in Lab through Lab-Staff (nested): authorized"
assert_contains "$PGINA_LOG" "Authorization of alice: allowed"

step "bob has RFC 2307 ids: they win over the objectSid"
assert_ok pam_run pgtest bob 'Bob-Pw.start11' authenticate acct_mgmt open_session
assert_eq 20050 "$(id -u bob)" "bob's uid (uidNumber)"
assert_eq 20000 "$(id -g bob)" "bob's gid (gidNumber)"
assert_eq /home/bob "$(getent passwd bob | cut -d: -f6)" "bob's home (unixHomeDirectory)"
assert_eq /bin/sh "$(getent passwd bob | cut -d: -f7)" "bob's shell (loginShell)"

step "carl is in no group of the rules: denied"
assert_fail pam_run pgtest carl 'Carl-Pw.start1' authenticate acct_mgmt
assert_contains "$PGINA_LOG" "Authorization of carl: denied"
exit 0
