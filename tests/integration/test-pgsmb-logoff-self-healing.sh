#!/bin/bash
# Logoff work heals itself (issue 16), against a real smbd (a service account's credentials file)
# and a real SMTP server (aiosmtpd):
#   a. smbd is killed in the middle of a logoff upload, and comes back on its port later: the job
#      asks for a retry; pginactl status shows it ("retry 1", the next try, the error); the share's
#      archive and .meta are untouched, home and account are kept, the admins are mailed once;
#      pginad retries by itself (job_retry_delay = 2) and saves the home, logs and mails "saved
#      after all", and only then does localmachine remove the account (logoff_action = remove).
#   b. the store is back while a retry waits ten minutes: bob's logon reaches it, and alice's
#      retry runs at once; when another machine saved a newer version meanwhile, the retry
#      saves a conflict copy beside it (the two-machine rule: nothing overwritten) and mails.
#   c. pginad is SIGKILLed in the middle of a logoff upload and started again: it resumes the job
#      from its journal (state_dir/jobs) and the new version reaches the share.
#   d. the share is full (a tmpfs at its limit): the previous version stays intact, the home is
#      kept, the admins are mailed, and pginad tries again until there is room.
#   e. smbd is killed in the middle of a logon's download: a temporary profile, never a half home;
#      with smbd back, the next logon restores the whole profile.
# After each step the share's archive is whole (its sha256 is the .meta's, tar reads it) and holds
# what the session wrote; no partial upload is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"
. "$(dirname "$0")/smtp.sh"
need pamtester smbd zstd tar
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

CREDS=/etc/pgina/smb-service.cred
ARCH=$SMBD_SHARE/alice/alice.tar.zst
share_sums() { (cd "$SMBD_SHARE" && find . -type f ! -name '*.tmp-*' -print0 | sort -z | xargs -0 -r sha256sum); }

# share_ok MARKER BIGSUM: the share holds alice's archive, whole, with these contents.
share_ok() {
        [ -s "$ARCH" ] || { ls -laR "$SMBD_SHARE" >&2; fail "no archive of alice on the share"; }
        assert_contains "$ARCH.meta" "sha256=$(sha256sum <"$ARCH" | cut -d' ' -f1)"
        tar --zstd -tf "$ARCH" >/dev/null 2>&1 || fail "the archive on the share is not a whole tar.zst"
        assert_eq "$1" "$(archived "$ARCH" marker)" "marker in the share's archive"
        assert_eq "$2" "$(archived "$ARCH" big.bin | sha256sum)" "big.bin in the share's archive"
        if compgen -G "$SMBD_SHARE/alice/*.tmp-*" >/dev/null; then
                ls -la "$SMBD_SHARE/alice" >&2
                fail "a partial upload is left on the share"
        fi
}

# upload_started: wait until the logoff upload writes its temporary file on the share.
upload_started() {
        local i
        for ((i = 0; i < 2000; i++)); do
                compgen -G "$ARCH.tmp-*" >/dev/null && return 0
                sleep 0.01
        done
        fail "the upload never started writing to the share"
}

# session WORDS: alice logs on, her home gets a new 60 MB file and marker WORDS; sets $big.
session() {
        assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
        as_user alice bash -c "head -c 60M /dev/urandom > /home/alice/big.bin && printf '%s\n' '$1' > /home/alice/marker" ||
                fail "cannot write alice's home"
        big=$(sha256sum </home/alice/big.bin)
}

# mails SUBJECT: how many messages with this subject text the SMTP server took.
mails() { grep -c "^Subject: .*$1" "$SMTP_MAILBOX" 2>/dev/null || true; }

write_conf() { # $1: job_retry_delay
        PGINA_SERVICE_EXTRA="request_timeout = 120
job_retry_delay = $1
job_retry_max_delay = $(($1 * 2))" pgsmb_conf secret <<CONF
share = $(smbd_url)
store_format = 1
credentials = $CREDS
retries = 1
timeout = 3
compression_level = 1
notify_emails = admin@example.test
smtp_servers = 127.0.0.1:$(smtp_port)
smtp_from = pgina@example.test
smtp_credentials = none
[localmachine]
logoff_action = remove
CONF
}

