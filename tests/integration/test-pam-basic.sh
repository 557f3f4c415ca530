#!/bin/bash
# pam_pgina.so against the real pginad, through real libpam (pamtester), with the LocalMachine
# plugin (and the test plugin where a case needs a user LocalMachine does not know):
# authenticate/acct_mgmt/open_session/close_session/chauthtok, the verdict authenticate keeps for
# acct_mgmt, AUTHORIZE for a user another module authenticated, PGINA_SESSION and env export,
# wrong password and unknown user alike, the gateway creating the account before authenticate
# returns, unlock as the user, the password never in a log.
. "$(dirname "$0")/lib.sh"
need pamtester python3 setpriv
[ -e "$BUILD/plugins/localmachine.so" ] || skip "localmachine plugin not built"

SYSLOG=$T/syslog.log
AUTH_ERR='Authentication failure'
PERM_DENIED='Permission denied'
AUTHTOK_ERR='Authentication token manipulation error'



syslog_capture "$SYSLOG"
make_user alice 'alice-Pw-1'
make_user carol 'carol-Pw-1'
groupadd -f pgina-ok
usermod -aG pgina-ok carol

pgina_conf <<EOF
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine
change_password = localmachine
EOF
pgina_start

# pam_exec logs the PAM environment of the session (PGINA_SESSION and env: exports).
pam_service pgina <<EOF
auth     required pam_pgina.so debug
account  required pam_pgina.so debug
session  required pam_pgina.so debug
session  optional pam_exec.so log=$T/session-env.log /usr/bin/env
password required pam_pgina.so debug
EOF

step "logon: authenticate, acct_mgmt, open_session, close_session succeed with the right password"
: >"$T/session-env.log"
pam_ok pgina alice 'alice-Pw-1' authenticate acct_mgmt open_session close_session
assert_contains "$T/pam.out" "successfully authenticated"
assert_contains "$T/pam.out" "account management done"
assert_contains "$T/pam.out" "successfully opened a session"
assert_contains "$T/pam.out" "session has successfully been closed"
step "open_session exported PGINA_SESSION into the PAM environment"
assert_contains "$T/session-env.log" "PGINA_SESSION="
sid=$(sed -n 's/^PGINA_SESSION=//p' "$T/session-env.log" | head -n 1)
[ -n "$sid" ] || fail "empty PGINA_SESSION"
step "close_session closed it in pginad (no session left)"
pginactl sessions >"$T/sessions.out" 2>&1 || true
assert_not_contains "$T/sessions.out" "$sid"

step "wrong password: PAM_AUTH_ERR"
pam_fails_with "$AUTH_ERR" pgina alice 'wrong-password' authenticate
cp "$T/pam.out" "$T/wrong.out"
step "unknown user: the same PAM_AUTH_ERR and the same message as a wrong password"
pam_fails_with "$AUTH_ERR" pgina nosuchuser 'wrong-password' authenticate
diff <(sed 1,2d "$T/wrong.out" | sed 's/alice/USER/g') <(sed 1,2d "$T/pam.out" | sed 's/nosuchuser/USER/g') ||
        fail "unknown user and wrong password are told apart"

step "authorization denied at logon: authenticate succeeds, acct_mgmt returns PAM_PERM_DENIED"
pgina_stop
pgina_conf <<EOF
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine
change_password = localmachine
[localmachine]
authz_groups = pgina-ok
# AUTHORIZE runs no authentication, so the record's groups come from the local account
mirror_groups = true
EOF
pgina_start
pam_fails_with "$PERM_DENIED" pgina alice 'alice-Pw-1' authenticate acct_mgmt
assert_contains "$T/pam.out" "successfully authenticated"
step "a member of authz_groups is authorized"
pam_ok pgina carol 'carol-Pw-1' authenticate acct_mgmt

step "acct_mgmt for a user another module authenticated asks pginad (AUTHORIZE)"
pam_service pgina-other <<EOF
auth     required pam_permit.so
account  required pam_pgina.so debug
EOF
pam_ok pgina-other carol x authenticate acct_mgmt
pam_fails_with "$PERM_DENIED" pgina-other alice x authenticate acct_mgmt
assert_contains "$SYSLOG" "AUTHORIZE user=alice"

