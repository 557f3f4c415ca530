#!/bin/bash
# Soak (issue 16): 300 logon/logoff cycles through real PAM (pamtester), 4 users in parallel,
# each cycle a full pgSMB round trip through the file:// store (account created, home restored at
# logon; home saved, account and home removed at logoff). Between a sample after a warm-up and
# one at the end, pginad holds the same descriptors and its RSS grows < 10%; no worker, user
# process, home or temporary file is left over; every archive reads to its end and each user's
# holds what its last cycle wrote, the counter having gone up by one every cycle (no lost save);
# pamtester holds no socket after pam_pgina's open_session and close_session.
# bench/soak runs the same longer and prints the figures.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/soak.sh"
need pamtester setpriv zstd
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
[ -e /usr/lib/x86_64-linux-gnu/security/pam_exec.so ] || [ -e /lib/x86_64-linux-gnu/security/pam_exec.so ] ||
        skip "pam_exec.so not found"

CYCLES=300 # in all, between the two samples
USERS=(soak1 soak2 soak3 soak4)

soak_start "${USERS[@]}"

# keep_versions + 1 cycles each: the store then holds all the versions it keeps
step "warm-up: 3 cycles per user (what pginad opens lazily is open before the first sample)"
soak_cycles $((3 * ${#USERS[@]}))
soak_leftovers
soak_sample start
fds0=$SOAK_FDS rss0=$SOAK_RSS_KIB anon0=$SOAK_ANON_KIB files0=$(soak_files)
echo "start: $fds0 descriptors, VmRSS $rss0 KiB (RssAnon $anon0), $files0 files in state dir and store"

step "$CYCLES cycles: ${#USERS[@]} users in parallel"
soak_sampler_start
t0=$EPOCHREALTIME
soak_cycles "$CYCLES"
t1=$EPOCHREALTIME
soak_sampler_stop
soak_leftovers
soak_sample end
fds1=$SOAK_FDS rss1=$SOAK_RSS_KIB anon1=$SOAK_ANON_KIB files1=$(soak_files)
rate=$(awk -v a="$t0" -v b="$t1" -v n="$CYCLES" 'BEGIN { printf "%.1f", n / (b - a) }')
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 100 / a }'; }
growth=$(pct "$rss0" "$rss1") anon_growth=$(pct "$anon0" "$anon1")
echo "end: $fds1 descriptors (peak $SOAK_PEAK_FDS), VmRSS $rss1 KiB (peak $SOAK_PEAK_KIB," \
        "growth $growth%), RssAnon $anon1 KiB (peak $SOAK_PEAK_ANON_KIB, growth $anon_growth%)," \
        "$files1 files; $rate cycles/s"

step "pginad holds the descriptors it held at the start"
if ! diff "$T/soak-start.fds" "$T/soak-end.fds" >"$T/soak-fds.diff"; then
        echo "---- pginad's descriptors at the start:" >&2
        cat "$T/soak-start.fds" >&2
        echo "---- at the end:" >&2
        cat "$T/soak-end.fds" >&2
        fail "pginad's descriptors changed over $CYCLES cycles ($fds0 -> $fds1)"
fi

# VmRSS is mostly the preloaded libraries' pages (~16 of 19 MiB, shared with every worker), so a
# leak of 1.5 MiB would pass it: the heap's share, RssAnon (~3 MiB), is held to the same 10%.
step "pginad's RSS and its anonymous part grew < 10%"
# grep -c, not -q: with pipefail, nm killed by SIGPIPE would make the pipeline false
if [ "$(nm -D "$BUILD/pginad" 2>/dev/null | grep -c '__asan_init')" != 0 ]; then
        # ASan keeps freed blocks in its quarantine (256 MiB by default) until it is full, so
        # RSS grows with every allocation made: 27 -> 61 MiB (+125%) over this run, +1.7% with
        # ASAN_OPTIONS=quarantine_size_mb=0 (December 2026). Keeping the quarantine, and with it
        # use-after-free detection, matters more here; the gcc pass asserts the growth, and
        # LeakSanitizer checks pginad's heap when it exits.
        echo "RSS not asserted: pginad is an ASan build (VmRSS $growth%, RssAnon $anon_growth% with its quarantine)"
else
        awk -v a="$rss0" -v b="$rss1" 'BEGIN { exit !(b * 10 < a * 11) }' ||
                fail "pginad's VmRSS grew from $rss0 to $rss1 KiB ($growth%) over $CYCLES cycles"
        awk -v a="$anon0" -v b="$anon1" 'BEGIN { exit !(b * 10 < a * 11) }' ||
                fail "pginad's RssAnon grew from $anon0 to $anon1 KiB ($anon_growth%) over $CYCLES cycles"
fi

step "no more files than after the warm-up (state dir and store)"
[ "$files1" -le "$files0" ] || {
        find /var/lib/pgina /run/pgina "$SOAK_STORE" -xdev >&2
        fail "files in state dir and store grew from $files0 to $files1"
}

step "every archive is valid; each user's holds its last cycle"
soak_check_store
n=$(wc -l <"$SOAK_LOG")
assert_eq "$((CYCLES + 3 * ${#USERS[@]}))" "$n" "sessions logged by the session script"

step "pam_pgina keeps no connection open in the PAM host after its calls"
soak_pam_sockets "$n"

step "pginad stops cleanly"
pgina_stop || fail "pginad exited non-zero"
