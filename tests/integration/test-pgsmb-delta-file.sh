#!/bin/bash
# pgSMB delta profiles (store format 2) through the file:// store:
#   - the first logoff writes a base and manifest 1, never a format-1 archive;
#   - a logoff after a small change uploads only the changed entries (a delta a fraction of the
#     base), deletions live in the manifest, a logoff with no change uploads nothing;
#   - a logon on a machine without the home restores base + deltas, exactly the home that was
#     saved (names, modes, sizes, mtimes, contents, symlink, hardlink, sparse file, ACL);
#   - a machine holding version k is brought to the current version in place (only what changed
#     is downloaded) and its next logoff uploads only its own change;
#   - a file with two links, one of them in a renamed directory, comes back from the chain;
#   - an old single archive (format 1) is read, and the first logoff after it writes format 2 and
#     keeps the old archive as a version.
. "$(dirname "$0")/lib.sh"
need pamtester setfacl getfacl
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool

STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
[localmachine]
logoff_action = remove
CONF
pgina_start

# tree_list DIR: every entry's name, mode, size, mtime (the home less .cache); contents of files
tree_list() {
        (cd "$1" && find . -path ./.cache -prune -o -print0 | sort -z | xargs -0 stat -c '%n|%f|%s|%Y' |
                grep -v '^\.|')
        (cd "$1" && find . -path ./.cache -prune -o -type f -print0 | sort -z | xargs -0 sha256sum)
}
manifests() { find "$STORE/alice" -name 'alice.tar.zst.m*' | wc -l; }
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | cut -d' ' -f2; }

step "first logon, the user fills the home, logoff: a base and manifest 1"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c '
set -e
cd /home/alice
mkdir -p "dir with spaces/ünïcödé" .cache docs ro
printf "hello\n" > "dir with spaces/ünïcödé/file -x"
printf "newline\n" > "$(printf "name\nwith newline")"
printf "cached\n" > .cache/junk
ln -s "dir with spaces/ünïcödé/file -x" link-inside
ln "dir with spaces/ünïcödé/file -x" hardlink
truncate -s 256M sparse.img
printf "tail" | dd of=sparse.img bs=1 seek=$((128*1024*1024)) conv=notrunc status=none
head -c 8M /dev/urandom > large.bin
setfacl -m g:users:rw large.bin
for i in $(seq 1 200); do head -c 20000 /dev/urandom > docs/f$i; done
printf "read-only\n" > ro/inside
chmod 0555 ro
touch -d "2001-02-03 04:05:06" "dir with spaces/ünïcödé/file -x"
'
tree_list /home/alice >"$T/v1.list"
pgina_close_session alice
[ -e "$STORE/alice/alice.tar.zst" ] && fail "a format-1 archive was written"
[ -e "$STORE/alice/alice.tar.zst.m00000001" ] || { ls -la "$STORE/alice" >&2; fail "no manifest 1"; }
assert_eq 1 "$(find "$STORE/alice" -name 'alice.tar.zst.a-*' | wc -l)" "archives after the first logoff"
assert_eq 1 "$(current)" "current version"
"$V2" show "$STORE/alice" alice.tar.zst >"$T/show1"
assert_contains "$T/show1" "f alice.tar.zst.a-"
grep -q ' docs/f200$' "$T/show1" || fail "docs/f200 is not in manifest 1"
grep -q '\.cache' "$T/show1" && fail ".cache is in the manifest although excluded"
base_size=$(stat -c %s "$STORE"/alice/alice.tar.zst.a-*)
assert_contains "$PGINA_LOG" "alice: saved version 1"

