#!/bin/bash
# On a booted Debian 12 (issue 16): the logoff work of a roaming user survives pginad's crash and a
# power loss. pginad journals the job (/var/lib/pgina/jobs/alice.job) before it runs it, and the
# pginad that starts next resumes it from there:
# 1. `systemctl kill --kill-who=main -s KILL pginad.service` in the middle of the logoff upload: systemd restarts
#    pginad (Restart=on-failure), which resumes the job; a logon made meanwhile waits for it;
# 2. a power loss (the machine's PID 1 killed) in the middle of the next upload: at the next boot
#    pginad resumes the job.
# Each time the store ends with the new version holding the session's change, its .meta matching
# the archive, the previous version kept as .v-*, nothing half-written left (.tmp-*), the journal
# empty and `pginactl wait` answering 0. The upload is slow enough to be hit: a 24 MiB home that
# does not compress, at zstd level 19 on one thread (about 10 s here; the test kills at its first
# 8 MiB written). The store is file://: the journal keeps no password, and this store needs none.
. "$(dirname "$0")/lib.sh"

PW='Alice-machine-pw-1'
STORE=/srv/pgina/profiles/alice
JOBS=/var/lib/pgina/jobs

machine_prepare
machine_conf_roaming "store_format = 1
compression_level = 19
compression_threads = 1
logoff_process_wait = 2"
machine_user alice "$PW"
machine_boot

# Read from outside the machine (the overlay), so that they work while it is down too.
store_version() { sed -n 's/^version *= *//p' "$M$STORE/alice.tar.zst.meta" 2>/dev/null; }
store_member() {
        tar --warning=no-unknown-keyword --zstd -xOf "$M$STORE/alice.tar.zst" "$1" 2>/dev/null ||
                tar --warning=no-unknown-keyword --zstd -xOf "$M$STORE/alice.tar.zst" "./$1"
}
store_tmp() { find "$M$STORE" -maxdepth 1 -name '*.tmp-*' -printf '%f\n' 2>/dev/null; }
jobs_left() { find "$M$JOBS" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null; }
pginad_log() { machine_exec journalctl -b --no-pager -o cat -u pginad _COMM=pginad; }
# line FILE TEXT [N]: the number of the Nth (default first) line of FILE holding TEXT, or fail
line() {
        local n
        n=$(grep -nF -- "$2" "$1" | sed -n "${3:-1}p" | cut -d: -f1)
        [ -n "$n" ] || fail "$1 does not say '$2'${3:+ ($3 times)}"
        echo "$n"
}

# upload_started: wait (120 s) until the logoff upload has written over 2 MiB of alice's archive
# to its temporary name in the store, its job in the journal. Prints the file's name.
upload_started() {
        local i tmp
        for ((i = 0; i < 2400; i++)); do
                tmp=$(find "$M$STORE" -maxdepth 1 -name 'alice.tar.zst.tmp-*' -size +2M -printf '%f\n' \
                        2>/dev/null | head -n 1)
                [ -n "$tmp" ] && break
                sleep 0.05
        done
        [ -n "$tmp" ] || fail "no upload of alice's archive in the store after 120 s: $(ls -la "$M$STORE" 2>&1)"
        [ -f "$M$JOBS/alice.job" ] ||
                fail "the running logoff job of alice is not in the journal: $(ls -la "$M$JOBS" 2>&1)"
        echo "$tmp"
}
# cut_in_the_middle VERSION TMP: the upload was cut: the store still holds VERSION, TMP is left
# half-written
cut_in_the_middle() {
        [ "$(store_version)" = "$1" ] ||
                fail "the upload was committed before the kill (version '$(store_version)'): make it slower"
        [ -f "$M$STORE/$2" ] || fail "the upload's temporary file $2 is gone: the kill did not cut it"
        echo "cut at $(stat -c %s "$M$STORE/$2") bytes of $2"
}
# saved_after_all VERSION VALUE: the resumed job saved the new version of the home: f.txt holds
# VALUE and big.bin is whole, the .meta names the archive's sha256 and size, VERSION is kept as
# .v-VERSION, no temporary file is left, the journal is empty, pginactl wait says 0
saved_after_all() {
        local version=$1 value=$2 rc sum
        machine_exec timeout 120 pginactl wait >"$T/wait.out" 2>&1
        rc=$?
        assert_eq 0 "$rc" "pginactl wait's exit status ($(cat "$T/wait.out"))"
        [ -n "$(store_version)" ] && [ "$(store_version)" != "$version" ] ||
                fail "the store holds version '$(store_version)', not a new one after '$version'"
        assert_eq "$value" "$(store_member f.txt)" "f.txt in the store"
        assert_eq "$big_sum" "$(store_member big.bin | sha256sum | cut -d' ' -f1)" "big.bin in the store"
        sum=$(sha256sum <"$M$STORE/alice.tar.zst" | cut -d' ' -f1)
        assert_eq "$sum" "$(sed -n 's/^sha256=//p' "$M$STORE/alice.tar.zst.meta")" "the .meta's sha256 (of the archive)"
        assert_eq "$(stat -c %s "$M$STORE/alice.tar.zst")" "$(sed -n 's/^size=//p' "$M$STORE/alice.tar.zst.meta")" \
                "the .meta's size (of the archive)"
        [ -f "$M$STORE/alice.tar.zst.v-$version" ] || fail "the previous version $version is not kept: $(ls "$M$STORE")"
        assert_eq "" "$(store_tmp)" "temporary files in the store"
        assert_eq "" "$(jobs_left)" "files in the journal $JOBS"
        ls -l "$M$STORE"
}

