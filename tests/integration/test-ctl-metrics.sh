#!/bin/bash
# pginactl metrics (issue 17): real PAM logons through pamtester and pgSMB with a file:// store are
# counted by result; the phase histograms count them; pgSMB's bytes and seconds (download, extract,
# archive, upload, verify) and the logoff job appear; a crashing plugin counts as a plugin failure
# and its logon as unavailable; the text parses with prometheus_client's parser; the textfile for
# node_exporter appears and is rewritten every metrics_interval; the logon's log line gives its
# phases, and pginactl sessions -v shows them.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
"$PYTHON" -c 'import prometheus_client.parser' 2>/dev/null || skip "python3-prometheus-client not installed"

STORE=$T/store PROM=$T/node-exporter
mkdir -p "$STORE" "$PROM"

# parse FILE: prometheus_client's text parser reads every family; prints "name{labels} value"
# per sample, sorted, into FILE.parsed (what the asserts below read).
parse() {
        "$PYTHON" - "$1" >"$1.parsed" <<'PY' || fail "prometheus_client could not parse $1: $(tail -n 3 "$1.parsed")"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
out, names = [], set()
for fam in text_string_to_metric_families(text):
    assert fam.name not in names, "family twice: " + fam.name
    names.add(fam.name)
    assert fam.type in ("counter", "gauge", "histogram", "summary"), fam.name + ": " + fam.type
    for s in fam.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        value = "%d" % s.value if s.value == int(s.value) else repr(s.value)
        out.append("%s%s %s" % (s.name, "{%s}" % labels if labels else "", value))
print("\n".join(sorted(out)))
PY
}
# sample FILE NAME{LABELS} VALUE: the parsed FILE has that sample (labels sorted by name)
sample() { has_line "$1.parsed" "^$(sed 's/[][{}+.]/\\&/g' <<<"$2") $3\$"; }

metrics() { # metrics NAME: pginactl metrics into $T/NAME, parsed
        pginactl metrics >"$T/$1" 2>"$T/$1.err.log" || fail "pginactl metrics exited $?: $(cat "$T/$1.err.log")"
        parse "$T/$1"
}

pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120
metrics_textfile = $PROM/pgina.prom
metrics_interval = 1" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
[localmachine]
logoff_action = remove
CONF
pgina_start

step "the textfile appears before any logon, and parses"
for ((i = 0; i < 50; i++)); do [ -s "$PROM/pgina.prom" ] && break; sleep 0.1; done
[ -s "$PROM/pgina.prom" ] || fail "no $PROM/pgina.prom within 5 s"
[ "$(stat -c %a "$PROM/pgina.prom")" = 644 ] || fail "the textfile is not 0644: $(stat -c %a "$PROM/pgina.prom")"
cp "$PROM/pgina.prom" "$T/prom0"
parse "$T/prom0"
sample "$T/prom0" 'pgina_logons_total{result="ok",scenario="logon"}' 0
sample "$T/prom0" 'pgina_plugin_failures_total{plugin="pgsmb",reason="crash"}' 0
ls -A "$PROM" | grep -v '^pgina\.prom$' && fail "temporary files left beside the textfile"

step "a first logon (account and home from /etc/skel) and a wrong password"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pam_fails_with "Authentication failure" pgtest alice "n0t-her-pa55" authenticate
metrics m1
sample "$T/m1" 'pgina_logons_total{result="ok",scenario="logon"}' 1
sample "$T/m1" 'pgina_logons_total{result="auth_failed",scenario="logon"}' 1
sample "$T/m1" 'pgina_logon_phase_seconds_count{phase="total"}' 2
sample "$T/m1" 'pgina_logon_phase_seconds_count{phase="authentication"}' 2
sample "$T/m1" 'pgina_logon_phase_seconds_count{phase="gateway"}' 1
sample "$T/m1" 'pgina_logon_phase_seconds_bucket{le="+Inf",phase="gateway"}' 1
sample "$T/m1" 'pgina_plugin_calls_total{plugin="testplugin",result="success",stage="authentication"}' 1
sample "$T/m1" 'pgina_plugin_calls_total{plugin="testplugin",result="failure",stage="authentication"}' 1
sample "$T/m1" 'pgina_plugin_calls_total{plugin="pgsmb",result="success",stage="gateway"}' 1
sample "$T/m1" 'pgina_sessions' 1
has_line "$PGINA_LOG" 'logon of alice \(service pgtest\): ok in [0-9]+ ms \(authentication [0-9]+ ms, gateway [0-9]+ ms\)$'
has_line "$PGINA_LOG" 'logon of alice \(service pgtest\): authentication failed in [0-9]+ ms \(authentication [0-9]+ ms\)'
assert_not_contains "$PGINA_LOG" "n0t-her-pa55"

step "logoff: pgSMB's upload figures and the logoff job"
pgina_close_session alice
has_profile "$STORE/alice" || fail "no profile in the store"
# the first logoff of store format 2: one archive, the base
size=$(stat -c %s "$STORE"/alice/alice.tar.zst.a-*)
metrics m2
for f in archive upload verify; do
        sample "$T/m2" "pgina_plugin_seconds_count{figure=\"$f\",plugin=\"pgsmb\"}" 1
