#!/bin/bash
# pginactl simulate USER: pGina's simulator. The password comes from the first line of stdin; each
# plugin's result is printed per stage; exit 0 "would be allowed", 1 "would be refused: why";
# the simulation changes nothing (no account is created without --gateway).
. "$(dirname "$0")/lib.sh"

simulate() { # simulate PASSWORD ARGS... : exit status; output in $T/sim.out, $T/sim.err
        local pw=$1 rc=0
        shift
        printf '%s\n' "$pw" | pginactl simulate "$@" >"$T/sim.out" 2>"$T/sim.err.log" || rc=$?
        return "$rc"
}
expect_exit() {
        local want=$1 rc=0
        shift
        "$@" || rc=$?
        [ "$rc" = "$want" ] || {
                cat "$T/sim.out" "$T/sim.err.log" >&2
                fail "exit status of $*: expected $want, got $rc"
        }
}

make_user alice 'Alice pw 1'
make_user bob 'Bob pw 2'
usermod -aG sudo alice

pgina_conf <<'C'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine

[localmachine]
authz_require_admin = true
admin_group = sudo
C
pgina_start

step "right password, admin: allowed, exit 0, a line per plugin and stage"
expect_exit 0 simulate 'Alice pw 1' alice
has_line "$T/sim.out" '^STAGE +PLUGIN +RESULT +MESSAGE'
has_line "$T/sim.out" '^authentication +localmachine +success'
has_line "$T/sim.out" '^authorization +localmachine +success'
assert_contains "$T/sim.out" "Result: user alice would be allowed to log on"
has_line "$T/sim.out" '^Groups: .*sudo'
assert_not_contains "$T/sim.out" "gateway  "

step "the password is not echoed anywhere"
assert_not_contains "$T/sim.out" "Alice pw 1"
assert_not_contains "$T/sim.err.log" "Alice pw 1"
assert_not_contains "$PGINA_LOG" "Alice pw 1"

step "wrong password: refused at authentication, exit 1"
expect_exit 1 simulate 'wrong' alice
has_line "$T/sim.out" '^authentication +localmachine +failure'
assert_contains "$T/sim.out" "Result: user alice would be refused:"
assert_not_contains "$T/sim.out" "would be allowed"
has_line "$T/sim.out" '^authorization +localmachine +skipped|^Authenticated: no'

step "unknown user: refused like a wrong password, exit 1"
expect_exit 1 simulate 'whatever' nosuchuser
assert_contains "$T/sim.out" "Result: user nosuchuser would be refused:"

step "not an admin: refused at authorization, exit 1"
expect_exit 1 simulate 'Bob pw 2' bob
has_line "$T/sim.out" '^authentication +localmachine +success'
has_line "$T/sim.out" '^authorization +localmachine +failure'
assert_contains "$T/sim.out" "Result: user bob would be refused:"
has_line "$T/sim.out" 'authorized: no'

step "the password is the first line of stdin only"
rc=0
printf 'Alice pw 1\nsecond line\n' | pginactl simulate alice >"$T/sim.out" 2>"$T/sim.err.log" || rc=$?
assert_eq 0 "$rc" "first line of stdin"
rc=0
printf 'Alice pw 1' | pginactl simulate alice >"$T/sim.out" 2>"$T/sim.err.log" || rc=$?
assert_eq 0 "$rc" "a last line without newline"

step "no password at all: usage error, exit 2"
rc=0
pginactl simulate alice </dev/null >"$T/sim.out" 2>"$T/sim.err.log" || rc=$?
assert_eq 2 "$rc" "empty stdin"
assert_contains "$T/sim.err.log" "no password"

step "without --gateway the gateway stage does not run and nothing changes"
pgina_stop
pgina_conf <<'C'
[order]
authentication = localmachine
gateway = localmachine

[localmachine]
mandatory_groups = pgsimgroup
C
pgina_start
expect_exit 0 simulate 'Alice pw 1' alice
if grep -qE '^gateway ' "$T/sim.out"; then
        cat "$T/sim.out" >&2
        fail "the gateway ran without --gateway"
fi

getent group pgsimgroup >/dev/null && fail "simulate without --gateway created group pgsimgroup"

step "--gateway runs the gateway too, for real (as pGina's simulator does)"
expect_exit 0 simulate 'Alice pw 1' --gateway alice
has_line "$T/sim.out" '^gateway +localmachine +success +.*pgsimgroup'
has_line "$T/sim.out" 'gateway: yes'
getent group pgsimgroup >/dev/null || fail "simulate --gateway did not create group pgsimgroup"
id -nG alice | grep -qw pgsimgroup || fail "simulate --gateway did not add alice to pgsimgroup"

step "several plugins: one line each, in order; the first denial stops authorization"
pgina_stop
pgina_conf <<'C'
[order]
authentication = testplugin localmachine
authorization = testplugin2 localmachine

[testplugin]
authenticate = failure
message = testplugin says no

[testplugin2]
authorize = failure
message = testplugin2 denies
C
pgina_start
expect_exit 1 simulate 'Alice pw 1' alice
has_line "$T/sim.out" '^authentication +testplugin +failure +testplugin says no$'
has_line "$T/sim.out" '^authentication +localmachine +success'
has_line "$T/sim.out" '^authorization +testplugin2 +failure +testplugin2 denies$'
if grep -qE '^authorization +localmachine +(success|failure)' "$T/sim.out"; then
        cat "$T/sim.out" >&2
        fail "localmachine authorization ran after testplugin2's denial"
fi
assert_contains "$T/sim.out" "Result: user alice would be refused: testplugin2 denies"
[ "$(grep -nE '^authentication +testplugin ' "$T/sim.out" | cut -d: -f1)" -lt \
        "$(grep -nE '^authentication +localmachine ' "$T/sim.out" | cut -d: -f1)" ] ||
        fail "the plugins are not listed in [order] order"

step "usage errors: exit 2"
expect_exit 2 pginactl simulate
expect_exit 2 pginactl simulate a b
expect_exit 2 pginactl simulate --verbose alice
exit 0
