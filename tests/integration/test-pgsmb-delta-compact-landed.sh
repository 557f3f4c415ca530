#!/bin/bash
# pgSMB compaction whose commit fails after its manifest landed whole (the store went away
# between the write and the read-back). Before the fix the compaction took any failure of its
# commit for "nothing landed" and removed the new base, which the store's current version then
# named: no machine could restore the profile, and every later logoff built on that version.
#   - the read-back fails once: the compaction reads its manifest again, finds it whole and its
#     own: committed, and a new machine restores the compacted version exactly;
#   - the manifest cannot be read at all: the compaction cannot tell whether it landed and keeps
#     the new base; the version that did land restores exactly.
# tests/tools/fault-readback.so (LD_PRELOAD into pginad) makes the read-backs fail.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
SHIM=$BUILD/tests/tools/fault-readback.so
[ -e "$SHIM" ] || skip "fault-readback.so not built"
V2=$BUILD/tests/tools/v2-tool

STORE=$T/store
FAULT=$T/fault
mkdir -p "$STORE"
echo 0 >"$FAULT"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
compact_deltas = 1
compact_percent = 0
[localmachine]
logoff_action = none
CONF
export PGINA_FAULT_READBACK=$FAULT
PGINA_PRELOAD=$(shim_preload "$SHIM") pgina_start
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | cut -d' ' -f2; }
archives() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | sed 's/.* archives \([0-9]*\) .*/\1/'; }
tree_list() {
        (cd "$1" && find . -mindepth 1 -path ./.cache -prune -o -printf '%y %m %s %Ts %P\n' | LC_ALL=C sort &&
                find . -path ./.cache -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
# a new machine: no home, no version here
new_machine() {
        rm -rf /home/alice
        sed -i 's/^version=.*/version=/' "$(find /var/lib/pgina -name alice.state | head -n 1)"
}
# the missing-archive check: every archive the current manifest names is in the store
names_present() {
        "$V2" show "$STORE/alice" alice.tar.zst | tail -n +2 | awk '{ print $2 }' | sort -u | while read -r a; do
                [ -e "$STORE/alice/$a" ] || echo "$a"
        done
}

step "version 1 (a base), version 2 (base + delta)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p ~/docs; for i in $(seq 1 20); do head -c 5000 /dev/urandom > ~/docs/f$i; done'
sleep 0.3 # nothing racily clean (pgsmb-scan.h): the next logoff uploads only what changes
pgina_close_session alice
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo two > ~/docs/f3'
sleep 0.3
pgina_close_session alice
assert_eq 2 "$(current)" "version after the delta"
assert_eq 2 "$(archives)" "archives of version 2"
tree_list /home/alice >"$T/v2.list"

step "the compaction's read-back fails once: its manifest reads whole again, committed, its base kept"
echo 1 >"$FAULT"
mark=$(wc -l <"$PGINA_LOG")
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
for ((i = 0; i < 1200; i++)); do
        grep -qE "alice: (compacted version 2|compaction of version 2 failed)" "$PGINA_LOG" && break
        sleep 0.1
done
tail -n +"$((mark + 1))" "$PGINA_LOG" >"$T/compact1.log"
assert_eq 0 "$(cat "$FAULT")" "read-back faults left"
assert_eq 3 "$(current)" "the store's version (the compaction's manifest landed)"
# before the fix: version 3 named a base the failed compaction had removed
assert_eq "" "$(names_present)" "archives version 3 names that are not in the store"
assert_contains "$T/compact1.log" "alice: manifest 3 failed its read-back"
assert_contains "$T/compact1.log" "but reads whole now: committed"
assert_contains "$T/compact1.log" "alice: compacted version 2 (2 archives) into version 3"
pgina_close_session alice
assert_eq 3 "$(current)" "version after the compaction and a logoff that changed nothing"
assert_eq 1 "$(archives)" "archives of the compacted version"
new_machine
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: restored version 3"
tree_list /home/alice >"$T/r3.list"
diff "$T/v2.list" "$T/r3.list" >&2 || fail "the compacted version differs from version 2"

step "the manifest cannot be read at all: whether it landed is unknown, the new base stays"
as_user alice bash -c 'echo four > ~/docs/f4'
sleep 0.3
pgina_close_session alice
assert_eq 4 "$(current)" "version after the delta on the compacted base"
tree_list /home/alice >"$T/v4.list"
echo 2 >"$FAULT"
mark=$(wc -l <"$PGINA_LOG")
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "whether version 5 is in the store cannot be told now" 120 || fail "no compaction that could not tell"
tail -n +"$((mark + 1))" "$PGINA_LOG" >"$T/compact2.log"
assert_eq 0 "$(cat "$FAULT")" "read-back faults left"
assert_contains "$T/compact2.log" "its new base alice.tar.zst.a-"
assert_not_contains "$T/compact2.log" "(the store is unchanged)"
[ -e "$STORE/alice/alice.tar.zst.m00000005" ] || fail "the compaction's manifest 5 is not in the store"
# this machine did not follow version 5: its logoff builds on it as on another machine's
pgina_close_session alice
[ "$(current)" -ge 5 ] || fail "the store's version is $(current), below the compaction's 5"
assert_eq 1 "$(archives)" "archives of the current version (the compacted base)"
assert_eq "" "$(names_present)" "archives the current version names that are not in the store"
new_machine
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: restored version $(current)"
tree_list /home/alice >"$T/r5.list"
diff "$T/v4.list" "$T/r5.list" >&2 || fail "the version on the compacted base differs from version 4"
pgina_close_session alice

step "no root-owned file in the home"
bad=$(find /home/alice -uid 0 | head -n 3)
[ -z "$bad" ] || fail "root-owned files in the home: $bad"
true
