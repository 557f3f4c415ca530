#!/bin/bash
# tests/fuzz/run.sh [BUILD_DIR] [SECONDS] — build the libFuzzer targets (clang, ASan + UBSan,
# -Dfuzz=true) in BUILD_DIR (default build-fuzz) and run each for SECONDS (default 45; six
# targets stay under 5 minutes) from its seeds in tests/fuzz/corpus/<target>/. New inputs go to a
# scratch copy, never into the tree. Prints executions per target and ends with one line
# "N passed, N failed, N skipped" (a target passes when it ran its time without a crash, leak or
# broken invariant; the input that failed is kept in BUILD_DIR/fuzz-artifacts/). Exit 0 when all
# passed, 77 when clang's libFuzzer is missing.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
dir=${1:-build-fuzz}
secs=${2:-45}
targets=(proto nss config unpack state manifest)
# A larger input than the seeds (tar archives are counted in 512-byte blocks); the others keep
# libFuzzer's default of the largest seed.
declare -A max_len=([unpack]=65536 [config]=8192)

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer,address -o /dev/null - 2>/dev/null; then
        echo "fuzz: clang with libFuzzer (libclang-rt-14-dev) not found; skipped"
        echo "0 passed, 0 failed, ${#targets[@]} skipped"
        exit 77
fi

# A missing build dir is set up; one configured otherwise (a gcc build?) is left alone.
fuzz_configured() { # (no build dir yet: no JSON, no traceback shown)
        meson introspect "$dir" --buildoptions 2>/dev/null | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
sys.exit(0 if o.get("fuzz") is True and o.get("b_sanitize") == "address,undefined" else 1)' 2>/dev/null
}
if [ -d "$dir/meson-private" ] && ! fuzz_configured; then
        echo "fuzz: $dir is a build directory without -Dfuzz=true and ASan+UBSan; remove it or name another"
        echo "0 passed, ${#targets[@]} failed, 0 skipped"
        exit 1
fi
if ! fuzz_configured; then
        rm -rf "$dir"
        if ! CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized \
                -Db_sanitize=address,undefined -Db_lundef=false >"/tmp/pgina-fuzz-setup.log" 2>&1; then
                tail -n 20 /tmp/pgina-fuzz-setup.log
                echo "fuzz: meson setup $dir failed"
                echo "0 passed, ${#targets[@]} failed, 0 skipped"
                exit 1
        fi
fi
if ! ninja -C "$dir" -j2 fuzz >"$dir/fuzz-build.log" 2>&1; then
        grep -E 'error|warning' "$dir/fuzz-build.log" | head -n 30
        echo "fuzz: build failed (log: $dir/fuzz-build.log)"
        echo "0 passed, ${#targets[@]} failed, 0 skipped"
        exit 1
fi

scratch=$(mktemp -d /tmp/pgina-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
artifacts="$dir/fuzz-artifacts"
mkdir -p "$artifacts"
# Leaks count as findings; UBSan reports stop the run like ASan's.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
pass=0 fail=0 t0=$(date +%s)
for t in "${targets[@]}"; do
        mkdir -p "$scratch/$t/corpus" "$scratch/$t/tmp"
        cp tests/fuzz/corpus/"$t"/* "$scratch/$t/corpus/"
        log="$scratch/$t/log"
        args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                -artifact_prefix="$artifacts/$t-")
        [ -n "${max_len[$t]:-}" ] && args+=(-max_len="${max_len[$t]}")
        [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
        TMPDIR="$scratch/$t/tmp" "$dir/tests/fuzz/fuzz_$t" "${args[@]}" "$scratch/$t/corpus" \
                >"$log" 2>&1
        rc=$?
        execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -n 1)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
        if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
                printf '  PASS fuzz_%-7s %9s executions in %s s (%s, corpus %s inputs)\n' "$t" "$execs" \
                        "$secs" "${cov:-cov: ?}" "$(find "$scratch/$t/corpus" -type f | wc -l)"
                pass=$((pass + 1))
        else
                printf '  FAIL fuzz_%-7s exit %s after %s executions; the input: %s\n' "$t" "$rc" \
                        "${execs:-?}" "$(ls -t "$artifacts/$t-"* 2>/dev/null | head -n 1)"
                grep -E 'ERROR|SUMMARY|invariant|runtime error|#[0-9]+ 0x' "$log" | head -n 25 |
                        sed 's/^/    /'
                cp "$log" "$artifacts/$t.log"
                fail=$((fail + 1))
        fi
done
echo "fuzz: $(($(date +%s) - t0)) s for ${#targets[@]} targets"
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
