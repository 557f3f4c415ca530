#!/bin/bash
# On a booted Debian 12 (issue 13): two overlapping ssh sessions of a roaming user log off once,
# after the last one; and pginad restarted by systemd during a session (systemctl restart, and
# kill -9 with Restart=on-failure) still runs the logoff when the user leaves.
. "$(dirname "$0")/lib.sh"

machine_roaming 'Alice-machine-pw-1' "store_format = 1"

jobs_done() { machine_journal -u pginad | grep -c 'logoff job of alice finished'; }
wait_sessions() { # N: until pginactl sessions lists N sessions of alice's sshd
        local i
        for ((i = 0; i < 200; i++)); do
                [ "$(machine_exec pginactl sessions 2>/dev/null | grep -c 'alice.*sshd')" = "$1" ] && return 0
                sleep 0.1
        done
        fail "alice does not have $1 sshd session(s): $(machine_exec pginactl sessions 2>&1)"
}

step "two overlapping ssh sessions: one logoff, after the last"
machine_ssh alice 'Alice-machine-pw-1' 'sleep 6; echo one > ~/one.txt' >/dev/null 2>&1 &
first=$!
wait_sessions 1
machine_ssh alice 'Alice-machine-pw-1' 'echo two > ~/two.txt' || fail "the second ssh logon failed"
sleep 1
assert_eq 0 "$(jobs_done)" "logoff jobs while the first session lasts"
wait "$first" || fail "the first ssh session failed"
machine_wait_journal "logoff job of alice finished" pginad 600
sleep 12 # user@.service closes its session ~10 s later: no second logoff
assert_eq 1 "$(jobs_done)" "logoff jobs after both sessions"
machine_exec tar --warning=no-unknown-keyword --zstd -tf /srv/pgina/profiles/alice/alice.tar.zst >"$T/list"
grep -q 'one.txt' "$T/list" && grep -q 'two.txt' "$T/list" || fail "the archive lacks a session's file: $(cat "$T/list")"

for how in "systemctl restart pginad" "kill -9"; do
        step "pginad restarted during a session ($how): the logoff still happens"
        before=$(jobs_done)
        machine_ssh alice 'Alice-machine-pw-1' "sleep 8; echo '$how' > ~/restart.txt" >/dev/null 2>&1 &
        s=$!
        wait_sessions 1
        if [ "$how" = "kill -9" ]; then
                machine_exec sh -c 'kill -9 "$(systemctl show -p MainPID --value pginad)"'
        else
                machine_exec systemctl restart pginad
        fi
        for _ in $(seq 100); do
                machine_exec systemctl is-active --quiet pginad && machine_exec pginactl status >/dev/null 2>&1 && break
                sleep 0.1
        done
        machine_exec pginactl sessions >"$T/sessions.after" 2>&1
        grep -q 'alice.*sshd' "$T/sessions.after" || fail "the restarted pginad forgot alice's session: $(cat "$T/sessions.after")"
        wait "$s" || fail "the ssh session failed"
        for _ in $(seq 300); do [ "$(jobs_done)" -gt "$before" ] && break; sleep 0.1; done
        [ "$(jobs_done)" -gt "$before" ] || fail "no logoff after the restart ($how)"
        machine_member restart.txt >"$T/r"
        assert_eq "$how" "$(cat "$T/r")" "restart.txt in the store"
done
exit 0
