#!/bin/bash
# LocalMachine, authentication stage: crypt against /etc/shadow; unknown user, wrong password and
# locked account fail alike ("Authentication failed"); the account's groups are copied into the
# record on success only; always_authenticate decides whether it runs after an earlier success.
. "$(dirname "$0")/lib.sh"


pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
make_user alice 'Alice pw 1' -G users -c 'Alice Liddell,Room 1'
make_user locky 'Locky pw'
usermod -L locky
groupadd lmgroup
usermod -aG lmgroup alice

pgina_conf <<C
[order]
authentication = localmachine
authorization = testplugin2

[testplugin2]
log_file = $T/tp2.log
C
pgina_start

step "right password: authenticated, the account's groups (primary included) copied"
assert_ok pam_run pgtest alice 'Alice pw 1' authenticate acct_mgmt
assert_contains "$T/tp2.log" "user=alice"
grep 'stage=authorization' "$T/tp2.log" | tail -n 1 >"$T/last"
for g in alice users lmgroup; do
        grep -qE "groups=(.*,)?$g(,|$)" "$T/last" || { cat "$T/last" >&2; fail "group $g not copied"; }
done

step "wrong password: refused with 'Authentication failed'"
assert_fail pam_run pgtest alice 'wrong' authenticate
assert_fail pgina_simulate 'wrong' alice
has_line "$T/sim.out" '^authentication +localmachine +failure +Authentication failed'

step "unknown user: the same refusal as a wrong password"
assert_fail pam_run pgtest nosuchuser 'wrong' authenticate
assert_fail pgina_simulate 'wrong' nosuchuser
has_line "$T/sim.out" '^authentication +localmachine +failure +Authentication failed'

step "locked account: refused even with its password"
assert_fail pam_run pgtest locky 'Locky pw' authenticate
assert_fail pgina_simulate 'Locky pw' locky
has_line "$T/sim.out" '^authentication +localmachine +failure +Authentication failed'

step "the password never reaches the log"
assert_not_contains "$PGINA_LOG" 'Alice pw 1'
assert_not_contains "$PGINA_LOG" 'Locky pw'

step "always_authenticate=false: skipped after an earlier plugin's success"
pgina_stop
pgina_conf <<C
[order]
authentication = testplugin localmachine
authorization = testplugin2

[testplugin]
password = Other pw
[testplugin2]
log_file = $T/tp2b.log
C
pgina_start
assert_ok pgina_simulate 'Other pw' alice
has_line "$T/sim.out" '^authentication +testplugin +success'
has_line "$T/sim.out" '^authentication +localmachine +failure +skipped: already authenticated'
step "... and its groups are not copied (it did not authenticate the user)"
assert_ok pam_run pgtest alice 'Other pw' authenticate
assert_not_contains "$T/tp2b.log" "lmgroup"

step "always_authenticate=true: runs after an earlier success, copies groups when it succeeds"
pgina_stop
pgina_conf <<C
[order]
authentication = testplugin localmachine
authorization = testplugin2

[testplugin]
password = Alice pw 1
[testplugin2]
log_file = $T/tp2c.log
[localmachine]
always_authenticate = true
C
pgina_start
assert_ok pgina_simulate 'Alice pw 1' alice
has_line "$T/sim.out" '^authentication +localmachine +success'
assert_ok pam_run pgtest alice 'Alice pw 1' authenticate
assert_contains "$T/tp2c.log" "lmgroup"

step "always_authenticate=true, wrong password for LocalMachine: the earlier success still counts"
pgina_stop
pgina_conf <<C
[order]
authentication = testplugin localmachine

[localmachine]
always_authenticate = true
C
pgina_start
assert_ok pgina_simulate 'not alice pw' alice
has_line "$T/sim.out" '^authentication +localmachine +failure +Authentication failed'
exit 0
