#!/bin/bash
# On a booted Debian 12 (issue 13): a logon of a user whose logoff work is still running waits
# for it and says so on an ssh logon, with Debian's own sshd_config (KbdInteractiveAuthentication
# no: password authentication, so sshd shows PAM's messages to the login shell). The second ssh
# logon, made while the first one's logoff job is slow (a test plugin's 8 s notification),
# shows "Please wait: the logoff of erin on this machine is still being completed" and logs on
# after the job.
. "$(dirname "$0")/lib.sh"

machine_prepare
install -m 0644 "$BUILD/plugins/testplugin.so" "$M/usr/lib/pgina/plugins/testplugin.so"
machine_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = testplugin localmachine
[testplugin]
notify_sleep_ms = 8000
CONF
machine_user erin 'Erin-machine-pw-8'
machine_boot
grep -Eq '^KbdInteractiveAuthentication no' "$M/etc/ssh/sshd_config" ||
        fail "the machine's sshd_config is not Debian's (KbdInteractiveAuthentication no)"

step "the first logon ends: its logoff job (8 s) runs"
machine_ssh erin 'Erin-machine-pw-8' 'echo first' >"$T/ssh1.out" 2>"$T/ssh1.err" ||
        { cat "$T/ssh1.err"; fail "first ssh logon failed"; }
assert_contains "$T/ssh1.out" first
machine_wait_journal "logoff job of erin started" pginad

step "the second logon, at once: told to wait, then logged on after the job"
# a login shell (sshd shows the messages PAM gave during password authentication to a login
# shell only, not to a command), its commands on stdin
printf 'echo second\nexit\n' | MACHINE_SSH_OPTS=-tt machine_ssh erin 'Erin-machine-pw-8' >"$T/ssh2.out" 2>"$T/ssh2.err" ||
        { cat "$T/ssh2.err" "$T/ssh2.out"; fail "second ssh logon failed"; }
cat "$T/ssh2.out" "$T/ssh2.err"
assert_contains "$T/ssh2.out" second
cat "$T/ssh2.out" "$T/ssh2.err" >"$T/ssh2.all"
assert_contains "$T/ssh2.all" "Please wait: the logoff of erin on this machine is still being completed"
machine_exec journalctl -b --no-pager -o cat -u pginad _COMM=pginad >"$T/journal"
waited=$(grep -n "erin: logon waits for the pending logoff job" "$T/journal" | head -n 1 | cut -d: -f1)
finished=$(grep -n "logoff job of erin finished" "$T/journal" | head -n 1 | cut -d: -f1)
logon=$(grep -n "logon of erin (service sshd" "$T/journal" | sed -n 2p | cut -d: -f1)
[ -n "$waited" ] && [ -n "$finished" ] && [ -n "$logon" ] ||
        fail "missing journal lines (wait $waited, job end $finished, logon $logon)"
[ "$waited" -lt "$finished" ] && [ "$finished" -lt "$logon" ] ||
        fail "the second logon did not wait for the job (lines: wait $waited, job end $finished, logon $logon)"
exit 0
