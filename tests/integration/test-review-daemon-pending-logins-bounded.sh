#!/bin/bash
# Soak review (issue 16): an authenticated logon waits up to TOKEN_TTL_MS (5 min) for its PAM
# session, holding the password's locked page; 200 `authenticate acct_mgmt` without
# open_session grew pginad by ~830 KiB, with no bound. Now at most 8 per user (and 512 in all)
# wait: past that the oldest is dropped, said in the log, and the newest still opens its session.
. "$(dirname "$0")/lib.sh"
need pamtester

pam_service pgtest <<'PAM'
auth     required pam_pgina.so timeout=30
account  required pam_pgina.so
session  required pam_pgina.so
PAM
pgina_conf <<CONF
[order]
authentication = testplugin
[testplugin]
password = Bound-pw-3
CONF
pgina_start

step "30 logons that never open their session"
for i in $(seq 30); do
        pam_run pgtest alice Bound-pw-3 authenticate acct_mgmt || fail "logon $i failed: $(tail -n 3 "$T/pam.out")"
done
dropped=$(grep -c "alice: dropping an authenticated logon that never opened its session (more than 8 are pending)" "$PGINA_LOG")
assert_eq 22 "$dropped" "pending logons dropped"

step "a logon that opens its session still works"
assert_ok pam_run pgtest alice Bound-pw-3 authenticate acct_mgmt open_session close_session
assert_contains "$PGINA_LOG" "session 1 opened for alice"
