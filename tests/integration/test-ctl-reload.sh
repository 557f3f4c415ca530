#!/bin/bash
# pginactl reload: 0 when the new config is good (and it takes effect); 1 with each FILE:LINE
# error when it is bad, and pginad keeps the old config and keeps serving.
. "$(dirname "$0")/lib.sh"

make_user alice 'Alice pw 1'
pgina_conf <<'C'
[order]
authentication = localmachine
C
pgina_start

step "good config: exit 0, the new order in effect"
pgina_conf <<'C'
[order]
authentication = localmachine
authorization = localmachine
C
rc=0
pginactl reload >"$T/reload.out" 2>"$T/reload.err.log" || rc=$?
assert_eq 0 "$rc" "reload of a good config"
pginactl plugins >"$T/plugins.out"
assert_contains "$T/plugins.out" "authorization:1"

step "bad config: exit 1, FILE:LINE on stderr, old config kept"
pgina_conf <<'C'
[order]
authentication = localmachine

[localmachine]
no_such_option = 1
C
line=$(grep -n no_such_option "$PGINA_CONF" | cut -d: -f1)
rc=0
pginactl reload >"$T/reload.out" 2>"$T/reload.err.log" || rc=$?
assert_eq 1 "$rc" "reload of a bad config"
assert_contains "$T/reload.err.log" "$PGINA_CONF:$line:"
assert_contains "$T/reload.err.log" "no_such_option"
kill -0 "$PGINA_PID" || fail "pginad died on a bad reload"
pginactl plugins >"$T/plugins.out"
assert_contains "$T/plugins.out" "authorization:1"
exit 0
