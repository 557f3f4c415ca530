#!/bin/bash
# On a booted Debian 12 (issue 13): the logoff of a roaming user does not wait for the user's own
# systemd manager. After the last ssh session, only systemd --user and its (sd-pam) are left (in
# user@UID.service/init.scope; logind stops them after UserStopDelaySec): they are not lingering
# processes, so the logoff job starts archiving at once, not after logoff_process_wait (30 s
# here) or logind's 10 s stop delay. Before, every logoff on a systemd machine waited for them.
. "$(dirname "$0")/lib.sh"

machine_roaming 'Alice-machine-pw-1' "logoff_process_wait = 30"

step "an ssh session ends with no process of alice left but her manager"
machine_ssh alice 'Alice-machine-pw-1' 'echo m > ~/m.txt' || fail "ssh logon failed"
machine_wait_journal "logoff job of alice finished" pginad 600
machine_exec journalctl -b --no-pager -o cat -u pginad _COMM=pginad >"$T/journal"
line=$(grep -o 'logoff job of alice finished in [0-9.]* s: ok' "$T/journal") ||
        fail "no successful logoff job of alice: $(grep 'logoff job of alice' "$T/journal")"
secs=${line#*finished in }
secs=${secs%% s*}
echo "logoff job: $secs s"
assert_not_contains "$T/journal" "still running"
[ "${secs%.*}" -lt 8 ] || fail "the logoff job took $secs s: it waited for alice's systemd manager"
machine_member m.txt >"$T/m"
assert_eq m "$(cat "$T/m")" "m.txt in the store"

step "a real lingering process is still waited for and ended"
machine_ssh alice 'Alice-machine-pw-1' 'nohup sleep 600 >/dev/null 2>&1 </dev/null &' || fail "ssh logon failed"
machine_wait_journal "after the last session: ended through logind (TerminateUser)" pginad 900
exit 0
