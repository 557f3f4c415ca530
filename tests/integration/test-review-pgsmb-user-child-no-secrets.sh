#!/bin/bash
# A process pgSMB runs as the user holds no password (issue 12, part 3): not the store's service
# account (the worker's libsmbclient keeps copies, freed ones too), not the user's own (her
# logon request passed through the worker), not another logged-on user's. The processes that
# extract alice's archive at logon, run her login script and archive her home at logoff parse
# her own, possibly hostile, data: root searches the memory of every process running as alice
# while each of them works, with an SMB store behind a service account and bob logged on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
need pamtester smbd ps
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
smbd_start

ALICEPW='Alice-pw-V6q3Nc8Ts'
BOBPW='Bob-pw-K2w9Rz4Jm'
CREDS=/etc/pgina/smb-service.cred
mkdir -p /etc/pgina/scripts
printf 'username = %s\npassword = %s\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
# alice's login script holds while the flag exists (the test looks, then removes it)
FLAG=/etc/pgina/scripts/hold.flag
cat >/etc/pgina/scripts/hold.sh <<SH
#!/bin/sh
[ "\$USER" = alice ] || exit 0
while [ -e $FLAG ]; do sleep 0.1; done
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
share = $(smbd_url)
credentials = $CREDS
retries = 1
timeout = 30
compression_level = 1
login_script = /etc/pgina/scripts/hold.sh
login_script_timeout = 60
CONF
pgina_start
uid=$(id -u alice)

# scan WHAT PID...: memscan.py over the PIDs for the three passwords (0 none found, 1 found,
# 2 a process could not be read); every scan is kept in $T/scans.log
scan() {
        local what=$1 rc=0
        shift
        echo "---- scan $what: $*" >>"$T/scans.log"
        MEMSCAN_NEEDLES=$(printf '%s\n%s\n%s' "$SMBD_PASSWORD" "$ALICEPW" "$BOBPW") \
                "$PYTHON" "$SRC/tests/integration/memscan.py" "$@" >"$T/scan.out" 2>&1 || rc=$?
        cat "$T/scan.out" >>"$T/scans.log"
        return "$rc"
}
alice_pids() { ps -e -o pid=,ruid=,euid= | awk -v u="$uid" '$2 == u || $3 == u { print $1 }'; }
# watch UNTIL_LOG WHAT: until the log says UNTIL_LOG, stop alice's processes, scan them, go on;
# fails at a password found, and unless a scan saw pgsmb-userwork working
watch_scan() {
        local until=$1 what=$2 rc
        local -a pids
        for ((i = 0; i < 3000; i++)); do
                grep -q "$until" "$PGINA_LOG" && break
                mapfile -t pids < <(alice_pids)
                [ "${#pids[@]}" -gt 0 ] || continue
                kill -STOP "${pids[@]}" 2>/dev/null
                rc=0
                scan "$what" "${pids[@]}" || rc=$?
                kill -CONT "${pids[@]}" 2>/dev/null
                [ $((rc & 1)) -eq 0 ] || { cat "$T/scan.out" >&2; fail "$what: a password in a process running as alice (above: needle 0 the service account's, 1 alice's, 2 bob's)"; }
                grep -q "^scanned .* $uid .* pgsmb-userwork" "$T/scan.out" && return 0
        done
        fail "$what: no pgsmb-userwork of alice's was seen at work"
}

step "bob logs on and stays; the scan finds his password in pginad's master (where it must be)"
pam_ok pgtest bob "$BOBPW" authenticate acct_mgmt open_session
rc=0
MEMSCAN_NEEDLES=$BOBPW "$PYTHON" "$SRC/tests/integration/memscan.py" "$PGINA_PID" >"$T/master.scan" 2>&1 || rc=$?
assert_eq 1 "$rc" "bob's password found in the master: $(cat "$T/master.scan")"

step "alice logs on: her login script (and the program running it) hold no password"
touch "$FLAG"
pam_ok pgtest alice "$ALICEPW" authenticate acct_mgmt open_session
pgina_wait_log "alice: running login script"
sleep 0.5
mapfile -t pids < <(alice_pids)
[ "${#pids[@]}" -ge 2 ] || fail "expected the login script's processes as alice, found: ${pids[*]}"
kill -STOP "${pids[@]}"
rc=0
scan "login script" "${pids[@]}" || rc=$?
kill -CONT "${pids[@]}"
# (status 2: a short-lived `sleep` of the script's was gone before it was read)
[ $((rc & 1)) -eq 0 ] || { cat "$T/scan.out" >&2; fail "login script: a password in a process running as alice (above: needle 0 the service account's, 1 alice's, 2 bob's)"; }
grep -q "^scanned .* $uid .* pgsmb-userwork" "$T/scan.out" || fail "the program running the script was not among alice's processes: $(cat "$T/scan.out")"
rm -f "$FLAG"
pgina_wait_log "alice: login script /etc/pgina/scripts/hold.sh exited with status 0"

step "alice logs off: the archiving program holds no password"
as_user alice sh -c 'head -c 300M /dev/urandom >"$HOME/big.bin"' || fail "cannot fill alice's home"
pgina_close_session_nowait alice
watch_scan "logoff job of alice finished" "archive"
pgina_wait_jobs
assert_contains "$PGINA_LOG" "alice: saved"

step "alice logs on with no home here: the extracting program holds no password"
rm -rf /home/alice
pam_run pgtest alice "$ALICEPW" authenticate acct_mgmt open_session &
pam=$!
watch_scan "alice: restored" "restore"
wait "$pam" || fail "alice's logon with the restore failed: $(tail -n 3 "$T/pam.out")"
assert_contains "$PGINA_LOG" "alice: restored"
[ "$(stat -c %s /home/alice/big.bin)" = $((300 * 1024 * 1024)) ] || fail "the restored home lacks big.bin"
pgina_wait_log "alice: login script /etc/pgina/scripts/hold.sh exited with status 0"
exit 0
