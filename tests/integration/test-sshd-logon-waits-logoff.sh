#!/bin/bash
# A logon of a user whose logoff work is still running here waits for it (issue 13), and says
# so on a real ssh logon: the second ssh logon, made while the first one's logoff job is slow,
# shows "Please wait: the logoff of erin on this machine is still being completed...", then
# logs on once the job has finished (pginad's log: the wait, the job's end, then the logon).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sshd.sh"
need sshd ssh ssh-keygen setsid

pgina_conf <<'CONF'
[order]
authentication = localmachine
gateway = localmachine
notification = testplugin localmachine
[testplugin]
notify_sleep_ms = 6000
CONF
pam_service sshd <<'PAM'
auth     required pam_pgina.so
account  required pam_pgina.so
session  required pam_pgina.so
PAM
make_user erin 'Erin-ssh-pw-8' -s /bin/sh
pgina_start
sshd_start
cat >"$T/askpass" <<'SH'
#!/bin/sh
echo 'Erin-ssh-pw-8'
SH
chmod 0755 "$T/askpass"
ssh_erin() { # OUT ERR CMD: one keyboard-interactive logon, the password from the askpass program
        SSH_ASKPASS=$T/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none timeout 60 setsid -w ssh -F /dev/null \
                -p "$SSHD_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                -o PubkeyAuthentication=no -o GSSAPIAuthentication=no \
                -o PreferredAuthentications=keyboard-interactive -o ConnectTimeout=20 \
                erin@127.0.0.1 "$3" </dev/null >"$1" 2>"$2"
}

step "the first logon ends: its logoff job (6 s) runs"
ssh_erin "$T/ssh1.out" "$T/ssh1.err" 'echo first' || { cat "$T/ssh1.err"; fail "first ssh logon failed"; }
assert_contains "$T/ssh1.out" first
pgina_wait_log "logoff job of erin"

step "the second logon, at once: told to wait, then logged on after the job"
ssh_erin "$T/ssh2.out" "$T/ssh2.err" 'echo second' || { cat "$T/ssh2.err"; fail "second ssh logon failed"; }
assert_contains "$T/ssh2.out" second
assert_contains "$T/ssh2.err" "Please wait: the logoff of erin on this machine is still being completed"
waited=$(grep -n "erin: logon waits for the pending logoff job" "$PGINA_LOG" | head -n 1 | cut -d: -f1)
finished=$(grep -n "logoff job of erin finished" "$PGINA_LOG" | head -n 1 | cut -d: -f1)
logon=$(grep -n "logon of erin (service sshd" "$PGINA_LOG" | sed -n 2p | cut -d: -f1)
[ -n "$waited" ] && [ -n "$finished" ] && [ -n "$logon" ] || fail "missing log lines (wait $waited, job end $finished, logon $logon)"
[ "$waited" -lt "$finished" ] && [ "$finished" -lt "$logon" ] ||
        fail "the second logon did not wait for the job (lines: wait $waited, job end $finished, logon $logon)"
exit 0
