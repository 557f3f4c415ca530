#!/bin/bash
# A home that is no version of the store (its last logoff merged onto another machine's version,
# or kept a conflict copy) is restored whole at the next logon. A process that outlived that
# session may have written to it after the logoff: before this fix the logoff dropped the record,
# so the whole restore replaced the home and the write was gone. Now the logoff keeps the record
# of the home as it left it, and the logon uses the home as it is when something changed it since
# (its next logoff keeps a conflict copy: nothing is lost); an unchanged home is restored whole.
. "$(dirname "$0")/lib.sh"

pgsmb_delta_test

step "version 1"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs && echo one > /home/alice/docs/one.txt'
sleep 0.3
pgina_close_session alice
assert_eq 1 "$(current)" "version 1"

step "a session here changes docs/mine.txt while another machine commits docs/other.txt: the logoff merges"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo mine > /home/alice/docs/mine.txt'
echo other >"$T/other.txt"
assert_eq 2 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/other.txt="$T/other.txt")" "version 2"
sleep 0.3
pgina_close_session alice
assert_eq 3 "$(current)" "version 3 (the merge)"

step "a process that outlived the session writes docs/notes.txt after the logoff"
sleep 0.2
as_user alice bash -c 'echo "written after the logoff" > /home/alice/docs/notes.txt'

step "the next logon keeps the home as it is"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: 'docs/notes.txt' changed here after the last logoff: the home is used as it is (no version of the store)"
assert_eq "written after the logoff" "$(cat /home/alice/docs/notes.txt 2>&1)" "docs/notes.txt after the logon"
pgina_close_session alice
assert_contains "$PGINA_LOG" "saved as conflict copy"
copy=$(find "$STORE/alice" -name 'alice.tar.zst.c-*' | head -n 1)
[ -n "$copy" ] || fail "no conflict copy in $STORE/alice"

step "with nothing changed since, the logon after the conflict copy restores version 3 whole"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq "other" "$(cat /home/alice/docs/other.txt 2>&1)" "docs/other.txt (the other machine's) after the logon"
assert_eq "mine" "$(cat /home/alice/docs/mine.txt 2>&1)" "docs/mine.txt (this machine's, merged) after the logon"
pgina_close_session alice
left=$(find /var/lib/pgina -name 'alice.up.*' 2>/dev/null)
[ -z "$left" ] || fail "upload marks left behind after the logoffs: $left"
