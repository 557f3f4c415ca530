# tests/integration/lib.sh — sourced by every tests/integration/test-*.sh. The runner (run.sh)
# starts each test in a fresh sandbox (tests/sandbox.sh) with $BUILD (build dir), $SRC (source
# dir) and $T (this test's temp dir) set. A test exits 0 = pass, 1 = fail, 77 = skip.
# shellcheck shell=bash

set -uo pipefail

: "${SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILD:=$SRC/build}"
if [ -z "${T:-}" ]; then
        T=$(mktemp -d /tmp/pgina-test.XXXXXX)
        chmod 0755 "$T"
fi
export SRC BUILD T

if [ "${PGINA_SANDBOX:-}" != 1 ]; then
        echo "lib.sh: refusing to run outside the sandbox (run it through tests/integration/run.sh" \
                "or tests/sandbox.sh)" >&2
        exit 1
fi

PGINA_CONF=/etc/pgina/pgina.conf
PGINA_SOCKET=/run/pgina/pginad.sock
PGINA_PID=
PGINA_LOG=$T/pginad.log
PAM_MODULE=$BUILD/pam_pgina.so
# The system's python3 (any user can run it; tests run clients as nobody).
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)

# ---- sanitizer builds ------------------------------------------------------------------------
# pamtester and sshd are not instrumented: when pam_pgina.so carries ASan, they must load the
# ASan runtime first (LD_PRELOAD), and their own leaks are not ours (detect_leaks=0).
PAM_PRELOAD=
_lib_detect_asan() {
        local so=$PAM_MODULE lib
        [ -e "$so" ] || return 0
        lib=$(ldd "$so" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
        if [ -n "$lib" ]; then # gcc: the module links libasan dynamically
                PAM_PRELOAD=$lib
        elif nm -D --undefined-only "$so" 2>/dev/null | grep -q '__asan_init'; then
                # clang: the runtime is linked into executables only; take the shared one
                PAM_PRELOAD=$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
                [ -e "$PAM_PRELOAD" ] || PAM_PRELOAD=
        fi
}
_lib_detect_asan

# shim_preload SHIM: the LD_PRELOAD list that puts a test's fault shim into pginad (PGINA_PRELOAD),
# after the sanitizer runtime when pginad carries one as a library (gcc), which must stay first.
shim_preload() {
        local lib
        lib=$(ldd "$BUILD/pginad" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
        echo "${lib:+$lib }$1"
}

# Run an uninstrumented program that loads pam_pgina.so (the ASan runtime preloaded if needed).
# PAM_HOST_ENV: the `env ...` prefix as an array (empty when the module is not instrumented).
# libcrypt goes right after the runtime: ASan intercepts crypt/crypt_r and resolves the real
# functions when it starts, so a libcrypt first loaded later (pam_unix, dlopen'ed by libpam)
# would leave the interceptors calling NULL.
PAM_HOST_ENV=()
if [ -n "$PAM_PRELOAD" ]; then
        PAM_PRELOAD="$PAM_PRELOAD libcrypt.so.1"
        PAM_HOST_ENV=(env "LD_PRELOAD=$PAM_PRELOAD"
                "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:verify_asan_link_order=0")
fi
pam_host_exec() { "${PAM_HOST_ENV[@]}" "$@"; }

# ---- exit handling ---------------------------------------------------------------------------
_LIB_AT_EXIT=()
# at_exit CMD...: run at the end of the test (last registered first).
at_exit() { _LIB_AT_EXIT=("$(printf '%q ' "$@")" "${_LIB_AT_EXIT[@]}"); }
_lib_exit() {
        local rc=$? c
        for c in "${_LIB_AT_EXIT[@]}"; do
                eval "$c" || true
        done
        [ -n "$PGINA_PID" ] && pgina_stop >/dev/null 2>&1
        exit "$rc"
}
trap _lib_exit EXIT

# ---- reporting -------------------------------------------------------------------------------
fail() {
        echo "FAIL: $*" >&2
        exit 1
}

skip() {
        echo "$*" >"$T/skip-reason"
        echo "SKIP: $*"
        exit 77
}

# step TEXT: names the case that follows, in the test's log.
step() { echo "---- $*"; }

# need CMD...: skip the test when a tool is missing.
need() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
        done
}

_lib_show() { printf '%q ' "$@"; }

assert_ok() {
        local rc=0
        "$@" || rc=$?
        [ "$rc" -eq 0 ] || fail "expected success, got exit $rc: $(_lib_show "$@")"
}

assert_fail() {
        local rc=0
        "$@" || rc=$?
        [ "$rc" -ne 0 ] || fail "expected failure, got success: $(_lib_show "$@")"
}

assert_eq() {
        [ "$1" = "$2" ] || fail "${3:-values differ}: expected '$1', got '$2'"
}

assert_contains() {
        grep -qF -- "$2" "$1" || {
                echo "---- $1:" >&2
                tail -n 30 "$1" >&2
                fail "$1 does not contain '$2'"
        }
}

assert_not_contains() {
        if grep -qF -- "$2" "$1"; then
                echo "---- $1:" >&2
                grep -nF -- "$2" "$1" | head -n 5 >&2
                fail "$1 contains '$2'"
        fi
}

# has_line FILE REGEX: some line of FILE matches the extended REGEX (else FILE is shown, fail).
has_line() {
        grep -qE -- "$2" "$1" || {
                cat "$1" >&2
                fail "$1 has no line matching '$2'"
        }
}

# ---- pgina -----------------------------------------------------------------------------------
pginactl() { "$BUILD/pginactl" "$@"; }

# pgclient ARGS: the raw protocol client (tests/integration/pgclient.py), as root.
# pgclient_as USER ARGS: the same as USER (a copy in $T, readable by anyone).
pgclient() { "$PYTHON" "$SRC/tests/integration/pgclient.py" "$@"; }
pgclient_as() {
        local user=$1
        shift
        install -m 0755 "$SRC/tests/integration/pgclient.py" "$T/pgclient.py"
        setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- \
                "$PYTHON" "$T/pgclient.py" "$@"
}

# pgina_conf: write /etc/pgina/pgina.conf: a [service] block for this build, then stdin.
# PGINA_SERVICE_EXTRA (lines) is added to [service], e.g. "request_timeout = 5".
pgina_conf() {
        mkdir -p /etc/pgina
        {
                echo "[service]"
                echo "plugin_dir = $BUILD/plugins"
                echo "log_level = debug"
                [ -n "${PGINA_SERVICE_EXTRA:-}" ] && printf '%s\n' "$PGINA_SERVICE_EXTRA"
                echo
                cat
        } >"$PGINA_CONF"
}

# pgina_start [ARGS]: start pginad in the foreground, in the background of this test; fail the
# test unless it logs "ready" within 10 s.
# shellcheck disable=SC2120 # arguments are optional (pginad options)
pgina_start() {
        local skip_lines i
        [ -z "$PGINA_PID" ] || fail "pgina_start: pginad already running (pid $PGINA_PID)"
        [ -x "$BUILD/pginad" ] || fail "pgina_start: $BUILD/pginad not built"
        touch "$PGINA_LOG"
        skip_lines=$(wc -l <"$PGINA_LOG")
        echo "---- pginad -f $* (started $(date +%T))" >>"$PGINA_LOG"
        # PGINA_PRELOAD: a library pginad (and only pginad) runs with (LD_PRELOAD)
        ${PGINA_PRELOAD:+env "LD_PRELOAD=$PGINA_PRELOAD"} "$BUILD/pginad" -f "$@" >>"$PGINA_LOG" 2>&1 &
        PGINA_PID=$!
        for ((i = 0; i < 100; i++)); do
                if tail -n +"$((skip_lines + 2))" "$PGINA_LOG" | grep -q '\bready\b' &&
                        [ -S "$(_lib_socket)" ]; then
                        return 0
                fi
                if ! kill -0 "$PGINA_PID" 2>/dev/null; then
                        wait "$PGINA_PID"
                        local rc=$?
                        PGINA_PID=
                        tail -n 20 "$PGINA_LOG" >&2
                        fail "pginad exited with status $rc before it was ready"
                fi
                sleep 0.1
        done
        tail -n 20 "$PGINA_LOG" >&2
        fail "pginad did not log 'ready' within 10 s"
}

# The socket the current config names.
_lib_socket() {
        local s
        s=$(sed -n 's/^[[:space:]]*socket[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
                "$PGINA_CONF" 2>/dev/null | tail -n 1)
        echo "${s:-$PGINA_SOCKET}"
}

# pgina_stop: SIGTERM, wait (30 s, then SIGKILL and fail). Returns pginad's exit status.
pgina_stop() {
        local pid=$PGINA_PID i rc
        [ -n "$pid" ] || return 0
        PGINA_PID=
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 300; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                fail "pginad did not exit within 30 s of SIGTERM"
        fi
        wait "$pid" 2>/dev/null
        rc=$?
        echo "---- pginad exited with status $rc ($(date +%T))" >>"$PGINA_LOG"
        return "$rc"
}

# pgina_kill: SIGKILL pginad (a crash, the OOM killer), wait; its workers die with it (their
# parent-death signal).
pgina_kill() {
        local pid=$PGINA_PID
        [ -n "$pid" ] || return 0
        PGINA_PID=
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        echo "---- pginad killed with SIGKILL ($(date +%T))" >>"$PGINA_LOG"
        return 0
}

# pgina_wait_log TEXT [TENTHS]: wait until pginad's log holds TEXT (TENTHS x 0.1 s, default 100);
# then it must (assert_contains).
pgina_wait_log() {
        local i
        for ((i = 0; i < ${2:-100}; i++)); do
                grep -qF -- "$1" "$PGINA_LOG" && return 0
                sleep 0.1
        done
        assert_contains "$PGINA_LOG" "$1"
}

# pgina_simulate PASSWORD USER: pginactl simulate USER (PASSWORD on stdin); returns its exit
# status, stdout and stderr in $T/sim.out.
pgina_simulate() {
        local rc=0
        printf '%s\n' "$1" | pginactl simulate "$2" >"$T/sim.out" 2>&1 || rc=$?
        return "$rc"
}

# pgina_wait_jobs [SECONDS]: wait until pginad has no queued or running logoff job (pginactl
# wait: pginad answers when the last one ends; default 60 s, then fail).
# shellcheck disable=SC2120 # SECONDS is optional; the tests here all use the default
pgina_wait_jobs() {
        local secs=${1:-60}
        pginactl -t "$secs" wait >"$T/wait.out" 2>&1 ||
                fail "logoff job still pending after $secs s: $(cat "$T/wait.out")"
}

# pgina_wait_retry USER [SECONDS]: wait until USER's logoff job waits for a retry (pginactl status
# shows "retry N" for it: a plugin asked pginad to try again later); default 60 s, then fail.
pgina_wait_retry() {
        local user=$1 secs=${2:-60} i
        for ((i = 0; i < secs * 10; i++)); do
                pginactl status >"$T/status-retry.out" 2>&1 &&
                        grep -Eq "^$user +retry [0-9]+ " "$T/status-retry.out" && return 0
                sleep 0.1
        done
        fail "the logoff job of $user is not waiting for a retry after $secs s: $(cat "$T/status-retry.out")"
}

# pgina_close_session_retry USER: pgina_close_session_nowait USER, then pgina_wait_retry USER (its
# logoff work failed for now and waits for pginad's retry).
pgina_close_session_retry() {
        pgina_close_session_nowait "$1"
        pgina_wait_retry "$1"
}

# pgina_close_session_frame SID USER: the hex payload of a CLOSE_SESSION frame (proto.h: str
# session | str user) for pgclient's raw "frame" command (pgclient frame 1 4 HEX).
pgina_close_session_frame() {
        "$PYTHON" -c 'import struct, sys
s = lambda v: struct.pack(">I", len(v)) + v.encode()
print((s(sys.argv[1]) + s(sys.argv[2])).hex())' "$1" "$2"
}

# pgina_close_session_nowait USER: close USER's first open session (pginactl sessions) through
# the socket, the way login would (CLOSE_SESSION as root); it must succeed; no waiting.
pgina_close_session_nowait() {
        local sid
        sid=$(pginactl sessions | awk -v u="$1" '$0 ~ u { print $1; exit }')
        [ -n "$sid" ] || fail "no open session of $1"
        pgclient frame 1 4 "$(pgina_close_session_frame "$sid" "$1")" >"$T/close.out"
        assert_contains "$T/close.out" "result 0"
}

# pgina_close_session USER: pgina_close_session_nowait USER, then pgina_wait_jobs (the logoff
# job is done when it returns).
pgina_close_session() {
        pgina_close_session_nowait "$1"
        pgina_wait_jobs
}

# pgsmb_delta_file_store_start: STORE=$T/store as pgSMB's file:// share (store format 2, no
# retries, no compaction), the home kept at logoff (logoff_action = none), pginad started: what
# the delta tests that play "another machine" with v2-tool share.
pgsmb_delta_file_store_start() {
        STORE=$T/store
        mkdir -p "$STORE"
        pgsmb_pam_service
        PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
compact_deltas = 0
compact_percent = 0
${PGSMB_EXTRA:-}
[localmachine]
logoff_action = none
CONF
        pgina_start
}

# pgsmb_delta_test: how the delta tests that play "another machine" begin: pamtester and the
# plugin needed, V2 (v2-tool), the file store started (pgsmb_delta_file_store_start; PGSMB_EXTRA
# passes through), and current: alice's current version number in it.
pgsmb_delta_test() {
        need pamtester
        [ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
        V2=$BUILD/tests/tools/v2-tool
        pgsmb_delta_file_store_start
}
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | cut -d' ' -f2; }

# ---- PAM -------------------------------------------------------------------------------------
# pam_service NAME: write /etc/pam.d/NAME from stdin; the word pam_pgina.so becomes the path of
# the built module.
pam_service() {
        mkdir -p /etc/pam.d
        sed "s#\(^\|[[:space:]]\)pam_pgina\.so\b#\1$PAM_MODULE#g" >"/etc/pam.d/$1"
}

# Drives pamtester: answers each prompt (output that stops without a newline for 150 ms) with the
# next input line; the last line is repeated when more prompts come. Output -> $PAM_OUT.
_lib_pam_driver() {
        "$PYTHON" -c '
import os, select, subprocess, sys, time
lines = os.environ["PAM_INPUT"].split("\n")
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
out = open(os.environ["PAM_OUT"], "ab")
fd = p.stdout.fileno()
pending = b""
answered = 0
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    if select.select([fd], [], [], 0.15)[0]:
        data = os.read(fd, 4096)
        if not data:
            break
        out.write(data)
        out.flush()
        pending += data
        continue
    if p.poll() is not None:
        break
    if pending and not pending.endswith(b"\n"):
        line = lines[min(answered, len(lines) - 1)]
        answered += 1
        try:
            p.stdin.write(line.encode() + b"\n")
            p.stdin.flush()
        except BrokenPipeError:
            pass
        out.write(b"<answered prompt %d>\n" % answered)
        out.flush()
        pending = b""
else:
    out.write(b"<pamtester killed after 90 s>\n")
    p.kill()
rc = p.wait()
# what it wrote just before exiting
while select.select([fd], [], [], 0.2)[0]:
    data = os.read(fd, 65536)
    if not data:
        break
    out.write(data)
sys.exit(rc)
' "$@"
}

# pam_run_as sets this: the setpriv prefix that runs pamtester as a user instead of root.
_LIB_PAM_RUNNER=()
_lib_pam_exec() {
        local input=$1 service=$2 user=$3 rc=0
        shift 3
        : >"$T/pam.out"
        echo "---- pamtester $service $user $* ($(date +%T))" >>"$T/pam.log"
        PAM_INPUT=$input PAM_OUT=$T/pam.out \
                _lib_pam_driver "${PAM_HOST_ENV[@]}" "${_LIB_PAM_RUNNER[@]}" \
                pamtester -v "$service" "$user" "$@" || rc=$?
        cat "$T/pam.out" >>"$T/pam.log"
        echo "---- exit $rc" >>"$T/pam.log"
        return "$rc"
}

# pam_run SERVICE USER PASSWORD OPS...: every prompt is answered with PASSWORD. Returns
# pamtester's exit status; its output is in $T/pam.out (all runs: $T/pam.log).
pam_run() {
        local service=$1 user=$2 password=$3
        shift 3
        _lib_pam_exec "$password" "$service" "$user" "$@"
}

# pam_run_input SERVICE USER INPUT OPS...: INPUT holds one line per prompt, e.g. 'old\nnew\nnew'
# (backslash escapes as printf %b).
pam_run_input() {
        local service=$1 user=$2 input
        input=$(printf '%b' "$3")
        shift 3
        _lib_pam_exec "$input" "$service" "$user" "$@"
}

# pam_run_as RUNNER SERVICE USER INPUT OPS...: pam_run_input with pamtester run by the user
# RUNNER (setpriv: its uid, primary group and groups), a non-root PAM caller.
pam_run_as() {
        local runner=$1 rc=0
        shift
        _LIB_PAM_RUNNER=(setpriv --reuid="$runner" --regid="$(id -g "$runner")" --init-groups)
        pam_run_input "$@" || rc=$?
        _LIB_PAM_RUNNER=()
        return "$rc"
}

# pam_ok SERVICE USER PASSWORD OPS...: pam_run must succeed (else fail with pamtester's last lines).
pam_ok() { pam_run "$@" || fail "pamtester $* failed: $(tail -n 3 "$T/pam.out")"; }

# pam_fails_with ERROR SERVICE USER PASSWORD OPS...: pam_run must fail and print ERROR.
pam_fails_with() {
        local err=$1
        shift
        if pam_run "$@"; then fail "pamtester $* succeeded; expected: $err"; fi
        assert_contains "$T/pam.out" "$err"
}

# syslog_capture FILE: pam_syslog writes to /dev/log, which the sandbox lacks. Give this test's
# (private) mount namespace its own /dev: a tmpfs holding the host's nodes bind-mounted, plus a
# listener on /dev/log appending each message to FILE (emptied first).
syslog_capture() {
        local file=$1 old=/run/host-dev e name i
        mkdir -p "$old"
        mount --bind /dev "$old" || fail "cannot bind /dev"
        mount -t tmpfs -o mode=0755 pgina-dev /dev || fail "cannot mount a tmpfs on /dev"
        for e in "$old"/*; do
                name=${e##*/}
                [ "$name" = log ] && continue
                if [ -L "$e" ]; then
                        cp -P "$e" "/dev/$name"
                elif [ -d "$e" ]; then
                        mkdir "/dev/$name" && mount --bind "$e" "/dev/$name"
                elif [ -c "$e" ] || [ -b "$e" ]; then
                        touch "/dev/$name" && mount --bind "$e" "/dev/$name"
                fi
        done
        [ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
        : >"$file"
        "$PYTHON" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$file" &
        at_exit kill $!
        for ((i = 0; i < 50; i++)); do [ -S /dev/log ] && return 0; sleep 0.1; done
        fail "the syslog listener did not start"
}

# ---- accounts --------------------------------------------------------------------------------
# make_user NAME PASSWORD [useradd args]
make_user() {
        local name=$1 password=$2
        shift 2
        useradd -m "$@" "$name" || fail "useradd $name failed"
        # -c: hash here, bypassing PAM (a test may have put pam_pgina into common-password)
        printf '%s:%s\n' "$name" "$password" | chpasswd -c YESCRYPT || fail "chpasswd $name failed"
}

# as_user USER CMD...: run CMD as USER (uid, primary group, groups) with HOME = USER's home.
as_user() {
        local user=$1 home
        shift
        home=$(getent passwd "$user" | cut -d: -f6)
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- env HOME="$home" "$@"
}

# free_port: a TCP port nobody listens on in this sandbox.
free_port() {
        "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- pgsmb -----------------------------------------------------------------------------------
# pgsmb_pam_service: /etc/pam.d/pgtest for the pgsmb tests: auth (timeout=60), account and
# session through pam_pgina.so.
pgsmb_pam_service() {
        pam_service pgtest <<'PAM'
auth     required pam_pgina.so timeout=60
account  required pam_pgina.so
session  required pam_pgina.so
PAM
}

# pgsmb_conf PASSWORD: pgina_conf for the pgsmb tests: testplugin authenticates (PASSWORD), pgsmb
# then localmachine are gateway and notification; stdin continues the [pgsmb] section.
# PGSMB_TESTPLUGIN_EXTRA (lines) is added to [testplugin], e.g. "set_attr = LoginScript=x".
pgsmb_conf() {
        {
                cat <<CONF
[order]
authentication = testplugin
gateway = pgsmb localmachine
notification = pgsmb localmachine
[testplugin]
password = $1
${PGSMB_TESTPLUGIN_EXTRA:-}
[pgsmb]
CONF
                cat
        } | pgina_conf
}

# archived ARCHIVE NAME: the member NAME of a tar.zst ARCHIVE (stored as NAME or ./NAME) on stdout
archived() {
        tar --warning=no-unknown-keyword --zstd -xOf "$1" "$2" 2>/dev/null ||
                tar --warning=no-unknown-keyword --zstd -xOf "$1" "./$2"
}

# stored DIR NAME [FILENAME]: the member NAME of the current profile in the store folder DIR
# (FILENAME: pgsmb's filename, default DIR's name + .tar.zst) on stdout: of store format 2, from the
# archive the highest manifest names for NAME (a NAME without characters a manifest escapes);
# else of format 1, from the single archive.
stored() {
        local d=$1 f=${3:-$(basename "$1").tar.zst} m arch
        m=$(find "$d" -maxdepth 1 -name "$f.m[0-9]*" -printf '%f\n' 2>/dev/null | sort | tail -n 1)
        if [ -n "$m" ]; then
                arch=$(awk -v p="$2" '$1 == "e" && $NF == p { i = $2 } END { print i }' "$d/$m")
                arch=$(awk -v i="$arch" '$1 == "a" && $2 == i { print $3 }' "$d/$m")
                [ -n "$arch" ] || return 1
                archived "$d/$arch" "$2"
                return
        fi
        archived "$d/$f" "$2"
}
# has_profile DIR [FILENAME]: the store folder DIR holds a profile (a manifest, or the archive)
has_profile() {
        local f=${2:-$(basename "$1").tar.zst}
        [ -s "$1/$f" ] || compgen -G "$1/$f.m[0-9]*" >/dev/null
}

# need_nss_module: skip when the built libnss_pgina carries ASan: glibc loads NSS modules into
# every program (getent, sshd, smbpasswd), none of them instrumented, and silently skips a module
# it cannot load. The module is tested in the uninstrumented (gcc) pass.
need_nss_module() {
        local so=$BUILD/libnss_pgina.so.2
        [ -e "$so" ] || skip "libnss_pgina.so.2 not built"
        if nm -D --undefined-only "$so" 2>/dev/null | grep -q '__asan_init\|__ubsan_'; then
                skip "libnss_pgina.so.2 is a sanitizer build that uninstrumented programs cannot load (tested in the gcc pass)"
        fi
}

# nss_pgina_install: libnss_pgina.so.2 into an overlay of the system library directory (private
# to this sandbox's mount namespace), and "passwd: files pgina", "group: files pgina" in the
# (overlaid) nsswitch.conf.
nss_pgina_install() {
        local dir so=$BUILD/libnss_pgina.so.2
        [ -e "$so" ] || fail "$so not built"
        dir=$(dirname "$(readlink -f "$(ldconfig -p | awk '/libc\.so\.6 .*x86-64/ { print $NF; exit }')")")
        [ -e "$dir/libc.so.6" ] || skip "cannot find the system library directory"
        mkdir -p "$T/nsslib"
        mount -t tmpfs -o mode=0755 pgina-nsslib "$T/nsslib" || fail "tmpfs for the nss overlay"
        mkdir "$T/nsslib/u" "$T/nsslib/w"
        mount -t overlay overlay -o "lowerdir=$dir,upperdir=$T/nsslib/u,workdir=$T/nsslib/w" "$dir" ||
                fail "cannot overlay $dir"
        install -m 0644 "$so" "$dir/libnss_pgina.so.2" || fail "cannot install the module"
        sed -i -E 's/^passwd:.*/passwd:         files pgina/; s/^group:.*/group:          files pgina/' \
                /etc/nsswitch.conf
        grep -q '^passwd: *files pgina$' /etc/nsswitch.conf && grep -q '^group: *files pgina$' /etc/nsswitch.conf ||
                fail "nsswitch.conf not changed"
}