pgsmb_pam_service
mkdir -p /etc/pgina "$SMBD_SHARE"
mount -t tmpfs -o size=1024m pgina-share "$SMBD_SHARE" || fail "cannot mount a tmpfs for the share"
smtp_start
smbd_start
printf 'username = %s\npassword = %s\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
write_conf 2
pgina_start

step "setup: alice's profile on the share (A0)"
session A0
pgina_close_session alice
share_ok A0 "$big"

step "a: smbd killed mid-upload: the job waits for a retry, nothing on the share changed"
session A1
before=$(share_sums)
pgina_close_session_nowait alice
upload_started
smbd_kill
pgina_wait_retry alice
has_line "$T/status-retry.out" '^alice +retry 1 +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]+ +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]+ +pgsmb: '
assert_eq "$before" "$(share_sums)" "the share after the killed upload"
assert_eq "$big" "$(sha256sum </home/alice/big.bin)" "the kept home's big file"
getent passwd alice >/dev/null || fail "the account was removed although its home was not saved"
assert_eq 1 "$(mails 'profile not saved for alice')" "'profile not saved' mails"
assert_contains "$SMTP_MAILBOX" "pginad tries again by itself"

step "a: smbd back on its port: pginad saves the home by itself"
smbd_start same-port
pginactl -t 60 wait alice >"$T/wait.out" 2>&1 || fail "alice's retry did not save her home: $(cat "$T/wait.out")"
assert_contains "$PGINA_LOG" "alice: profile saved after all (retry"
share_ok A1 "$big"
getent passwd alice >/dev/null && fail "the account was not removed once the retry saved the home"
[ -e /home/alice ] && fail "the home was not removed once the retry saved it"
assert_eq 1 "$(mails 'profile not saved for alice')" "'profile not saved' mails (none per retry)"
assert_eq 1 "$(mails 'profile saved after all for alice')" "'saved after all' mails"
[ -z "$(ls -A /var/lib/pgina/jobs)" ] || fail "the journal still holds: $(ls -A /var/lib/pgina/jobs)"

step "b: the store comes back while a retry waits 10 minutes: bob's logon wakes it"
write_conf 600
assert_ok pginactl reload
session B1
smbd_stop
pgina_close_session_retry alice
next=$(awk '/^alice +retry/ { print $6 " " $7 }' "$T/status-retry.out")
[ "$(($(date -d "$next" +%s) - $(date +%s)))" -gt 500 ] || fail "alice's next try ($next) is not 10 minutes ahead"
smbd_start same-port
t0=$(date +%s)
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
pginactl -t 60 wait alice >"$T/wait.out" 2>&1 || fail "alice's retry did not run: $(cat "$T/wait.out")"
el=$(($(date +%s) - t0))
[ "$el" -lt 60 ] || fail "alice's retry ran $el s after bob's logon"
assert_contains "$PGINA_LOG" "plugin pgsmb works again (a call of bob): retrying the logoff work of alice now"
share_ok B1 "$big"
pgina_close_session bob

step "b: another machine saved a newer version while a retry waited: the retry overwrites nothing"
session B2
smbd_stop
pgina_close_session_retry alice
# What the other machine's logoff left: its archive (here: B1's bytes) and a .meta of its version.
printf 'version=9999-othermachine\nsha256=%s\nsize=%s\nhost=other\ntime=1\n' \
        "$(sha256sum <"$ARCH" | cut -d' ' -f1)" "$(stat -c %s "$ARCH")" >"$ARCH.meta"
other=$(share_sums)
conflicts=$(mails 'profile conflict for alice')
smbd_start same-port
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session # wakes the retry
pginactl -t 60 wait alice >"$T/wait.out" 2>&1 || fail "alice's retry did not run: $(cat "$T/wait.out")"
copy=$(compgen -G "$ARCH.conflict-*" | head -n 1)
[ -n "$copy" ] || { ls -la "$SMBD_SHARE/alice" >&2; fail "no conflict copy of the retried upload"; }
assert_eq B2 "$(archived "$copy" marker)" "marker in the conflict copy"
assert_eq "$big" "$(archived "$copy" big.bin | sha256sum)" "big.bin in the conflict copy"
assert_eq "$other" "$(cd "$SMBD_SHARE" && find . -type f ! -name '*.tmp-*' ! -name '*.conflict-*' -print0 | sort -z | xargs -0 -r sha256sum)" \
        "the other machine's archive and .meta after the retry"
