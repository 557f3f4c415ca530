#!/bin/bash
# Programs pgina runs get the descriptors they are given and a fixed minimal environment, nothing
# of the worker's (issue 12, part 4): pgSMB's external archive `program`, run as the user while
# the worker holds its connection to the SMB server (a service account's session), must not hold
# that TCP socket nor see pginad's environment (PGINA_LEAK_CANARY); the same for the login script
# (as the user) and for the root tools (useradd here).
#   - logon (new profile: useradd, the login script), logoff (the program compresses), logon
#     again (the program extracts): each records its open descriptors and its environment;
#   - each has exactly 0, 1 and 2 open, and exactly the documented environment;
#   - the same for the compress program with a file:// store.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
need pamtester smbd tar ls
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
smbd_start

REC=$T/rec
mkdir -p "$REC"
chmod 1777 "$REC"

# record NAME: this process's descriptors (ls's own, on its directory, left out) and environment.
# Written into every recorder below; ls inherits every descriptor the shell did not mark
# close-on-exec, which is all a leaked one would be.
record_fn='record() {
        ls -l /proc/self/fd/ | awk '\''NR > 1 && $NF !~ "^/proc/[0-9]+/fd$" { print $9, $11 }'\'' >"'$REC'/$1.fds"
        env | sort >"'$REC'/$1.env"
        cat /proc/net/tcp /proc/net/tcp6 >"'$REC'/$1.tcp" 2>/dev/null
}'

# The external program: records, then is tar (no compression: the archive is what it writes).
cat >"$T/profile-program" <<SH
#!/bin/sh
$record_fn
record "\$1"
case "\$1" in
compress) exec /usr/bin/tar -cf - . ;;
extract) exec /usr/bin/tar -xf - ;;
esac
exit 2
SH
chmod 0755 "$T/profile-program"

cat >"$T/login-script" <<SH
#!/bin/sh
$record_fn
record login
SH
chmod 0755 "$T/login-script"

# useradd: a recorder bind-mounted over it (this sandbox's mount namespace only), then the real one.
cp /usr/sbin/useradd "$T/useradd.real" || fail "cannot copy useradd"
cat >"$T/useradd" <<SH
#!/bin/sh
$record_fn
record useradd
exec "$T/useradd.real" "\$@"
SH
chmod 0755 "$T/useradd"
mount --bind "$T/useradd" /usr/sbin/useradd || skip "cannot bind-mount over /usr/sbin/useradd"
at_exit umount /usr/sbin/useradd

CREDS=/etc/pgina/smb-service.cred
mkdir -p /etc/pgina
printf 'username = %s\npassword = %s\ndomain = PGTEST\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
pgsmb_pam_service
# write_conf SHARE
write_conf() {
        PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf Logon-pw-1 <<CONF
share = $1
credentials = $CREDS
retries = 1
timeout = 20
program = $T/profile-program
compress_command = compress
uncompress_command = extract
login_script = $T/login-script
login_script_timeout = 20
CONF
}
write_conf "$(smbd_url)"
PGINA_LEAK_CANARY=1 pgina_start

# fds_only NAME: the program NAME had 0, 1 and 2 open and nothing else.
fds_only() {
        [ -s "$REC/$1.fds" ] || fail "$1 did not run (no $REC/$1.fds)"
        echo "---- descriptors of $1:"
        cat "$REC/$1.fds"
        local ino
        for ino in $(sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' "$REC/$1.fds"); do
                awk -v i="$ino" '$10 == i { found = 1 } END { exit !found }' "$REC/$1.tcp" &&
                        fail "$1 holds a TCP connection of the worker's (socket inode $ino)"
        done
        assert_eq "0 1 2" "$(cut -d' ' -f1 "$REC/$1.fds" | sort -n | tr '\n' ' ' | sed 's/ $//')" \
                "descriptors open in $1"
}
# env_is NAME VAR=VALUE...: the environment of NAME is exactly these (and what sh adds: PWD).
env_is() {
        local name=$1
        shift
        assert_not_contains "$REC/$name.env" PGINA_LEAK_CANARY
        assert_eq "$(printf '%s\n' "$@" "PWD=$(sed -n 's/^PWD=//p' "$REC/$name.env")" | LC_ALL=C sort | tr '\n' ' ')" \
                "$(grep -v '^SHLVL=\|^_=' "$REC/$name.env" | LC_ALL=C sort | tr '\n' ' ')" "environment of $name"
}

step "logon: useradd (root) and the login script (as alice) get 0, 1, 2 and a fixed environment"
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
getent passwd alice | grep -q "pGina created pgSMB tmp" && fail "alice got a temporary profile: $(grep -h 'alice:' "$PGINA_LOG" | tail -n 3)"
pgina_wait_log "alice: login script $T/login-script exited with status 0"
fds_only useradd
env_is useradd PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C PGINA_NSS_DISABLE=1
fds_only login
env_is login HOME=/home/alice USER=alice LOGNAME=alice PATH=/usr/local/bin:/usr/bin:/bin

step "logoff: the compress program, as alice, holds no socket of the worker's SMB session"
echo "kept" >/home/alice/kept.txt
chown alice: /home/alice/kept.txt
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: saved"
[ "$(stat -c %u "$REC/compress.fds")" = "$(id -u alice)" ] || fail "the compress program did not run as alice"
fds_only compress
env_is compress HOME=/home/alice USER=alice LOGNAME=alice PATH=/usr/local/bin:/usr/bin:/bin

step "logon again: the extract program, as alice, the same"
rm -rf /home/alice
assert_ok pam_run pgtest alice Logon-pw-1 authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: restored"
assert_eq kept "$(cat /home/alice/kept.txt)" "the restored file"
fds_only extract
env_is extract HOME=/home/alice USER=alice LOGNAME=alice PATH=/usr/local/bin:/usr/bin:/bin
pgina_close_session alice

step "a file:// store: the program holds none of the worker's open store files either"
mkdir -p "$T/store"
rm -f "$REC"/*
write_conf "file://$T/store"
assert_ok pginactl reload
assert_ok pam_run pgtest bob Logon-pw-1 authenticate acct_mgmt open_session
pgina_close_session bob
assert_contains "$PGINA_LOG" "bob: saved"
[ -s "$T/store/bob/bob.tar.zst" ] || fail "no archive of bob in the file store"
[ "$(stat -c %u "$REC/compress.fds")" = "$(id -u bob)" ] || fail "the compress program did not run as bob"
fds_only compress
env_is compress HOME=/home/bob USER=bob LOGNAME=bob PATH=/usr/local/bin:/usr/bin:/bin
