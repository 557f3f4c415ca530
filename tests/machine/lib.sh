# tests/machine/lib.sh — sourced by every tests/machine/test-*.sh. The runner (run.sh) starts each
# test in its own mount and pid namespace with $BUILD, $SRC and $T set. A test boots a Debian 12
# machine (systemd as PID 1, journald, dbus, logind, sshd) with systemd-nspawn over an overlay of
# the cached root (root.sh), pgina installed the way an admin installs it: `meson install`,
# `pam-auth-update --enable pgina`, `systemctl enable pginad` (or none: machine_prepare_bare, for
# a test that installs the Debian packages itself). Commands run inside through
# nsenter into the machine's PID 1; logons are real ssh logons to 127.0.0.1 inside it.
# A test exits 0 = pass, 1 = fail, 77 = skip.
# shellcheck shell=bash

set -uo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
: "${SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILD:=$SRC/build}"
: "${T:?T must be set (run through tests/machine/run.sh)}"
if [ "${PGINA_MACHINE_NS:-}" != 1 ]; then
        echo "lib.sh: refusing to run outside run.sh's private namespaces" >&2
        exit 1
fi

M=$T/root # the machine's root: an overlay over the cached root
MACHINE_LOWER=
NSPAWN_PID=
MACHINE_PID1=
MACHINE_BOOT_ID= # of the last boot (systemd-nspawn gives each boot its own)
MACHINE_BARE=    # 1: no pgina in the machine (machine_prepare_bare)

fail() {
        echo "FAIL: $*" >&2
        exit 1
}
skip() {
        echo "SKIP: $*" >&2
        echo "$*" >"$T/skip-reason"
        exit 77
}
step() { echo "---- $* ($(date +%T))"; }
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"; }
assert_contains() { grep -qF -- "$2" "$1" || fail "$1 does not contain '$2'"; }
assert_not_contains() { ! grep -qF -- "$2" "$1" || fail "$1 contains '$2'"; }

_machine_exit() {
        local rc=$?
        machine_stop >/dev/null 2>&1
        if [ -n "$MACHINE_LOWER" ] && mountpoint -q "$M"; then
                umount -l "$M" 2>/dev/null
        fi
        exit "$rc"
}
trap _machine_exit EXIT

# machine_prepare_bare: the overlay over the cached root and nothing more: a fresh Debian 12 as
# root.sh left it, without pgina, for a test that installs pgina itself (the Debian packages,
# test-machine-deb-install). machine_boot then does not wait for pginad (MACHINE_BARE=1).
machine_prepare_bare() {
        local lower
        for tool in debootstrap systemd-nspawn nsenter; do
                command -v "$tool" >/dev/null || skip "$tool not found (debootstrap, systemd-container)"
        done
        lower=$("$SRC/tests/machine/root.sh" "$BUILD" 2>"$T/root.log") ||
                { cat "$T/root.log" >&2; fail "cannot build the machine root (log above)"; }
        MACHINE_LOWER=$lower
        mkdir -p "$T/upper" "$T/work" "$M"
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$T/upper,workdir=$T/work" "$M" ||
                fail "cannot mount the machine's overlay"
        MACHINE_BARE=1
}

