#!/bin/bash
# Review of issue 14: the ldap plugin's schema and ad_id_base are checked with the configuration
# (pginactl config check, pginad's start). The checks ("schema must be rfc2307 or ad", "ad_id_base
# must be at least 1000") sat in the password change's use_ad(), a bool function returning
# -EINVAL (true: Active Directory mode) after them, so a logon never saw them: schema = AD (a
# typo) silently meant rfc2307, and ad_id_base = 0 or below gave AD accounts ids in the system's
# and the local users' range (Administrator uid 500, an RID - 513 base a gid 0 for Domain Users).
. "$(dirname "$0")/lib.sh"

conf() { # conf EXTRA-LINES: an ldap configuration with schema = ad and the lines added
        pgina_conf <<C
[order]
authentication = ldap
change_password = ldap

[ldap]
servers = ldaps://dc1.acc.test
search_filter = (&(objectClass=user)(sAMAccountName=%u))
search_contexts = CN=Users,DC=acc,DC=test
$1
C
}
check() {
        local rc=0
        pginactl config check >"$T/check.out" 2>&1 || rc=$?
        cat "$T/check.out"
        return "$rc"
}

step "schema = ad, default ad_id_base: OK"
conf "schema = ad"
assert_ok check
step "ad_id_base = 100000 and 1000: OK"
conf $'schema = ad\nad_id_base = 1000'
assert_ok check

for bad in "schema = AD" "schema = active-directory" $'schema = ad\nad_id_base = 0' \
        $'schema = ad\nad_id_base = 999' $'schema = ad\nad_id_base = -513'; do
        step "refused: ${bad//$'\n'/, }"
        conf "$bad"
        assert_fail check
        assert_contains "$T/check.out" "ldap"
done
step "pginad refuses to start with ad_id_base = 0"
conf $'schema = ad\nad_id_base = 0'
rc=0
timeout 10 "$BUILD/pginad" -f >"$T/start.out" 2>&1 || rc=$?
cat "$T/start.out"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "pginad started (or hung) with ad_id_base = 0 (exit $rc)"
assert_contains "$T/start.out" "ad_id_base"
exit 0
