#!/bin/bash
# On a booted Debian 12 (issue 13): `journalctl -u pginad` reads as an admin expects. At the
# default log level, one ssh logon and logoff of a roaming (pgSMB) user gives one line for the
# logon with its result, one for the session's open and one for its close, one for the logoff
# job's start and one for its end with the outcome, and pgSMB's line for the saved profile; every
# line from the logon on names the user, none is repeated, none is debug output (workers,
# plugins' per-stage results, inhibitors, user@.service's own PAM session).
. "$(dirname "$0")/lib.sh"

MACHINE_LOG_LEVEL='' machine_roaming 'Alice-machine-pw-1' "store_format = 1
logoff_process_wait = 2"
grep -q log_level "$M/etc/pgina/pgina.conf" && fail "the machine's pgina.conf sets a log level"

step "one ssh logon and logoff of alice"
machine_ssh alice 'Alice-machine-pw-1' 'echo j > ~/j.txt' || fail "ssh logon failed"
machine_wait_journal "logoff job of alice finished" pginad 600
sleep 12 # user@.service's PAM session closes (or is ended) some seconds after the logoff
machine_exec journalctl -b --no-pager -o cat -u pginad >"$T/journal.all"
# pginad's own lines, from the logon on (systemd's "Starting/Started pginad.service" are not)
machine_exec journalctl -b --no-pager -o cat -u pginad _COMM=pginad >"$T/journal.pginad"
sed -n '/alice/,$p' "$T/journal.pginad" >"$T/journal"
cat "$T/journal"

count() { grep -c -- "$1" "$T/journal"; }
step "one line each for the logon, the session's open and close, the job's start and end"
assert_eq 1 "$(count '^logon of alice (service sshd, from 127\.0\.0\.1): ok in [0-9]* ms (authentication [0-9]* ms, authorization [0-9]* ms, gateway [0-9]* ms)$')" "logon lines (with their phases)"
assert_eq 1 "$(count 'logon of alice')" "lines about the logon of alice"
assert_eq 1 "$(count '^session 1 opened for alice (service sshd, tty ssh, from 127\.0\.0\.1)$')" "session open lines"
assert_eq 1 "$(count 'opened for alice')" "session open lines of alice"
assert_eq 1 "$(count '^session 1 of alice closed (last session: logoff)$')" "session close lines"
assert_eq 1 "$(count 'of alice closed')" "session close lines of alice"
assert_eq 1 "$(count '^logoff job of alice started$')" "logoff job start lines"
assert_eq 1 "$(count '^logoff job of alice finished in [0-9.]* s: ok$')" "logoff job end lines (with the outcome)"
assert_eq 1 "$(count 'logoff job of alice finished')" "logoff job end lines of alice"
assert_eq 1 "$(count '^pgsmb: alice: saved [0-9]* files .* to file:///srv/pgina/profiles/alice/alice\.tar\.zst in [0-9.]* s')" \
        "pgSMB's profile saved line"

step "every line names alice, none is repeated, none is debug output"
if grep -v alice "$T/journal" >"$T/without-user"; then
        fail "lines without the user's name: $(cat "$T/without-user")"
fi
sort "$T/journal" | uniq -d >"$T/dups"
[ -s "$T/dups" ] && fail "repeated lines: $(cat "$T/dups")"
for debug in 'worker [0-9]* started' 'success for user' 'inhibitor' 'systemd-user' 'user manager' 'preloaded'; do
        if grep -E -- "$debug" "$T/journal.all" >"$T/debug"; then
                fail "debug output at the default level ($debug): $(cat "$T/debug")"
        fi
done
exit 0
