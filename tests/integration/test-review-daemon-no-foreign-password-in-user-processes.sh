#!/bin/bash
# A worker holds the secrets of its own request only, and a process running as a user none of
# another user's: with bob logged on (his password in pginad's session cache), alice's login
# script and the child that archives her home at logoff run as alice, and root searches the
# memory of every process running as alice, and of every worker, for bob's password: never
# found. The same search finds it in the master, where it must be.
. "$(dirname "$0")/lib.sh"
need pamtester ps
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

BOBPW='Bob-pw-Q7v2Lx9mZk4'
ALICEPW='Alice-pw-H3n8Rt5wPc'
STORE=$T/store
mkdir -p "$STORE" /etc/pgina/scripts
# alice's login script holds until the test has looked (killed by it); bob's ends at once
cat >/etc/pgina/scripts/hold.sh <<'SH'
#!/bin/sh
[ "$USER" = alice ] || exit 0
sleep 60 &
echo $! >"$HOME/sleep.pid"
wait
SH
chmod 0755 /etc/pgina/scripts/hold.sh
make_user alice "$ALICEPW"
make_user bob "$BOBPW"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgina_conf <<CONF
[order]
authentication = localmachine
gateway = pgsmb localmachine
notification = pgsmb localmachine
[pgsmb]
share = file://$STORE
retries = 1
retry_delay = 0
login_script = /etc/pgina/scripts/hold.sh
login_script_timeout = 60
CONF
pgina_start

# scan WHAT PID...: search the PIDs for bob's password; the result in $T/scan.out, status of
# memscan.py (0 none, 1 found, 2 a process could not be read)
scan() {
        local what=$1 rc=0
        shift
        echo "---- scan $what: $*" >>"$T/scans.log"
        MEMSCAN_NEEDLES=$BOBPW "$PYTHON" "$SRC/tests/integration/memscan.py" "$@" >"$T/scan.out" 2>&1 || rc=$?
        cat "$T/scan.out" >>"$T/scans.log"
        cat "$T/scan.out"
        return "$rc"
}
# processes running as alice (real or effective uid)
alice_pids() {
        local uid
        uid=$(id -u alice)
        ps -e -o pid=,ruid=,euid= | awk -v u="$uid" '$2 == u || $3 == u { print $1 }'
}
# pginad's workers, but bob's (the log names each worker's user)
foreign_workers() {
        local pid
        for pid in $(ps --ppid "$PGINA_PID" -o pid=); do
                grep -q "worker $pid started for bob\$" "$PGINA_LOG" || echo "$pid"
        done
}

step "bob logs on and stays: his password is in pginad's memory (the scan finds it there)"
pam_ok pgtest bob "$BOBPW" authenticate acct_mgmt open_session
rc=0
scan master "$PGINA_PID" || rc=$?
assert_eq 1 "$rc" "bob's password found in the master"

step "alice logs on: her login script runs as alice"
pam_ok pgtest alice "$ALICEPW" authenticate acct_mgmt open_session
for ((i = 0; i < 100; i++)); do
        [ -s /home/alice/sleep.pid ] && break
        sleep 0.1
done
[ -s /home/alice/sleep.pid ] || fail "alice's login script did not start"
mapfile -t pids < <(alice_pids)
[ "${#pids[@]}" -ge 2 ] || fail "expected the login script's processes as alice, found: ${pids[*]}"

step "no process running as alice holds bob's password"
scan "alice's processes" "${pids[@]}" || fail "bob's password in a process running as alice"

step "no worker of alice's holds bob's password"
mapfile -t workers < <(foreign_workers)
[ "${#workers[@]}" -ge 1 ] || fail "expected alice's notification worker (running her script)"
scan "workers" "${workers[@]}" || fail "bob's password in a worker of another user"
kill "$(cat /home/alice/sleep.pid)"
pgina_wait_log "alice: login script /etc/pgina/scripts/hold.sh exited with status 0"

step "alice logs off: the child that archives her home runs as alice; nor does it hold it"
as_user alice sh -c 'head -c 300M /dev/urandom >"$HOME/big.bin"' || fail "cannot fill alice's home"
pgina_close_session_nowait alice
caught=0
for ((i = 0; i < 3000; i++)); do
        grep -q "logoff job of alice finished" "$PGINA_LOG" && break
        mapfile -t pids < <(alice_pids)
        [ "${#pids[@]}" -gt 0 ] || continue
        # hold them still while they are read
        kill -STOP "${pids[@]}" 2>/dev/null
        mapfile -t workers < <(foreign_workers)
        rc=0
        scan "alice's processes at logoff" "${pids[@]}" || rc=$?
        scan "workers at logoff" "${workers[@]}" || rc=$((rc | $?))
        kill -CONT "${pids[@]}" 2>/dev/null
        [ $((rc & 1)) -eq 0 ] || fail "bob's password in a process of alice's logoff"
        grep -q "^scanned .* $(id -u alice) " "$T/scans.log" && caught=1 && break
done
[ "$caught" = 1 ] || fail "no process running as alice was seen during her logoff"
pgina_wait_jobs
assert_contains "$PGINA_LOG" "logoff job of alice finished"
[ -n "$(find "$STORE" -type f -size +1M)" ] || fail "alice's profile was not uploaded"
