#!/bin/bash
# End to end: a user who exists only in LDAP logs in over a real sshd and gets a local account
# with the LDAP uid and the mapped local group, and their roaming profile from a real smbd.
#   private slapd + private smbd (alice's samba password = her LDAP password) + sshd on
#   127.0.0.1 with /etc/pam.d/sshd = pam_pgina (auth, account, session); libnss_pgina
#   ("passwd: files pgina") lets sshd (and smbd) know alice before her account exists.
#   pginad: authentication = ldap, gateway = ldap pgsmb localmachine, notification = pgsmb
#   localmachine, [ldap] gateway_rules staff=ldapstaff, [pgsmb] share = smbd, credentials = user,
#   [localmachine] logoff_action = remove.
#   1. ssh alice: account created (uid 20001, ldapstaff), she writes ~/proof; ssh exits, the
#      logoff job uploads her profile to smbd and removes the account and home.
#   2. ssh alice again: the account is created again and ~/proof is back from smbd.
# sshd authenticates with keyboard-interactive: OpenSSH runs that PAM conversation in a forked
# child, so pam_pgina's logon token (pam_set_data) never reaches open_session; pginad then pairs
# the session with the user's pending logon, so pgSMB still has the logon password at logoff.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sshd.sh"
. "$(dirname "$0")/slapd.sh"
. "$(dirname "$0")/smbd.sh"
need sshd ssh ssh-keygen sshpass smbd smbpasswd
need_nss_module
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
[ -e "$BUILD/plugins/ldap.so" ] || skip "ldap plugin not built"


slapd_start
nss_pgina_install
pam_service sshd <<'PAM'
auth     required pam_pgina.so timeout=60
account  required pam_pgina.so
session  required pam_pgina.so
PAM

# pginad first: smbpasswd and smbd resolve alice through libnss_pgina, so she gets a samba
# password without a local account. The [pgsmb] share is known once smbd has its port.
write_conf() {
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
share = $1
credentials = user
retries = 2
retry_delay = 1
timeout = 20

[localmachine]
logoff_action = remove
C
}
write_conf "file://$T/unused"
pgina_start
assert_eq "alice:x:20001:20000:Alice Liddell:/home/alice:/bin/bash" "$(getent passwd alice)" \
        "getent passwd alice through pgina"
smbd_start
smbd_add_user alice "$SLAPD_ALICE_PW"
grep -q '^alice:' /etc/passwd && fail "smbd_add_user created a local alice (NSS did not answer)"
pgina_stop
write_conf "$(smbd_url)"
pgina_start

sshd_start "MaxAuthTries 3"

ssh_as() { # USER PASSWORD-FILE CMD...
        local user=$1 pwfile=$2
        shift 2
        timeout 90 sshpass -f "$pwfile" ssh -F /dev/null -p "$SSHD_PORT" \
                -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                -o PubkeyAuthentication=no -o GSSAPIAuthentication=no \
                -o PreferredAuthentications=keyboard-interactive \
                -o NumberOfPasswordPrompts=1 -o ConnectTimeout=20 \
                "$user@127.0.0.1" "$@"
}
# wait_logoff USER: the session closed (ssh exited) and the logoff job finished.
wait_logoff() {
        local i
        for ((i = 0; i < 100; i++)); do
                pginactl sessions >"$T/sessions.out" 2>&1
                grep -qw "$1" "$T/sessions.out" || break
                sleep 0.2
        done
        assert_not_contains "$T/sessions.out" "$1"
        pgina_wait_jobs
}
printf '%s\n' "$SLAPD_ALICE_PW" >"$T/pw.alice"
chmod 0600 "$T/pw.alice"

step "1. alice (LDAP only) logs in over ssh: local account with the LDAP uid and mapped group"
ssh_as alice "$T/pw.alice" 'id; echo "e2e proof $(id -u)" > ~/proof; ls -ld "$HOME"' \
        >"$T/ssh1.out" 2>"$T/ssh1.err" || {
        cat "$T/ssh1.err" "$T/sshd.log" >&2
        tail -n 40 "$PGINA_LOG" >&2
        fail "first ssh alice@127.0.0.1 failed"
}
cat "$T/ssh1.out"
assert_contains "$T/ssh1.out" "uid=20001(alice)"
assert_contains "$T/ssh1.out" "ldapstaff"
assert_contains "$T/ssh1.out" "/home/alice"
grep -q "opened for alice (service sshd" "$PGINA_LOG" || fail "pginad logged no sshd session for alice"

step "ssh exits: logoff uploads the profile to smbd, logoff_action removes account and home"
wait_logoff alice
find "$SMBD_SHARE" -type f >"$T/share.list"
cat "$T/share.list"
has_profile "$SMBD_SHARE/alice" || fail "no profile of alice on the share"
for f in "$SMBD_SHARE"/alice/alice.tar.zst.*; do
        assert_eq 20001 "$(stat -c %u "$f")" "owner of $(basename "$f") on the share (written as alice: credentials = user)"
done
grep -q '^alice:' /etc/passwd && fail "alice's local account is still there after logoff"
[ -e /home/alice ] && fail "/home/alice is still there after logoff"
assert_eq "20001" "$(getent passwd alice | cut -d: -f3)" "NSS still answers for alice"

step "2. alice logs in again: account recreated, her profile back from smbd"
ssh_as alice "$T/pw.alice" 'id; cat ~/proof' >"$T/ssh2.out" 2>"$T/ssh2.err" || {
        cat "$T/ssh2.err" "$T/sshd.log" >&2
        tail -n 40 "$PGINA_LOG" >&2
        fail "second ssh alice@127.0.0.1 failed"
}
cat "$T/ssh2.out"
assert_contains "$T/ssh2.out" "uid=20001(alice)"
assert_contains "$T/ssh2.out" "ldapstaff"
assert_contains "$T/ssh2.out" "e2e proof 20001"
# logoff runs again in the background after this ssh; the account may already be gone
wait_logoff alice

step "no password in any log"
assert_not_contains "$PGINA_LOG" "$SLAPD_ALICE_PW"
assert_not_contains "$T/sshd.log" "$SLAPD_ALICE_PW"
exit 0
