#!/bin/bash
# Review 2, finding 1 in its common form: another machine changes one small file, then its logon
# compacts the chain (defaults: compact_deltas 8, compact_percent 25; 1 here). The change now lives
# in the new base, so a catch-up here "needs" the whole base (more than half of the profile): the
# home is restored whole, and what a lingering process changed here after the last logoff is
# gone. Expected to FAIL.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool

STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
compact_deltas = 1
compact_percent = 0
[localmachine]
logoff_action = none
CONF
pgina_start
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1; }

step "this machine: version 1, the home stays"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs; for i in $(seq 1 50); do head -c 4000 /dev/urandom > /home/alice/docs/f$i; done'
sleep 0.3
pgina_close_session alice
state=$(find /var/lib/pgina -name alice.state | head -n 1)

step "after the logoff, a lingering process here writes docs/notes.txt"
sleep 0.2
as_user alice bash -c 'echo "notes written after the logoff" > /home/alice/docs/notes.txt'
mkdir "$T/away"
cp -a "${state%.state}".{state,record,manifest} "$T/away/"
mv /home/alice /home/.alice-away

step "'another machine': one small change, then a logon that compacts"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo "one line" > /home/alice/docs/todo.txt'
pgina_close_session alice
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "compacted version" 120 || fail "no compaction"
pgina_close_session alice
current
rm -rf /home/alice
mv /home/.alice-away /home/alice
cp -a "$T/away"/alice.* "$(dirname "$state")/"

step "this machine's next logon"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
grep -E "alice: (version [0-9]+ differs|home brought|restored version)" "$PGINA_LOG" | tail -n 2
notes=$(cat /home/alice/docs/notes.txt 2>&1)
pgina_close_session alice
assert_eq "notes written after the logoff" "$notes" "docs/notes.txt (written here after the last logoff)"
