#!/bin/bash
# Requests that find every request worker busy wait in pginad's queue instead of being refused:
# queued ones start in arrival order as workers finish and succeed, a queued client hears
# keepalives, one that leaves costs no worker, only past max_queued is "busy" answered, SIGTERM
# answers the queued "shutting down"; and 200 concurrent logons of different users through
# pam_pgina all succeed with the default limits.
. "$(dirname "$0")/lib.sh"
need pamtester python3
[ -e "$BUILD/plugins/testplugin.so" ] || skip "testplugin not built"
[ -e "$BUILD/plugins/localmachine.so" ] || skip "localmachine plugin not built"

# testplugin's wait_file holds every call until the file exists: workers stay busy exactly as
# long as a case needs.
GO=$T/go
CALLS=$T/calls.log

# requests_now: "WORKERS QUEUED" from pginactl status.
requests_now() {
        pginactl status 2>&1 | sed -n 's/^ *Requests: \([0-9]*\) in workers, \([0-9]*\) waiting for a worker$/\1 \2/p'
}

# wait_requests WORKERS QUEUED: until pginactl status shows them (15 s, then fail).
wait_requests() {
        local i now
        for ((i = 0; i < 150; i++)); do
                now=$(requests_now)
                [ "$now" = "$1 $2" ] && return 0
                sleep 0.1
        done
        fail "pginactl status: expected '$1 in workers, $2 waiting', got '$now'"
}

# login_bg NAME USER: a LOGIN (scenario logon) as root in the background, the client as strict
# about silence as pam_pgina's timeout= (12 s > PROTO_KEEPALIVE_MS); answer in $T/NAME.out,
# INFO frames in $T/NAME.info, pid in PIDS[NAME].
declare -A PIDS
login_bg() {
        # exec: the pid is the client's own, so killing it closes the connection
        (exec "$PYTHON" "$SRC/tests/integration/pgclient.py" --wait 60 --silence 12 \
                login "$2" pw 0 >"$T/$1.out" 2>"$T/$1.info") &
        PIDS[$1]=$!
}

# answered NAME EXPECTED: the background client NAME ended and printed EXPECTED first.
answered() {
        wait "${PIDS[$1]}" || fail "client $1 exited $?"
        assert_eq "$2" "$(cut -d' ' -f1-3 <"$T/$1.out")" "answer to $1 ($(cat "$T/$1.out"))"
}

PGINA_SERVICE_EXTRA=$'max_workers = 2\nmax_queued = 3' pgina_conf <<EOF
[order]
authentication = testplugin
[testplugin]
wait_file = $GO
log_file = $CALLS
EOF
pgina_start

step "two logons fill max_workers = 2"
login_bg r1 run1
login_bg r2 run2
wait_requests 2 0

step "a client that leaves while queued is dropped: no worker is ever started for it"
login_bg leaver leaver
wait_requests 2 1
kill "${PIDS[leaver]}"
wait "${PIDS[leaver]}" 2>/dev/null
wait_requests 2 0
pgina_wait_log "uid 0 left while its request for 'leaver' was queued"

step "three more logons wait in the queue (max_queued = 3)"
for q in q1 q2 q3; do
        login_bg "$q" "$q"
        wait_requests 2 "${q#q}"
done

step "past the queue's bound the answer is busy, at once"
out=$(pgclient --wait 5 login over pw 0)
assert_eq "result 4 0 pginad is busy; try again" "$out" "the request over max_queued"
pgina_wait_log "refusing the request of uid 0 for 'over'"

step "a queued client hears keepalives (a client timeout of 12 s does not fire)"
for ((i = 0; i < 150; i++)); do
        grep -qx 'info 3' "$T/q1.info" && break
        sleep 0.1
done
assert_contains "$T/q1.info" "info 3"
wait_requests 2 3 # still queued: the keepalive came while it waited

step "released: the running and every queued logon succeed, queued ones in arrival order"
touch "$GO"
for c in r1 r2 q1 q2 q3; do
        answered "$c" "result 0 1"
done
wait_requests 0 0
for u in run1 run2 q1 q2 q3; do
        assert_eq 1 "$(grep -c "stage=authentication .* user=$u " "$CALLS")" "authentication calls for $u"
done
assert_not_contains "$CALLS" "user=leaver"
assert_not_contains "$CALLS" "user=over"
order=$(sed -n "s/.*request of uid 0 for '\(q[0-9]\)' starts after .*/\1/p" "$PGINA_LOG" | tr '\n' ' ')
assert_eq "q1 q2 q3 " "$order" "order in which queued requests started"

step "SIGTERM: queued requests are answered shutting down; running ones finish"
rm -f "$GO"
login_bg s1 stop1
login_bg s2 stop2
wait_requests 2 0
login_bg s3 stop3
wait_requests 2 1
kill -TERM "$PGINA_PID"
answered s3 "result 9 0" # PROTO_SHUTTING_DOWN
touch "$GO"
answered s1 "result 0 1"
answered s2 "result 0 1"
assert_ok pgina_stop
assert_not_contains "$CALLS" "user=stop3"

step "200 concurrent logons of different users, default limits (64 workers): all succeed"
N=200
for ((i = 1; i <= N; i++)); do
        useradd -M -N "u$i" || fail "useradd u$i"
done
for ((i = 1; i <= N; i++)); do echo "u$i:pw-$i"; done | chpasswd -c YESCRYPT -s 4 ||
        fail "chpasswd failed"
rm -f "$GO"
pgina_conf <<EOF
[order]
authentication = localmachine
authorization = testplugin
[testplugin]
wait_file = $GO
EOF
pgina_start
pam_service pgina <<'PAM'
auth     required pam_pgina.so
account  required pam_pgina.so
PAM
pids=()
for ((i = 1; i <= N; i++)); do
        # pamtester reads the one password prompt's answer from stdin
        printf 'pw-%s\n' "$i" | pam_host_exec pamtester -v pgina "u$i" authenticate acct_mgmt \
                >"$T/pam-u$i.out" 2>&1 &
        pids+=($!)
done
wait_requests 64 $((N - 64)) # every worker busy, the rest queued: none refused
touch "$GO"
failed=0
for ((i = 1; i <= N; i++)); do
        if ! wait "${pids[i - 1]}" || ! grep -q "account management done" "$T/pam-u$i.out"; then
                failed=$((failed + 1))
                echo "u$i: $(tail -n 2 "$T/pam-u$i.out")"
        fi
done
[ "$failed" -eq 0 ] || fail "$failed of $N concurrent logons failed"
echo "$N of $N concurrent logons succeeded"
assert_not_contains "$PGINA_LOG" "pginad is busy"
wait_requests 0 0
exit 0
