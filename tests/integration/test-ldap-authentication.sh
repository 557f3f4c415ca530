#!/bin/bash
# LDAP, authentication stage against a real slapd: pattern mode (dn_pattern) and search mode
# (search_filter as the service account, and anonymously) bind as the user; a wrong password and
# an unknown user fail alike ("Authentication failed"); an empty password is refused without any
# bind reaching the server; the record gets fullname, email, home, shell, uidNumber/gidNumber and
# the [ldap.attributes] converter's values; the password never reaches a log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

slapd_start
(umask 077 && printf '%s\n' "$SLAPD_SVC_PASSWORD" >"$T/svc.pw")

pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P

# configure LDAP_LINES: ldap authenticates, testplugin2 logs the record at authorization.
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = ldap
authorization = testplugin2

[testplugin2]
log_file = $T/tp2.log

[ldap]
servers = $(slapd_url)
$1

[ldap.attributes]
usri4_profile = roomNumber
pgSMB_Filename = employeeType
C
        pgina_start
}
binds_of() { grep -c "BIND dn=\"$1\"" "$SLAPD_LOG"; }

step "pattern mode: right password authenticates"
configure "dn_pattern = uid=%u,ou=people,dc=pgina,dc=test"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt
assert_contains "$T/tp2.log" "user=alice"
assert_contains "$PGINA_LOG" "Authenticated alice as uid=alice,ou=people,dc=pgina,dc=test"

step "... the record: fullname, email, home, shell, uid/gid and the attribute converter"
assert_ok pgina_simulate "$SLAPD_ALICE_PW" alice
has_line "$T/sim.out" '^authentication +ldap +success'
for kv in "fullname = Alice Liddell (from cn)" "email = alice@pgina.test (from mail)" \
        "home = /home/alice (from homeDirectory)" "shell = /bin/bash (from loginShell)" \
        "usri4_profile = room-alice (from roomNumber)" \
        "pgSMB_Filename = alice-profile.tar.zst (from employeeType)"; do
        assert_contains "$PGINA_LOG" "alice: $kv"
done

step "wrong password: 'Authentication failed'"
assert_fail pam_run pgtest alice 'wrong' authenticate
assert_fail pgina_simulate 'wrong' alice
has_line "$T/sim.out" '^authentication +ldap +failure +Authentication failed'

step "unknown user: the same refusal"
assert_fail pam_run pgtest nosuchuser 'wrong' authenticate
assert_fail pgina_simulate 'wrong' nosuchuser
has_line "$T/sim.out" '^authentication +ldap +failure +Authentication failed'

step "empty password: refused, and no bind as alice reaches slapd"
before=$(binds_of "uid=alice,ou=people,dc=pgina,dc=test")
assert_fail pgina_simulate '' alice
has_line "$T/sim.out" '^authentication +ldap +failure +Authentication failed'
assert_fail pam_run pgtest alice '' authenticate
assert_eq "$before" "$(binds_of "uid=alice,ou=people,dc=pgina,dc=test")" "binds as alice after an empty password"
assert_contains "$PGINA_LOG" "empty password, refused without contacting the server"

step "a user name with filter/DN specials is escaped, never injected"
assert_fail pgina_simulate "$SLAPD_ALICE_PW" 'alice)(uid=*'
assert_not_contains "$PGINA_LOG" "Authenticated alice)(uid=*"

step "search mode with the service account"
configure "search_filter = (&(objectClass=posixAccount)(uid=%u))
search_contexts = ou=nowhere,dc=pgina,dc=test ou=people,dc=pgina,dc=test
search_dn = $SLAPD_SVC_DN
search_password_file = $T/svc.pw"
assert_ok pam_run pgtest bob "$SLAPD_BOB_PW" authenticate acct_mgmt
assert_contains "$PGINA_LOG" "Authenticated bob as uid=bob,ou=people,dc=pgina,dc=test"
assert_contains "$SLAPD_LOG" "BIND dn=\"$SLAPD_SVC_DN\""
assert_fail pam_run pgtest bob 'wrong' authenticate
step "... an unknown user costs a bind too (a decoy), and fails alike"
before=$(grep -c 'BIND dn="cn=pgina-no-such-user' "$SLAPD_LOG")
assert_fail pgina_simulate 'whatever' nosuchuser
has_line "$T/sim.out" '^authentication +ldap +failure +Authentication failed'
assert_eq "$((before + 1))" "$(grep -c 'BIND dn="cn=pgina-no-such-user' "$SLAPD_LOG")" "decoy binds"

step "search mode, anonymous"
configure "search_filter = (uid=%u)
search_contexts = dc=pgina,dc=test"
assert_ok pam_run pgtest carol "$SLAPD_CAROL_PW" authenticate
assert_contains "$PGINA_LOG" "Authenticated carol as uid=carol,ou=people,dc=pgina,dc=test"

step "a service password file readable by others is refused"
chmod 0644 "$T/svc.pw"
configure "search_filter = (uid=%u)
search_contexts = dc=pgina,dc=test
search_dn = $SLAPD_SVC_DN
search_password_file = $T/svc.pw"
assert_fail pam_run pgtest carol "$SLAPD_CAROL_PW" authenticate
assert_contains "$PGINA_LOG" "must be a regular file owned by root with mode 0600"
chmod 0600 "$T/svc.pw"

step "passwords never reach pginad's log"
for pw in "$SLAPD_ALICE_PW" "$SLAPD_BOB_PW" "$SLAPD_CAROL_PW" "$SLAPD_SVC_PASSWORD"; do
        assert_not_contains "$PGINA_LOG" "$pw"
done
