#!/bin/bash
# Review 2, finding 1: a home holding a change made here after the last logoff (a lingering
# process) is restored WHOLE (not caught up) when the store's newer version differs by more than
# half the profile (or by more than 512 MiB, or after a catch-up that failed): the old home is
# removed, the change is in no version and in no home. Expected to FAIL at the marked assert.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool

pgsmb_delta_file_store_start
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | cut -d' ' -f2; }

step "first logon and logoff: version 1, the home stays on this machine"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c '
set -e
mkdir -p /home/alice/docs
for i in $(seq 1 50); do head -c 4000 /dev/urandom > /home/alice/docs/f$i; done
'
pgina_close_session alice
assert_eq 1 "$(current)" "version after the first logoff"

step "after the logoff, a lingering process writes a new file and rewrites one"
sleep 0.2
as_user alice bash -c 'echo "notes written after the logoff" > /home/alice/docs/notes.txt
head -c 4000 /dev/urandom > /home/alice/docs/f1'
sum_f1=$(sha256sum </home/alice/docs/f1)

step "another machine commits version 2: one large file (more than half of the profile)"
head -c 2000000 /dev/urandom >"$T/big"
assert_eq 2 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/big="$T/big")" "version 2"

step "the logon here"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
grep -E "alice: (version 2 differs|restored version|home brought)" "$PGINA_LOG" | tail -n 3
lost=0
[ "$(cat /home/alice/docs/notes.txt 2>&1)" = "notes written after the logoff" ] || { echo "LOST: docs/notes.txt"; lost=1; }
[ "$sum_f1" = "$(sha256sum </home/alice/docs/f1)" ] || { echo "LOST: docs/f1's rewrite"; lost=1; }
pgina_close_session alice
grep -E "alice: (nothing changed|saved version)" "$PGINA_LOG" | tail -n 1
[ "$lost" = 0 ] || fail "a change made here after the last logoff vanished with the whole restore (no conflict copy, not in version $(current))"
