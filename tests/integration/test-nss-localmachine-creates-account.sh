#!/bin/bash
# LocalMachine and pgSMB still create the local account of an LDAP-only user while libnss_pgina
# already answers for that user (getent passwd finds them before the logon): pginad runs with
# PGINA_NSS_DISABLE=1 and passes it to useradd/usermod/groupadd, so neither the plugins' own
# "does the account exist?" nor useradd's sees the directory's answer ("user already exists").
# The new local group of the LDAP gidNumber gets the directory's name for it (ldapusers, found
# through group_dn_pattern's parent), not the first user's, so every machine names it alike.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"
need pamtester
need_nss_module


slapd_start
nss_pgina_install
STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgina_conf <<C
[order]
authentication = ldap
gateway = ldap pgsmb localmachine
notification = pgsmb localmachine

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
group_attribute = memberUid
group_dn_pattern = cn=%g,ou=groups,dc=pgina,dc=test
gateway_rules = staff=ldapstaff

[pgsmb]
share = file://$STORE
retries = 1
retry_delay = 0
C
pgina_start

step "before the logon: NSS answers for alice, /etc/passwd has no alice"
assert_eq "alice:x:20001:20000:Alice Liddell:/home/alice:/bin/bash" "$(getent passwd alice)" \
        "getent passwd alice before the logon"
grep -q '^alice:' /etc/passwd && fail "alice is in /etc/passwd already"

step "logon (pgSMB creates the account): a real local account with the LDAP ids and mapped group"
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt open_session
grep '^alice:' /etc/passwd >"$T/alice.pw" || { cat "$PGINA_LOG" >&2; fail "no alice in /etc/passwd"; }
cut -d: -f3,4,6,7 "$T/alice.pw" >"$T/alice.ids"
assert_eq "20001:20000:/home/alice:/bin/bash" "$(cat "$T/alice.ids")" "alice's /etc/passwd line"
assert_contains "$T/alice.pw" "pGina created pgSMB"
grep -q '^alice:' /etc/shadow || fail "no alice in /etc/shadow"
grep -E '^ldapstaff:' /etc/group | grep -qw alice || fail "alice is not in the local group ldapstaff"
grep -q '^ldapusers:x:20000:' /etc/group || fail "no local group ldapusers (gid 20000): $(grep 20000 /etc/group)"
grep -q '^alice:' /etc/group && fail "a group named alice was made for gid 20000"
assert_eq ldapusers "$(id -gn alice)" "alice's primary group"
[ -d /home/alice ] || fail "no /home/alice"
assert_eq 20001 "$(stat -c %u /home/alice)" "owner of /home/alice"
assert_not_contains "$PGINA_LOG" "already exists"
pgina_close_session alice

step "LocalMachine alone creates the account too (bob)"
pgina_stop
sed -i 's/^gateway = ldap pgsmb localmachine/gateway = ldap localmachine/; s/^notification = .*/notification = localmachine/' \
        "$PGINA_CONF"
pgina_start
assert_eq "bob:x:20002:20000:Bob Builder:/home/bob:/bin/sh" "$(getent passwd bob)" \
        "getent passwd bob before the logon"
assert_ok pam_run pgtest bob "$SLAPD_BOB_PW" authenticate acct_mgmt
grep '^bob:' /etc/passwd >"$T/bob.pw" || { cat "$PGINA_LOG" >&2; fail "no bob in /etc/passwd"; }
assert_eq "20002:20000:/home/bob:/bin/sh" "$(cut -d: -f3,4,6,7 "$T/bob.pw")" "bob's /etc/passwd line"
assert_contains "$T/bob.pw" "pGina created"
assert_eq 1 "$(grep -c ':x:20000:' /etc/group)" "local groups with gid 20000"
assert_not_contains "$PGINA_LOG" "already exists"
exit 0
