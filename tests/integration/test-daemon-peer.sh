#!/bin/bash
# Non-root peers (SO_PEERCRED): only unlock or change-password for their own uid; everything else
# is PERMISSION, and repeated failures from one uid are answered more and more slowly.
. "$(dirname "$0")/lib.sh"

PGINA_SERVICE_EXTRA="failure_delay_max = 2" pgina_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
CONF
make_user alice 'alice-pw-1'
make_user bob 'bob-pw-1'
pgina_start

# PROTO_PERMISSION = 5, PROTO_OK = 0
step "root may make admin requests"
out=$(pgclient status)
assert_eq "result 0" "$(cut -d' ' -f1-2 <<<"$out")" "STATUS as root"

step "a non-root peer may not ask for a logon (scenario logon), even for itself"
out=$(pgclient_as alice login alice alice-pw-1 0)
assert_eq "result 5" "$(cut -d' ' -f1-2 <<<"$out")" "LOGIN logon as alice"

step "nor for another user's unlock"
sleep 1.2 # let the slow-down of the previous failure pass
out=$(pgclient_as alice --wait 15 login bob bob-pw-1 1)
assert_eq "result 5" "$(cut -d' ' -f1-2 <<<"$out")" "unlock of bob requested by alice"

step "nor admin requests"
out=$(pgclient_as nobody --wait 15 status)
assert_eq "result 5" "$(cut -d' ' -f1-2 <<<"$out")" "STATUS as nobody"
out=$(pgclient_as nobody --wait 15 sessions)
assert_eq "result 5" "$(cut -d' ' -f1-2 <<<"$out")" "SESSIONS as nobody"

step "pginactl as a non-root user exits 4 (permission denied)"
rc=0
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$BUILD/pginactl" -t 20 status \
        >"$T/ctl.out" 2>&1 || rc=$?
cat "$T/ctl.out"
assert_eq 4 "$rc" "pginactl status exit status as nobody"

step "nor change another user's password"
out=$(pgclient_as alice --wait 15 passwd bob bob-pw-1 new-pw-2)
assert_eq "result 5" "$(cut -d' ' -f1-2 <<<"$out")" "CHANGE_PASSWORD of bob by alice"

step "repeated failures from one uid are slowed down (failure_delay_max = 2)"
# nobody already failed 2 requests above, and pginactl a third
for i in 1 2; do
        t0=$(date +%s%N)
        out=$(pgclient_as nobody --wait 15 status)
        ms=$((($(date +%s%N) - t0) / 1000000))
        echo "failure $i: $out after $ms ms"
done
[ "$ms" -ge 1500 ] || fail "a repeated failure was answered after $ms ms, expected >= 2 s"
[ "$ms" -lt 6000 ] || fail "a repeated failure was answered after $ms ms, beyond failure_delay_max"

step "root is never slowed down"
t0=$(date +%s%N)
assert_ok pginactl status >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 1500 ] || fail "root's STATUS took $ms ms"
assert_contains "$PGINA_LOG" "may not make request"
