#!/bin/bash
# libnss_pgina's group database (nsswitch.conf "group: files pgina") answers for groups that exist
# only in LDAP, through pginad and the ldap plugin's lookup_group: by name and by gid, with their
# members (memberUid, and member DNs whose RDN is uid=NAME), so a directory user's primary group
# has a name (id -gn, ls -l) before any local group exists. Groups are found under the parent of
# group_dn_pattern or under group_search_contexts, matching group_filter; a gid shared by two
# groups names none; gid 0 and local groups come from files; unknown names are "not found"
# (getent exit 2); enumeration stays empty; a too-small buffer is ERANGE; with the LDAP server
# down a lookup is quick and pginad's memory keeps answering what it answered before. The raw
# GETGRNAM part runs in the ASan pass too (the module itself is tested in the gcc pass).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

# getent_group ARGS: sets GETENT_RC, GETENT_MS; output in $T/getent.out.
getent_group() {
        local t0 t1
        t0=$(date +%s%N)
        GETENT_RC=0
        getent group "$@" >"$T/getent.out" 2>&1 || GETENT_RC=$?
        t1=$(date +%s%N)
        GETENT_MS=$(((t1 - t0) / 1000000))
}

expect_group() { # KEY EXPECTED-LINE
        getent_group "$1"
        assert_eq 0 "$GETENT_RC" "getent group $1 exit status ($(cat "$T/getent.out"))"
        assert_eq "$2" "$(cat "$T/getent.out")" "getent group $1"
}

expect_no_group() { # KEY: not found (exit 2), within 3 s
        getent_group "$1"
        assert_eq 2 "$GETENT_RC" "getent group $1 exit status ($(cat "$T/getent.out"))"
        [ "$GETENT_MS" -lt 3000 ] || fail "getent group $1 took $GETENT_MS ms"
}

slapd_start
# (slapd.sh's "staff" clashes with Debian's local staff group: files answers for it)
slapd_admin ldapadd >/dev/null <<L || fail "ldapadd test groups"
dn: cn=labteam,ou=groups,dc=pgina,dc=test
objectClass: posixGroup
cn: labteam
gidNumber: 20012
memberUid: alice
memberUid: carol

dn: cn=labdn,ou=groups,dc=pgina,dc=test
objectClass: posixGroup
objectClass: extensibleObject
cn: labdn
gidNumber: 20020
member: uid=bob,ou=people,dc=pgina,dc=test
member: cn=Someone Else,ou=people,dc=pgina,dc=test
memberUid: carol

dn: cn=twin1,ou=groups,dc=pgina,dc=test
objectClass: posixGroup
cn: twin1
gidNumber: 20030

dn: cn=twin2,ou=groups,dc=pgina,dc=test
objectClass: posixGroup
cn: twin2
gidNumber: 20030

dn: cn=rootish,ou=groups,dc=pgina,dc=test
objectClass: posixGroup
cn: rootish
gidNumber: 0

dn: ou=moregroups,dc=pgina,dc=test
objectClass: organizationalUnit
ou: moregroups

dn: cn=far,ou=moregroups,dc=pgina,dc=test
objectClass: posixGroup
cn: far
gidNumber: 20040
memberUid: alice
L

pgina_conf <<C
[order]
authentication = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
group_dn_pattern = cn=%g,ou=groups,dc=pgina,dc=test
server_retry_delay = 0
C
pgina_start

# getgrnam_frame NAME GID: a GETGRNAM request's payload (str name | u32 gid), hex.
getgrnam_frame() { printf '%08x%s%08x' "${#1}" "$(printf '%s' "$1" | od -An -tx1 | tr -d ' \n')" "$2"; }
step "pginad answers GETGRNAM from the ldap plugin (raw requests: this part runs in every pass)"
assert_eq "result 0 1" "$(pgclient --wait 5 frame 1 33 "$(getgrnam_frame labteam 0)" | xargs)" "GETGRNAM labteam"
assert_eq "result 0 1" "$(pgclient --wait 5 frame 1 33 "$(getgrnam_frame "" 20020)" | xargs)" "GETGRNAM gid 20020"
assert_eq "result 7 0" "$(pgclient --wait 5 frame 1 33 "$(getgrnam_frame nosuchgroup 0)" | xargs)" "GETGRNAM nosuchgroup"
assert_eq "result 7 0" "$(pgclient --wait 5 frame 1 33 "$(getgrnam_frame "" 20030)" | xargs)" "GETGRNAM a shared gid"

need_nss_module
nss_pgina_install
step "by name and by gid, with members (groups under the parent of group_dn_pattern)"
grep -q '^labteam:' /etc/group && fail "labteam is in /etc/group"
expect_group labteam "labteam:x:20012:alice,carol"
expect_group 20012 "labteam:x:20012:alice,carol"
expect_group ldapusers "ldapusers:x:20000:"
expect_group 20011 "banned:x:20011:bob"

