#!/bin/bash
# pgSMB against a failing private smbd (service account credentials file):
#   a. smbd down at logon: connect retries (retries=2, retry_delay=1), then a temporary profile:
#      GECOS "pGina created pgSMB tmp", the user is told, the admin notice is logged; with smbd
#      back, the temporary home's logoff uploads nothing (the share stays empty).
#   b. smbd hangs (SIGSTOP) in the middle of a logoff upload of a 200 MB home, timeout = 3: the
#      upload fails in bounded time, the previous archive and its .meta on the share are intact,
#      nothing but a .tmp- name was written, the local home and account are kept although
#      localmachine logoff_action=remove (pgina_keep_home), the admin notice is logged. With smbd
#      resumed, the next logon here uses the local copy ("newer than the saved one") and the next
#      logoff uploads it (verified by reading it back from the share); no partial upload is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
need pamtester smbd zstd tar
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

share_sums() { (cd "$SMBD_SHARE" && find . -type f ! -name '*.tmp-*' -print0 | sort -z | xargs -0 -r sha256sum); }

pgsmb_pam_service
CREDS=/etc/pgina/smb-service.cred
mkdir -p /etc/pgina
write_conf() {
        PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = $(smbd_url)
store_format = 1
credentials = $CREDS
retries = 2
retry_delay = 1
timeout = 3
compression_level = 1
[localmachine]
logoff_action = remove
CONF
}

step "a: smbd down at logon: retries, then a temporary profile"
smbd_start
printf 'username = %s\npassword = %s\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
write_conf
smbd_stop # the port stays in the config: connections are refused
pgina_start
empty=$(share_sums; ls -A "$SMBD_SHARE")
t0=$(date +%s)
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
el=$(($(date +%s) - t0))
[ "$el" -lt 30 ] || fail "the logon with smbd down took $el s"
getent passwd alice | grep -q "pGina created pgSMB tmp" || fail "alice has no temporary profile: $(getent passwd alice)"
[ -d /home/alice ] || fail "alice got no temporary home"
assert_contains "$T/pam.out" "temporary profile"
assert_contains "$T/pam.out" "trying again (2 of 2)"
assert_contains "$PGINA_LOG" "alice: cannot reach the profile store (try 1 of 2)"
assert_contains "$PGINA_LOG" "alice: cannot reach the profile store (try 2 of 2)"
assert_contains "$PGINA_LOG" "admin notice (profile not restored) for alice"
as_user alice bash -c 'printf "temporary work\n" > /home/alice/tmpfile'

step "a: smbd back: the temporary home is not uploaded at logoff"
smbd_start # a new port: point the config at it
write_conf
assert_ok pginactl reload
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: temporary profile, not uploaded"
assert_eq "$empty" "$(share_sums; ls -A "$SMBD_SHARE")" "the share after the temporary profile's logoff"

step "b: setup: alice's profile on the share (version S0)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
getent passwd alice | grep -q "pGina created pgSMB tmp" && fail "alice still has a temporary profile with smbd up"
getent passwd alice | grep -q "pGina created pgSMB" || fail "alice's account is not pgsmb's"
as_user alice bash -c 'printf "S0\n" > /home/alice/marker'
pgina_close_session alice
[ -s "$SMBD_SHARE/alice/alice.tar.zst" ] || { ls -laR "$SMBD_SHARE" >&2; fail "no archive on the share"; }
getent passwd alice >/dev/null && fail "alice's account was not removed at a successful logoff"
s0=$(share_sums)
v0=$(sed -n 's/^version=//p' "$SMBD_SHARE/alice/alice.tar.zst.meta")

step "b: smbd hangs during the upload of a 200 MB home"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq "S0" "$(cat /home/alice/marker)" "restored marker"
as_user alice bash -c 'head -c 200M /dev/urandom > /home/alice/big.bin && printf "S1\n" > /home/alice/marker' ||
        fail "cannot write the big home"
big_sum=$(sha256sum </home/alice/big.bin)
pgina_close_session_nowait alice
paused=
for _ in $(seq 1000); do
        if compgen -G "$SMBD_SHARE/alice/alice.tar.zst.tmp-*" >/dev/null; then
                smbd_pause
                paused=1
                break
        fi
        sleep 0.01
