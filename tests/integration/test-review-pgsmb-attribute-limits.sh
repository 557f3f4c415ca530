#!/bin/bash
# Security review (issue 12.5): values from the user record (directory attributes, which a user
# may be able to write) steer root only as far as a user may choose:
#   - LoginScript = file:///etc/pgina-rootonly (a root-only file) is refused: root neither reads
#     it nor hands it to the user's script process (before: its contents ran as the user and
#     its output was in the log);
#   - LoginScript = an absolute local path runs only inside login_script_dir;
#   - LoginScript = a path in the store still runs;
#   - pgSMB_SMBshare = file:///... is refused and [pgsmb] share is used (before: root read and
#     renamed in that directory);
#   - usri4_home_dir (home share) must be smb:// or \\server\share.
# Each refusal is a log line naming the attribute. The user record's attributes come from
# testplugin's set_attr, the way an LDAP plugin's attribute map fills them.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store EVIL=$T/evil-store
mkdir -p "$STORE/scripts" "$EVIL" /etc/pgina/scripts /etc/pgina/other
cat >/etc/pgina-rootonly <<'SH'
#!/bin/sh
echo "ROOT-ONLY-CONTENT-LEAKED"
SH
chmod 0700 /etc/pgina-rootonly
printf '#!/bin/sh\necho "allowed script ran"\n' >/etc/pgina/scripts/ok.sh
printf '#!/bin/sh\necho "outside script ran"\n' >/etc/pgina/other/no.sh
printf '#!/bin/sh\necho "store script ran"\n' >"$STORE/scripts/s.sh"
chmod 0755 /etc/pgina/scripts/ok.sh /etc/pgina/other/no.sh
pgsmb_pam_service
write_conf() { # $1: set_attr lines for testplugin, $2: more [pgsmb] lines
        PGINA_SERVICE_EXTRA="request_timeout = 60" PGSMB_TESTPLUGIN_EXTRA="set_attr = $1" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
${2:-}
[localmachine]
logoff_action = none
CONF
}

step "LoginScript = file:///etc/pgina-rootonly: refused, root reads nothing for the user"
write_conf "LoginScript=file:///etc/pgina-rootonly"
pgina_start
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "alice: " # then the logon notification, in the background:
pgina_wait_log "file:///etc/pgina-rootonly"
sleep 1 # a script run would log its output now
assert_not_contains "$PGINA_LOG" "ROOT-ONLY-CONTENT-LEAKED"
grep -rqs ROOT-ONLY-CONTENT /home/alice && fail "the root-only file reached alice's home"
assert_contains "$PGINA_LOG" "alice: attribute LoginScript 'file:///etc/pgina-rootonly' refused"
pgina_close_session alice

step "LoginScript = an absolute path outside login_script_dir: refused"
write_conf "LoginScript=/etc/pgina/other/no.sh" "login_script_dir = /etc/pgina/scripts"
assert_ok pginactl reload
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
pgina_wait_log "bob: attribute LoginScript '/etc/pgina/other/no.sh' refused"
sleep 0.5
assert_not_contains "$PGINA_LOG" "outside script ran"
pgina_close_session bob

step "LoginScript inside login_script_dir, or in the store: runs"
write_conf "LoginScript=/etc/pgina/scripts/ok.sh" "login_script_dir = /etc/pgina/scripts"
assert_ok pginactl reload
assert_ok pam_run pgtest carol secret authenticate acct_mgmt open_session
pgina_wait_log "carol: login script: allowed script ran"
pgina_close_session carol
write_conf "LoginScript=scripts/s.sh"
assert_ok pginactl reload
assert_ok pam_run pgtest carol secret authenticate acct_mgmt open_session
pgina_wait_log "carol: login script: store script ran"
pgina_close_session carol

step "pgSMB_SMBshare = file://...: refused, the configured share is used"
write_conf "pgSMB_SMBshare=file://$EVIL"
assert_ok pginactl reload
assert_ok pam_run pgtest dave secret authenticate acct_mgmt open_session
as_user dave bash -c 'echo work > /home/dave/f'
pgina_close_session dave
[ -z "$(ls -A "$EVIL")" ] || fail "root wrote into the attribute's directory: $(ls -AR "$EVIL")"
has_profile "$STORE/dave" || fail "dave's profile is not in the configured store"
assert_contains "$PGINA_LOG" "dave: attribute pgSMB_SMBshare 'file://$EVIL' refused"

step "usri4_home_dir = a local path: refused (not exported)"
write_conf "usri4_home_dir=/etc"
assert_ok pginactl reload
assert_ok pam_run pgtest erin secret authenticate acct_mgmt open_session
pgina_wait_log "erin: attribute usri4_home_dir '/etc' refused"
assert_not_contains "$PGINA_LOG" "erin: home share /etc exported"
pgina_close_session erin
exit 0
