#!/bin/bash
# pgSMB delta profiles: a commit whose read-back fails although its manifest landed whole (the
# store went away between the write and the read; the security review's finding 3). Before the
# fix, the retry took that manifest for another machine's and saved a spurious conflict copy.
#   - the read-back fails once: the upload reads the manifest again, finds it whole and its own,
#     and counts it committed;
#   - it fails longer: the upload fails and pginad retries it; the retry finds the manifest this
#     machine could not see land, builds on it, makes no conflict copy;
#   - the store keeps other bytes than a delta's (read back on the handle that wrote it): the
#     upload refuses its archive, retries, and the version names only what matched.
# tests/tools/fault-readback.so (LD_PRELOAD into pginad) makes the read-back fail.
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
PGINA_SERVICE_EXTRA="request_timeout = 120
job_retry_delay = 2
job_retry_max_delay = 4" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
compact_deltas = 0
compact_percent = 0
[localmachine]
logoff_action = none
CONF
export PGINA_FAULT_READBACK=$FAULT
FLIP=$T/flip
echo 0 >"$FLIP"
export PGINA_FAULT_ARCHIVE_FLIP=$FLIP
PGINA_PRELOAD=$(shim_preload "$SHIM") pgina_start
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | cut -d' ' -f2; }
conflict_copies() { find "$STORE/alice" -name 'alice.tar.zst.c-*' | wc -l; }

step "version 1"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs && echo one > /home/alice/docs/a && echo one > /home/alice/docs/b'
pgina_close_session alice
assert_eq 1 "$(current)" "version after the first logoff"

step "the read-back fails once: the manifest is read again, whole and ours: committed"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo two > /home/alice/docs/a'
echo 1 >"$FAULT"
pgina_close_session alice
assert_eq 0 "$(cat "$FAULT")" "read-back faults left"
assert_contains "$PGINA_LOG" "alice: manifest 2 failed its read-back"
assert_contains "$PGINA_LOG" "but reads whole now: committed"
assert_eq 2 "$(current)" "version after the logoff"
assert_eq 0 "$(conflict_copies)" "conflict copies"

step "the read-back fails for longer: the upload fails, pginad's retry builds on the manifest that landed"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo three > /home/alice/docs/b'
echo 2 >"$FAULT"
pgina_close_session_retry alice
assert_eq 3 "$(current)" "the store's version (it landed)"
grep -q '^pending=2:3:' /var/lib/pgina/*/alice.state 2>/dev/null || grep -rq '^pending=2:3:' /var/lib/pgina ||
        fail "the state does not say version 3 may have landed"
pginactl -t 60 wait alice >"$T/wait.out" 2>&1 || fail "alice's retry did not run: $(cat "$T/wait.out")"
assert_contains "$PGINA_LOG" "alice: version 3, whose commit this machine could not see land, is in the store"
assert_not_contains "$PGINA_LOG" "conflict copy"
assert_eq 0 "$(conflict_copies)" "conflict copies"
# the retry compares the home with the record of version 2 (what this machine saw land): docs/b
# goes again, as version 4 on version 3
assert_eq 4 "$(current)" "the current version after the retry"
"$V2" show "$STORE/alice" alice.tar.zst | head -n 3 >"$T/show4"
assert_contains "$T/show4" "parent 3"

step "the next logon uses the home as version 4; its logoff uploads only its change"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: home is already version 4, no download"
as_user alice bash -c 'echo four > /home/alice/docs/c'
pgina_close_session alice
assert_eq 5 "$(current)" "version after the logoff"
grep -q "alice: saved version 5 .*: 2 of [0-9]* entries changed" "$PGINA_LOG" ||
        { grep "saved version 5" "$PGINA_LOG" >&2; fail "the logoff after the retry did not upload just its change (docs/c and docs)"; }
assert_eq 0 "$(conflict_copies)" "conflict copies"

step "the store keeps other bytes than the delta's: the read-back on its handle refuses it, the retry saves"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo five > /home/alice/docs/d'
echo 1 >"$FLIP"
pgina_close_session_retry alice
assert_eq 0 "$(cat "$FLIP")" "flipped reads left"
assert_contains "$PGINA_LOG" "alice: profile not saved, the local home is kept and pginad tries again"
pginactl -t 60 wait alice >"$T/wait.out" 2>&1 || fail "alice's retry did not run: $(cat "$T/wait.out")"
grep -q "alice.tar.zst.a-[^ ]*: read back [0-9]* bytes that do not match the [0-9]* bytes written" "$PGINA_LOG" ||
        fail "the flipped read-back was not refused"
assert_eq 6 "$(current)" "version after the logoff"
# every archive left is one a version names, and reads as its manifest says
for a in "$STORE"/alice/alice.tar.zst.a-*; do
        name=$(basename "$a")
        grep -q " $name " "$STORE"/alice/alice.tar.zst.m* || fail "$name (the refused upload?) is named by no version"
done
rm -rf /home/alice
sed -i 's/^version=.*/version=/' "$(find /var/lib/pgina -name alice.state | head -n 1)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq five "$(cat /home/alice/docs/d)" "docs/d restored from version 6"
