#!/bin/bash
# Review 2, finding 8: the as-user jobs are the user's processes, and so is what they hand back.
#  stop: the user stops (SIGSTOP) the catch-up's look at the paths it touches: before, the logon
#        waited for it until pginad's request_timeout; now the look has a deadline of its own
#        (10 s + 10 ms a path), the catch-up gives up before writing anything, and the home is
#        restored whole.
#  map:  the user keeps a writable shared mapping of the scan memfd the logoff's delta job fills:
#        before, root read it while the user could still change it; now root seals it first, and
#        one it cannot seal is refused (the logoff fails, the home stays here unsaved).
. "$(dirname "$0")/lib.sh"
install -m 0755 "$SRC/tests/integration/review2-watch.py" "$T/watch.py"

# the map case's process outlives the session: left running, not waited for
PGSMB_EXTRA=$'logoff_end_processes = false\nlogoff_process_wait = 0' pgsmb_delta_test

step "version 1: 20 files"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs && for i in $(seq 1 20); do head -c 20000 /dev/urandom > /home/alice/docs/f$i; done'
sleep 0.3
pgina_close_session alice
assert_eq 1 "$(current)" "version 1"

step "stop: another machine commits docs/f3; the user stops the catch-up's look at the paths"
echo theirs >"$T/theirs.txt"
assert_eq 2 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/f3="$T/theirs.txt")" "version 2"
as_user alice "$PYTHON" "$T/watch.py" pgsmb-paths stop /dev/null >"$T/watch.out" 2>&1 &
wpid=$!
sleep 0.5
t0=$(date +%s)
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
t1=$(date +%s)
wait "$wpid"
cat "$T/watch.out"
assert_contains "$T/watch.out" "watch: stopped job"
assert_contains "$PGINA_LOG" "did not end within 10 s: stopped"
assert_contains "$PGINA_LOG" "restored version 2"
assert_eq "theirs" "$(cat /home/alice/docs/f3)" "docs/f3 after the logon"
[ $((t1 - t0)) -lt 40 ] || fail "the logon took $((t1 - t0)) s with the look stopped"
echo "logon with the look stopped: $((t1 - t0)) s"

step "map: the user holds a writable mapping of the logoff's scan"
as_user alice bash -c 'echo changed > /home/alice/docs/f1'
as_user alice "$PYTHON" "$T/watch.py" pgsmb-scan map /dev/null 5 >"$T/watch.out" 2>&1 &
wpid=$!
sleep 0.5
pgina_close_session_nowait alice
wait "$wpid"
cat "$T/watch.out"
assert_contains "$T/watch.out" "watch: mapped the memfd"
pgina_wait_log "profile not saved, the local home is kept"
assert_contains "$PGINA_LOG" "the scan of /home/alice cannot be sealed (Device or resource busy): another process of the user still writes to it"
assert_eq 2 "$(current)" "the version after the refused logoff"
assert_eq "changed" "$(cat /home/alice/docs/f1)" "docs/f1 (kept here)"
