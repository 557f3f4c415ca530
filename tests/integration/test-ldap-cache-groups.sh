#!/bin/bash
# LDAP cached (offline) logons, the rest of the chain: a user authenticated from the cache is
# authorized by the cached membership of the rules' groups (allow_when_server_down does not
# override it), the gateway maps the cached groups and LocalMachine creates the account from the
# cached record (uid, gid, name, home, shell); a user pgina did not authenticate from the cache
# gets allow_when_server_down. A password changed through the plugin updates the cache.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

slapd_start
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
password required pam_pgina.so
P
pam_service pgother <<'P'
auth     required pam_permit.so
account  required pam_pgina.so
P
CACHE=/var/lib/pgina/plugins/ldap/cache
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = ldap
authorization = ldap
gateway = ldap localmachine
change_password = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
group_dn_pattern = cn=%g,ou=groups,dc=pgina,dc=test
authz_rules = deny:banned allow:staff
authz_default = deny
gateway_rules = staff=ldapstaff banned=jail
cache_credentials = true
$1
C
        pgina_start
}
configure ""

step "online: alice (staff) logs on, bob (banned) is denied; both logons are cached with groups"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt
assert_fail pam_run pgtest bob "$SLAPD_BOB_PW" authenticate acct_mgmt
assert_contains "$CACHE/alice.entry" "group 1 cn=staff,ou=groups,dc=pgina,dc=test"
assert_contains "$CACHE/alice.entry" "group 0 cn=banned,ou=groups,dc=pgina,dc=test"
assert_contains "$CACHE/bob.entry" "group 1 cn=banned,ou=groups,dc=pgina,dc=test"
assert_contains "$CACHE/alice.entry" "attr home /home/alice"
assert_contains "$CACHE/alice.entry" "attr shell /bin/bash"
userdel -r alice >/dev/null 2>&1 || fail "cannot remove alice's local account"
assert_fail getent passwd alice

step "slapd stopped: alice is authorized by her cached groups; the account comes from the cache"
slapd_stop
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt
assert_contains "$PGINA_LOG" "Authenticated alice offline"
assert_contains "$PGINA_LOG" "Authorization of alice: allowed by rule \"allow:staff\" (cached groups)"
assert_contains "$PGINA_LOG" "alice is a member of staff (cached logon): local group ldapstaff added"
assert_eq "20001" "$(id -u alice)" "uid from the cached uidNumber"
assert_eq "20000" "$(id -g alice)" "gid from the cached gidNumber"
assert_eq "/home/alice" "$(getent passwd alice | cut -d: -f6)" "home"
assert_eq "/bin/bash" "$(getent passwd alice | cut -d: -f7)" "shell"
assert_contains <(getent passwd alice) "Alice Liddell"
id -nG alice | tr ' ' '\n' >"$T/alice.groups"
assert_contains "$T/alice.groups" ldapstaff
assert_not_contains "$T/alice.groups" jail

step "slapd stopped, allow_when_server_down = true: bob is still denied by his cached groups"
configure "allow_when_server_down = true"
assert_fail pam_run pgtest bob "$SLAPD_BOB_PW" authenticate acct_mgmt
assert_contains "$PGINA_LOG" "Authorization of bob: denied by rule \"deny:banned\" (cached groups)"
step "... while a user another module authenticated gets allow_when_server_down"
assert_ok pam_run pgother carol x authenticate acct_mgmt
assert_contains "$PGINA_LOG" "carol allowed: no LDAP server answered (allow_when_server_down)"

step "a rule naming a group the cache does not know denies offline"
configure "authz_rules = deny:banned allow:admins"
assert_fail pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt
assert_contains "$PGINA_LOG" "its group is not in the cached logon"

step "a password changed through the plugin updates the cache"
configure ""
slapd_restart
useradd -M -u 20003 carol
assert_ok pam_run pgtest carol "$SLAPD_CAROL_PW" authenticate acct_mgmt # cached
before=$(sed -n 's/^hash //p' "$CACHE/carol.entry")
assert_ok pam_run_as carol pgtest carol "$SLAPD_CAROL_PW\nNew carol 3\nNew carol 3" chauthtok
assert_contains "$PGINA_LOG" "Cached logon of carol updated with the new password"
[ "$before" != "$(sed -n 's/^hash //p' "$CACHE/carol.entry")" ] || fail "carol's cached hash did not change"
assert_not_contains "$CACHE/carol.entry" "New carol 3"
assert_eq "600" "$(stat -c %a "$CACHE/carol.entry")" "entry mode after the change"
slapd_stop
assert_ok pam_run pgtest carol 'New carol 3' authenticate acct_mgmt
assert_fail pam_run pgtest carol "$SLAPD_CAROL_PW" authenticate

step "a password changed elsewhere (online logon with the new one) updates the cache too"
slapd_restart
slapd_admin ldappasswd -s 'Newer carol 4' "uid=carol,ou=people,dc=pgina,dc=test" >/dev/null ||
        fail "ldappasswd failed"
assert_ok pam_run pgtest carol 'Newer carol 4' authenticate
slapd_stop
assert_ok pam_run pgtest carol 'Newer carol 4' authenticate
assert_fail pam_run pgtest carol 'New carol 3' authenticate
