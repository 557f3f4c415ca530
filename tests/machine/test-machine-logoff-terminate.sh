#!/bin/bash
# On a booted Debian 12 (issue 13): `loginctl terminate-session` and `loginctl terminate-user`
# of a roaming user's ssh session lead to the logoff work (the profile is saved).
. "$(dirname "$0")/lib.sh"

machine_roaming 'Alice-machine-pw-1'

jobs_done() { machine_journal -u pginad | grep -c 'logoff job of alice finished'; }
logind_session() { # the id of alice's logind session, waiting for it
        local i id
        for ((i = 0; i < 200; i++)); do
                id=$(machine_exec loginctl list-sessions --no-legend --no-pager | awk '$3 == "alice" { print $1; exit }')
                [ -n "$id" ] && { echo "$id"; return 0; }
                sleep 0.1
        done
        fail "alice has no logind session"
}

for how in terminate-session terminate-user; do
        step "loginctl $how: the logoff saves the profile"
        before=$(jobs_done)
        machine_exec rm -f /home/alice/how.txt
        machine_ssh alice 'Alice-machine-pw-1' "echo $how > ~/how.txt; sleep 60" >/dev/null 2>&1 &
        s=$!
        id=$(logind_session)
        for _ in $(seq 100); do [ "$(machine_exec cat /home/alice/how.txt 2>/dev/null)" = "$how" ] && break; sleep 0.1; done
        if [ "$how" = terminate-session ]; then
                machine_exec loginctl terminate-session "$id"
        else
                machine_exec loginctl terminate-user alice
        fi
        wait "$s" 2>/dev/null
        for _ in $(seq 300); do [ "$(jobs_done)" -gt "$before" ] && break; sleep 0.1; done
        [ "$(jobs_done)" -gt "$before" ] || fail "no logoff after loginctl $how"
        machine_member how.txt >"$T/h"
        assert_eq "$how" "$(cat "$T/h")" "how.txt in the store"
        sleep 1
done
exit 0