done
sample "$T/m2" 'pgina_plugin_bytes_total{figure="upload",plugin="pgsmb"}' "$size"
sample "$T/m2" 'pgina_logoff_job_runs_total{outcome="ok"}' 1
sample "$T/m2" 'pgina_logoff_job_seconds_count' 1
sample "$T/m2" 'pgina_logoff_jobs{state="queued"}' 0
sample "$T/m2" 'pgina_plugin_calls_total{plugin="pgsmb",result="success",stage="notification"}' 4 # logon, session open and close, logoff

step "a logon that downloads: its log line and sessions -v name pgSMB's download and extract"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
metrics m3
sample "$T/m3" 'pgina_logons_total{result="ok",scenario="logon"}' 2
sample "$T/m3" 'pgina_plugin_seconds_count{figure="download",plugin="pgsmb"}' 1
sample "$T/m3" 'pgina_plugin_seconds_count{figure="extract",plugin="pgsmb"}' 1
sample "$T/m3" 'pgina_plugin_bytes_total{figure="download",plugin="pgsmb"}' "$size"
assert_not_contains "$T/m3.parsed" "store_errors" # none while the store answers
phases='[0-9]+ ms \(authentication [0-9]+ ms, gateway [0-9]+ ms: pgsmb download [0-9]+ ms extract [0-9]+ ms\)'
has_line "$PGINA_LOG" "logon of alice \(service pgtest\): ok in $phases\$"
pginactl sessions -v >"$T/sessions.out" || fail "pginactl sessions -v failed"
has_line "$T/sessions.out" 'SCENARIO +LOGIND +LOGON PHASES$'
has_line "$T/sessions.out" "^[0-9]+ +0 +alice .* logon +- +$phases\$"
pginactl sessions >"$T/sessions-short.out"
assert_not_contains "$T/sessions-short.out" "pgsmb download"

step "the phases survive a restart of pginad (session cache)"
pgina_stop
pgina_start
pginactl sessions -v >"$T/sessions2.out"
has_line "$T/sessions2.out" "^[0-9]+ +0 +alice .* logon +- +$phases\$"

step "the textfile is rewritten every metrics_interval"
ino=$(stat -c %i "$PROM/pgina.prom")
for ((i = 0; i < 50; i++)); do
        [ "$(stat -c %i "$PROM/pgina.prom")" != "$ino" ] && break
        sleep 0.1
done
[ "$(stat -c %i "$PROM/pgina.prom")" != "$ino" ] || fail "the textfile was not replaced within 5 s"
cp "$PROM/pgina.prom" "$T/prom1"
parse "$T/prom1"
sample "$T/prom1" 'pgina_sessions' 1

step "a store that does not answer: pgSMB's store errors, a temporary profile"
pgina_stop
PGINA_SERVICE_EXTRA="metrics_textfile = $PROM/pgina.prom" pgsmb_conf secret <<CONF
share = file://$T/no-such-store
store_format = 1
retries = 2
retry_delay = 0
CONF
pgina_start
assert_ok pam_run pgtest carol secret authenticate acct_mgmt open_session
metrics m5
has_line "$T/m5.parsed" '^pgina_plugin_events_total\{event="store_errors",plugin="pgsmb"\} [1-9][0-9]*$'
sample "$T/m5" 'pgina_logons_total{result="ok",scenario="logon"}' 1

step "a plugin that crashes: a plugin failure, its logon unavailable"
pgina_stop
PGINA_SERVICE_EXTRA="metrics_textfile = $PROM/pgina.prom" pgina_conf <<'C'
[order]
authentication = testplugin localmachine

[testplugin]
authenticate = crash
C
pgina_start
make_user bob 'Bob pw 2'
pam_run pgtest bob 'Bob pw 2' authenticate && fail "a logon with a crashing plugin succeeded"
metrics m4
sample "$T/m4" 'pgina_plugin_failures_total{plugin="testplugin",reason="crash"}' 1
sample "$T/m4" 'pgina_plugin_failures_total{plugin="localmachine",reason="crash"}' 0
sample "$T/m4" 'pgina_logons_total{result="unavailable",scenario="logon"}' 1
sample "$T/m4" 'pgina_logon_phase_seconds_count{phase="total"}' 1
sample "$T/m4" 'pgina_logon_phase_seconds_count{phase="authentication"}' 0
assert_not_contains "$PGINA_LOG" "Bob pw 2"

step "--help, and a non-root caller is refused"
pginactl help metrics >"$T/help.out" || fail "pginactl help metrics failed"
assert_contains "$T/help.out" "Usage: pginactl [OPTIONS] metrics"
assert_contains "$T/help.out" "metrics_textfile"
pginactl sessions --help >"$T/help2.out"
assert_contains "$T/help2.out" "--verbose"
rc=0
setpriv --reuid=nobody --regid=nogroup --clear-groups "$BUILD/pginactl" metrics >/dev/null 2>"$T/perm.err.log" || rc=$?
assert_eq 4 "$rc" "pginactl metrics as nobody"
exit 0
