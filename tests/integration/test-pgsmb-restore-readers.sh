#!/bin/bash
# pgSMB over a real (private) smbd: a base of 64 MiB or more is read by two readers on
# connections of their own, 8 MiB at a time, several reads in flight (over a slow link one
# connection has one 8 MiB read in flight: a round trip each). The restore is exact; the
# readers' chunks pass the same SHA-256 as any: a share that changed one byte in any chunk gives
# a temporary profile, and the home restores once the byte is put back. A share that refuses
# the readers' connections (max connections = 1) is read on the one connection, exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
need pamtester smbd
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool
smbd_start

pgsmb_pam_service
CREDS=/etc/pgina/smb-service.cred
mkdir -p /etc/pgina
printf 'username = %s\npassword = %s\ndomain = PGTEST\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
conf() { # [EXTRA LINE]
        PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf Logon-pw-1 <<CONF
share = $(smbd_url)
credentials = $CREDS
retries = 1
retry_delay = 0
timeout = 3
${1:-}
[localmachine]
logoff_action = remove
CONF
}
conf
pgina_start
D=$SMBD_SHARE/alice
tree_list() {
        (cd "$1" && find . -mindepth 1 -path ./.cache -prune -o -printf '%y %m %s %Ts %P\n' | LC_ALL=C sort &&
                find . -path ./.cache -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

step "a home of ~90 MiB that does not compress: its base is 12 chunks"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
as_user alice bash -c 'set -e; cd ~; mkdir -p big small; for i in $(seq 1 22); do head -c 4000000 /dev/urandom > big/b$i; done
for i in $(seq 1 200); do head -c 3000 /dev/urandom > small/s$i; done'
tree_list /home/alice >"$T/v1.list"
pgina_close_session alice
base=$("$V2" show "$D" alice.tar.zst | awk 'NR == 2 { print $2 }')
size=$(stat -c %s "$D/$base")
echo "base $base: $size bytes"
[ "$size" -ge $((64 << 20)) ] || fail "the base is $size bytes, less than 64 MiB"

step "a new machine restores it with the readers, exactly"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r1.list"
diff "$T/v1.list" "$T/r1.list" >&2 || fail "the restored home differs"
line=$(grep "alice: archive 1 of 1 ($base)" "$PGINA_LOG" | tail -n 1)
echo "$line"
[[ $line =~ \(([0-9]+)\ of\ ([0-9]+)\ chunks\ by\ the\ readers\ on\ connections\ of\ their\ own ]] ||
        fail "no readers on connections of their own"
echo "readers: ${BASH_REMATCH[1]} of ${BASH_REMATCH[2]} chunks"
[ "${BASH_REMATCH[1]}" -ge 1 ] || fail "the readers read no chunk"
assert_eq $(((size >> 23) + 1)) "${BASH_REMATCH[2]}" "chunks of the base"
pgina_close_session alice # nothing changed: the store keeps version 1

step "one byte changed on the share in every other chunk: refused"
cp "$D/$base" "$T/base.orig"
for k in 3 5 7 9 11; do
        printf '\x5a' | dd of="$D/$base" bs=1 seek=$((k * 8388608 + 4096)) conv=notrunc status=none
done
cmp -s "$D/$base" "$T/base.orig" && fail "the base did not change"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "temporary profile"
[ -e /home/alice/big/b1 ] && fail "a temporary profile holds the damaged base's files"
pgina_close_session alice

step "the byte put back: the home restores exactly"
cp "$T/base.orig" "$D/$base"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r2.list"
diff "$T/v1.list" "$T/r2.list" >&2 || fail "the home restored after the repair differs"
pgina_close_session alice

step "readers that stop answering: after their timeout, the restore reads their chunks itself"
# The extraction is held (SIGSTOP) until the readers have connected and the ring is full, then
# the readers are stopped and the extraction goes on: the chunks asked of them never come.
(pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session; echo "rc $?" >"$T/held.rc") &
held=$!
uw=
for ((i = 0; i < 500; i++)); do uw=$(pgrep -u alice -x pgsmb-userwork 2>/dev/null | head -n 1); [ -z "$uw" ] || break; sleep 0.01; done
[ -n "$uw" ] || fail "no extraction started"
kill -STOP "$uw"
sleep 2 # (the readers connect and say so; the worker fills the ring and waits for room)
worker=$(ps -o ppid= -p "$uw" | tr -d ' ')
readers=$(pgrep -P "$worker" -u 0 | tr '\n' ' ')
echo "worker $worker, extraction $uw, readers: $readers"
[ -n "$readers" ] || { kill -CONT "$uw"; fail "no readers"; }
# shellcheck disable=SC2086 # a list of pids
kill -STOP $readers
kill -CONT "$uw"
wait "$held"
assert_eq "rc 0" "$(cat "$T/held.rc")" "the logon with stopped readers"
tree_list /home/alice >"$T/r4.list"
diff "$T/v1.list" "$T/r4.list" >&2 || fail "the home restored past the stopped readers differs"
line=$(grep "alice: archive 1 of 1 ($base)" "$PGINA_LOG" | tail -n 1)
echo "$line"
# (each reader gets the store timeout once for each reader sharing the link, and a second)
[[ $line == *": a reader did not answer within 7 s;"* ]] || fail "the readers' timeout is not said"
pgrep -P "$worker" -u 0 >/dev/null && fail "a stopped reader outlived the restore"
pgina_close_session alice

step "a share that takes one connection at a time: the readers are refused, the restore reads alone"
printf '  max connections = 1\n' >>"$SMBD_CONF"
kill -HUP "$SMBD_PID"
sleep 1
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r3.list"
diff "$T/v1.list" "$T/r3.list" >&2 || fail "the home restored without the readers differs"
line=$(grep "alice: archive 1 of 1 ($base)" "$PGINA_LOG" | tail -n 1)
echo "$line"
[[ $line == *"(0 of $(((size >> 23) + 1)) chunks by the readers on connections of their own: "* ]] ||
        fail "the readers were not refused, or the refusal is not said"
pgina_close_session alice

step "restore_readers = 0: the restore's connection alone, no reader started"
pgina_stop
conf "restore_readers = 0"
pgina_start
n=$(grep -c "chunks by the readers" "$PGINA_LOG")
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r5.list"
diff "$T/v1.list" "$T/r5.list" >&2 || fail "the home restored on one connection differs"
grep -q "alice: archive 1 of 1 ($base)" "$PGINA_LOG" || fail "no restore of the base"
assert_eq "$n" "$(grep -c "chunks by the readers" "$PGINA_LOG")" "restores with readers"
pgina_close_session alice
echo "PASS"