# machine_prepare: the overlay, pgina installed into it, PAM and the unit enabled.
machine_prepare() {
        machine_prepare_bare
        MACHINE_BARE=
        DESTDIR=$M meson install -C "$BUILD" --no-rebuild --quiet >"$T/install.log" 2>&1 ||
                { tail -n 20 "$T/install.log" >&2; fail "meson install into the machine failed"; }
        # what an admin runs after installing
        chroot "$M" ldconfig
        chroot "$M" ldd /usr/sbin/pginad /usr/sbin/pginactl /usr/lib/pgina/plugins/*.so /usr/lib/pgina/plugins/pgsmb-userwork >"$T/ldd.log" 2>&1
        if grep -q 'not found' "$T/ldd.log"; then
                grep 'not found' "$T/ldd.log" >&2
                fail "the machine root lacks a library pgina needs (add its package to root.sh's runtime list)"
        fi
        DEBIAN_FRONTEND=noninteractive chroot "$M" pam-auth-update --enable pgina >"$T/pam-auth-update.log" 2>&1 ||
                { cat "$T/pam-auth-update.log" >&2; fail "pam-auth-update --enable pgina failed"; }
        chroot "$M" systemctl enable pginad >"$T/enable.log" 2>&1 ||
                { cat "$T/enable.log" >&2; fail "systemctl enable pginad failed"; }
}

# machine_conf: /etc/pgina/pgina.conf of the machine from stdin, log_level debug added unless
# MACHINE_LOG_LEVEL says otherwise (empty: none, the default level an admin gets).
machine_conf() {
        mkdir -p "$M/etc/pgina"
        { [ -n "${MACHINE_LOG_LEVEL-debug}" ] && printf '[service]\nlog_level = %s\n' "${MACHINE_LOG_LEVEL-debug}"
          cat; } >"$M/etc/pgina/pgina.conf"
        chmod 0644 "$M/etc/pgina/pgina.conf"
}

# machine_conf_roaming [PGSMB-LINES]: pgina.conf of a roaming machine: localmachine for local
# accounts, pgSMB (then localmachine) as gateway and notification with a file:// store at
# /srv/pgina/profiles (created); PGSMB-LINES (may be several lines) added to [pgsmb].
machine_conf_roaming() {
        mkdir -p "$M/srv/pgina/profiles"
        machine_conf <<CONF
[order]
authentication = localmachine
authorization = localmachine
gateway = pgsmb localmachine
notification = pgsmb localmachine
[pgsmb]
share = file:///srv/pgina/profiles
retries = 1
${1:-}
CONF
}

# machine_roaming ALICE-PASSWORD [PGSMB-LINES]: the usual machine of the logoff tests
# (machine_conf_roaming) with the local account alice. Boots it.
machine_roaming() {
        machine_prepare
        machine_conf_roaming "${2:-}"
        machine_user alice "$1"
        machine_boot
}

# machine_member NAME: the member NAME (stored as NAME or ./NAME) of alice's current profile on
# stdout: of store format 2 (the highest manifest names the archive holding NAME; a NAME without
# characters the manifest escapes), else of format 1 (the single archive)
machine_member() {
        local d=$M/srv/pgina/profiles/alice m arch
        m=$(find "$d" -maxdepth 1 -name 'alice.tar.zst.m[0-9]*' -printf '%f\n' 2>/dev/null | sort | tail -n 1)
        if [ -n "$m" ]; then
                arch=$(awk -v p="$1" '$1 == "e" && $NF == p { i = $2 } END { print i }' "$d/$m")
                arch=$(awk -v i="$arch" '$1 == "a" && $2 == i { print $3 }' "$d/$m")
                [ -n "$arch" ] || return 1
                tar --warning=no-unknown-keyword --zstd -xOf "$d/$arch" "$1"
                return
        fi
        machine_exec tar --warning=no-unknown-keyword --zstd -xOf /srv/pgina/profiles/alice/alice.tar.zst "$1" 2>/dev/null ||
                machine_exec tar --warning=no-unknown-keyword --zstd -xOf /srv/pgina/profiles/alice/alice.tar.zst "./$1"
}

# machine_user NAME PASSWORD: a local account in the machine (before it boots, or while it runs).
machine_user() {
        chroot "$M" useradd -m -s /bin/bash "$1" || fail "useradd $1 in the machine failed"
        printf '%s:%s\n' "$1" "$2" | chroot "$M" chpasswd -c YESCRYPT || fail "chpasswd $1 failed"
}

# machine_boot: boot it; wait (180 s) until systemd says running (or degraded) and pginad is active
# (not on a bare machine).
machine_boot() {
        local i state
        systemd-nspawn --register=no --keep-unit --private-network -q -D "$M" -b \
                </dev/null >"$T/console.log" 2>&1 &
        NSPAWN_PID=$!
        # the machine's PID 1: a child of systemd-nspawn that is pid 1 in its own pid namespace
        # (NSpid ends in 1). Not just any child: nspawn's short-lived "outer child" comes
        # first, and a test that took it entered a process that was gone a moment later.
        for ((i = 0; i < 300; i++)); do
                MACHINE_PID1=
                for pid in $(pgrep -P "$NSPAWN_PID"); do
                        if awk '$1 == "NSpid:" && NF > 2 && $NF == 1 { ok = 1 } END { exit !ok }' \
                                "/proc/$pid/status" 2>/dev/null; then
                                MACHINE_PID1=$pid
                                break
                        fi
                done
                [ -n "$MACHINE_PID1" ] && break
                kill -0 "$NSPAWN_PID" 2>/dev/null || break
                sleep 0.1
        done
        if [ -z "$MACHINE_PID1" ]; then
                NSPAWN_PID=
                tail -n 20 "$T/console.log" >&2
                skip "systemd-nspawn cannot boot a machine here (console above)"
        fi
        # systemctl answers only once systemd's bus is up: ask until it says the boot is done
        for ((i = 0; i < 900; i++)); do # 180 s: a loaded 2-core machine boots slowly
                state=$(nsenter -t "$MACHINE_PID1" -a systemctl is-system-running 2>/dev/null)
                case $state in running | degraded | maintenance | stopping) break ;; esac
                kill -0 "$NSPAWN_PID" 2>/dev/null || break
                sleep 0.2
        done
        case $state in
        running | degraded) ;;
        *)
                tail -n 30 "$T/console.log" >&2
                fail "the machine did not finish booting (state '$state')"
                ;;
        esac
        [ "$state" = degraded ] && machine_exec systemctl --failed --no-pager >&2
        MACHINE_BOOT_ID=$(machine_exec cat /proc/sys/kernel/random/boot_id)
        [ "$MACHINE_BARE" = 1 ] && return 0
        machine_exec systemctl is-active --quiet pginad || {
                machine_exec journalctl -b -u pginad --no-pager | tail -n 20 >&2
                machine_exec ldd /usr/sbin/pginad >&2
                fail "pginad is not active after boot"
        }
}

# machine_exec CMD...: run CMD inside the machine (all its namespaces), a clean environment.
machine_exec() {
        [ -n "$MACHINE_PID1" ] || fail "machine_exec: the machine is not running"
        nsenter -t "$MACHINE_PID1" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                LANG=C.UTF-8 "$@"
}

# machine_ssh USER PASSWORD CMD...: a real ssh logon to 127.0.0.1 inside the machine, running
# CMD (the password through a file, never argv). MACHINE_SSH_OPTS: more ssh options (e.g. -tt).
machine_ssh() {
        local user=$1 pw=$2
        shift 2
        printf '%s\n' "$pw" | machine_exec sh -c 'umask 077; cat >/run/pgina-test-pw'
        machine_exec timeout 120 sshpass -f /run/pgina-test-pw ssh -F /dev/null \
                -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
                -o PubkeyAuthentication=no -o GSSAPIAuthentication=no \
                -o PreferredAuthentications=keyboard-interactive,password \
                -o NumberOfPasswordPrompts=1 -o ConnectTimeout=30 ${MACHINE_SSH_OPTS:-} "$user@127.0.0.1" "$@"
}

# machine_journal [ARGS]: the machine's journal of this boot (journalctl ARGS).
machine_journal() { machine_exec journalctl -b --no-pager -o short "$@"; }

# machine_wait_journal TEXT [UNIT] [TENTHS]: wait until the journal (of UNIT) holds TEXT.
machine_wait_journal() {
        local i
        for ((i = 0; i < ${3:-300}; i++)); do
                machine_journal ${2:+-u "$2"} 2>/dev/null | grep -qF -- "$1" && return 0
                sleep 0.1
        done
        machine_journal ${2:+-u "$2"} >"$T/journal.txt" 2>&1
        fail "the journal does not say '$1' (in $T/journal.txt)"
}

# machine_halt VERB [SECONDS]: `systemctl VERB` (poweroff, reboot) inside the machine, then wait
# (default 180 s) until systemd-nspawn exits: its status in MACHINE_EXIT_STATUS (0 after a
# poweroff, 133 after a reboot), the seconds it took in MACHINE_HALT_SECS. The overlay stays
# mounted: the machine's files can be read from outside ($M), or it can boot again.
machine_halt() {
        local verb=$1 limit=${2:-180} t0 i
        [ -n "$NSPAWN_PID" ] || fail "machine_halt: the machine is not running"
        t0=$(date +%s)
        machine_exec systemctl "$verb" || fail "systemctl $verb failed in the machine"
        for ((i = 0; i < limit * 10; i++)); do
                kill -0 "$NSPAWN_PID" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
                kill -KILL "$NSPAWN_PID" 2>/dev/null
                wait "$NSPAWN_PID" 2>/dev/null
                NSPAWN_PID= MACHINE_PID1=
                tail -n 30 "$T/console.log" >&2
                fail "the machine did not end within $limit s of systemctl $verb (console above); killed"
        fi
        wait "$NSPAWN_PID"
        MACHINE_EXIT_STATUS=$?
        MACHINE_HALT_SECS=$(($(date +%s) - t0))
        NSPAWN_PID= MACHINE_PID1=
}

# machine_kill: a power loss. SIGKILL to the machine's PID 1: the kernel kills every process of
# its pid namespace at once (no unit is stopped, nothing is flushed by the machine), then
# systemd-nspawn sees its child gone and exits (killed too after 30 s). The overlay stays mounted,
# as after machine_halt: its files can be read from outside, and machine_boot boots it again.
# What the machine wrote is in the host's page cache and survives, unlike after a real outage:
# this tests what pginad kept across it (its journal, the store), not the filesystem's fsyncs.
machine_kill() {
        local i
        [ -n "$NSPAWN_PID" ] || fail "machine_kill: the machine is not running"
        kill -KILL "$MACHINE_PID1" || fail "machine_kill: cannot kill the machine's PID 1 ($MACHINE_PID1)"
        for ((i = 0; i < 300; i++)); do
                kill -0 "$NSPAWN_PID" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
                kill -KILL "$NSPAWN_PID" 2>/dev/null
                echo "machine_kill: systemd-nspawn did not exit within 30 s of its PID 1's end; killed" >&2
        fi
        wait "$NSPAWN_PID" 2>/dev/null
        NSPAWN_PID= MACHINE_PID1=
}

# machine_journal_offline [ARGS]: the journal of the machine's last boot, read from its overlay
# once it is down (journalctl ARGS). By boot id: journalctl -b means the host's boot here.
machine_journal_offline() {
        journalctl -D "$M/var/log/journal" --no-pager -o short "_BOOT_ID=${MACHINE_BOOT_ID//-/}" "$@"
}

# machine_stop: systemctl poweroff, wait 90 s for systemd-nspawn to end, else kill it.
machine_stop() {
        local i
        [ -n "$NSPAWN_PID" ] || return 0
        machine_exec systemctl poweroff >/dev/null 2>&1 || true
        for ((i = 0; i < 900; i++)); do
                kill -0 "$NSPAWN_PID" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
                kill -KILL "$NSPAWN_PID" 2>/dev/null
                echo "machine_stop: the machine did not power off within 90 s; killed" >&2
        fi
        wait "$NSPAWN_PID" 2>/dev/null
        NSPAWN_PID= MACHINE_PID1=
}
