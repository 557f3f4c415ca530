#!/bin/bash
# On a booted Debian 12 (systemd, logind, sshd), pgina installed as an admin installs it
# (meson install, pam-auth-update --enable pgina, systemctl enable pginad): pginad starts from
# its unit at boot (Type=notify), an ssh logon of a local account goes through pam_pgina in
# common-auth and common-session (pginactl sessions sees it while it lasts, logind too), a wrong
# password is refused, and the journal of pginad names the user and the outcome of each logon
# (pginad decided it: no worker lost its result).
. "$(dirname "$0")/lib.sh"

machine_prepare
machine_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine
CONF
machine_user alice 'Alice-machine-pw-1'
grep -q pam_pgina.so "$M/etc/pam.d/common-auth" || fail "pam-auth-update did not put pam_pgina into common-auth"
grep -q pam_pgina.so "$M/etc/pam.d/common-session" || fail "pam-auth-update did not put pam_pgina into common-session"

step "boot: pginad is started by its unit and answers; its ordering makes no cycle"
machine_boot
machine_journal >"$T/boot.journal"
assert_not_contains "$T/boot.journal" "ordering cycle"
machine_exec systemctl show -p After pginad >"$T/after"
for unit in remote-fs.target systemd-logind.service dbus.service; do
        grep -qw "$unit" "$T/after" || fail "pginad is not ordered after $unit (stopped before it at shutdown): $(cat "$T/after")"
done
machine_exec pginactl status >"$T/status.out" 2>&1 || { cat "$T/status.out" >&2; fail "pginactl status failed"; }
assert_contains "$T/status.out" "localmachine"

step "an ssh logon goes through pam_pgina; the session is seen by pginad and logind"
machine_ssh alice 'Alice-machine-pw-1' 'id -un; sleep 15' >"$T/ssh.out" 2>&1 &
ssh_pid=$!
for _ in $(seq 100); do
        machine_exec pginactl sessions >"$T/sessions.out" 2>&1
        grep -q 'alice' "$T/sessions.out" && break
        sleep 0.1
done
grep -q 'alice.*sshd' "$T/sessions.out" || fail "pginactl sessions does not list alice's sshd session: $(cat "$T/sessions.out")"
machine_exec loginctl list-sessions --no-legend --no-pager >"$T/logind.out"
grep -q ' alice ' "$T/logind.out" || fail "logind has no session of alice: $(cat "$T/logind.out")"
wait "$ssh_pid" || fail "the ssh logon of alice failed: $(cat "$T/ssh.out")"
assert_eq alice "$(head -n 1 "$T/ssh.out")" "id -un over ssh"
machine_wait_journal "logon of alice (service sshd, from 127.0.0.1): ok" pginad
# pam_pgina decided, not pam_unix after a pgina failure (the workers' results once went to the
# journal under systemd: every logon "failed" and pam_unix let the user in)
machine_journal -u pginad >"$T/pginad.journal"
assert_not_contains "$T/pginad.journal" "exited (status"
assert_not_contains "$T/pginad.journal" "malformed frame"

step "a wrong password is refused"
if machine_ssh alice 'wrong-password' true >"$T/wrong.out" 2>&1; then
        fail "ssh with a wrong password succeeded"
fi
machine_wait_journal "logon of alice (service sshd, from 127.0.0.1): authentication failed" pginad
step "the machine powers off cleanly, pginad stopping with it"
machine_stop
exit 0
