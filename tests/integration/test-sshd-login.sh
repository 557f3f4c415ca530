#!/bin/bash
# End to end: a real sshd on 127.0.0.1 inside the sandbox, PAM service sshd = pam_pgina for auth,
# account and session. `ssh user@127.0.0.1 id` works for a LocalMachine user with the right
# password, fails with a wrong one, and pginad sees the session open and close.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sshd.sh"
need sshd ssh ssh-keygen sshpass

pgina_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine
CONF
pam_service sshd <<'PAM'
auth     required pam_pgina.so
account  required pam_pgina.so
session  required pam_pgina.so
PAM
make_user erin 'Erin-ssh-pw-7' -s /bin/sh
pgina_start

sshd_start "PasswordAuthentication yes" "MaxAuthTries 3"

ssh_as() { # USER PASSWORD-FILE CMD...
        local user=$1 pwfile=$2
        shift 2
        timeout 60 sshpass -f "$pwfile" ssh -F /dev/null -p "$SSHD_PORT" \
                -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                -o PubkeyAuthentication=no -o GSSAPIAuthentication=no \
                -o PreferredAuthentications=keyboard-interactive,password \
                -o NumberOfPasswordPrompts=1 -o ConnectTimeout=20 \
                "$user@127.0.0.1" "$@"
}

printf '%s\n' 'Erin-ssh-pw-7' >"$T/pw.good"
printf '%s\n' 'not-erins-password' >"$T/pw.bad"
chmod 0600 "$T"/pw.*

step "ssh with the right password runs the command as the user"
ssh_as erin "$T/pw.good" id >"$T/ssh.out" 2>"$T/ssh.err" || {
        cat "$T/ssh.err" "$T/sshd.log"
        fail "ssh erin@127.0.0.1 id failed"
}
cat "$T/ssh.out"
assert_contains "$T/ssh.out" "uid=$(id -u erin)(erin)"

step "pginad ran the logon and saw the session open and close (service sshd)"
assert_contains "$PGINA_LOG" "session"
grep -E 'erin' "$PGINA_LOG" | grep -v '<debug>' || true
grep -q "opened for erin (service sshd" "$PGINA_LOG" || fail "pginad logged no sshd session for erin"
for _ in $(seq 1 50); do
        pginactl sessions >"$T/sessions.out" 2>&1
        grep -q erin "$T/sessions.out" || break
        sleep 0.1
done
assert_not_contains "$T/sessions.out" erin

step "ssh with a wrong password is refused"
rc=0
ssh_as erin "$T/pw.bad" id >"$T/ssh-bad.out" 2>"$T/ssh-bad.err" || rc=$?
cat "$T/ssh-bad.err"
[ "$rc" -ne 0 ] || fail "ssh with a wrong password succeeded"
assert_not_contains "$T/ssh-bad.out" "uid="

step "ssh as a user that does not exist is refused the same way"
rc=0
ssh_as nosuchuser "$T/pw.good" id >"$T/ssh-unknown.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "ssh as an unknown user succeeded"

step "no password in sshd's or pginad's log"
assert_not_contains "$PGINA_LOG" 'Erin-ssh-pw-7'
assert_not_contains "$PGINA_LOG" 'not-erins-password'
assert_not_contains "$T/sshd.log" 'Erin-ssh-pw-7'
