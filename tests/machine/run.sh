#!/bin/bash
# tests/machine/run.sh [BUILD_DIR] [FILTER] — the booted-machine tier: every tests/machine/test-*.sh
# (whose name contains FILTER) in its own mount and pid namespace (the machine's overlay and every
# process die with it), each booting a Debian 12 machine under systemd-nspawn with pgina installed
# (lib.sh). The root is built once (root.sh, cached under /var/tmp). Checks afterwards that the
# host's accounts and /home did not change. Ends with "N passed, N failed, N skipped".
# Environment: PGINA_MACHINE_TIMEOUT (seconds per test, default 300), PGINA_KEEP=1 keeps every
# test's temp dir (failed tests' dirs are always kept).
set -uo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" 2>/dev/null && pwd) || {
        echo "run.sh: build dir ${1:-$SRC/build} not found" >&2
        exit 2
}
filter=${2:-}
timeout_s=${PGINA_MACHINE_TIMEOUT:-300}
if [ "$(id -u)" != 0 ]; then
        echo "run.sh: the machine tests need root (namespaces, systemd-nspawn)" >&2
        exit 2
fi
host_fingerprint() {
        md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/nsswitch.conf /etc/pam.d/common-* 2>/dev/null
        ls -la --time-style=+ /home /etc/pam.d 2>/dev/null
}
before=$(host_fingerprint)
top=$(mktemp -d /tmp/pgina-machine-tests.XXXXXX)
pass=0 failed=0 skipped=0
failed_names=()

# The root first, once, outside any test's time limit (a few minutes on a fresh machine).
if ls "$SRC"/tests/machine/test-*.sh >/dev/null 2>&1; then
        if ! "$SRC/tests/machine/root.sh" "$BUILD" >"$top/root.out" 2>"$top/root.log"; then
                tail -n 20 "$top/root.log"
                echo "run.sh: cannot build the machine root: every machine test is skipped"
        fi
fi

for test in "$SRC"/tests/machine/test-*.sh; do
        [ -e "$test" ] || continue
        name=$(basename "$test" .sh)
        [ -n "$filter" ] && [[ $name != *"$filter"* ]] && continue
        T=$top/$name
        mkdir -p "$T"
        t0=$(date +%s.%N)
        export BUILD SRC T PGINA_MACHINE_NS=1
        timeout -k 10 "$timeout_s" unshare --mount --pid --fork --kill-child --mount-proc -- \
                bash -c 'mount --make-rprivate / && exec bash "$0"' "$test" </dev/null >"$T/test.log" 2>&1
        rc=$?
        secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        if [ "$rc" -eq 0 ]; then
                echo "PASS $name (${secs}s)"
                pass=$((pass + 1))
                [ "${PGINA_KEEP:-}" = 1 ] || rm -rf --one-file-system "$T"
        elif [ "$rc" -eq 77 ]; then
                echo "SKIP $name: $(cat "$T/skip-reason" 2>/dev/null || tail -n 1 "$T/test.log")"
                skipped=$((skipped + 1))
        else
                [ "$rc" -eq 124 ] && echo "    (killed after ${timeout_s} s)"
                echo "FAIL $name (${secs}s, exit $rc)"
                sed 's/^/    | /' "$T/test.log" | tail -n 40
                echo "    (all logs kept in $T)"
                failed=$((failed + 1))
                failed_names+=("$name")
        fi
done
after=$(host_fingerprint)
if [ "$before" != "$after" ]; then
        echo "run.sh: THE HOST CHANGED (accounts, /home or /etc/pam.d) during the machine tests" >&2
        diff <(echo "$before") <(echo "$after") >&2
        failed=$((failed + 1))
fi
[ "${#failed_names[@]}" -gt 0 ] && echo "failed: ${failed_names[*]}"
rmdir "$top" 2>/dev/null
echo "$pass passed, $failed failed, $skipped skipped"
