#!/bin/bash
# pgSMB delta profiles: a process that outlives the session changes the home after the logoff's
# walk (the security review's data-loss path). The next logon catches the home up to a version
# another machine committed meanwhile:
#   - changes of this machine's own to paths that version did not touch stay in the home, and the
#     next logoff uploads them (they are not taken for stored: before the fix, the catch-up took
#     its fresh scan for the record, or failed on them and replaced the home whole);
#   - a change to a path that version changed too is not overwritten: the home is used as it is,
#     and its next logoff keeps both (a conflict copy).
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool

pgsmb_delta_file_store_start
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | cut -d' ' -f2; }
# archive_of PATH: the archive manifest `current` names for PATH
archive_of() { "$V2" show "$STORE/alice" alice.tar.zst | awk -v p="$1" '$NF == p { print $2 }'; }

step "first logon and logoff: version 1, the home stays on this machine"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c '
set -e
mkdir -p /home/alice/docs
for i in $(seq 1 50); do head -c 4000 /dev/urandom > /home/alice/docs/f$i; done
'
pgina_close_session alice
assert_eq 1 "$(current)" "version after the first logoff"
base=$(archive_of docs/f1)

step "after the logoff, a lingering process rewrites a file (same size)"
sleep 0.2 # past the racy-clean window of the logoff's walk: only the record can tell
as_user alice bash -c 'head -c 4000 /dev/urandom > /home/alice/docs/f1'
sum_f1=$(sha256sum </home/alice/docs/f1)

step "another machine commits version 2 (another file); the logon here catches up in place"
echo "from the other machine" >"$T/other.txt"
assert_eq 2 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/other.txt="$T/other.txt")" \
        "the other machine's version"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: home brought from version 1 to 2 in place: 1 changed, 0 removed"
assert_eq "from the other machine" "$(cat /home/alice/docs/other.txt)" "docs/other.txt"
assert_eq "$sum_f1" "$(sha256sum </home/alice/docs/f1)" "docs/f1 (rewritten after the logoff)"

step "the next logoff uploads the rewritten file (it is not taken for stored), not what the catch-up wrote"
other=$(archive_of docs/other.txt)
pgina_close_session alice
assert_not_contains "$PGINA_LOG" "nothing changed since version 2"
assert_eq 3 "$(current)" "version after the logoff"
d3=$(archive_of docs/f1)
[ "$d3" != "$base" ] || fail "docs/f1 of version 3 is still the base's: the lingering change is lost"
assert_eq "$base" "$(archive_of docs/f10)" "docs/f10's archive (unchanged: not uploaded again)"
assert_eq "$other" "$(archive_of docs/other.txt)" "docs/other.txt's archive (the catch-up wrote it: not uploaded again)"

step "a lingering process adds and removes files; the catch-up keeps both changes, the logoff uploads them"
sleep 0.2
as_user alice bash -c 'echo "written after the logoff" > /home/alice/docs/late.txt; rm /home/alice/docs/f2'
echo "more from the other machine" >"$T/other2.txt"
assert_eq 4 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/other2.txt="$T/other2.txt")" \
        "the other machine's version"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: home brought from version 3 to 4 in place: 1 changed, 0 removed"
assert_eq "written after the logoff" "$(cat /home/alice/docs/late.txt 2>&1)" "docs/late.txt (the lingering change)"
[ -e /home/alice/docs/f2 ] && fail "docs/f2, removed after the logoff, is back"
pgina_close_session alice
assert_eq 5 "$(current)" "version after the logoff"
late=$(archive_of docs/late.txt)
[ -n "$late" ] || fail "docs/late.txt is not in version 5"
[ "$late" != "$base" ] && [ "$late" != "$d3" ] || fail "docs/late.txt is not in this logoff's delta"
[ -n "$(archive_of docs/f2)" ] && fail "docs/f2 is still in version 5"
assert_eq "$base" "$(archive_of docs/f10)" "docs/f10's archive (unchanged: not uploaded again)"

step "a lingering change to a path the other machine changed too is neither lost nor overwritten"
sleep 0.2
as_user alice bash -c 'echo "mine, after the logoff" > /home/alice/docs/f5'
echo "theirs" >"$T/theirs.txt"
assert_eq 6 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/f5="$T/theirs.txt")" "version 6"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: 'docs/f5' changed here after the last logoff, and version 6 changes it too"
assert_eq "mine, after the logoff" "$(cat /home/alice/docs/f5)" "docs/f5 (this machine's change)"
pgina_close_session alice
assert_contains "$PGINA_LOG" "'docs/f5' changed on both machines"
assert_eq 6 "$(current)" "the current version (the other machine's)"
copy=$(cd "$STORE/alice" && ls | grep '^alice.tar.zst.c-' | head -n 1)
[ -n "$copy" ] || { ls -la "$STORE/alice" >&2; fail "no conflict copy of this machine's docs/f5"; }
assert_contains "$PGINA_LOG" "saved as conflict copy $copy"

step "a file another machine saved through pgina (mtime with nanoseconds) is not uploaded again after the catch-up"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session # restores the current version
pgina_close_session alice
state=$(find /var/lib/pgina -name alice.state | head -n 1)
mkdir "$T/away"
cp -a "${state%.state}".{state,record,manifest} "$T/away/"
mv /home/alice /home/.alice-away # this machine's home, untouched: inodes and times kept
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session # "another machine"
as_user alice bash -c 'head -c 3000 /dev/urandom > /home/alice/docs/f20'
[ "$(stat -c %y /home/alice/docs/f20 | cut -d. -f2 | cut -c1-9)" != 000000000 ] || echo "(f20's mtime has no nanoseconds)"
pgina_close_session alice
theirs=$(current)
rm -rf /home/alice
mv /home/.alice-away /home/alice
cp -a "$T/away"/alice.* "$(dirname "$state")/"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "in place: 1 changed, 0 removed"
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: nothing changed since version $theirs: nothing uploaded"

step "a file a lingering process makes in a directory another machine removed is not removed with it"
as_user alice bash -c 'mkdir /home/alice/docs/sub && echo g > /home/alice/docs/sub/g'
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_close_session alice
sleep 0.2
as_user alice bash -c 'echo "new, after the logoff" > /home/alice/docs/sub/new'
gone=$("$V2" delete "$STORE/alice" alice.tar.zst othermachine docs/sub/g docs/sub)
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: 'docs/sub' changed here after the last logoff, and version $gone changes it too"
assert_eq "new, after the logoff" "$(cat /home/alice/docs/sub/new 2>&1)" "docs/sub/new"
pgina_close_session alice

step "host untouched, no root-owned file in the homes"
[ -z "$(find /home -user root -mindepth 2 2>/dev/null)" ] || fail "root-owned file in a home"
