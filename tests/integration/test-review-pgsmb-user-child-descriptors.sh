#!/bin/bash
# The process pgSMB runs as the user to archive or extract the home with the built-in
# libarchive/zstd (it parses the user's own, possibly hostile, archive) holds none of the
# worker's descriptors (issue 12, parts 3-4): not the worker's TCP connection to the SMB server
# (a service account's session), not its result pipe; only stdin/out/err, the stream to the
# worker and the pipe of its report. A watcher, as root, lists the descriptors of every process
# of alice's uid while her logoff uploads and her next logon restores a 300 MB home.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
need pamtester smbd
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
smbd_start

CREDS=/etc/pgina/smb-service.cred
mkdir -p /etc/pgina
printf 'username = %s\npassword = %s\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf Child-pw-1 <<CONF
share = $(smbd_url)
credentials = $CREDS
retries = 1
timeout = 30
compression_level = 1
[localmachine]
logoff_action = remove
CONF
pgina_start

# watch UID OUT: until killed, every 5 ms, "pid fd target" of each process of UID into OUT, and
# "tcp INODE -" for each TCP socket of the sandbox
watch_uid() {
        "$PYTHON" - "$1" "$2" <<'PY' &
import os, sys, time
uid, out = int(sys.argv[1]), sys.argv[2]
seen = {}
tcp = set()
with open(out, "w", buffering=1) as f:
    while True:
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                for line in open(name).readlines()[1:]:
                    ino = line.split()[9]
                    if ino not in tcp:
                        tcp.add(ino)
                        f.write("tcp %s -\n" % ino)
            except OSError:
                pass
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.stat("/proc/" + pid).st_uid != uid:
                    continue
                for fd in os.listdir("/proc/%s/fd" % pid):
                    t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                    if seen.get((pid, fd)) != t:
                        seen[(pid, fd)] = t
                        f.write("%s %s %s\n" % (pid, fd, t))
            except OSError:
                pass
        time.sleep(0.005)
PY
        WATCH_PID=$!
}
# check OUT WHAT: no TCP socket, and no socket or pipe but the stream and the report per process
check_fds() {
        local out=$1 what=$2 ino
        [ -s "$out" ] || fail "$what: no process of alice was seen"
        for ino in $(sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' "$out" | sort -u); do
                grep -qx "tcp $ino -" "$out" &&
                        fail "$what: a process of alice's holds a TCP socket of the worker's: $(grep "socket:\[$ino\]" "$out" | head -n 1)"
        done
        # its own files and directories come and go; of sockets and pipes it has two
        grep -v '^tcp ' "$out" | awk '$3 ~ /^(socket|pipe|anon_inode):/ { n[$1 " " $2] = 1 } END { for (k in n) { split(k, a, " "); c[a[1]]++ }
                for (p in c) if (c[p] > 2) { print p, c[p]; bad = 1 }; exit bad }' ||
                { sort -n "$out" >&2; fail "$what: a process of alice's held more sockets or pipes than its stream and its report (above)"; }
}

step "logoff: the archive child holds no descriptor of the worker's"
assert_ok pam_run pgtest alice Child-pw-1 authenticate acct_mgmt open_session
uid=$(id -u alice)
as_user alice bash -c 'head -c 300M /dev/urandom >/home/alice/big.bin' || fail "cannot fill the home"
watch_uid "$uid" "$T/upload.fds"
pgina_close_session alice
kill "$WATCH_PID"
assert_contains "$PGINA_LOG" "alice: saved"
check_fds "$T/upload.fds" "upload"

step "logon: the extracting child holds no descriptor of the worker's"
watch_uid "$uid" "$T/restore.fds"
# the account comes back with the same uid (the first free one), so the watcher sees the child
assert_ok pam_run pgtest alice Child-pw-1 authenticate acct_mgmt open_session
kill "$WATCH_PID"
[ "$(id -u alice)" = "$uid" ] || skip "alice came back with another uid ($(id -u alice), was $uid)"
assert_contains "$PGINA_LOG" "alice: restored"
check_fds "$T/restore.fds" "restore"
pgina_close_session alice
exit 0
