#!/bin/bash
# pgSMB delta profiles (store format 2) through a real (private) smbd: the manifest's exclusive
# create is SMB's FILE_CREATE there, listings, unique archive names and the read-back go over
# SMB. A base and manifest 1; a 1% change uploads a small delta; a new machine restores the
# chain exactly; another machine's commit (written into the share) is caught up in place; a
# logoff racing another machine's commit merges onto it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
need pamtester smbd
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool
smbd_start

pgsmb_pam_service
CREDS=/etc/pgina/smb-service.cred
mkdir -p /etc/pgina
printf 'username = %s\npassword = %s\ndomain = PGTEST\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf Logon-pw-1 <<CONF
share = $(smbd_url)
credentials = $CREDS
retries = 1
retry_delay = 0
timeout = 20
[localmachine]
logoff_action = remove
CONF
pgina_start
D=$SMBD_SHARE/alice
current() { "$V2" show "$D" alice.tar.zst | head -n 1 | cut -d' ' -f2; }
tree_list() {
        (cd "$1" && find . -mindepth 1 -path ./.cache -prune -o -printf '%y %m %s %Ts %P\n' | LC_ALL=C sort &&
                find . -path ./.cache -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

step "first logoff over SMB: a base and manifest 1"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
as_user alice bash -c 'set -e; cd ~; mkdir -p docs sub/deep; for i in $(seq 1 100); do head -c 10000 /dev/urandom > docs/f$i; done
ln -s docs/f1 link; ln docs/f2 hard; echo deep > sub/deep/x; chmod 0500 sub/deep'
tree_list /home/alice >"$T/v1.list"
pgina_close_session alice
assert_eq 1 "$(current)" "version after the first logoff over SMB"
[ -e "$D/alice.tar.zst" ] && fail "a format-1 archive was written"
assert_contains "$PGINA_LOG" "alice: saved version 1 to smb://"

step "a new machine restores it"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r1.list"
diff "$T/v1.list" "$T/r1.list" >&2 || fail "the restored home differs"

step "1% changed: a small delta over SMB; a new machine restores base + delta"
as_user alice bash -c 'head -c 10000 /dev/urandom > ~/docs/f7; rm ~/docs/f8'
tree_list /home/alice >"$T/v2.list"
pgina_close_session alice
assert_eq 2 "$(current)" "version after the delta"
grep -q "alice: saved version 2 .*: 2 of [0-9]* entries changed" "$PGINA_LOG" ||
        { grep "saved version 2" "$PGINA_LOG" >&2; fail "not a delta of docs/f7 and docs"; }
# walked and compressed while the store connected, and taken: the store still had version 1
assert_contains "$PGINA_LOG" "alice: the delta began"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r2.list"
diff "$T/v2.list" "$T/r2.list" >&2 || fail "base + delta over SMB differ from the saved home"
# the delta came on a second connection while the base streamed
grep -q "alice: archive 2 of 2 (.*in [0-9]* ms (fetched ahead)" "$PGINA_LOG" ||
        { grep "alice: archive" "$PGINA_LOG" >&2; fail "the delta was not fetched ahead"; }

step "a delta changed on the share is refused over SMB, fetched ahead or streamed: a temporary profile"
pgina_close_session alice
assert_eq 2 "$(current)" "version after a logoff that changed nothing"
arch=$("$V2" show "$D" alice.tar.zst | grep ' docs/f7$' | cut -d' ' -f2)
cp -p "$D/$arch" "$T/delta.keep"
"$PYTHON" - "$D/$arch" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x55
open(p, 'wb').write(bytes(b))
PY
mark=$(wc -l <"$PGINA_LOG")
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tail -n +"$((mark + 1))" "$PGINA_LOG" >"$T/tampered.log"
assert_contains "$T/pam.out" "temporary profile"
assert_contains "$T/tampered.log" "alice: archive $arch was not fetched ahead (archive $arch: its size or checksum does not match the manifest's"
grep -q "alice: profile not restored, temporary profile: .*damaged" "$T/tampered.log" ||
        { grep alice "$T/tampered.log" | tail -n 5 >&2; fail "the changed delta was not refused by its checksum"; }
[ -e /home/alice/docs/f7 ] && fail "a file of the changed delta is in the home"
pgina_close_session alice
assert_eq 2 "$(current)" "version after the temporary profile's logoff"
cp -p "$T/delta.keep" "$D/$arch"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r2b.list"
diff "$T/v2.list" "$T/r2b.list" >&2 || fail "base + the delta put back differ from the saved home"

step "a delta longer on the share than its manifest says is refused (the read stops at the size only when the server says that size)"
pgina_close_session alice
printf 'trailing' >>"$D/$arch"
mark=$(wc -l <"$PGINA_LOG")
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tail -n +"$((mark + 1))" "$PGINA_LOG" >"$T/longer.log"
assert_contains "$T/pam.out" "temporary profile"
assert_contains "$T/longer.log" "alice: archive $arch was not fetched ahead (archive $arch: its size or checksum does not match the manifest's"
[ -e /home/alice/docs/f7 ] && fail "a file of the longer delta is in the home"
pgina_close_session alice
cp -p "$T/delta.keep" "$D/$arch"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
tree_list /home/alice >"$T/r2c.list"
diff "$T/v2.list" "$T/r2c.list" >&2 || fail "base + the delta put back differ from the saved home"

step "another machine's version is caught up in place"
sed -i 's/^logoff_action = remove/logoff_action = none/' /etc/pgina/pgina.conf
assert_ok pginactl reload
pgina_close_session alice
echo other >"$T/other"
assert_eq 3 "$("$V2" commit "$D" alice.tar.zst othermachine docs/other="$T/other")" "the other machine's version"
chown -R "$SMBD_USER" "$D"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: home brought from version 2 to 3 in place"
assert_eq other "$(cat /home/alice/docs/other)" "docs/other"

step "a logoff racing another machine's commit over SMB merges onto it"
as_user alice bash -c 'echo mine > ~/docs/mine'
echo theirs >"$T/theirs"
assert_eq 4 "$("$V2" commit "$D" alice.tar.zst othermachine docs/theirs="$T/theirs")" "the other machine's version"
chown -R "$SMBD_USER" "$D"
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: version 4 from othermachine came first"
"$V2" show "$D" alice.tar.zst >"$T/show5"
grep -q ' docs/mine$' "$T/show5" || fail "this machine's docs/mine is not in version 5"
grep -q ' docs/theirs$' "$T/show5" || fail "the other machine's docs/theirs is not in version 5"

step "the store gone at logoff: the delta begun before the connect is killed, nothing of it left"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
as_user alice bash -c 'echo later > ~/docs/later'
smbd_stop
mark=$(wc -l <"$PGINA_LOG")
pgina_close_session_nowait alice
pgina_wait_retry alice
tail -n +"$((mark + 1))" "$PGINA_LOG" >"$T/gone.log"
assert_contains "$T/gone.log" "alice: cannot reach the profile store"
assert_contains "$T/gone.log" "alice: profile not saved, the local home is kept"
assert_not_contains "$T/gone.log" "the delta began"
left=$(pgrep -a -u alice || true)
[ -z "$left" ] || fail "processes of alice left after the failed logoff: $left"
assert_eq later "$(cat /home/alice/docs/later)" "the kept home's new file"
