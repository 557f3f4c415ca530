#!/bin/bash
# pgSMB failure mail through a real SMTP server (aiosmtpd on 127.0.0.1). A profile store that
# cannot be reached gives the user a temporary profile and mails notify_emails:
#   - smtp_servers are tried in order: a dead one is logged, the next takes the mail;
#   - subject "pgina on <host>: profile not restored for <user>", every recipient, smtp_from;
#   - the user's password never reaches the mail server (no TLS: no authentication);
#   - a credentials file that is not root-only is refused (logged, nothing sent), a 0600 one is
#     read, and its password stays home too on a server without TLS;
#   - no reachable server: logged, and the logon still succeeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smtp.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
smtp_start

HOST=$(hostname)
DEAD=$(free_port) # nobody listens there: connection refused
pgsmb_pam_service
# $1: smtp_servers, $2: smtp_credentials
write_conf() {
        PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf S3cret-pw-of-user <<CONF
share = file:///nonexistent-pgina-profile-store
retries = 2
retry_delay = 0
timeout = 5
notify_emails = admin@example.test ops@example.test
smtp_servers = $1
smtp_from = pgina-alerts@example.test
smtp_credentials = $2
CONF
}

step "temporary profile: mail via the second server, to both admins, without the password"
write_conf "127.0.0.1:$DEAD 127.0.0.1:$(smtp_port)" user
pgina_start
assert_ok pam_run pgtest alice S3cret-pw-of-user authenticate acct_mgmt open_session
getent passwd alice | grep -q "pGina created pgSMB tmp" || fail "alice did not get a temporary profile"
assert_eq 1 "$(smtp_count)" "messages received"
assert_contains "$SMTP_MAILBOX" "Subject: pgina on $HOST: profile not restored for alice"
assert_contains "$SMTP_MAILBOX" "X-Envelope-To: admin@example.test"
assert_contains "$SMTP_MAILBOX" "X-Envelope-To: ops@example.test"
assert_contains "$SMTP_MAILBOX" "X-Envelope-From: pgina-alerts@example.test"
assert_contains "$SMTP_MAILBOX" "To: admin@example.test, ops@example.test"
assert_contains "$SMTP_MAILBOX" "The profile of alice could not be restored"
assert_contains "$SMTP_MAILBOX" "file:///nonexistent-pgina-profile-store"
assert_not_contains "$SMTP_MAILBOX" "S3cret-pw-of-user"
assert_not_contains "$SMTP_MAILBOX" "$(printf '\0alice\0S3cret-pw-of-user' | base64)"
assert_contains "$PGINA_LOG" "via smtp://127.0.0.1:$DEAD failed"
assert_contains "$PGINA_LOG" "smtp://127.0.0.1:$(smtp_port) offers no TLS: sending without authentication"
assert_contains "$PGINA_LOG" "mailed 'pgina on $HOST: profile not restored for alice' to admin@example.test, ops@example.test via smtp://127.0.0.1:$(smtp_port)"
assert_not_contains "$PGINA_LOG" "S3cret-pw-of-user"
pgina_stop

step "a credentials file others can read is refused: logged, nothing sent"
printf 'username = mailer\npassword = File-Pw-42\n' >"$T/smtp-cred"
chmod 0644 "$T/smtp-cred"
write_conf "127.0.0.1:$(smtp_port)" "$T/smtp-cred"
pgina_start
assert_ok pam_run pgtest bob S3cret-pw-of-user authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "smtp_credentials file $T/smtp-cred must be a regular file owned by root with mode 0600"
assert_eq 1 "$(smtp_count)" "messages received (none new)"

step "a root-only credentials file is used; its password is not sent without TLS"
chmod 0600 "$T/smtp-cred"
assert_ok pam_run pgtest carol S3cret-pw-of-user authenticate acct_mgmt open_session
assert_eq 2 "$(smtp_count)" "messages received"
assert_contains "$SMTP_MAILBOX" "Subject: pgina on $HOST: profile not restored for carol"
assert_not_contains "$SMTP_MAILBOX" "File-Pw-42"
assert_not_contains "$PGINA_LOG" "File-Pw-42"
pgina_stop

step "no server takes the mail: logged, the logon still succeeds"
write_conf "127.0.0.1:$DEAD" none
pgina_start
assert_ok pam_run pgtest dave S3cret-pw-of-user authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "not mailed to admin@example.test, ops@example.test: no SMTP server of smtp_servers took it"
assert_eq 2 "$(smtp_count)" "messages received (none new)"
pgina_stop
