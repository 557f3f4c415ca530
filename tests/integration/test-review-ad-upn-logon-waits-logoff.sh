#!/bin/bash
# Review of issue 14: a logon waits for the pending logoff job of its account (the logoff's
# profile upload and the logon's restore must not run at once) — also when the user types the
# userPrincipalName. pginad parked a logon by the name typed, and alice@acc.test has no job: her
# logon ran its chain (gateway included) while alice's logoff job still ran. The account behind
# user@domain is known only after the chain has run, so such a logon waits for any pending
# logoff job.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba-ad.sh"
need pamtester
ad_start

SVC_PW='Svc-Pw.for-pgina1'
ad_user svc-pgina "$SVC_PW"
ad_user alice 'Alice-Pw.start1'
(umask 077 && printf '%s\n' "$SVC_PW" >"$T/svc.pw")
pam_service pgtest <<'P'
auth     required pam_pgina.so timeout=30
account  required pam_pgina.so
session  required pam_pgina.so
P
pgina_conf <<C
[order]
authentication = ldap
gateway = testplugin localmachine
notification = testplugin localmachine

[testplugin]
notify_sleep_ms = 4000
log_file = $T/calls.log

[ldap]
servers = $AD_URL
tls_ca_file = $AD_CA
schema = ad
search_dn = CN=svc-pgina,CN=Users,$AD_BASE
search_password_file = $T/svc.pw
search_contexts = CN=Users,$AD_BASE
search_filter = (&(objectClass=user)(|(sAMAccountName=%u)(userPrincipalName=%u)))
C
pgina_start

step "alice logs on and off: her logoff job runs (4 s)"
assert_ok pam_run pgtest alice 'Alice-Pw.start1' authenticate acct_mgmt open_session
pgina_close_session_nowait alice
step "her logon as alice@acc.test waits for that job"
assert_ok pam_run pgtest alice@acc.test 'Alice-Pw.start1' authenticate acct_mgmt
finished=$(grep -n "logoff job of alice finished" "$PGINA_LOG" | tail -n1 | cut -d: -f1)
logon=$(grep -n "logon of alice@acc.test (service pgtest): ok" "$PGINA_LOG" | tail -n1 | cut -d: -f1)
[ -n "$finished" ] && [ -n "$logon" ] && [ "$logon" -gt "$finished" ] ||
        fail "alice's logon as alice@acc.test (log line $logon) ran during her logoff job (finished at line $finished)"
assert_contains "$T/pam.out" "still being completed"
exit 0
