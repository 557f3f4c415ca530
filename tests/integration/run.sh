#!/bin/bash
# tests/integration/run.sh [BUILD_DIR] [FILTER] — run every tests/integration/test-*.sh (whose
# name contains FILTER) in its own fresh sandbox, with a time limit, and check afterwards that the
# host's accounts and /home did not change. Ends with "N passed, N failed, N skipped".
# Environment: PGINA_TEST_TIMEOUT (seconds per test, default 120), PGINA_KEEP=1 keeps every
# test's temp dir (failed tests' dirs are always kept).
set -uo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" 2>/dev/null && pwd) || {
        echo "run.sh: build dir ${1:-$SRC/build} not found" >&2
        exit 2
}
filter=${2:-}
timeout_s=${PGINA_TEST_TIMEOUT:-120}

if [ "$(id -u)" != 0 ]; then
        echo "run.sh: the integration tests need root (they run in a namespace sandbox)" >&2
        exit 2
fi

host_fingerprint() {
        md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/nsswitch.conf /etc/pam.d/common-* 2>/dev/null
        ls -la --time-style=+ /home /etc/pam.d 2>/dev/null
        ls -d /var/lib/pgina /run/pgina /etc/pgina 2>/dev/null
}
before=$(host_fingerprint)

top=$(mktemp -d /tmp/pgina-tests.XXXXXX)
chmod 0755 "$top"
pass=0 failed=0 skipped=0
failed_names=()

sanitizer_report() { # a sanitizer report in any log of the test fails it
        grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' \
                "$1"/*.log 2>/dev/null | head -n 1
}

for test in "$SRC"/tests/integration/test-*.sh; do
        [ -e "$test" ] || continue
        name=$(basename "$test" .sh)
        [ -n "$filter" ] && [[ $name != *"$filter"* ]] && continue
        T=$top/$name
        mkdir -p "$T"
        chmod 0755 "$T"
        t0=$(date +%s.%N)
        export BUILD SRC T
        timeout -k 5 "$timeout_s" "$SRC/tests/sandbox.sh" bash "$test" </dev/null >"$T/test.log" 2>&1
        rc=$?
        t1=$(date +%s.%N)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        san=$(sanitizer_report "$T")
        if [ "$rc" -eq 0 ] && [ -z "$san" ]; then
                echo "PASS $name (${secs}s)"
                pass=$((pass + 1))
                [ "${PGINA_KEEP:-}" = 1 ] || rm -rf "$T"
        elif [ "$rc" -eq 77 ]; then
                reason=$(cat "$T/skip-reason" 2>/dev/null || tail -n 1 "$T/test.log")
                echo "SKIP $name: $reason"
                skipped=$((skipped + 1))
                [ "${PGINA_KEEP:-}" = 1 ] || rm -rf "$T"
        else
                why="exit $rc"
                [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && why="timed out after ${timeout_s}s"
                [ "$rc" -eq 125 ] && why="the host changed"
                [ "$rc" -eq 0 ] && why="sanitizer report in $san"
                echo "FAIL $name (${secs}s, $why)"
                failed=$((failed + 1))
                failed_names+=("$name")
                for log in "$T/test.log" "$T/pam.log" "$T/pginad.log" $san; do
                        [ -s "$log" ] || continue
                        echo "    ---- last lines of $log:"
                        tail -n 25 "$log" | sed 's/^/    | /'
                done
                echo "    (all logs kept in $T)"
        fi
done

after=$(host_fingerprint)
if [ "$before" != "$after" ]; then
        echo "FAIL host-unchanged: the host's accounts, /home or /etc/pam.d changed during the run:"
        diff <(echo "$before") <(echo "$after") | sed 's/^/    /'
        failed=$((failed + 1))
fi
rmdir "$top" 2>/dev/null || true

[ "$failed" -eq 0 ] || echo "failed: ${failed_names[*]:-host-unchanged}"
echo "$pass passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
