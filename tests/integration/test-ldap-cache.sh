#!/bin/bash
# LDAP cached (offline) logons, authentication and admin: an online logon with cache_credentials
# stores a yescrypt hash (never the password) in a 0600 file of a 0700 directory; with slapd
# stopped the right password logs on from the cache ("offline") and a wrong one is refused; a
# server that answers "wrong password" never falls back to the cache; an entry older than
# cache_days is refused; pginactl lists and drops entries (a dropped user cannot log on offline).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

slapd_start
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
CACHE=/var/lib/pgina/plugins/ldap/cache
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
cache_credentials = true
$1
C
        pgina_start
}
offline_logons() { grep -c "Authenticated alice offline" "$PGINA_LOG"; }

step "cache_credentials off (default): an online logon caches nothing"
pgina_conf <<C
[order]
authentication = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
C
pgina_start
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
[ ! -e "$CACHE/alice.entry" ] || fail "an entry was written with cache_credentials off"

step "online logon fills the cache: 0600 file in a 0700 directory, a yescrypt hash, no password"
configure ""
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt
assert_contains "$PGINA_LOG" "Logon of alice cached for offline logons"
[ -f "$CACHE/alice.entry" ] || fail "no cache entry for alice"
assert_eq "600 root" "$(stat -c '%a %U' "$CACHE/alice.entry")" "entry mode and owner"
assert_eq "700 root" "$(stat -c '%a %U' "$CACHE")" "cache directory mode and owner"
assert_contains "$CACHE/alice.entry" 'hash $y$'
assert_contains "$CACHE/alice.entry" 'attr fullname Alice\sLiddell'
assert_contains "$CACHE/alice.entry" 'uid 20001'
assert_not_contains "$CACHE/alice.entry" "$SLAPD_ALICE_PW"
assert_not_contains "$CACHE/alice.entry" "${SLAPD_ALICE_PW// /\\s}" # escaped form
ls "$CACHE" | grep -q tmp && fail "a temporary file was left in $CACHE"
grep -rF -- "$SLAPD_ALICE_PW" /var/lib/pgina "$PGINA_LOG" && fail "the password was written somewhere"

step "slapd up, wrong password: refused, no fallback to the cache"
assert_fail pam_run pgtest alice "wrong password" authenticate
assert_contains "$PGINA_LOG" "Authentication of alice as uid=alice,ou=people,dc=pgina,dc=test failed: invalid credentials"
assert_eq 0 "$(offline_logons)" "offline logons while slapd answers"
assert_not_contains "$PGINA_LOG" "does not match the cached logon"

step "slapd stopped: the right password logs on from the cache"
slapd_stop
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate acct_mgmt
assert_contains "$PGINA_LOG" "Authenticated alice offline from the logon cached at"
assert_contains "$PGINA_LOG" "(cached logon): no LDAP server answered"
assert_ok pgina_simulate "$SLAPD_ALICE_PW" alice
has_line "$T/sim.out" '^authentication +ldap +success +Offline logon with cached credentials'

step "slapd stopped: a wrong password is refused like online"
assert_fail pam_run pgtest alice "wrong password" authenticate
assert_contains "$PGINA_LOG" "Offline authentication of alice failed: the password does not match the cached logon"
assert_fail pgina_simulate "wrong password" alice
has_line "$T/sim.out" '^authentication +ldap +failure +Authentication failed'

step "slapd stopped: a user without a cached logon is refused (server unavailable)"
assert_fail pam_run pgtest bob "$SLAPD_BOB_PW" authenticate
assert_contains "$PGINA_LOG" "No cached logon of bob to fall back on"

step "cache_days = 0: the entry is never used"
configure "cache_days = 0"
assert_fail pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
assert_contains "$PGINA_LOG" "not used: older than cache_days (0)"

step "an entry older than cache_days (7) is refused"
configure ""
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate # still fresh
old=$(($(date +%s) - 8 * 86400))
sed -i "s/^time .*/time $old/" "$CACHE/alice.entry"
chmod 0600 "$CACHE/alice.entry"
assert_fail pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
assert_contains "$PGINA_LOG" "not used: older than cache_days (7)"
pginactl plugin ldap - cache list >"$T/list.out" 2>&1 || fail "cache list failed: $(cat "$T/list.out")"
has_line "$T/list.out" '^alice .*\(expired\)$'

step "slapd back: an online logon refreshes the entry"
slapd_restart
assert_ok pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
now=$(date +%s)
t=$(sed -n 's/^time //p' "$CACHE/alice.entry")
[ $((now - t)) -lt 60 ] || fail "entry time $t not refreshed (now $now)"
assert_ok pam_run pgtest carol "$SLAPD_CAROL_PW" authenticate

step "pginactl plugin ldap - cache list: user, cached at, expires"
pginactl plugin ldap - cache list >"$T/list.out" 2>&1 || fail "cache list failed: $(cat "$T/list.out")"
cat "$T/list.out"
has_line "$T/list.out" '^USER +CACHED +EXPIRES'
has_line "$T/list.out" "^alice +$(date +%Y-%m-%d) [0-9:]{8} [-+][0-9]{4} +$(date -d '+7 days' +%Y-%m-%d) "
has_line "$T/list.out" '^carol '
assert_not_contains "$T/list.out" expired
pginactl cache list >"$T/list2.out" 2>&1 || fail "pginactl cache list failed: $(cat "$T/list2.out")"
has_line "$T/list2.out" '^alice '

step "cache drop alice: the entry is gone, an offline logon fails; carol still logs on offline"
pginactl plugin ldap alice cache drop alice >"$T/drop.out" 2>&1 || fail "cache drop failed: $(cat "$T/drop.out")"
assert_contains "$T/drop.out" "dropped the cached logon of alice"
[ ! -e "$CACHE/alice.entry" ] || fail "alice's entry still exists"
pginactl plugin ldap - cache list >"$T/list.out" 2>&1
assert_not_contains "$T/list.out" alice
assert_fail pginactl plugin ldap alice cache drop alice
slapd_stop
assert_fail pam_run pgtest alice "$SLAPD_ALICE_PW" authenticate
assert_ok pam_run pgtest carol "$SLAPD_CAROL_PW" authenticate
pginactl cache drop carol >"$T/drop.out" 2>&1 || fail "pginactl cache drop failed: $(cat "$T/drop.out")"
assert_fail pam_run pgtest carol "$SLAPD_CAROL_PW" authenticate
assert_fail pginactl plugin ldap - cache frobnicate
exit 0