step "a new machine (no home): the base restores the home exactly"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r1.list"
# mtimes of directories that held the restore's work are set last
diff "$T/v1.list" "$T/r1.list" >&2 || fail "the restored home differs from the saved one"
[ "$(stat -c %h /home/alice/hardlink)" = 2 ] || fail "hardlink not restored as a hardlink"
[ "$(stat -c %b /home/alice/sparse.img)" -lt 1000 ] || fail "sparse file restored dense"
getfacl -cp /home/alice/large.bin | grep -q "group:users:rw-" || fail "ACL of large.bin not restored"
assert_contains "$PGINA_LOG" "alice: restored version 1"

step "1% changed, one file added, one deleted: the logoff uploads only those"
as_user alice bash -c '
set -e
cd /home/alice
head -c 20000 /dev/urandom > docs/f1
head -c 20000 /dev/urandom > docs/f2
echo new > docs/new.txt
rm docs/f3
'
tree_list /home/alice >"$T/v2.list"
pgina_close_session alice
assert_eq 2 "$(current)" "current version after the delta"
"$V2" show "$STORE/alice" alice.tar.zst >"$T/show2"
grep -q ' docs/f3$' "$T/show2" && fail "the deleted docs/f3 is still in the manifest"
grep -q ' docs/new.txt$' "$T/show2" || fail "docs/new.txt is not in manifest 2"
delta=$(grep ' docs/new.txt$' "$T/show2" | cut -d' ' -f2)
base=$(grep ' docs/f200$' "$T/show2" | cut -d' ' -f2)
[ "$delta" != "$base" ] || fail "the new file went into the base archive"
assert_eq "$delta" "$(grep ' docs/f1$' "$T/show2" | cut -d' ' -f2)" "docs/f1's archive (the delta)"
delta_size=$(stat -c %s "$STORE/alice/$delta")
echo "base $base_size bytes, delta $delta_size bytes"
[ "$delta_size" -lt $((base_size / 20)) ] || fail "the delta ($delta_size bytes) is not small next to the base ($base_size)"
grep -q "alice: saved version 2 .*: 4 of [0-9]* entries changed" "$PGINA_LOG" ||
        { grep "saved version 2" "$PGINA_LOG" >&2; fail "the log does not say 4 entries changed"; }

step "a new machine: base + delta give the home as it was saved, the deleted file stays deleted"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r2.list"
diff "$T/v2.list" "$T/r2.list" >&2 || fail "base + delta differ from the saved home"
assert_contains "$PGINA_LOG" "from 2 archive(s)"

step "a logoff with nothing changed uploads nothing"
n_before=$(find "$STORE/alice" -type f | wc -l)
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: nothing changed since version 2: nothing uploaded"
assert_eq "$n_before" "$(find "$STORE/alice" -type f | wc -l)" "files in the store after a logoff without changes"

step "a machine holding version 2 catches up to version 3 in place"
sed -i 's/^logoff_action = remove/logoff_action = none/' /etc/pgina/pgina.conf
assert_ok pginactl reload
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_close_session alice # the home stays here, at version 2
ino_kept=$(stat -c %i /home/alice/docs/f100)
echo "from the other machine" >"$T/other.txt"
assert_eq 3 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/other.txt="$T/other.txt" docs/f2="$T/other.txt")" \
        "the other machine's version"
assert_eq 4 "$("$V2" delete "$STORE/alice" alice.tar.zst othermachine docs/f4)" "the other machine's deletion"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: home brought from version 2 to 4 in place: 2 changed, 1 removed"
assert_eq "from the other machine" "$(cat /home/alice/docs/other.txt)" "docs/other.txt"
assert_eq "from the other machine" "$(cat /home/alice/docs/f2)" "docs/f2 replaced"
[ -e /home/alice/docs/f4 ] && fail "docs/f4, deleted on the other machine, is still here"
assert_eq "$ino_kept" "$(stat -c %i /home/alice/docs/f100)" "an unchanged file's inode (it was not rewritten)"
[ "$(stat -c %U /home/alice/docs/other.txt)" = alice ] || fail "docs/other.txt is not alice's"
as_user alice bash -c 'echo mine > /home/alice/docs/mine.txt'
pgina_close_session alice
grep -q "alice: saved version 5 .*: 2 of [0-9]* entries changed" "$PGINA_LOG" ||
        { grep "saved version 5" "$PGINA_LOG" >&2; fail "the logoff after the catch-up did not upload just its change"; }