assert_eq $((conflicts + 1)) "$(mails 'profile conflict for alice')" "'profile conflict' mails"
pgina_close_session bob
rm -f "$SMBD_SHARE"/alice/alice.tar.zst.conflict-*
# Back to one history: the next logon takes the other machine's version.
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq B1 "$(cat /home/alice/marker)" "marker after the logon that took the other machine's version"
pgina_close_session alice

step "c: pginad SIGKILLed mid-upload: restarted, it resumes the job and saves the home"
write_conf 2
assert_ok pginactl reload
session C1
pgina_close_session_nowait alice
upload_started
pgina_kill
[ -s /var/lib/pgina/jobs/alice.job ] || fail "no journal entry of alice's job after the kill"
pgina_start
assert_contains "$PGINA_LOG" "Resuming the logoff job of alice"
assert_contains "$PGINA_LOG" "logoff job of alice started (resumed)"
pgina_wait_jobs
share_ok C1 "$big"
compgen -G "$ARCH.v-*" >/dev/null || fail "the previous version was not kept"
getent passwd alice >/dev/null && fail "the account was not removed after the resumed upload"
[ -z "$(ls -A /var/lib/pgina/jobs)" ] || fail "the journal still holds: $(ls -A /var/lib/pgina/jobs)"

step "d: the share is full: previous version intact, home kept, mailed, retried until there is room"
session D1
used=$(df -BM --output=used "$SMBD_SHARE" | tail -n 1 | tr -dc 0-9)
mount -o remount,size=$((used + 20))m "$SMBD_SHARE" || fail "cannot shrink the share's tmpfs"
before=$(share_sums)
fulls=$(mails 'profile not saved for alice')
pgina_close_session_retry alice
assert_eq "$before" "$(share_sums)" "the share after the upload that did not fit"
assert_eq "$big" "$(sha256sum </home/alice/big.bin)" "the kept home's big file"
assert_eq $((fulls + 1)) "$(mails 'profile not saved for alice')" "'profile not saved' mails"
grep -E '^alice +retry' "$T/status-retry.out" | grep -qiE 'space|full' ||
        fail "pginactl status does not say the share is full: $(cat "$T/status-retry.out")"
mount -o remount,size=1024m "$SMBD_SHARE" || fail "cannot grow the share's tmpfs"
pginactl -t 60 wait alice >"$T/wait.out" 2>&1 || fail "alice's retry did not save her home: $(cat "$T/wait.out")"
share_ok D1 "$big"
getent passwd alice >/dev/null && fail "the account was not removed once the retry saved the home"

step "e: smbd killed mid-download: a temporary profile, never a half home"
before=$(share_sums)
pam_run pgtest alice secret authenticate acct_mgmt open_session &
logon=$!
caught=
for ((i = 0; i < 2000; i++)); do
        if compgen -G "/home/.pgina-restore-alice-*/*" >/dev/null; then
                smbd_pause
                caught=1
                break
        fi
        sleep 0.005
done
[ -n "$caught" ] || { wait "$logon"; fail "the download was never seen in progress"; }
smbd_kill
wait "$logon" || fail "the logon failed with smbd killed mid-download: $(tail -n 3 "$T/pam.out")"
getent passwd alice | grep -q "pGina created pgSMB tmp" || fail "alice has no temporary profile: $(getent passwd alice)"
[ -e /home/alice/marker ] || [ -e /home/alice/big.bin ] && fail "the temporary home holds part of the profile"
compgen -G "/home/.pgina-*" >/dev/null && fail "a staging directory was left: $(ls -d /home/.pgina-*)"
assert_eq "$before" "$(share_sums)" "the share after the killed download"
smbd_start same-port
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: temporary profile, not uploaded"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq D1 "$(cat /home/alice/marker)" "marker after the next logon"
assert_eq "$big" "$(sha256sum </home/alice/big.bin)" "big.bin after the next logon"
pgina_close_session alice
share_ok D1 "$big"
