#!/bin/bash
# systemd's user manager (user@.service) opens a PAM session of its own, "systemd-user", and
# closes it as the user (issue 13). pginad counts it as the user's manager, not a logon:
#   - it starts no LOGON notification and does not keep the user logged on: the logoff job runs
#     when the last login session closes, the manager's session still open;
#   - the user may close that manager session of their own (as uid alice), which starts no second
#     logoff; but a non-root peer may never close a login session (their own or anyone's: that
#     would start the logoff, and localmachine's logoff_action, under a live session), nor
#     another user's manager session;
#   - a manager session left by a manager that ended without closing it (logind's TerminateUser)
#     is replaced by the user's next one.
. "$(dirname "$0")/lib.sh"
need pamtester

pgina_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = testplugin localmachine
[testplugin]
log_file = /run/pgina/testplugin.log
CONF
for svc in pgtest systemd-user; do
        pam_service "$svc" <<'PAM'
auth     required pam_pgina.so
account  required pam_pgina.so
session  required pam_pgina.so
PAM
done
make_user alice 'alice-pw-1'
make_user bob 'bob-pw-1'
pgina_start

sid_of() { pginactl sessions | awk -v u="$1" -v s="$2" '$0 ~ u && $0 ~ s { print $1; exit }'; }
close_as() { # USER SESSION-ID OWNER: CLOSE_SESSION as USER (a raw frame), its answer on stdout
        pgclient_as "$1" --wait 15 frame 1 4 "$(pgina_close_session_frame "$2" "$3")"
}

step "a login session, then the user's manager session: one logon"
pam_run_input pgtest alice 'alice-pw-1' authenticate acct_mgmt open_session ||
        fail "alice's logon failed: $(tail -n 3 "$T/pam.out")"
pam_run_input systemd-user alice '' open_session || fail "the systemd-user session did not open"
pam_run_input pgtest bob 'bob-pw-1' authenticate acct_mgmt open_session || fail "bob's logon failed"
pam_run_input systemd-user bob '' open_session || fail "bob's systemd-user session did not open"
login=$(sid_of alice pgtest) manager=$(sid_of alice systemd-user) bobmgr=$(sid_of bob systemd-user)
[ -n "$login" ] && [ -n "$manager" ] && [ -n "$bobmgr" ] || fail "sessions missing: $(pginactl sessions)"
pgina_wait_log "session $manager opened for alice (service systemd-user"
pgina_wait_jobs
sleep 0.5 # the session notifications run in the background
assert_eq 1 "$(grep -c 'stage=notification event=logon user=alice ' /run/pgina/testplugin.log)" \
        "logon notifications of alice"

step "a non-root peer may not close a login session, its own or another's"
out=$(close_as alice "$login" alice)
assert_eq "result 5" "$(cut -d' ' -f1-2 <<<"$out")" "alice closing her own login session"
out=$(close_as alice "$bobmgr" bob)
assert_eq "result 5" "$(cut -d' ' -f1-2 <<<"$out")" "alice closing bob's manager session"
[ -n "$(sid_of alice pgtest)" ] || fail "alice's login session was closed by alice"
[ -n "$(sid_of bob systemd-user)" ] || fail "bob's manager session was closed by alice"

step "the last login session closes: logoff, although the manager session is open"
pgina_close_session alice
assert_contains "$PGINA_LOG" "session $login of alice closed (last session: logoff)"
assert_contains "$PGINA_LOG" "logoff job of alice finished"

step "the manager closes its session as the user: accepted, no second logoff"
out=$(close_as alice "$manager" alice)
assert_eq "result 0" "$(cut -d' ' -f1-2 <<<"$out")" "alice's manager closing its session"
pgina_wait_log "session $manager of alice (its user manager, systemd-user) closed"
pgina_wait_jobs
assert_eq 1 "$(grep -c 'logoff job of alice finished' "$PGINA_LOG")" "logoff jobs of alice"
[ -z "$(sid_of alice systemd-user)" ] || fail "the manager session is still listed"

step "a manager that ended without closing its session: the next one replaces it"
pam_run_input systemd-user bob '' open_session || fail "bob's second systemd-user session did not open"
pgina_wait_log "session $bobmgr of bob (a user manager that ended without closing it) dropped"
assert_eq 1 "$(pginactl sessions | grep -c 'bob.*systemd-user')" "bob's manager sessions"
exit 0
