#!/bin/bash
# libnss_pgina (nsswitch.conf "passwd: files pgina") answers for users who exist only in LDAP,
# through pginad and the ldap plugin's lookup: by name and by uid, with the LDAP uidNumber,
# gidNumber, cn, homeDirectory and loginShell; unknown users and uids are "not found" (getent
# exit 2); enumeration stays empty; any user may ask; PGINA_NSS_DISABLE turns it off; and with
# pginad down, stopped (SIGSTOP) or the LDAP server down, a lookup comes back within 3 s.
# The module is installed for this sandbox only: an overlay on the system's library directory
# (the host's directory never sees the file).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"
need_nss_module


# getent_timed ARGS: getent passwd ARGS; sets GETENT_RC, GETENT_MS; output in $T/getent.out.
getent_timed() {
        local t0 t1
        t0=$(date +%s%N)
        GETENT_RC=0
        getent passwd "$@" >"$T/getent.out" 2>&1 || GETENT_RC=$?
        t1=$(date +%s%N)
        GETENT_MS=$(((t1 - t0) / 1000000))
}

expect_line() { # ARGS... EXPECTED-LINE (last argument)
        local want=${*: -1}
        getent_timed "${@:1:$#-1}"
        assert_eq 0 "$GETENT_RC" "getent passwd ${*:1:$#-1} exit status ($(cat "$T/getent.out"))"
        assert_eq "$want" "$(cat "$T/getent.out")" "getent passwd ${*:1:$#-1}"
}

expect_missing() { # ARGS...: not found (exit 2), within 3 s
        getent_timed "$@"
        assert_eq 2 "$GETENT_RC" "getent passwd $* exit status ($(cat "$T/getent.out"))"
        [ "$GETENT_MS" -lt 3000 ] || fail "getent passwd $* took $GETENT_MS ms"
}

ALICE='alice:x:20001:20000:Alice Liddell:/home/alice:/bin/bash'
BOB='bob:x:20002:20000:Bob Builder:/home/bob:/bin/sh'
CAROL='carol:x:20003:20000:Carol Danvers:/home/carol:/bin/bash'

slapd_start
nss_pgina_install
conf_pattern() {
        pgina_conf <<C
[order]
authentication = ldap

[ldap]
servers = $(slapd_url)
dn_pattern = uid=%u,ou=people,dc=pgina,dc=test
server_retry_delay = 0
C
}
conf_pattern
pgina_start

step "pginad down: a lookup is 'not found' at once"
pgina_stop
expect_missing alice
pgina_start

step "by name: an LDAP-only user (dn_pattern mode, anonymous reads)"
grep -q '^alice:' /etc/passwd && fail "alice is in /etc/passwd"
expect_line alice "$ALICE"
expect_line bob "$BOB"
assert_eq 20001 "$(id -u alice)" "id -u alice"

step "a caller's buffer too small: ERANGE (glibc's getpwnam_r), then the answer with a larger one"
"$PYTHON" - >"$T/erange.out" 2>&1 <<'PY' || { cat "$T/erange.out"; fail "getpwnam_r buffer sizes"; }
import ctypes, errno
class Passwd(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("passwd", ctypes.c_char_p), ("uid", ctypes.c_uint),
                ("gid", ctypes.c_uint), ("gecos", ctypes.c_char_p), ("dir", ctypes.c_char_p),
                ("shell", ctypes.c_char_p)]
libc = ctypes.CDLL("libc.so.6", use_errno=True)
def lookup(size):
    pw, res = Passwd(), ctypes.POINTER(Passwd)()
    buf = ctypes.create_string_buffer(size)
    r = libc.getpwnam_r(b"alice", ctypes.byref(pw), buf, size, ctypes.byref(res))
    return r, (pw.name, pw.uid, pw.dir) if res else None
r, got = lookup(16)
assert r == errno.ERANGE and got is None, (r, got)
r, got = lookup(4096)
assert r == 0 and got == (b"alice", 20001, b"/home/alice"), (r, got)
print("ok")
PY

step "by uid (search_contexts unset: the parent of dn_pattern is searched)"
expect_line 20003 "$CAROL"

step "unknown user, unknown uid, a name pginad would refuse: not found"
expect_missing nosuchuser
expect_missing 29999
expect_missing 'Alice'
expect_missing 'x:y'

step "a local user still comes from files (files first)"
expect_line root "$(grep '^root:' /etc/passwd)"
expect_line 0 "$(grep '^root:' /etc/passwd)"

step "enumeration is empty: getent passwd lists /etc/passwd only"
getent passwd >"$T/all.out"
assert_eq "$(wc -l </etc/passwd)" "$(wc -l <"$T/all.out")" "entries listed"
assert_not_contains "$T/all.out" "alice"

step "any user may ask (nobody)"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- getent passwd alice >"$T/nobody.out" ||
        fail "getent passwd alice as nobody failed"
assert_eq "$ALICE" "$(cat "$T/nobody.out")" "getent as nobody"

step "PGINA_NSS_DISABLE=1: the module steps aside (pginad's own tools)"
rc=0
PGINA_NSS_DISABLE=1 getent passwd alice >/dev/null || rc=$?
assert_eq 2 "$rc" "getent with PGINA_NSS_DISABLE"

step "search mode with the service account: by name and by uid"
pgina_stop
(umask 077 && printf '%s\n' "$SLAPD_SVC_PASSWORD" >"$T/svc.pw")
pgina_conf <<C
[order]
authentication = ldap

[ldap]
servers = $(slapd_url)
search_filter = (&(objectClass=posixAccount)(uid=%u))
search_contexts = ou=people,dc=pgina,dc=test
search_dn = $SLAPD_SVC_DN
search_password_file = $T/svc.pw
server_retry_delay = 0
C
pgina_start
expect_line carol "$CAROL"
expect_line 20002 "$BOB"
expect_missing 29998

step "a uidNumber shared by two entries names nobody"
slapd_admin ldapadd >/dev/null <<L || fail "ldapadd dave/dave2"
dn: uid=dave,ou=people,dc=pgina,dc=test
objectClass: inetOrgPerson
objectClass: posixAccount
uid: dave
cn: Dave
sn: Dave
uidNumber: 20050
gidNumber: 20000
homeDirectory: /home/dave

dn: uid=dave2,ou=people,dc=pgina,dc=test
objectClass: inetOrgPerson
objectClass: posixAccount
uid: dave2
cn: Dave Two
sn: Two
uidNumber: 20050
gidNumber: 20000
homeDirectory: /home/dave2
L
expect_missing 20050

step "an entry with uidNumber 0 is never answered (files owns root)"
slapd_admin ldapadd >/dev/null <<L || fail "ldapadd eve"
dn: uid=eve,ou=people,dc=pgina,dc=test
objectClass: inetOrgPerson
objectClass: posixAccount
uid: eve
cn: Eve
sn: Eve
uidNumber: 0
gidNumber: 0
homeDirectory: /root
loginShell: /bin/bash
L
getent_timed eve
assert_eq 2 "$GETENT_RC" "getent passwd eve (uidNumber 0)"

step "the LDAP server down: a user not yet cached is not found, quickly; pginad says why"
slapd_stop
expect_missing alice2
has_line "$PGINA_LOG" "No LDAP server of \[ldap\] servers answered"
step "a user answered before stays answered from pginad's cache"
expect_line carol "$CAROL"
slapd_restart

step "pginad stopped (SIGSTOP): a lookup gives up within 3 s"
kill -STOP "$PGINA_PID"
expect_missing frank
kill -CONT "$PGINA_PID"
echo "lookup against a stopped pginad: $GETENT_MS ms"
exit 0