step "a machine away for longer than keep_versions catches up from its own copy of the manifest"
# The other machine commits 6 and 7; the store drops version 5 (its prune past keep_versions).
echo "away 1" >"$T/away1.txt"
echo "away 2" >"$T/away2.txt"
assert_eq 6 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/away1.txt="$T/away1.txt")" "version 6"
assert_eq 7 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/f3="$T/away2.txt")" "version 7"
rm "$STORE/alice/alice.tar.zst.m00000005"
[ -s "$(find /var/lib/pgina -name alice.manifest | head -n 1)" ] || fail "no local copy of alice's manifest"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: home brought from version 5 to 7 in place: 2 changed, 0 removed"
assert_eq "away 1" "$(cat /home/alice/docs/away1.txt)" "docs/away1.txt"
assert_eq "away 2" "$(cat /home/alice/docs/f3)" "docs/f3"
assert_eq mine "$(cat /home/alice/docs/mine.txt)" "this machine's own docs/mine.txt"

step "... and merges its logoff onto a version committed meanwhile, though the store dropped its base"
echo "meanwhile" >"$T/meanwhile.txt"
assert_eq 8 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/meanwhile.txt="$T/meanwhile.txt")" "version 8"
rm "$STORE/alice/alice.tar.zst.m00000007"
as_user alice bash -c 'echo "mine too" > /home/alice/docs/mine2.txt'
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: version 8 from othermachine came first; this logoff's changes are merged"
assert_not_contains "$PGINA_LOG" "conflict copy"
"$V2" show "$STORE/alice" alice.tar.zst >"$T/show9"
assert_eq 9 "$(head -n 1 "$T/show9" | cut -d' ' -f2)" "the merged version"
grep -q ' docs/mine2.txt$' "$T/show9" || fail "the merged version lacks this machine's docs/mine2.txt"
grep -q ' docs/meanwhile.txt$' "$T/show9" || fail "the merged version lacks the other machine's docs/meanwhile.txt"

step "a directory holding one of two hardlinks is renamed: a new machine still restores the chain"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice mv "/home/alice/dir with spaces" "/home/alice/moved dir"
tree_list /home/alice >"$T/v6.list"
pgina_close_session alice
rm -rf /home/alice
sed -i 's/^version=.*/version=/' "$(find /var/lib/pgina -name alice.state | head -n 1)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r6.list"
diff "$T/v6.list" "$T/r6.list" >&2 || fail "the chain after the rename differs from the saved home"
[ "$(stat -c %h /home/alice/hardlink)" = 2 ] || fail "the hardlink is no longer a hardlink"
pgina_close_session alice

step "a delta keeps what it archives whole: a changed file's ACL, user xattr and holes"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice "$PYTHON" -c '
import os
h = "/home/alice/"
with open(h + "large.bin", "r+b") as f:
    f.write(b"changed in a delta")
with open(h + "docs/f5", "wb") as f:
    f.write(b"with an xattr")
os.setxattr(h + "docs/f5", "user.pgina", b"kept")
with open(h + "sparse.img", "r+b") as f:
    f.seek(64 * 1024 * 1024)
    f.write(b"more")