step "first logon and logoff: version 1 saved"
machine_ssh alice "$PW" 'echo v1 > ~/f.txt' || fail "ssh logon failed"
machine_wait_journal "logoff job of alice finished" pginad 1200
v1=$(store_version)
[ -n "$v1" ] || fail "no version of alice's profile in the store"
assert_eq v1 "$(store_member f.txt)" "f.txt in the store"
assert_eq "" "$(jobs_left)" "files in the journal after a job"

step "second session: v2 and a 24 MiB file that zstd cannot shrink; pginad killed during the upload"
machine_ssh alice "$PW" 'echo v2 > ~/f.txt && head -c 24M /dev/urandom > ~/big.bin' || fail "ssh logon failed"
big_sum=$(sha256sum <"$M/home/alice/big.bin" | cut -d' ' -f1)
pid_before=$(machine_exec systemctl show -p MainPID --value pginad)
tmp=$(upload_started) || exit 1
# pginad alone (its workers die with it, their parent-death signal): killing the whole cgroup
# raced with workers exiting on their own ("Failed to send signal SIGKILL to auxiliary
# processes: Input/output error") once in a loaded run.
machine_exec systemctl kill --kill-who=main -s KILL pginad.service || fail "systemctl kill pginad failed"
cut_in_the_middle "$v1" "$tmp"
[ -f "$M$JOBS/alice.job" ] || fail "the killed job is not in the journal"

step "systemd restarts pginad, which resumes the job; a logon meanwhile waits for it"
machine_wait_journal "Resuming the logoff job of alice" pginad 300
machine_wait_journal "logoff job of alice started (resumed)" pginad
pid_after=$(machine_exec systemctl show -p MainPID --value pginad)
[ "$pid_after" != "$pid_before" ] && [ "$pid_after" != 0 ] ||
        fail "pginad was not restarted (MainPID $pid_before, then $pid_after)"
machine_exec systemctl show -p NRestarts --value pginad >"$T/nrestarts"
assert_eq 1 "$(cat "$T/nrestarts")" "pginad's restarts (NRestarts)"
[ "$(store_version)" = "$v1" ] || fail "the resumed job ended before the logon was tried: make it slower"
# the session stays until /run/pgina-test-go appears: the store is checked after the resumed
# job, before this session's own logoff job saves the home again
machine_ssh alice "$PW" 'cat ~/f.txt; for i in $(seq 1200); do [ -e /run/pgina-test-go ] && break; sleep 0.1; done' \
        >"$T/f-logon" 2>"$T/f-logon.err" &
ssh_pid=$!
for ((i = 0; i < 1200; i++)); do
        [ -s "$T/f-logon" ] && break
        kill -0 "$ssh_pid" 2>/dev/null || break
        sleep 0.1
done
assert_eq v2 "$(cat "$T/f-logon")" "f.txt at the logon after the resumed job ($(cat "$T/f-logon.err"))"
pginad_log >"$T/journal-1"
waited=$(line "$T/journal-1" "alice: logon waits for the pending logoff job") || exit 1
resumed_end=$(line "$T/journal-1" "logoff job of alice finished" 2) || exit 1
logon=$(line "$T/journal-1" "logon of alice (service sshd" 3) || exit 1
[ "$waited" -lt "$resumed_end" ] && [ "$resumed_end" -lt "$logon" ] ||
        fail "the logon did not wait for the resumed job (lines: wait $waited, job end $resumed_end, logon $logon)"
sed -n "${resumed_end}p" "$T/journal-1" | grep -q ': ok$' ||
        fail "the resumed job: $(sed -n "${resumed_end}p" "$T/journal-1")"
line "$T/journal-1" "alice: removed $tmp left by an upload that failed" >/dev/null || exit 1
saved_after_all "$v1" v2
machine_exec touch /run/pgina-test-go
wait "$ssh_pid" || fail "the ssh session during the resumed job failed: $(cat "$T/f-logon.err")"
# that session's own logoff job, the third to finish in this boot (pginactl wait now could come
# before pginad has the logoff)
for ((i = 0; i < 600; i++)); do
        [ "$(pginad_log | grep -c 'logoff job of alice finished')" -ge 3 ] && break
        sleep 0.1
done
pginad_log >"$T/journal-1b"
[ "$(grep -c 'logoff job of alice finished' "$T/journal-1b")" -ge 3 ] ||
        fail "the logoff job of the session made during the resumed job did not finish (in $T/journal-1b)"
assert_eq v2 "$(store_member f.txt)" "f.txt in the store after the session's own logoff"

step "third session: v3; a power loss during the upload"
v2=$(store_version)
machine_ssh alice "$PW" 'echo v3 > ~/f.txt' || fail "ssh logon failed"
tmp=$(upload_started) || exit 1
machine_kill
cut_in_the_middle "$v2" "$tmp"
[ -f "$M$JOBS/alice.job" ] || fail "the job cut by the power loss is not in the journal"

step "boot again: pginad resumes the job at boot and saves v3"
machine_boot
machine_wait_journal "Resuming the logoff job of alice" pginad 300
machine_wait_journal "logoff job of alice started (resumed)" pginad
machine_exec pginactl status >"$T/status" 2>&1
cat "$T/status"
[ "$(store_version)" = "$v2" ] || fail "the resumed job ended before pginactl status was asked: make it slower"
grep -Eq '^ *alice +running \(resumed\)' "$T/status" || fail "pginactl status does not show alice's resumed job"
saved_after_all "$v2" v3
pginad_log >"$T/journal-2"
line "$T/journal-2" "alice: removed $tmp left by an upload that failed" >/dev/null || exit 1
grep 'logoff job of alice finished' "$T/journal-2" | grep -q ': ok$' ||
        fail "the resumed job: $(grep 'logoff job of alice' "$T/journal-2")"
exit 0
