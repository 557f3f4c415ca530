#!/bin/bash
# Active Directory (a Samba AD DC), accounts AD refuses for a reason of their own (issue 14).
# "User must change password at next logon" (AD's bind sub-code 773): authentication passes,
# acct_mgmt answers PAM_NEW_AUTHTOK_REQD, and the change PAM then runs
# (PAM_CHANGE_EXPIRED_AUTHTOK, with the old password) goes through the service account; after it
# the new password logs on and the old one does not. Through pamtester, and through a real sshd
# (keyboard-interactive: the user reads the message, is asked the old and the new password, and
# the command runs). Disabled (533), expired (701) and locked-out (775) accounts get their own
# message, not "wrong password", and so do logons outside the logon hours (530) or from a
# workstation the account may not use (531).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba-ad.sh"
. "$(dirname "$0")/sshd.sh"
need ldapsearch sshd ssh ssh-keygen
ad_start

SVC_PW='Svc-Pw.for-pgina1'
ad_user svc-pgina "$SVC_PW"
ad_tool group addmembers "Domain Admins" svc-pgina || fail "cannot make svc-pgina an admin"
ad_user mia 'Mia-Pw.first1' --must-change-at-next-login
ad_user sam 'Sam-Pw.first1' --must-change-at-next-login
ad_user dora 'Dora-Pw.first1'
ad_tool user disable dora || fail "cannot disable dora"
ad_user ed 'Ed-Pw.first11'
ad_tool user setexpiry ed --days=0 || fail "cannot expire ed"
ad_user lou 'Lou-Pw.first1'
ad_user hal 'Hal-Pw.first11'
ad_user wes 'Wes-Pw.first11'
ad_tool domain passwordsettings set --account-lockout-threshold=3 || fail "cannot set a lockout threshold"
(umask 077 && printf '%s\n' "$SVC_PW" >"$T/svc.pw" && printf '%s' "$SVC_PW" >"$T/svc.pw.raw")
for s in pgtest sshd; do
        pam_service "$s" <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
password required pam_pgina.so
session  required pam_pgina.so
P
done
pgina_conf <<C
[order]
authentication = ldap
change_password = ldap

[ldap]
servers = $AD_URL
tls_ca_file = $AD_CA
search_dn = CN=svc-pgina,CN=Users,$AD_BASE
search_password_file = $T/svc.pw
search_contexts = CN=Users,$AD_BASE
search_filter = (&(objectClass=user)(sAMAccountName=%u))
C
pgina_start
can_bind() { # can_bind USER PASSWORD: a bind as USER@acc.test over LDAPS
        (umask 077 && printf '%s' "$2" >"$T/pw")
        LDAPTLS_CACERT=$AD_CA ldapsearch -x -H "$AD_URL" -D "$1@acc.test" -y "$T/pw" -b "" -s base dn >>"$T/bind.log" 2>&1
}

step "must change at next logon: authenticate passes, acct_mgmt asks for a new password"
assert_fail pam_run pgtest mia 'Mia-Pw.first1' authenticate acct_mgmt
assert_contains "$T/pam.out" "Authentication token is no longer valid; new one required"
assert_contains "$T/pam.out" "Your password has expired or must be changed before you log on"
assert_contains "$PGINA_LOG" "the password is marked \"must change at next logon\""
step "a wrong password for that account is still a wrong password"
assert_fail pam_run pgtest mia 'Wrong-Pw.9' authenticate
assert_contains "$T/pam.out" "Authentication failed"
assert_not_contains "$T/pam.out" "must be changed"

step "the change PAM then asks for (old, new, new) goes through; the new password logs on"
assert_ok pam_run_input pgtest mia "Mia-Pw.first1\nMia-Pw.second2\nMia-Pw.second2" "chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)"
can_bind mia 'Mia-Pw.second2' || fail "mia cannot bind with her new password"
can_bind mia 'Mia-Pw.first1' && fail "mia's old password still binds"
assert_ok pam_run pgtest mia 'Mia-Pw.second2' authenticate acct_mgmt
step "a wrong old password changes nothing"
assert_fail pam_run_input pgtest sam "Wrong-Pw.9\nSam-Pw.second2\nSam-Pw.second2" "chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)"
can_bind sam 'Sam-Pw.second2' && fail "sam's password changed with a wrong old one"

