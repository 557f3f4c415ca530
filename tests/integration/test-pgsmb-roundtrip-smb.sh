#!/bin/bash
# pgSMB round trip through a real (private) smbd, as test-pgsmb-roundtrip-file.sh does through
# file://: odd names, a symlink, a hardlink, a sparse and a large file and an ACL survive logoff
# (upload over SMB) and a logon with another uid; everything is back, owned by the new uid.
#   A. credentials = a root-only smbclient authentication file (a service account): alice has no
#      local account; pgsmb creates it, localmachine logoff_action=remove deletes account and home
#      at logoff, the next logon recreates both with another uid.
#   B. credentials = user: the logon password reaches smbd (bob's samba password is his pgina
#      logon password). bob's unix account exists (smbd needs it); for the second logon it is
#      recreated with another uid and the home deleted, the share folder keeps its owner.
#   C. credentials = user with a samba password that is not the logon password: smbd refuses,
#      the user gets a temporary profile (so B's success did come from the logon password).
#   D. a credentials file readable by others is refused: temporary profile, nothing uploaded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
need pamtester setfacl getfacl smbd
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
smbd_start


fill_home() { # USER
        as_user "$1" env HOME_DIR="/home/$1" bash -c '
set -e
cd "$HOME_DIR"
mkdir -p "dir with spaces/ünïcödé" .cache empty-dir
printf "hello\n" > "dir with spaces/ünïcödé/file -x"
printf "newline\n" > "$(printf "name\nwith newline")"
printf "cached\n" > .cache/junk
ln -s "dir with spaces/ünïcödé/file -x" link-inside
ln "dir with spaces/ünïcödé/file -x" hardlink
truncate -s 1G sparse.img
printf "tail" | dd of=sparse.img bs=1 seek=$((512*1024*1024)) conv=notrunc status=none
head -c 30M /dev/urandom > large.bin
chmod 0640 large.bin
setfacl -m g:users:rw large.bin
touch -d "2001-02-03 04:05:06" "dir with spaces/ünïcödé/file -x"
' || fail "cannot fill the home of $1"
}
snapshot() { # USER TAG
        local h=/home/$1
        (cd "$h" && find . -path ./.cache -prune -o -print0 | sort -z |
                xargs -0 stat -c '%n|%f|%s|%Y' | grep -v '^\.|') >"$T/$1.$2.list"
        (cd "$h" && sha256sum large.bin sparse.img hardlink) >"$T/$1.$2.sum"
        getfacl -cp "$h/large.bin" >"$T/$1.$2.acl" 2>/dev/null
}
check_restored() { # USER UID
        local h=/home/$1 bad
        snapshot "$1" after
        diff "$T/$1.before.list" "$T/$1.after.list" >&2 || fail "$1: the restored tree differs (names, modes, sizes, mtimes)"
        diff "$T/$1.before.sum" "$T/$1.after.sum" >&2 || fail "$1: restored contents differ"
        [ -e "$h/.cache/junk" ] && fail "$1: .cache was archived although excluded"
        bad=$(find "$h" ! -uid "$2" | head -n 3)
        [ -z "$bad" ] || fail "$1: files not owned by the new uid $2: $bad"
        [ "$(stat -c %h "$h/hardlink")" = 2 ] || fail "$1: hardlink not restored as a hardlink"
        [ "$(stat -c %b "$h/sparse.img")" -lt 1000 ] || fail "$1: sparse file restored dense"
        [ "$(readlink "$h/link-inside")" = "dir with spaces/ünïcödé/file -x" ] || fail "$1: symlink target changed"
        diff "$T/$1.before.acl" "$T/$1.after.acl" >&2 || fail "$1: ACL of large.bin not restored"
}

pgsmb_pam_service
# write_conf CREDENTIALS
write_conf() {
        PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf Logon-pw-1 <<CONF
share = $(smbd_url)
store_format = 1
credentials = $1
retries = 2
retry_delay = 1
timeout = 20
[localmachine]
logoff_action = remove
CONF
}
CREDS=/etc/pgina/smb-service.cred
mkdir -p /etc/pgina
printf 'username = %s\npassword = %s\ndomain = PGTEST\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
write_conf "$CREDS"
pgina_start

step "A: first logon over SMB with a service account: account created, home from /etc/skel"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
getent passwd alice | grep -q "pGina created pgSMB" || fail "no pgsmb-created account for alice"
getent passwd alice | grep -q "pGina created pgSMB tmp" && fail "alice got a temporary profile: $(grep -h 'alice:' "$PGINA_LOG" | tail -n 3)"
uid1=$(id -u alice)
fill_home alice
snapshot alice before

