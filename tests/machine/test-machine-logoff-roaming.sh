#!/bin/bash
# On a booted Debian 12 with logind and user@.service (issue 13): the logoff of a roaming (pgSMB)
# user happens when the user's last login session ends: user@.service's own PAM session
# (systemd-user, from common-session) is the user's manager, not a logon, and its close by the
# manager, as the user, ~10 s later is accepted and starts no second logoff. Before, that close
# was refused ("uid 1000 may not make request 4"), the user never logged off and nothing was
# ever saved.
. "$(dirname "$0")/lib.sh"

machine_roaming 'Alice-machine-pw-1' "logoff_process_wait = 2"

step "an ssh session writes a file and ends: the logoff saves the profile"
machine_ssh alice 'Alice-machine-pw-1' 'echo v1 > ~/f.txt' || fail "ssh logon failed"
machine_wait_journal "alice: saved" pginad 600
machine_member f.txt >"$T/f.txt"
assert_eq v1 "$(cat "$T/f.txt")" "f.txt in the store"
machine_wait_journal "session 1 of alice closed (last session: logoff)" pginad

step "user@.service's PAM session (systemd-user) starts no second logoff and is never refused"
# its manager either closes it (as the user) or is ended first by the logoff (TerminateUser),
# then the next logon's manager session replaces it
sleep 12
machine_journal -u pginad >"$T/pginad.journal"
assert_not_contains "$T/pginad.journal" "may not make request"
assert_eq 1 "$(grep -c 'logoff job of alice finished' "$T/pginad.journal")" "logoff jobs of alice"

step "a process left writing in the home: ended through logind before the home is saved"
machine_ssh alice 'Alice-machine-pw-1' 'nohup sh -c "while :; do date >> ~/w.log; sleep 0.1; done" >/dev/null 2>&1 </dev/null &' ||
        fail "ssh logon failed"
machine_wait_journal "alice: " pginad
machine_wait_journal "after the last session: ended through logind (TerminateUser)" pginad 600
for _ in $(seq 300); do
        [ "$(machine_journal -u pginad | grep -c 'logoff job of alice finished')" = 2 ] && break
        sleep 0.1
done
[ "$(machine_journal -u pginad | grep -c 'logoff job of alice finished')" = 2 ] || fail "no second logoff of alice"
machine_journal -u pginad >"$T/pginad.journal"
assert_not_contains "$T/pginad.journal" "may not make request"
[ "$(machine_exec pginactl sessions | grep -c 'alice.*systemd-user')" -le 1 ] ||
        fail "stale user manager sessions of alice: $(machine_exec pginactl sessions)"
machine_exec pgrep -u alice >"$T/left" && fail "processes of alice left after the logoff: $(cat "$T/left")"
machine_member w.log >"$T/w"
assert_eq "$(machine_exec wc -l </dev/null /home/alice/w.log | cut -d' ' -f1)" "$(wc -l <"$T/w")" "w.log lines saved (quiet home)"
exit 0
