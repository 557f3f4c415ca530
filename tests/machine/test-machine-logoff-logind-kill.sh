#!/bin/bash
# On a booted Debian 12 with logind (issue 13): pginad follows logind. It learns the logind
# session of each pgina session (pginactl sessions shows it, the same id as loginctl). The
# privileged sshd process of alice's ssh session (`sshd: alice [priv]`, which opened the PAM
# session and would close it) is killed with SIGKILL: while her connection lasts logind still has
# her session open and so does pginad; when her command ends, sshd's session ends with no
# pam_close_session, logind says the session is closing, and pginad ends alice's pgina session:
# her logoff runs once and the file she wrote reaches the store. Before, pginad waited for a PAM
# close that never came: no logoff, nothing saved.
. "$(dirname "$0")/lib.sh"

machine_roaming 'Alice-machine-pw-1' "logoff_process_wait = 2"

jobs_done() { machine_journal -u pginad | grep -c 'logoff job of alice finished'; }

step "an ssh session of alice writes a file and stays"
machine_ssh alice 'Alice-machine-pw-1' 'echo killed > ~/k.txt; while [ ! -e /run/pgina-test-end ]; do sleep 0.1; done' \
        >/dev/null 2>&1 &
ssh_job=$!
for _ in $(seq 300); do [ "$(machine_exec cat /home/alice/k.txt 2>/dev/null)" = killed ] && break; sleep 0.1; done
[ "$(machine_exec cat /home/alice/k.txt 2>/dev/null)" = killed ] || fail "the ssh session of alice wrote no k.txt"
id=$(machine_exec loginctl list-sessions --no-legend --no-pager | awk '$3 == "alice" { print $1; exit }')
[ -n "$id" ] || fail "logind has no session of alice"

step "pginad maps alice's pgina session to logind session $id"
for _ in $(seq 100); do
        machine_exec pginactl sessions >"$T/sessions.out" 2>&1
        awk -v id="$id" '$3 == "alice" && $5 == "sshd" && $NF == id { found = 1 } END { exit !found }' \
                "$T/sessions.out" && break
        sleep 0.1
done
awk -v id="$id" '$3 == "alice" && $5 == "sshd" && $NF == id { found = 1 } END { exit !found }' "$T/sessions.out" ||
        fail "pginactl sessions does not show logind session $id for alice's sshd session: $(cat "$T/sessions.out")"

step "sshd: alice [priv] is killed with SIGKILL: her session lasts while her connection does"
priv=$(machine_exec pgrep -f '^sshd: alice \[priv\]')
[ -n "$priv" ] || fail "no 'sshd: alice [priv]' process: $(machine_exec ps -eo pid,user,args)"
[ "$(echo "$priv" | wc -l)" = 1 ] || fail "more than one 'sshd: alice [priv]' process: $priv"
machine_exec kill -KILL "$priv" || fail "kill -KILL $priv failed"
sleep 3
[ "$(machine_exec loginctl show-session "$id" -p State --value)" = active ] ||
        fail "logind's session $id of alice is no longer active: $(machine_exec loginctl show-session "$id")"
machine_exec pginactl sessions | awk '$3 == "alice" && $5 == "sshd"' | grep -q . ||
        fail "pginad ended alice's session while her connection lasts: $(machine_exec pginactl sessions)"
assert_eq 0 "$(jobs_done)" "logoff jobs of alice while her connection lasts"

step "her command ends, with no PAM close: logind says closing, the logoff saves the file"
machine_exec touch /run/pgina-test-end
wait "$ssh_job" 2>/dev/null
for _ in $(seq 600); do [ "$(jobs_done)" -ge 1 ] && break; sleep 0.1; done
machine_journal -u pginad >"$T/pginad.journal"
[ "$(jobs_done)" -ge 1 ] || fail "no logoff of alice after her session ended without a PAM close (journal in $T/pginad.journal)"
machine_member k.txt >"$T/k" || fail "k.txt is not in alice's stored profile"
assert_eq killed "$(cat "$T/k")" "k.txt in the store"
# logind says "closing" while the session's scope still has processes, or the session is already
# gone when pginad looks (her last process left at once): either is logind's word, not a PAM close
grep -qE "session [0-9]+ of alice closed by logind \(session $id (closing|ended); last session: logoff\)" \
        "$T/pginad.journal" ||
        fail "pginad's journal has no 'session N of alice closed by logind (session $id closing|ended; last session: logoff)'; it says: $(grep 'of alice closed' "$T/pginad.journal")"
# sshd never closed the PAM session: the logoff came from logind alone
machine_journal >"$T/journal"
assert_not_contains "$T/journal" "pam_unix(sshd:session): session closed for user alice"

step "one logoff job; nothing refused; the next logon of alice works"
sleep 3
machine_journal -u pginad >"$T/pginad.journal"
assert_eq 1 "$(grep -c 'logoff job of alice started' "$T/pginad.journal")" "logoff jobs of alice started"
assert_eq 1 "$(grep -c 'logoff job of alice finished' "$T/pginad.journal")" "logoff jobs of alice finished"
assert_not_contains "$T/pginad.journal" "may not make request"
machine_ssh alice 'Alice-machine-pw-1' 'cat ~/k.txt' >"$T/again" || fail "the next ssh logon of alice failed"
assert_eq killed "$(cat "$T/again")" "k.txt at the next logon"
exit 0
