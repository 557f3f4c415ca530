#!/bin/bash
# Review 2, finding 4: another machine changes a file keeping its size and mtime (a tag editor's
# "preserve timestamps", touch -r). Its logoff archives it (the ctime changed there), but the
# manifests compared only type, mode, size and mtime: a catch-up here saw no change and left the
# old content, while the home claimed the new version (and its next edit here would have
# overwritten the other machine's change). Now each archiving gives its entries a new origin, and
# the catch-up writes the file.
. "$(dirname "$0")/lib.sh"

pgsmb_delta_test

step "version 1: docs/song.mp3 (mtime 1700000000) and 20 other files"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c '
set -e
mkdir -p /home/alice/docs
for i in $(seq 1 20); do head -c 20000 /dev/urandom > /home/alice/docs/f$i; done
echo "tag: old" > /home/alice/docs/song.mp3
chmod 644 /home/alice/docs/song.mp3
touch -d @1700000000 /home/alice/docs/song.mp3
'
sleep 0.3
pgina_close_session alice
assert_eq 1 "$(current)" "version 1"

step "another machine rewrites the tag, same size, same mtime"
echo "tag: new" >"$T/song.mp3"
assert_eq 2 "$(V2_MTIME=1700000000 "$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/song.mp3="$T/song.mp3")" "version 2"

step "the logon here catches up to version 2"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: home brought from version 1 to 2 in place: 1 changed"
assert_eq "tag: new" "$(cat /home/alice/docs/song.mp3)" "docs/song.mp3 after the catch-up"
assert_eq 1700000000 "$(stat -c %Y /home/alice/docs/song.mp3)" "its mtime"
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: nothing changed since version 2"