done
[ -n "$paused" ] || fail "the upload never started writing to the share"
t0=$(date +%s)
tmpsize=$(stat -c %s "$SMBD_SHARE"/alice/alice.tar.zst.tmp-* | head -n 1)
echo "paused smbd with $tmpsize bytes written"
pgina_wait_retry alice
el=$(($(date +%s) - t0))
echo "the logoff job gave up for now $el s after smbd hung"
[ "$el" -lt 45 ] || fail "the upload against a hung smbd took $el s (timeout = 3, retries = 2)"
grep -c "alice: saved" "$PGINA_LOG" | grep -qx 1 || fail "an upload reported success while smbd was hung"
assert_contains "$PGINA_LOG" "alice: upload try 1 of 2 failed"
assert_contains "$PGINA_LOG" "alice: profile not saved, the local home is kept"
assert_contains "$PGINA_LOG" "admin notice (profile not saved) for alice"
assert_contains "$PGINA_LOG" "alice: home kept at logoff"
assert_eq "$s0" "$(share_sums)" "the share's archive and .meta after the failed upload"
ls -A "$SMBD_SHARE/alice" >"$T/share.list"
grep -vE '^alice\.tar\.zst(\.meta|\.tmp-.*)?$' "$T/share.list" && fail "unexpected files on the share (above)"
[ -d /home/alice ] || fail "the home was removed although it could not be saved"
getent passwd alice >/dev/null || fail "the account was removed although the home could not be saved"
assert_eq "$big_sum" "$(sha256sum </home/alice/big.bin)" "the kept home's big file"
assert_eq "S1" "$(cat /home/alice/marker)" "the kept home's marker"

step "b: smbd resumed: the next logon uses the local copy"
smbd_resume
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$T/pam.out" "newer than the saved one"
getent passwd alice | grep -q "pGina created pgSMB tmp" && fail "alice got a temporary profile"
assert_eq "S1" "$(cat /home/alice/marker)" "marker after the logon"
assert_eq "$big_sum" "$(sha256sum </home/alice/big.bin)" "big file after the logon"

step "b: the next logoff uploads it"
pgina_close_session alice
[ "$(grep -c "alice: saved" "$PGINA_LOG")" -eq 2 ] || fail "the upload after the resume did not succeed"
v1=$(sed -n 's/^version=//p' "$SMBD_SHARE/alice/alice.tar.zst.meta")
[ -n "$v1" ] && [ "$v1" != "$v0" ] || fail "the .meta version did not change ($v0 -> $v1)"
assert_contains "$SMBD_SHARE/alice/alice.tar.zst.meta" "sha256=$(sha256sum <"$SMBD_SHARE/alice/alice.tar.zst" | cut -d' ' -f1)"
assert_eq "$big_sum" "$(archived "$SMBD_SHARE/alice/alice.tar.zst" big.bin | sha256sum)" \
        "big.bin read back from the share"
assert_eq "S1" "$(archived "$SMBD_SHARE/alice/alice.tar.zst" marker)" "marker read back from the share"
[ -e "$SMBD_SHARE/alice/alice.tar.zst.v-$v0" ] || { ls -la "$SMBD_SHARE/alice" >&2; fail "the previous version S0 was not kept"; }
getent passwd alice >/dev/null && fail "alice's account was not removed after the successful upload"

step "b: no partial upload is left on the share"
if compgen -G "$SMBD_SHARE/alice/*.tmp-*" >/dev/null; then
        ls -la "$SMBD_SHARE/alice" >&2
        fail "the partial upload from the hung smbd is still on the share"
fi

step "c: smbd's connection process killed mid-upload: the retry saves it, the old archive intact until then"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'head -c 200M /dev/urandom > /home/alice/big.bin && printf "S2\n" > /home/alice/marker' ||
        fail "cannot write the big home"
big_sum=$(sha256sum </home/alice/big.bin)
before_c=$(share_sums)
fails_before=$(grep -c "alice: upload try 1 of 2 failed" "$PGINA_LOG")
pgina_close_session_nowait alice
killed=
for _ in $(seq 1000); do
        if compgen -G "$SMBD_SHARE/alice/alice.tar.zst.tmp-*" >/dev/null; then
                # the per-connection children only: the server itself lives on for the retry
                for p in $(smbd_pids); do [ "$p" = "$SMBD_PID" ] || kill -KILL "$p" 2>/dev/null; done
                killed=1
                break
        fi
        sleep 0.01
done
[ -n "$killed" ] || fail "the upload never started writing to the share"
assert_eq "$before_c" "$(share_sums)" "the share's archive and .meta right after the kill"
pgina_wait_jobs
[ "$(grep -c "alice: upload try 1 of 2 failed" "$PGINA_LOG")" -gt "$fails_before" ] ||
        fail "the killed upload did not fail its first try"
[ "$(grep -c "alice: saved" "$PGINA_LOG")" -eq 3 ] || fail "the retry after the kill did not save the profile"
assert_eq "$big_sum" "$(archived "$SMBD_SHARE/alice/alice.tar.zst" big.bin | sha256sum)" \
        "big.bin read back from the share after the retry"
assert_eq "S2" "$(archived "$SMBD_SHARE/alice/alice.tar.zst" marker)" "marker read back after the retry"
