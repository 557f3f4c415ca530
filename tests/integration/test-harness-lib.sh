#!/bin/bash
. "$(dirname "$0")/lib.sh"
step "make_user"
make_user alice 'pa$$ w\x'
getent passwd alice
pam_service selftest <<'P'
auth required pam_unix.so
account required pam_unix.so
session required pam_permit.so
P
cat /etc/pam.d/selftest
assert_ok pam_run selftest alice 'pa$$ w\x' authenticate acct_mgmt open_session close_session
cat $T/pam.out
assert_fail pam_run selftest alice 'wrong' authenticate
assert_contains $T/pam.out "Authentication failure"
pam_service pw <<'P'
password required pam_unix.so
P
assert_ok pam_run_input pw alice 'x1Y2z3Q9!\nx1Y2z3Q9!' chauthtok
cat $T/pam.out
assert_ok pam_run selftest alice 'x1Y2z3Q9!' authenticate
echo PAM_PRELOAD=$PAM_PRELOAD
