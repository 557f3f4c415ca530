#!/bin/bash
# LDAP connections: servers are tried in order (a dead first URI is skipped, and then remembered
# for server_retry_delay so the next request does not wait for it again); every server down fails
# authentication with "LDAP server unavailable"; StartTLS and ldaps:// work with the CA that
# signed the server's certificate and are refused with another CA (tls_verify), never falling back
# to a clear-text bind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

slapd_start
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
dead=$(free_port)

configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = ldap

[ldap]
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
$1
C
        pgina_start
}

step "failover: the first URI is dead, the second answers"
configure "servers = ldap://127.0.0.1:$dead $(slapd_url)
server_retry_delay = 300"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
assert_contains "$PGINA_LOG" "LDAP server ldap://127.0.0.1:$dead unavailable"
assert_contains "$PGINA_LOG" "Authenticated alice as uid=alice,ou=people,dc=pgina,dc=test on $(slapd_url)"
step "... and the dead one is skipped by the next request (server_retry_delay)"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
assert_contains "$PGINA_LOG" "Skipping ldap://127.0.0.1:$dead: it failed less than 300 s ago"
assert_eq "1" "$(grep -c "LDAP server ldap://127.0.0.1:$dead unavailable" "$PGINA_LOG")" \
        "connection attempts to the dead server"
assert_contains /var/lib/pgina/plugins/ldap/servers-down "ldap://127.0.0.1:$dead"

step "every server down: authentication fails with 'LDAP server unavailable'"
slapd_stop
assert_fail pgina_simulate "$SLAPD_ALICE_PW" alice
has_line "$T/sim.out" '^authentication +ldap +(failure|error) +LDAP server unavailable'
slapd_restart
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate # every one marked: all tried again

step "StartTLS with the right CA"
configure "servers = $(slapd_url)
start_tls = true
tls_ca_file = $SLAPD_CA"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
grep -q 'STARTTLS' "$SLAPD_LOG" || fail "slapd saw no StartTLS"

step "StartTLS with a wrong CA: refused, no bind in clear text"
binds=$(grep -c 'BIND dn="uid=alice' "$SLAPD_LOG")
configure "servers = $(slapd_url)
start_tls = true
tls_ca_file = $SLAPD_WRONG_CA"
assert_fail pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
assert_contains "$PGINA_LOG" "StartTLS failed"
assert_eq "$binds" "$(grep -c 'BIND dn="uid=alice' "$SLAPD_LOG")" "binds as alice with a wrong CA"

step "ldaps:// with the right CA works, with a wrong CA is refused"
configure "servers = $(slapd_ldaps_url)
tls_ca_file = $SLAPD_CA"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
configure "servers = $(slapd_ldaps_url)
tls_ca_file = $SLAPD_WRONG_CA"
assert_fail pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate

step "tls_verify = false accepts the unverified certificate (documented escape hatch)"
configure "servers = $(slapd_url)
start_tls = true
tls_verify = false
tls_ca_file = $SLAPD_WRONG_CA"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