step "chauthtok as root: new password twice, then only the new one works"
pam_run_input pgina alice 'New-Pw-22\nNew-Pw-22' chauthtok || fail "chauthtok failed: $(tail -n 3 "$T/pam.out")"
assert_contains "$T/pam.out" "New password: "
assert_contains "$T/pam.out" "Retype new password: "
assert_not_contains "$T/pam.out" "Current password: "
pgina_stop
pgina_conf <<EOF
[order]
authentication = localmachine
authorization = localmachine
change_password = localmachine
EOF
pgina_start
pam_ok pgina alice 'New-Pw-22' authenticate
pam_fails_with "$AUTH_ERR" pgina alice 'alice-Pw-1' authenticate
step "chauthtok with a mistyped confirmation: PAM_AUTHTOK_ERR, password unchanged"
if pam_run_input pgina alice 'Other-Pw-3\nOther-Pw-4' chauthtok; then fail "mismatch accepted"; fi
assert_contains "$T/pam.out" "Sorry, passwords do not match."
assert_contains "$T/pam.out" "$AUTHTOK_ERR"
pam_ok pgina alice 'New-Pw-22' authenticate

step "unlock as the user (non-root peer): own password works, a wrong one does not"
pam_service pgina-unlock <<EOF
auth required pam_pgina.so scenario=unlock debug
EOF
as_alice=(setpriv --reuid=alice --regid=alice --init-groups)
saved=("${PAM_HOST_ENV[@]}")
PAM_HOST_ENV=("${as_alice[@]}" "${saved[@]}")
pam_ok pgina-unlock alice 'New-Pw-22' authenticate
pam_fails_with "$AUTH_ERR" pgina-unlock alice 'bad' authenticate
step "unlock as alice for another user is refused"
if pam_run pgina-unlock carol 'carol-Pw-1' authenticate; then fail "alice unlocked as carol"; fi
PAM_HOST_ENV=("${saved[@]}")

step "credui: another user authenticated into the caller's session (PGINA_SESSION)"
: >"$T/session-env.log"
pam_ok pgina alice 'New-Pw-22' authenticate open_session # left open on purpose
sid=$(sed -n 's/^PGINA_SESSION=//p' "$T/session-env.log" | head -n 1)
[ -n "$sid" ] || fail "no PGINA_SESSION from open_session"
pam_service pgina-credui <<EOF
auth    required pam_pgina.so scenario=credui debug
account required pam_pgina.so scenario=credui
EOF
saved=("${PAM_HOST_ENV[@]}")
PAM_HOST_ENV=(env "PGINA_SESSION=$sid" "${saved[@]}")
pam_ok pgina-credui carol 'carol-Pw-1' authenticate acct_mgmt
pam_fails_with "$AUTH_ERR" pgina-credui carol 'wrong' authenticate
PAM_HOST_ENV=("${saved[@]}")
assert_contains "$SYSLOG" "LOGIN user=carol scenario=credui service=pgina-credui session=$sid"
pginactl sessions >"$T/sessions.out" 2>&1 || fail "pginactl sessions failed"
grep -E "(^|[[:space:]])carol([[:space:]]|$)" "$T/sessions.out" >/dev/null ||
        fail "carol not appended to session $sid: $(cat "$T/sessions.out")"

if [ -e "$BUILD/plugins/testplugin.so" ]; then
        step "gateway: the local account exists when authenticate returns"
        pgina_stop
        pgina_conf <<EOF
[order]
authentication = testplugin
gateway = localmachine
[testplugin]
password = Remote-Pw-1
message = Welcome from testplugin
EOF
        pgina_start
        getent passwd remoteuser >/dev/null && fail "remoteuser exists before the logon"
        pam_ok pgina remoteuser 'Remote-Pw-1' authenticate acct_mgmt
        getent passwd remoteuser >/dev/null || fail "remoteuser not created by the gateway"
fi

step "the password never reaches syslog or pginad's log"
sleep 0.2
for pw in alice-Pw-1 carol-Pw-1 New-Pw-22 Other-Pw-3 Remote-Pw-1; do
        assert_not_contains "$SYSLOG" "$pw"
        assert_not_contains "$PGINA_LOG" "$pw"
done
assert_contains "$SYSLOG" "LOGIN user=alice scenario=logon"
exit 0
