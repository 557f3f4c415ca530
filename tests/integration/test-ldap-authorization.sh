#!/bin/bash
# LDAP, authorization stage against a real slapd: authz_rules in order, first match wins, else
# authz_default; groups by name (group_dn_pattern) or DN; membership per group_attribute
# (memberUid, member, memberOf); "!" negates; when no server answers, allow_when_server_down
# decides (deny by default).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

slapd_start
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P

# configure AUTHN LDAP_LINES: AUTHN authenticates (ldap or localmachine), ldap authorizes.
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = $1
authorization = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
group_dn_pattern = cn=%g,ou=groups,dc=pgina,dc=test
$2
C
        pgina_start
}
allowed() { assert_ok pam_run pgtest "$1" "$2" authenticate acct_mgmt; }
denied() {
        assert_fail pam_run pgtest "$1" "$2" authenticate acct_mgmt
        assert_ok pam_run pgtest "$1" "$2" authenticate # authentication itself passed
}

step "memberUid, names: deny:banned allow:staff, default deny"
configure ldap "group_attribute = memberUid
authz_rules = deny:banned allow:staff
authz_default = deny"
allowed alice "$SLAPD_ALICE_PW"
allowed carol "$SLAPD_CAROL_PW"
denied bob "$SLAPD_BOB_PW"
assert_contains "$PGINA_LOG" 'Authorization of bob: denied by rule "deny:banned"'
assert_ok pgina_simulate "$SLAPD_ALICE_PW" alice
has_line "$T/sim.out" '^authorization +ldap +success'
assert_fail pgina_simulate "$SLAPD_BOB_PW" bob
has_line "$T/sim.out" '^authorization +ldap +failure +Authorization denied by rule "deny:banned"'

step "member (groupOfNames), DNs: no rule matches carol: authz_default decides"
configure ldap "group_attribute = member
authz_rules = deny:cn=blocked,ou=groups,dc=pgina,dc=test allow:cn=admins,ou=groups,dc=pgina,dc=test
authz_default = deny"
allowed alice "$SLAPD_ALICE_PW"
denied bob "$SLAPD_BOB_PW"
denied carol "$SLAPD_CAROL_PW"
assert_contains "$PGINA_LOG" "Authorization of carol: denied by authz_default"
configure ldap "group_attribute = member
authz_rules = deny:cn=blocked,ou=groups,dc=pgina,dc=test
authz_default = allow"
allowed carol "$SLAPD_CAROL_PW"
denied bob "$SLAPD_BOB_PW"

step "memberOf (the user's own attribute)"
configure ldap "group_attribute = memberOf
authz_rules = allow:admins
authz_default = deny"
allowed alice "$SLAPD_ALICE_PW"
denied carol "$SLAPD_CAROL_PW"

step "negation: deny:!staff refuses everyone outside staff"
configure ldap "authz_rules = deny:!staff"
allowed alice "$SLAPD_ALICE_PW"
denied bob "$SLAPD_BOB_PW"

step "a bad rule is a config error naming it"
pgina_stop
pgina_conf <<C
[order]
authentication = ldap
[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
authz_rules = permit:staff
C
assert_fail pginactl config check
pginactl config check >"$T/check.out" 2>&1
assert_contains "$T/check.out" 'authz_rules: "permit:staff"'

step "every server down: denied unless allow_when_server_down (a local user, localmachine authenticates)"
make_user alice 'Local pw 1'
configure localmachine "authz_rules = allow:staff
authz_default = deny"
allowed alice 'Local pw 1'
slapd_stop
denied alice 'Local pw 1'
assert_fail pgina_simulate 'Local pw 1' alice
has_line "$T/sim.out" '^authorization +ldap +failure +Authorization denied: LDAP server unavailable'
configure localmachine "authz_rules = allow:staff
authz_default = deny
allow_when_server_down = true"
allowed alice 'Local pw 1'
assert_contains "$PGINA_LOG" "alice allowed: no LDAP server answered (allow_when_server_down)"
