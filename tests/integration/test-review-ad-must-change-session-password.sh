#!/bin/bash
# Review of issue 14: after a logon that had to change the password first ("must change at next
# logon": authenticate, then chauthtok with PAM_CHANGE_EXPIRED_AUTHTOK, then open_session), the
# session pginad keeps holds the password the user has now, not the one just replaced. The
# session's password is what the logoff work uses (pgSMB's credentials = user upload of the
# profile, mail): it was the old one, from the pending logon (AUTHENTICATE's), which AD no longer
# takes, and a password change during a session left it stale too. Root searches pginad's memory
# (the master, which keeps the sessions): the new password is there, the replaced one is not.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba-ad.sh"
ad_start

SVC_PW='Svc-Pw.for-pgina1'
OLD='Mia-Pw.first1Qz'
NEW='Mia-Pw.second2Kx'
NEWER='Mia-Pw.third3Vb'
ad_user svc-pgina "$SVC_PW"
ad_tool group addmembers "Domain Admins" svc-pgina || fail "cannot make svc-pgina an admin"
ad_user mia "$OLD" --must-change-at-next-login
(umask 077 && printf '%s\n' "$SVC_PW" >"$T/svc.pw")
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
password required pam_pgina.so
session  required pam_pgina.so
P
pgina_conf <<C
[order]
authentication = ldap
gateway = localmachine
notification = localmachine
change_password = ldap

[ldap]
servers = $AD_URL
tls_ca_file = $AD_CA
schema = ad
search_dn = CN=svc-pgina,CN=Users,$AD_BASE
search_password_file = $T/svc.pw
search_contexts = CN=Users,$AD_BASE
search_filter = (&(objectClass=user)(sAMAccountName=%u))
C
pgina_start
scan() { # scan NEEDLE: is NEEDLE in pginad's (the master's) memory? 0 found, 1 not
        local rc=0
        MEMSCAN_NEEDLES=$1 "$PYTHON" "$SRC/tests/integration/memscan.py" "$PGINA_PID" >"$T/scan.out" 2>&1 || rc=$?
        cat "$T/scan.out" >>"$T/scans.log"
        [ "$rc" -ne 2 ] || fail "cannot scan pginad: $(cat "$T/scan.out")"
        [ "$rc" -eq 1 ]
}

step "mia logs on: her password must be changed first; she changes it and the session opens"
assert_ok pam_run_input pgtest mia "$OLD\n$OLD\n$NEW\n$NEW" authenticate \
        "chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)" open_session
assert_contains "$PGINA_LOG" "session "
scan "$NEW" || fail "mia's session does not hold her new password"
scan "$OLD" && fail "pginad still holds mia's replaced password (her session's)"

step "she changes it again during the session: the session follows"
assert_ok pam_run_as mia pgtest mia "$NEW\n$NEWER\n$NEWER" chauthtok
scan "$NEWER" || fail "mia's session does not hold the password she changed to"
scan "$NEW" && fail "pginad still holds mia's previous password"
exit 0