step "disabled, expired and locked-out accounts: their own message"
assert_fail pam_run pgtest dora 'Dora-Pw.first1' authenticate
assert_contains "$T/pam.out" "Your account is disabled"
assert_fail pam_run pgtest ed 'Ed-Pw.first11' authenticate
assert_contains "$T/pam.out" "Your account has expired"
assert_fail pam_run pgtest lou 'Wrong-Pw.1' authenticate
assert_fail pam_run pgtest lou 'Wrong-Pw.2' authenticate
assert_fail pam_run pgtest lou 'Wrong-Pw.3' authenticate
assert_fail pam_run pgtest lou 'Lou-Pw.first1' authenticate
assert_contains "$T/pam.out" "Your account is locked out"

step "an account with no logon hours, and one limited to another workstation: told so"
# as the service account (a Domain Admin here), over LDAPS: logonHours all zero (21 bytes)
cat >"$T/restrict.ldif" <<LDIF
dn: CN=hal,CN=Users,$AD_BASE
changetype: modify
replace: logonHours
logonHours:: AAAAAAAAAAAAAAAAAAAAAAAAAAAA

dn: CN=wes,CN=Users,$AD_BASE
changetype: modify
replace: userWorkstations
userWorkstations: WS-ELSEWHERE
LDIF
LDAPTLS_CACERT=$AD_CA ldapmodify -x -H "$AD_URL" -D "CN=svc-pgina,CN=Users,$AD_BASE" -y "$T/svc.pw.raw" \
        -f "$T/restrict.ldif" >"$T/ldapmodify.log" 2>&1 || { cat "$T/ldapmodify.log" >&2; fail "cannot restrict hal and wes"; }
assert_fail pam_run pgtest hal 'Hal-Pw.first11' authenticate
assert_contains "$T/pam.out" "You may not log on at this time"
assert_fail pam_run pgtest wes 'Wes-Pw.first11' authenticate
assert_contains "$T/pam.out" "You may not log on from this computer"

step "through a real sshd: sam is told, changes his password in the session's dialogue, and logs on"
useradd -M -s /bin/sh sam || fail "useradd sam"
sshd_start
# ssh asks this program each keyboard-interactive prompt (its argument, with the messages that
# came before it)
cat >"$T/askpass" <<SH
#!/bin/sh
echo "\$1" >>"$T/prompts"
case "\$1" in
*Current*) echo 'Sam-Pw.first1' ;;
*New*|*new*|*Retype*) echo 'Sam-Pw.third3' ;;
*) echo 'Sam-Pw.first1' ;;
esac
SH
chmod 0755 "$T/askpass"
SSH_ASKPASS=$T/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none timeout 60 setsid -w ssh -F /dev/null -p "$SSHD_PORT" \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no \
        -o GSSAPIAuthentication=no -o PreferredAuthentications=keyboard-interactive \
        -o ConnectTimeout=20 sam@127.0.0.1 'echo logged-on-as-$(id -un)' </dev/null >"$T/ssh.out" 2>"$T/ssh.err" ||
        { cat "$T/ssh.err" "$T/prompts" >&2; tail -n 20 "$T/sshd.log" >&2; fail "sam's ssh logon with the password change failed"; }
assert_contains "$T/ssh.out" "logged-on-as-sam"
# ssh hands the conversation's message to the prompt that follows it
cat "$T/ssh.err" "$T/prompts" >"$T/seen"
assert_contains "$T/seen" "Your password has expired or must be changed before you log on"
assert_contains "$T/prompts" "Current password"
assert_contains "$T/prompts" "New password"
can_bind sam 'Sam-Pw.third3' || fail "sam cannot bind with his new password"
can_bind sam 'Sam-Pw.first1' && fail "sam's old password still binds"

for pw in 'Mia-Pw.first1' 'Mia-Pw.second2' 'Sam-Pw.first1' 'Sam-Pw.third3' "$SVC_PW"; do
        assert_not_contains "$PGINA_LOG" "$pw"
done
exit 0
