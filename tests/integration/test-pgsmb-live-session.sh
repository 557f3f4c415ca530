#!/bin/bash
# pgSMB and live sessions (file:// store):
#   - a second logon of a user who already has a session here neither downloads nor replaces the
#     home, even when the store holds another version: a file written after the first logon
#     survives, nothing of the store's version appears, no staging directory is left;
#   - a logon while the user's logoff job is still uploading waits for the job (pginad parks it
#     and says so), then finds the home the job saved: the upload finished before the logon's
#     gateway ran, and the logon does not download over it.
. "$(dirname "$0")/lib.sh"
need pamtester zstd
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store
mkdir -p "$STORE"
meta_version() { sed -n 's/^version=//p' "$STORE/alice/alice.tar.zst.meta"; }
# line number of the first line of the log matching PATTERN after line $2 (0 = none)
log_line() { awk -v from="$2" -v pat="$1" 'NR > from && index($0, pat) { print NR; exit }' "$PGINA_LOG"; }

pgsmb_pam_service
# compression_level 19: random data compresses at a few MB/s, so the logoff job takes seconds
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
store_format = 1
retries = 1
retry_delay = 0
compression_level = 19
[localmachine]
logoff_action = none
CONF
pgina_start

step "setup: alice's profile in the store"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'printf "v1\n" > /home/alice/file'
pgina_close_session alice
v1=$(meta_version)
[ -n "$v1" ] || fail "no profile saved"

step "first logon, then the store changes elsewhere (another machine saved a new version)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'printf "written in session 1\n" > /home/alice/after-first-logon; printf "v1-local\n" > /home/alice/file'
# another machine's version: a home with other-machine-only and file = other
mkdir -p "$T/other/home"
printf 'other\n' >"$T/other/home/file"
printf 'x\n' >"$T/other/home/other-machine-only"
tar --zstd -cf "$T/other.tar.zst" -C "$T/other/home" . || fail "cannot build the other machine's archive"
cp "$T/other.tar.zst" "$STORE/alice/alice.tar.zst"
printf 'version=9999999999-othermachine\nsha256=%s\nsize=%s\nhost=other\ntime=1\n' \
        "$(sha256sum <"$T/other.tar.zst" | cut -d' ' -f1)" "$(stat -c %s "$T/other.tar.zst")" \
        >"$STORE/alice/alice.tar.zst.meta"
ino=$(stat -c %i /home/alice)

step "a second logon while the first session is open does not touch the home"
mark=$(wc -l <"$PGINA_LOG")
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
[ "$(pginactl sessions | grep -c alice)" -ge 2 ] || fail "alice does not have two sessions"
assert_eq "written in session 1" "$(cat /home/alice/after-first-logon 2>/dev/null)" "file written after the first logon"
assert_eq "v1-local" "$(cat /home/alice/file)" "file changed in session 1"
[ -e /home/alice/other-machine-only ] && fail "the store's version was extracted into the live home"
assert_eq "$ino" "$(stat -c %i /home/alice)" "the home directory was replaced (inode)"
compgen -G "/home/.pgina-*" >/dev/null && { ls -la /home >&2; fail "staging directory left in /home"; }
tail -n +"$mark" "$PGINA_LOG" >"$T/second.log"
assert_contains "$T/second.log" "alice is logged on here already: the home is in use, not restored"
assert_not_contains "$T/second.log" "alice: restored"
getent passwd alice | grep -q "pGina created pgSMB tmp" && fail "the second logon made the profile temporary"

step "closing one of two sessions is no logoff: nothing uploaded"
sum=$(sha256sum <"$STORE/alice/alice.tar.zst")
pgina_close_session_nowait alice
pgina_wait_jobs
assert_eq "$sum" "$(sha256sum <"$STORE/alice/alice.tar.zst")" "the store after closing one of two sessions"
[ "$(pginactl sessions | grep -c alice)" -eq 1 ] || fail "alice should have one session left"
pgina_close_session alice # the last one: the upload is a conflict copy (the store moved on)
compgen -G "$STORE/alice/alice.tar.zst.conflict-*" >/dev/null || { ls -la "$STORE/alice" >&2; fail "no conflict copy"; }
assert_eq "$sum" "$(sha256sum <"$STORE/alice/alice.tar.zst")" "the other machine's archive was overwritten"

step "a logon while the logoff job is uploading waits for it"
# back to a clean state: take the other machine's version, then make the home big
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq "other" "$(cat /home/alice/file)" "the other machine's version after the logon"
as_user alice bash -c 'head -c 12M /dev/urandom > /home/alice/big'
big_sum=$(sha256sum </home/alice/big)
mark=$(wc -l <"$PGINA_LOG")
pgina_close_session_nowait alice
# the job must be running now
for _ in $(seq 50); do
        pginactl status >"$T/status.out" 2>&1
        grep -qE 'running' "$T/status.out" && break
        sleep 0.1
done
grep -qE 'running' "$T/status.out" || fail "the logoff job did not start (or was already done: make the home bigger)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
cat "$T/pam.out"
assert_contains "$T/pam.out" "the logoff of alice on this machine is still being completed"
parked=$(log_line "alice: logon waits for the pending logoff job" "$mark")
saved=$(log_line "alice: saved" "$mark")
finished=$(log_line "logoff job of alice finished" "$mark")
logon=$(log_line "logon of alice (service pgtest): ok" "$mark")
[ -n "$parked" ] && [ -n "$saved" ] && [ -n "$finished" ] && [ -n "$logon" ] || {
        tail -n +"$mark" "$PGINA_LOG" >&2
        fail "missing log lines (parked=$parked saved=$saved finished=$finished logon=$logon)"
}
[ "$parked" -lt "$saved" ] && [ "$saved" -lt "$finished" ] && [ "$finished" -lt "$logon" ] || {
        tail -n +"$mark" "$PGINA_LOG" >&2
        fail "wrong order: parked@$parked saved@$saved job finished@$finished logon@$logon"
}
# the job saved the big home; the logon found its own version and did not download over it
v_now=$(meta_version)
tail -n +"$finished" "$PGINA_LOG" >"$T/after-job.log"
assert_contains "$T/after-job.log" "alice: home is already version $v_now, no download"
assert_eq "$big_sum" "$(sha256sum </home/alice/big)" "the big file after the waited logon"
compgen -G "$STORE/alice/*.tmp-*" >/dev/null && { ls -la "$STORE/alice" >&2; fail "temporary files left in the store"; }
pgina_close_session alice