step "member DNs count when their RDN is uid=NAME; memberUid too"
expect_group labdn "labdn:x:20020:carol,bob"

step "a directory user's primary group has a name before any local group exists"
assert_eq ldapusers "$(id -gn alice)" "id -gn alice"
touch "$T/owned"
chown 20001:20000 "$T/owned"
assert_eq "alice:ldapusers" "$(stat -c %U:%G "$T/owned")" "stat of a file owned by alice's ids"

step "no initgroups from the directory: supplementary groups stay the local ones"
assert_eq "ldapusers" "$(id -Gn alice)" "id -Gn alice"

step "not a posixGroup (groupOfNames admins), unknown, invalid names: not found"
expect_no_group admins
expect_no_group nosuchgroup
expect_no_group 29999
expect_no_group Labteam
expect_no_group 'x:y'

step "a gid two groups share names neither; gidNumber 0 is never answered"
expect_no_group 20030
expect_group twin1 "twin1:x:20030:"
expect_no_group rootish
expect_group 0 "$(grep '^root:' /etc/group)"

step "local groups still come from files (files first)"
expect_group root "$(grep '^root:' /etc/group)"
expect_group "$(id -g nobody)" "$(getent -s files group "$(id -g nobody)")"

step "enumeration is empty: getent group lists /etc/group only"
getent group >"$T/all.out"
assert_eq "$(wc -l </etc/group)" "$(wc -l <"$T/all.out")" "groups listed"
assert_not_contains "$T/all.out" "labteam"

step "any user may ask (nobody); PGINA_NSS_DISABLE steps aside"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- getent group labteam >"$T/nobody.out" ||
        fail "getent group labteam as nobody failed"
assert_eq "labteam:x:20012:alice,carol" "$(cat "$T/nobody.out")" "getent group as nobody"
rc=0
PGINA_NSS_DISABLE=1 getent group labteam >/dev/null || rc=$?
assert_eq 2 "$rc" "getent group with PGINA_NSS_DISABLE"

step "a caller's buffer too small: ERANGE (glibc's getgrnam_r), then the answer"
"$PYTHON" - >"$T/erange.out" 2>&1 <<'PY' || { cat "$T/erange.out"; fail "getgrnam_r buffer sizes"; }
import ctypes, errno
class Group(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("passwd", ctypes.c_char_p), ("gid", ctypes.c_uint),
                ("mem", ctypes.POINTER(ctypes.c_char_p))]
libc = ctypes.CDLL("libc.so.6", use_errno=True)
def lookup(size):
    gr, res = Group(), ctypes.POINTER(Group)()
    buf = ctypes.create_string_buffer(size)
    r = libc.getgrnam_r(b"labteam", ctypes.byref(gr), buf, size, ctypes.byref(res))
    if not res:
        return r, None
    mem, i = [], 0
    while gr.mem[i]:
        mem.append(gr.mem[i]); i += 1
    return r, (gr.name, gr.gid, mem)
for size in (1, 8, 24, 40):
    r, got = lookup(size)
    assert r == errno.ERANGE and got is None, (size, r, got)
r, got = lookup(4096)
assert r == 0 and got == (b"labteam", 20012, [b"alice", b"carol"]), (r, got)
print("ok")
PY

step "group_search_contexts: searched in order; group_filter narrows what is a group"
pgina_stop
pgina_conf <<C
[order]
authentication = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
group_search_contexts = ou=moregroups,dc=pgina,dc=test ou=groups,dc=pgina,dc=test
group_filter = (&(objectClass=posixGroup)(!(cn=banned)))
server_retry_delay = 0
C
pgina_start
expect_group far "far:x:20040:alice"
expect_group 20040 "far:x:20040:alice"
expect_group labteam "labteam:x:20012:alice,carol"
expect_no_group banned
expect_no_group 20011

step "a group_filter that is not a filter: refused with the key named"
pgina_stop
sed -i 's/^group_filter = .*/group_filter = objectClass=posixGroup/' "$PGINA_CONF"
assert_fail pginactl config check "$PGINA_CONF"
pginactl config check "$PGINA_CONF" >"$T/check.out" 2>&1 || true
assert_contains "$T/check.out" "group_filter"
sed -i 's/^group_filter = .*/group_filter = (objectClass=posixGroup)/' "$PGINA_CONF"
pgina_start

step "the LDAP server down: an unknown group is not found, quickly; a known one stays answered"
expect_group labteam "labteam:x:20012:alice,carol"
slapd_stop
expect_no_group ldapusers
expect_group labteam "labteam:x:20012:alice,carol"
slapd_restart
exit 0
