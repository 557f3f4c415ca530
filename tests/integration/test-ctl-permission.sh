#!/bin/bash
# Admin requests are root's: pginactl run by another user gets exit 4 and a message saying so,
# for every admin command; pginad keeps serving root afterwards.
. "$(dirname "$0")/lib.sh"
need setpriv

make_user alice 'Alice pw 1'
# refusals slow a non-root peer down; keep that short here
PGINA_SERVICE_EXTRA="failure_delay_max = 1"
pgina_conf <<'C'
[order]
authentication = localmachine
C
pgina_start

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$BUILD/pginactl" "$@"; }

for cmd in status sessions plugins reload wait metrics; do
        step "$cmd as nobody: exit 4"
        rc=0
        as_nobody "$cmd" >"$T/ctl.out" 2>"$T/ctl.err.log" || rc=$?
        assert_eq 4 "$rc" "pginactl $cmd as nobody"
        assert_contains "$T/ctl.err.log" "permission denied"
done

step "simulate as nobody: exit 4, the password never checked"
rc=0
printf 'Alice pw 1\n' | as_nobody simulate alice >"$T/ctl.out" 2>"$T/ctl.err.log" || rc=$?
assert_eq 4 "$rc" "pginactl simulate as nobody"
assert_not_contains "$T/ctl.out" "would be allowed"

step "root is still served"
assert_ok pginactl status >/dev/null
exit 0