'
as_user alice setfacl -m g:users:r /home/alice/docs/f6
as_user alice bash -c 'echo "acl now" >> /home/alice/docs/f6'
tree_list /home/alice >"$T/v7.list"
pgina_close_session alice
grep -q "alice: saved version .*: [0-9] of [0-9]* entries changed" "$PGINA_LOG" || fail "that logoff was not a delta"
rm -rf /home/alice
sed -i 's/^version=.*/version=/' "$(find /var/lib/pgina -name alice.state | head -n 1)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r7.list"
diff "$T/v7.list" "$T/r7.list" >&2 || fail "the chain differs from the saved home"
getfacl -cp /home/alice/large.bin | grep -q "group:users:rw-" || fail "large.bin lost its ACL in the delta"
getfacl -cp /home/alice/docs/f6 | grep -q "group:users:r--" || fail "docs/f6's new ACL is not in the delta"
assert_eq kept "$("$PYTHON" -c 'import os; print(os.getxattr("/home/alice/docs/f5", "user.pgina").decode())')" \
        "docs/f5's user xattr"
[ "$(stat -c %b /home/alice/sparse.img)" -lt 1000 ] || fail "sparse.img came back dense from the delta"
assert_eq more "$(dd if=/home/alice/sparse.img bs=1 skip=$((64 * 1024 * 1024)) count=4 status=none)" "sparse.img's new data"
pgina_close_session alice

step "an old single archive (format 1) is read; the first logoff writes format 2 beside it"
mkdir -p "$T/old/home" "$STORE/bob"
echo "from format 1" >"$T/old/home/old.txt"
tar --zstd -cf "$STORE/bob/bob.tar.zst" -C "$T/old/home" .
printf 'version=1700000000.000000001-oldformat\nsha256=%s\nsize=%s\nhost=old\ntime=1\n' \
        "$(sha256sum <"$STORE/bob/bob.tar.zst" | cut -d' ' -f1)" "$(stat -c %s "$STORE/bob/bob.tar.zst")" \
        >"$STORE/bob/bob.tar.zst.meta"
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
assert_eq "from format 1" "$(cat /home/bob/old.txt)" "bob's file from the format-1 archive"
as_user bob bash -c 'echo added > /home/bob/new.txt'
pgina_close_session bob
[ -e "$STORE/bob/bob.tar.zst.m00000001" ] || { ls -la "$STORE/bob" >&2; fail "no manifest after the format-1 profile's logoff"; }
[ -e "$STORE/bob/bob.tar.zst" ] && fail "the format-1 archive is still the current profile"
[ -e "$STORE/bob/bob.tar.zst.v-1700000000.000000001-oldformat" ] || { ls -la "$STORE/bob" >&2; fail "the format-1 archive was not kept as a version"; }
[ -e "$STORE/bob/bob.tar.zst.meta" ] && fail "the format-1 .meta is still there"
"$V2" show "$STORE/bob" bob.tar.zst | grep -q ' new.txt$' || fail "new.txt is not in bob's manifest"

step "a damaged record (the walk and this worker both refuse it): the whole home is saved, nothing lost"
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
rec=$(find /var/lib/pgina -name bob.record | head -n 1)
[ -n "$rec" ] || fail "no record of bob's home after his restore"
"$PYTHON" - "$rec" <<'PY'
import sys
p = sys.argv[1]
lines = open(p, 'rb').read().split(b'\n')
lines[len(lines) // 2] = b'not a scan line'
open(p, 'wb').write(b'\n'.join(lines))
PY
as_user bob bash -c 'echo changed > /home/bob/new.txt'
tree_list /home/bob >"$T/bob2.list"
mark=$(wc -l <"$PGINA_LOG")
pgina_close_session bob
tail -n +"$((mark + 1))" "$PGINA_LOG" >"$T/bob-record.log"
assert_contains "$T/bob-record.log" "bob: no record of version 1 here: the whole home is uploaded"
assert_contains "$T/bob-record.log" "bob: saved version 2 to file://"
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
tree_list /home/bob >"$T/bob2r.list"
diff "$T/bob2.list" "$T/bob2r.list" >&2 || fail "bob's home saved without its record differs"
pgina_close_session bob

step "host untouched, no root-owned file in the homes"
bad=$(find /home/alice /home/bob -uid 0 | head -n 3)
[ -z "$bad" ] || fail "root-owned files in a home: $bad"
