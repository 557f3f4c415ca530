#!/bin/bash
# On a booted Debian 12 (issue 13): `systemctl poweroff`, and `systemctl reboot`, right after the
# logoff of a roaming user with a 200 MB home wait until that logoff's upload is committed: the
# machine goes down only once the store holds the new version, with the change the session made.
# The logoff job outlasts logind's delay inhibitor (InhibitDelayMaxSec, 5 s): a test plugin
# ahead of pgSMB in the notification order sleeps 8 s, then pgSMB uploads (200 MB takes about a
# second here, less than the time from the logoff to systemd's SIGTERM: a job that short was done
# before the shutdown began). So what holds the shutdown is the unit's stop ordering and pginad
# finishing the job on SIGTERM (shutdown_timeout).
. "$(dirname "$0")/lib.sh"

PW='Alice-machine-pw-1'
STORE=/srv/pgina/profiles/alice

machine_prepare
install -m 0644 "$BUILD/plugins/testplugin.so" "$M/usr/lib/pgina/plugins/testplugin.so"
mkdir -p "$M/srv/pgina/profiles"
machine_conf <<CONF
[order]
authentication = localmachine
authorization = localmachine
gateway = pgsmb localmachine
notification = testplugin pgsmb localmachine
[testplugin]
notify_sleep_ms = 8000
[pgsmb]
share = file:///srv/pgina/profiles
store_format = 1
retries = 1
CONF
machine_user alice "$PW"
# 200 MB that zstd cannot shrink: the upload takes seconds, not milliseconds
head -c 200M /dev/urandom >"$M/home/alice/big.bin" || fail "cannot write alice's big file"
chroot "$M" chown alice:alice /home/alice/big.bin
big_sum=$(sha256sum <"$M/home/alice/big.bin" | cut -d' ' -f1)
machine_boot

# store_member NAME: member NAME of alice's archive, read from outside the machine
store_member() {
        tar --warning=no-unknown-keyword --zstd -xOf "$M$STORE/alice.tar.zst" "$1" 2>/dev/null ||
                tar --warning=no-unknown-keyword --zstd -xOf "$M$STORE/alice.tar.zst" "./$1"
}
store_version() { sed -n 's/^version *= *//p' "$M$STORE/alice.tar.zst.meta" 2>/dev/null; }
STOPPING="Stopping: 1 logoff job(s) pending (alice), waiting up to 60 s"
# after FILE A B: FILE has a line with B after its first line with A
after() {
        local a
        a=$(grep -nF -- "$2" "$1" | head -n 1 | cut -d: -f1)
        [ -n "$a" ] || fail "$1 does not contain '$2'"
        tail -n "+$a" "$1" | grep -qF -- "$3" || fail "$1 has no '$3' after '$2'"
}
logoffs() { machine_journal -u pginad | grep -c "session .* of alice closed (last session: logoff)"; }
# logon_then_halt VALUE VERB: an ssh session sets f.txt to VALUE and ends; the moment pginad has
# the logoff (the last session closed), systemctl VERB. Then the store holds VALUE.
logon_then_halt() {
        local value=$1 verb=$2 before version_before i
        before=$(logoffs)
        version_before=$(store_version)
        machine_ssh alice "$PW" "echo $value > ~/f.txt" || fail "ssh logon failed"
        for ((i = 0; i < 300; i++)); do
                [ "$(logoffs)" -gt "$before" ] && break
                sleep 0.1
        done
        [ "$(logoffs)" -gt "$before" ] || fail "pginad did not see the logoff of alice"
        machine_halt "$verb" 240
        echo "the machine ended ${MACHINE_HALT_SECS} s after systemctl $verb (exit status $MACHINE_EXIT_STATUS)"
        machine_journal_offline -u pginad >"$T/pginad-$verb.journal" 2>&1
        # the test is about a shutdown that comes while the logoff job runs: pginad's SIGTERM
        # found it pending, and the upload was saved after that
        after "$T/pginad-$verb.journal" "$STOPPING" "alice: saved"
        assert_not_contains "$T/pginad-$verb.journal" "did not finish"
        [ "$(store_version)" != "$version_before" ] || fail "the store still holds version '$version_before'"
        assert_eq "$value" "$(store_member f.txt)" "f.txt in the store after systemctl $verb"
        assert_eq "$big_sum" "$(store_member big.bin | sha256sum | cut -d' ' -f1)" "big.bin in the store"
}

step "first logon: the profile is saved (the store's version before the shutdowns)"
machine_ssh alice "$PW" 'echo v1 > ~/f.txt' || fail "ssh logon failed"
machine_wait_journal "alice: saved" pginad 1200
machine_wait_journal "logoff job of alice finished" pginad
assert_eq v1 "$(store_member f.txt)" "f.txt in the store"

step "logon, change, logoff, poweroff at once: the machine goes down with the new version saved"
logon_then_halt v2 poweroff
assert_eq 0 "$MACHINE_EXIT_STATUS" "systemd-nspawn's status after a poweroff"

step "boot again: the logon has v2; change, logoff, reboot at once: v3 saved"
machine_boot
machine_ssh alice "$PW" 'cat ~/f.txt' >"$T/f-after-boot" || fail "ssh logon after the boot failed"
assert_eq v2 "$(cat "$T/f-after-boot")" "f.txt after the boot"
machine_wait_journal "logoff job of alice finished" pginad 1200
logon_then_halt v3 reboot
assert_eq 133 "$MACHINE_EXIT_STATUS" "systemd-nspawn's status after a reboot"
exit 0
