#!/bin/bash
# pgSMB delta profiles (store format 2) when the store changes under a machine, or lies:
#   - another machine committed while this one was logged on, on other paths: this logoff merges
#     its change onto that version (both changes in the next version);
#   - on the same path: this machine's version is kept beside it as a conflict copy, the other
#     machine's stays current, the admins are mailed; pginactl profile list shows it;
#   - two machines committing at once (the other commits in a loop during this logoff): no
#     version is lost, every version's parent is the one before it;
#   - a half-written manifest (a writer that died) in the next slot: waited for (2 x timeout: it
#     may be a commit in progress), then skipped;
#   - a tampered manifest is refused (its checksum): readers take the previous valid one;
#   - a tampered delta is refused (the manifest's checksum): a temporary profile, not its bytes.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool

STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
timeout = 3
[localmachine]
logoff_action = none
CONF
pgina_start
show() { "$V2" show "$STORE/alice" alice.tar.zst; }
current() { show | head -n 1 | cut -d' ' -f2; }

step "version 1"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs && for i in 1 2 3; do echo "v1 $i" > /home/alice/docs/f$i; done'
# past the racy-clean window (50 ms): files written in it are archived again by the next logoff,
# which counts as this machine's change (a merge then calls another machine's change to them a
# clash, as it must for a change it cannot rule out)
sleep 0.2
pgina_close_session alice
assert_eq 1 "$(current)" "version after the first logoff"

step "another machine commits other paths meanwhile: this logoff merges onto it"
assert_ok pam_run pgtest alice secret authenticate open_session
as_user alice bash -c 'echo "ours" > /home/alice/docs/f1'
echo "theirs" >"$T/theirs"
assert_eq 2 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/f2="$T/theirs")" "the other machine's version"
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: version 2 from othermachine came first; this logoff's changes are merged onto it"
assert_eq 3 "$(current)" "version after the merge"
show >"$T/show3"
grep -q "^f .*othermachine.* docs/f2$" "$T/show3" || { cat "$T/show3" >&2; fail "the other machine's docs/f2 is not in version 3"; }
grep -q "^f .*othermachine.* docs/f1$" "$T/show3" && fail "docs/f1 is the other machine's, not ours"
# this home lacks the other machine's change: the next logon restores the merged version 3
assert_ok pam_run pgtest alice secret authenticate open_session
assert_eq "theirs" "$(cat /home/alice/docs/f2)" "docs/f2 after the merge"
assert_eq "ours" "$(cat /home/alice/docs/f1)" "docs/f1 after the merge"

step "the same path changed on both machines: a conflict copy, the other machine's version stays"
as_user alice bash -c 'echo "ours again" > /home/alice/docs/f3'
assert_eq 4 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/f3="$T/theirs")" "the other machine's version"
pgina_close_session alice
assert_contains "$PGINA_LOG" "'docs/f3' changed on both machines"
assert_eq 4 "$(current)" "the current version after a conflict"
copy=$(cd "$STORE/alice" && ls | grep '^alice.tar.zst.c-' | head -n 1)
[ -n "$copy" ] || { ls -la "$STORE/alice" >&2; fail "no conflict copy"; }
assert_contains "$PGINA_LOG" "saved as conflict copy $copy"

step "a half-written manifest in the next slot is waited for, then skipped"
assert_ok pam_run pgtest alice secret authenticate open_session # the store's version 4, restored
assert_eq "theirs" "$(cat /home/alice/docs/f3)" "docs/f3 after catching up to version 4"
held=$("$V2" hold "$STORE/alice" alice.tar.zst)
assert_eq 5 "$held" "the held slot"
as_user alice bash -c 'echo "after the dead writer" > /home/alice/docs/f4'
s=$SECONDS
pgina_close_session alice
echo "the logoff took $((SECONDS - s)) s"
[ $((SECONDS - s)) -ge 5 ] || fail "the logoff did not wait for the slot that may be a commit in progress"
assert_contains "$PGINA_LOG" "1 damaged manifest(s) above version 4 ignored"
assert_eq 6 "$(current)" "the version committed past the damaged slot"
"$V2" show "$STORE/alice" alice.tar.zst | grep -q ' docs/f4$' || fail "docs/f4 is not in version 6"

step "two machines committing at once: nothing lost"
assert_ok pam_run pgtest alice secret authenticate open_session
as_user alice bash -c 'for i in $(seq 1 50); do echo "race $i" > /home/alice/docs/race$i; done'
(
        for i in $(seq 1 15); do
                echo "other $i" >"$T/o$i"
                "$V2" commit "$STORE/alice" alice.tar.zst othermachine "other$i.txt=$T/o$i" >/dev/null 2>&1 || true
        done
) &
other=$!
pgina_close_session alice
wait "$other"
show >"$T/show-race"
for i in $(seq 1 50); do grep -q " docs/race$i$" "$T/show-race" || fail "docs/race$i (this machine's) was lost"; done
n_other=$(grep -c ' other[0-9]*\.txt$' "$T/show-race")
echo "the other machine's commits in the current version: $n_other"
# every manifest names the one before it as its parent (none was committed blind)
for m in "$STORE"/alice/alice.tar.zst.m*; do
        n=$(sed -n 's/^number //p' "$m"); p=$(sed -n 's/^parent //p' "$m")
        [ -n "$n" ] || continue # the damaged one
        [ "$n" = 1 ] || [ "$p" -ge 1 ] || fail "manifest $n has parent $p"
done
last=$(current)
[ "$(grep -c ' other[0-9]*\.txt$' "$T/show-race")" -ge 1 ] || fail "none of the other machine's commits is current"

step "a tampered manifest is refused: the previous valid version is used"
sed -i 's/^time .*/time 1/' "$STORE/alice/alice.tar.zst.m$(printf %08d "$last")"
prev=$(show | head -n 1 | cut -d' ' -f2)
[ "$prev" -lt "$last" ] || fail "the tampered manifest $last is still taken as current"
rm -rf /home/alice # a machine without the home
assert_ok pam_run pgtest alice secret authenticate open_session
assert_contains "$PGINA_LOG" "damaged manifest(s) ignored"
assert_contains "$PGINA_LOG" "alice: restored version $prev"
pgina_close_session alice
rm -f "$STORE/alice/alice.tar.zst.m$(printf %08d "$last")"

step "a tampered delta is refused: a temporary profile, none of its bytes"
cur=$(current)
arch=$(show | grep ' docs/race1$' | cut -d' ' -f2)
"$PYTHON" - "$STORE/alice/$arch" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x55
open(p, 'wb').write(bytes(b))
PY
rm -rf /home/alice
sed -i 's/^version=.*/version=/' "$(find /var/lib/pgina -name alice.state | head -n 1)"
assert_ok pam_run pgtest alice secret authenticate open_session
assert_contains "$T/pam.out" "temporary profile"
grep -q "alice: profile not restored, temporary profile: .*\(checksum\|damaged\)" "$PGINA_LOG" ||
        { grep "alice" "$PGINA_LOG" | tail -n 5 >&2; fail "the tampered delta was not refused by its checksum"; }
[ -e /home/alice/docs/race1 ] && fail "a file of the tampered delta is in the home"
true
