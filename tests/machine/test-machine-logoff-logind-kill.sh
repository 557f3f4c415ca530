#!/bin/bash
# On a booted Debian 12 with logind (issue 13): pginad follows logind. It learns the logind
# session of each pgina session (pginactl sessions shows it, the same id as loginctl), and when
# the privileged sshd process of alice's ssh session (`sshd: alice [priv]`, which opened the PAM
# session) is killed with SIGKILL, so pam_close_session never runs, logind's word that the
# session is closing ends alice's pgina session: her logoff runs once and the file she wrote
# reaches the store. Before, pginad waited for a PAM close that never came: no logoff, nothing
# saved.
. "$(dirname "$0")/lib.sh"

machine_roaming 'Alice-machine-pw-1' "logoff_process_wait = 2"

jobs_done() { machine_journal -u pginad | grep -c 'logoff job of alice finished'; }

step "an ssh session of alice writes a file and stays"
machine_ssh alice 'Alice-machine-pw-1' 'echo killed > ~/k.txt; sleep 60' >/dev/null 2>&1 &
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

step "sshd: alice [priv] is killed with SIGKILL: no PAM close, the logoff still saves the file"
priv=$(machine_exec pgrep -f '^sshd: alice \[priv\]')
[ -n "$priv" ] || fail "no 'sshd: alice [priv]' process: $(machine_exec ps -eo pid,user,args)"
[ "$(echo "$priv" | wc -l)" = 1 ] || fail "more than one 'sshd: alice [priv]' process: $priv"
machine_exec kill -KILL "$priv" || fail "kill -KILL $priv failed"
for _ in $(seq 600); do [ "$(jobs_done)" -ge 1 ] && break; sleep 0.1; done
machine_journal -u pginad >"$T/pginad.journal"
[ "$(jobs_done)" -ge 1 ] || fail "no logoff of alice after her sshd [priv] was killed (journal in $T/pginad.journal)"
machine_member k.txt >"$T/k" || fail "k.txt is not in alice's stored profile"
assert_eq killed "$(cat "$T/k")" "k.txt in the store"
assert_contains "$T/pginad.journal" "session 1 of alice closed by logind (session $id closing; last session: logoff)"
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
