#!/bin/bash
# Review 2: changes made DURING a catch-up by a lingering process (timed here by watching for the
# as-user jobs, which any process of the user can see in /proc).
#  A: a write to a path the new version changes, after the clash check's stat job and before the
#     extraction: overwritten, and the record takes the path for version N's (never uploaded).
#  B: an append to a file the catch-up just wrote, before the check after it: the catch-up
#     "fails" and the home is restored whole: every change made here after the logoff is gone.
# All three are fixed: A, the extractor compares each target with what the check saw right before
# its rename and stops (the home is used as it is); B, a catch-up that fails part-way keeps the
# home as it is; C, a removed directory that holds something made here stays. B runs here by
# default, A and C in sandboxes of their own (test-pgsmb-review2-race-rename.sh, -race-dir.sh).
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool
WATCH=$SRC/tests/integration/review2-watch.py
install -m 0755 "$WATCH" "$T/watch.py"

pgsmb_delta_file_store_start
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | cut -d' ' -f2; }

step "version 1: 50 files of 200 kB (a base of 10 MB)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c '
set -e
mkdir -p /home/alice/docs
for i in $(seq 1 50); do head -c 200000 /dev/urandom > /home/alice/docs/f$i; done
'
pgina_close_session alice
assert_eq 1 "$(current)" "version after the first logoff"

fails=()
if [[ " ${CASE:-B} " == *" A "* ]]; then
step "A: a lingering process writes docs/f5 just after the catch-up's clash check"
head -c 3000000 /dev/urandom >"$T/big"
echo "theirs" >"$T/theirs.txt"
assert_eq 2 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/big="$T/big" docs/f5="$T/theirs.txt")" "v2"
as_user alice "$PYTHON" "$T/watch.py" pgsmb-paths write /home/alice/docs/f5 "mine, during the catch-up" >"$T/watch.out" 2>&1 &
wpid=$!
sleep 0.5
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
wait "$wpid"
cat "$T/watch.out"
grep -E "alice: .*(in place|changed here|failed|restored)" "$PGINA_LOG" | tail -n 2
got=$(cat /home/alice/docs/f5)
echo "docs/f5 after the logon: $got"
pgina_close_session alice
grep -E "alice: (nothing changed|saved version)" "$PGINA_LOG" | tail -n 1
[ "$got" = "mine, during the catch-up" ] || fails+=("A: the write made during the catch-up to docs/f5 was overwritten, no clash")
assert_contains "$PGINA_LOG" "alice: catching up from version 1 to 2 failed part-way ('docs/f5' changed here during the catch-up)"
assert_contains "$PGINA_LOG" "saved as conflict copy"
fi

if [[ " ${CASE:-B} " == *" B "* ]]; then
step "B (fresh: version 1 again as the base)"
step "B: a lingering change (docs/notes.txt), then an append to the file the catch-up writes, during it"
sleep 0.2
as_user alice bash -c 'echo "notes written after the logoff" > /home/alice/docs/notes.txt'
echo "theirs again" >"$T/theirs2.txt"
n=$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/other.txt="$T/theirs2.txt")
as_user alice "$PYTHON" "$T/watch.py" pgsmb-want append /home/alice/docs/other.txt "appended during the catch-up" >"$T/watch.out" 2>&1 &
wpid=$!
sleep 0.5
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
wait "$wpid"
cat "$T/watch.out"
grep -E "alice: .*(in place|changed here|failed|restored)" "$PGINA_LOG" | tail -n 3
notes=$(cat /home/alice/docs/notes.txt 2>&1)
echo "docs/notes.txt after the logon: $notes"
pgina_close_session alice
[ "$notes" = "notes written after the logoff" ] || fails+=("B: docs/notes.txt, made after the logoff, vanished with the whole restore")
fi

if [[ " ${CASE:-B} " == *" C "* ]]; then
step "C: docs/sub exists in version 1; another machine removes it (and adds a file); a lingering process saves a file into docs/sub just after the clash check"
as_user alice bash -c 'mkdir /home/alice/docs/sub && echo g > /home/alice/docs/sub/g'
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
sleep 0.3
pgina_close_session alice
"$V2" delete "$STORE/alice" alice.tar.zst othermachine docs/sub/g docs/sub >/dev/null
head -c 3000000 /dev/urandom >"$T/big"
"$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/big="$T/big" >/dev/null
as_user alice "$PYTHON" "$T/watch.py" pgsmb-paths write /home/alice/docs/sub/new "saved during the catch-up" >"$T/watch.out" 2>&1 &
wpid=$!
sleep 0.5
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
wait "$wpid"
cat "$T/watch.out"
grep -E "alice: .*(in place|changed here|failed|restored)" "$PGINA_LOG" | tail -n 2
got=$(cat /home/alice/docs/sub/new 2>&1)
echo "docs/sub/new after the logon: $got"
pgina_close_session alice
[ "$got" = "saved during the catch-up" ] || fails+=("C: docs/sub/new, saved during the catch-up, was removed with docs/sub, no clash")
fi
[ ${#fails[@]} = 0 ] || fail "${fails[*]}"
