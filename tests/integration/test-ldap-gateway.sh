#!/bin/bash
# LDAP, gateway stage with LocalMachine after it: gateway_rules map LDAP groups (by name or DN)
# to local groups; LocalMachine creates the account with the LDAP uidNumber/gidNumber, full name,
# home and shell, and makes its groups exactly the mapped ones (a group the user left in LDAP is
# removed at the next logon).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

slapd_start
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
pgina_conf <<C
[order]
authentication = ldap
gateway = ldap localmachine

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
group_attribute = memberUid
group_dn_pattern = cn=%g,ou=groups,dc=pgina,dc=test
gateway_rules = staff=ldapstaff banned=jail cn=admins,ou=groups,dc=pgina,dc=test=lgadmins
C
# cn=admins is a groupOfNames (member): with group_attribute = memberUid it matches nobody;
# memberOf would. Run once with each.
pgina_start
groups_of() { id -nG "$1" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'; }

step "alice: account created with LDAP ids, name, home, shell; staff mapped to ldapstaff"
assert_fail getent passwd alice
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt
assert_eq "20001" "$(id -u alice)" "uid from uidNumber"
assert_eq "20000" "$(id -g alice)" "gid from gidNumber"
assert_eq "/home/alice" "$(getent passwd alice | cut -d: -f6)" "home"
assert_eq "/bin/bash" "$(getent passwd alice | cut -d: -f7)" "shell"
assert_contains <(getent passwd alice) "Alice Liddell"
id -nG alice | tr ' ' '\n' >"$T/alice.groups"
assert_contains "$T/alice.groups" ldapstaff
assert_not_contains "$T/alice.groups" jail
assert_not_contains "$T/alice.groups" lgadmins
assert_contains "$PGINA_LOG" "alice is a member of staff: local group ldapstaff added"

step "bob: banned mapped to jail, not ldapstaff"
assert_ok pam_run pgtest bob "$SLAPD_BOB_PW" authenticate acct_mgmt
assert_eq "20002" "$(id -u bob)" "bob's uid"
id -nG bob | tr ' ' '\n' >"$T/bob.groups"
assert_contains "$T/bob.groups" jail
assert_not_contains "$T/bob.groups" ldapstaff

step "group_attribute = memberOf: the DN rule maps admins to lgadmins"
pgina_stop
sed -i 's/^group_attribute = memberUid/group_attribute = memberOf/' /etc/pgina/pgina.conf
pgina_start
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
id -nG alice | tr ' ' '\n' >"$T/alice.groups"
assert_contains "$T/alice.groups" lgadmins

step "leaving the LDAP group removes the local group at the next logon (exact sync)"
slapd_admin ldapmodify >"$T/mod.out" 2>&1 <<'L' || fail "ldapmodify: $(cat "$T/mod.out")"
dn: cn=admins,ou=groups,dc=pgina,dc=test
changetype: modify
replace: member
member: uid=carol,ou=people,dc=pgina,dc=test
L
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
id -nG alice | tr ' ' '\n' >"$T/alice.groups"
assert_not_contains "$T/alice.groups" lgadmins

step "pginactl simulate --gateway shows the mapping per plugin (memberOf: carol's posixGroup staff does not count)"
printf '%s\n' "$SLAPD_CAROL_PW" | pginactl simulate --gateway carol >"$T/sim.out" 2>&1 ||
        { cat "$T/sim.out" >&2; fail "simulate --gateway carol failed"; }
has_line "$T/sim.out" '^gateway +ldap +success +Added to groups: lgadmins$'
assert_eq "20003" "$(id -u carol)" "carol's uid"