step "A: logoff uploads over SMB, then localmachine removes account and home"
pgina_close_session alice
[ -s "$SMBD_SHARE/alice/alice.tar.zst" ] || { ls -laR "$SMBD_SHARE" >&2; fail "no archive in the share"; }
assert_contains "$SMBD_SHARE/alice/alice.tar.zst.meta" "sha256=$(sha256sum <"$SMBD_SHARE/alice/alice.tar.zst" | cut -d' ' -f1)"
[ "$(stat -c %U "$SMBD_SHARE/alice/alice.tar.zst")" = "$SMBD_USER" ] || fail "the archive was not written by the service account"
assert_contains "$PGINA_LOG" "alice: saved"
assert_contains "$PGINA_LOG" "127.0.0.1"
getent passwd alice >/dev/null && fail "alice's account was not removed at logoff"
[ -e /home/alice ] && fail "alice's home was not removed at logoff"
compgen -G "$SMBD_SHARE/alice/*.tmp-*" >/dev/null && { ls -la "$SMBD_SHARE/alice" >&2; fail "temporary files left in the share"; }

step "A: logon again with another uid: everything back, owned by the new uid"
useradd -M filler # takes alice's old uid
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
uid2=$(id -u alice)
[ "$uid2" != "$uid1" ] || fail "alice got the same uid again ($uid1); the test proves nothing"
assert_contains "$PGINA_LOG" "alice: restored"
check_restored alice "$uid2"
pgina_close_session alice

step "B: credentials = user: bob's logon password is his samba password"
write_conf user
assert_ok pginactl reload
smbd_add_user bob Logon-pw-1
assert_ok pam_run pgtest bob Logon-pw-1 authenticate acct_mgmt open_session
getent passwd bob | grep -q "pGina created pgSMB tmp" && fail "bob got a temporary profile: $(grep -h 'bob:' "$PGINA_LOG" | tail -n 3)"
[ -d /home/bob ] || fail "no home for bob"
buid1=$(id -u bob)
fill_home bob
snapshot bob before
pgina_close_session bob
[ -s "$SMBD_SHARE/bob/bob.tar.zst" ] || { ls -laR "$SMBD_SHARE" >&2; fail "no archive of bob in the share"; }
[ "$(stat -c %U "$SMBD_SHARE/bob/bob.tar.zst")" = bob ] || fail "bob's archive was not written as bob (credentials = user)"
assert_contains "$PGINA_LOG" "bob: saved"

step "B: bob's home gone, his account recreated with another uid: everything back"
rm -rf /home/bob
userdel bob
useradd -M -s /usr/sbin/nologin -u $((buid1 + 1000)) bob
# samba's entry follows the new unix account (its SID came from the old uid)
smbpasswd -c "$SMBD_CONF" -x bob >>"$SMBD_DIR/smbpasswd.log" 2>&1 || fail "smbpasswd -x bob failed"
smbd_add_user bob Logon-pw-1
chown -R bob "$SMBD_SHARE/bob" # the server's side keeps its owner
assert_ok pam_run pgtest bob Logon-pw-1 authenticate acct_mgmt open_session
getent passwd bob | grep -q "pGina created pgSMB tmp" && fail "bob got a temporary profile: $(grep -h 'bob:' "$PGINA_LOG" | tail -n 3)"
assert_contains "$PGINA_LOG" "bob: restored"
check_restored bob $((buid1 + 1000))
pgina_close_session bob

step "C: a samba password that is not the logon password: temporary profile"
smbd_add_user carol Other-pw-2
assert_ok pam_run pgtest carol Logon-pw-1 authenticate acct_mgmt open_session
getent passwd carol | grep -q "pGina created pgSMB tmp" && fail "carol's account should not be pgina's (smbd_add_user made it)"
[ -d /home/carol ] || fail "carol got no (temporary) home"
assert_contains "$T/pam.out" "temporary profile"
assert_contains "$PGINA_LOG" "carol: profile not restored, temporary profile"
pgina_close_session carol
[ -e "$SMBD_SHARE/carol" ] && { ls -laR "$SMBD_SHARE/carol" >&2; fail "carol's temporary profile reached the share"; }
assert_contains "$PGINA_LOG" "carol: temporary profile, not uploaded"

step "D: a credentials file readable by others is refused"
chmod 0644 "$CREDS"
write_conf "$CREDS"
assert_ok pginactl reload
pam_run pgtest dave Logon-pw-1 authenticate acct_mgmt open_session # refused or temporary: either way
assert_contains "$PGINA_LOG" "must be owned by root with mode 0600"
if [ -e "$SMBD_SHARE/dave" ]; then
        fail "dave's profile reached the share through a world-readable credentials file"
fi
