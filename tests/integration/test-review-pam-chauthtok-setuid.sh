#!/bin/bash
# pam_sm_chauthtok in a setuid-root program run by a user (passwd): pginad sees a root peer, so
# only the module knows a user is asking. It must send the current password and never let an
# empty one through (pginad skips the check when a root peer sends none). Root itself changes any
# password without the old one, except when PAM_CHANGE_EXPIRED_AUTHTOK asks for the current one.
. "$(dirname "$0")/lib.sh"
export PGINA_SERVICE_EXTRA="failure_delay_max = 0"

pam_service pgtest <<'P'
auth     required pam_pgina.so
password required pam_pgina.so
P
make_user alice 'Old pw 1'
pgina_conf <<C
[order]
authentication = localmachine
change_password = localmachine
C
pgina_start

# setuid_chauthtok RUID FLAGS ANSWER...: pam_chauthtok for alice in a process whose real uid is
# RUID and effective uid 0 (as in passwd); every prompt gets the next ANSWER. Prints the PAM code.
setuid_chauthtok() {
        pam_host_exec "$PYTHON" - "$PAM_MODULE" "$@" <<'PY'
import ctypes, os, sys
_module, ruid, flags, answers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
pam = ctypes.CDLL("libpam.so.0")
libc = ctypes.CDLL(None)
class Msg(ctypes.Structure):
    _fields_ = [("style", ctypes.c_int), ("msg", ctypes.c_char_p)]
class Resp(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("retcode", ctypes.c_int)]
CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(Msg)),
                        ctypes.POINTER(ctypes.POINTER(Resp)), ctypes.c_void_p)
class Conv(ctypes.Structure):
    _fields_ = [("conv", CONV), ("appdata", ctypes.c_void_p)]
libc.calloc.restype = ctypes.c_void_p
libc.strdup.restype = ctypes.c_void_p
libc.strdup.argtypes = [ctypes.c_char_p]
queue = list(answers)
def conv(n, msgs, resps, _data):
    arr = libc.calloc(n, ctypes.sizeof(Resp))
    out = ctypes.cast(arr, ctypes.POINTER(Resp))
    for i in range(n):
        m = msgs[i].contents
        print("conv:", m.style, (m.msg or b"").decode(), file=sys.stderr)
        if m.style in (1, 2):  # PAM_PROMPT_ECHO_OFF / ON
            a = queue.pop(0) if queue else ""
            out[i].resp = libc.strdup(a.encode())
    resps[0] = out
    return 0
c = Conv(CONV(conv), None)
h = ctypes.c_void_p()
os.setresuid(ruid, 0, 0)  # real uid = the user, effective root: a setuid program
r = pam.pam_start(b"pgtest", b"alice", ctypes.byref(c), ctypes.byref(h))
if r == 0:
    r = pam.pam_chauthtok(h, flags)
pam.pam_end(h, r)
print(r)
PY
}
PAM_CHANGE_EXPIRED_AUTHTOK=32
alice_uid=$(id -u alice)

step "alice (real uid) with an empty current password: refused, password unchanged"
code=$(setuid_chauthtok "$alice_uid" 0 "" 'Evil pw 9' 'Evil pw 9')
echo "pam_chauthtok -> $code"
[ "$code" != 0 ] || fail "an empty current password changed alice's password"
assert_ok pam_run pgtest alice 'Old pw 1' authenticate

step "alice with a wrong current password: refused"
code=$(setuid_chauthtok "$alice_uid" 0 'Wrong pw 0' 'Evil pw 9' 'Evil pw 9')
[ "$code" != 0 ] || fail "a wrong current password changed alice's password"
assert_ok pam_run pgtest alice 'Old pw 1' authenticate

step "alice with her current password: changed"
code=$(setuid_chauthtok "$alice_uid" 0 'Old pw 1' 'New pw 2' 'New pw 2')
assert_eq 0 "$code" "pam_chauthtok with the right current password"
assert_ok pam_run pgtest alice 'New pw 2' authenticate

step "root with PAM_CHANGE_EXPIRED_AUTHTOK is asked for the current password"
code=$(setuid_chauthtok 0 $PAM_CHANGE_EXPIRED_AUTHTOK "" 'Evil pw 9' 'Evil pw 9')
[ "$code" != 0 ] || fail "an expired-password change went through without the current password"
assert_ok pam_run pgtest alice 'New pw 2' authenticate

step "root without that flag changes it without the old one"
code=$(setuid_chauthtok 0 0 'Root set 3' 'Root set 3')
assert_eq 0 "$code" "root's pam_chauthtok"
assert_ok pam_run pgtest alice 'Root set 3' authenticate
exit 0
