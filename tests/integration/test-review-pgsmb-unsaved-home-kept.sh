#!/bin/bash
# Security review (issue 12.2, data loss): an unsaved home is never made a "temporary profile".
# logoff_action = remove, the store unreachable at one logoff and at the next logon:
#   logoff 1 cannot upload: the home and account are kept (pgina_keep_home);
#   logon 2 cannot reach the store: the kept home holds changes the store never got, so it is
#     used as it is (not marked "pGina created pgSMB tmp"), and the user is told that their last
#     changes are not saved yet;
#   logoff 2 (store still down) keeps the home again instead of skipping the upload as a
#     temporary profile and letting localmachine `userdel -r` it;
#   with the store back, logon 3 uses the local home and logoff 3 saves it: the file written in
#     session 1 is in the store and the account is removed only then.
# Before the fix, logon 2 marked the home temporary and logoff 2 removed it with the file.
. "$(dirname "$0")/lib.sh"
need pamtester zstd tar
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 60" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
[localmachine]
logoff_action = remove
CONF
pgina_start

step "session 0: alice's profile is saved once"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo saved-before > /home/alice/old.txt'
pgina_close_session alice
has_profile "$STORE/alice" || fail "no profile in the store after session 0"
getent passwd alice >/dev/null && fail "alice's account was not removed after a saved logoff"

step "session 1: alice writes a file; the store is unreachable at logoff"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo unsaved-work > /home/alice/work.txt'
mv "$STORE" "$STORE.away"
pgina_close_session_retry alice
assert_contains "$PGINA_LOG" "alice: profile not saved, the local home is kept"
[ -e /home/alice/work.txt ] || fail "the home was removed at a failed upload"

step "logon 2, store still unreachable: the unsaved home is used, not made temporary"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
getent passwd alice | grep -q "pGina created pgSMB tmp" &&
        fail "the unsaved home was marked a temporary profile: $(getent passwd alice)"
assert_contains "$T/pam.out" "not saved"
assert_not_contains "$T/pam.out" "temporary profile"
assert_contains "$PGINA_LOG" "alice: the local home holds changes that are not saved yet"
assert_eq "unsaved-work" "$(cat /home/alice/work.txt)" "the unsaved file after logon 2"

step "logoff 2, store still unreachable: the home is kept again"
assert_contains "$PGINA_LOG" "alice logged on here again: the pending retry of their logoff work"
pgina_close_session_retry alice
assert_not_contains "$PGINA_LOG" "alice: temporary profile, not uploaded"
[ -e /home/alice/work.txt ] || fail "the unsaved home was removed at logoff 2 (data loss)"
getent passwd alice >/dev/null || fail "the account of the unsaved home was removed at logoff 2"

step "the store is back: logon 3 uses the local home, logoff 3 saves it"
mv "$STORE.away" "$STORE"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq "unsaved-work" "$(cat /home/alice/work.txt)" "the unsaved file after logon 3"
pgina_close_session alice
assert_eq "unsaved-work" "$(stored "$STORE/alice" work.txt)" "work.txt in the store"
getent passwd alice >/dev/null && fail "alice's account was not removed after the saved logoff 3"
[ -e /home/alice ] && fail "alice's home was not removed after the saved logoff 3"
exit 0
