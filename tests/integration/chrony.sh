# tests/integration/chrony.sh — a private NTP server for tests: chronyd in the foreground on
# 127.0.0.1 at a free UDP port, serving its local clock (local stratum 8), sourced after lib.sh.
# It never touches the system clock (-x), has no command socket, and writes only under
# $T/chrony (config, pid file, log).
#   chrony_start   start it, wait until it answers an NTP request (fails the test after 10 s)
#   chrony_port    its port
#   chrony_stop    SIGTERM by pid, wait
# shellcheck shell=bash

CHRONY_DIR=$T/chrony
CHRONY_PORT=
CHRONY_PID=

# free_udp_port: a UDP port nobody uses in this sandbox.
free_udp_port() {
        "$PYTHON" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ntp_probe PORT: one SNTP request; exit 0 when a synchronised server answers.
ntp_probe() {
        "$PYTHON" - "$1" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
req = bytes([0x23]) + bytes(39) + os.urandom(8)
s.sendto(req, ("127.0.0.1", int(sys.argv[1])))
ans = s.recv(512)
sys.exit(0 if len(ans) >= 48 and ans[24:32] == req[40:48] and 1 <= ans[1] <= 15 and ans[0] >> 6 != 3 else 1)
PY
}

chrony_start() {
        local chronyd i
        chronyd=$(command -v chronyd || echo /usr/sbin/chronyd)
        [ -x "$chronyd" ] || skip "chronyd is not installed (package chrony)"
        mkdir -p "$CHRONY_DIR"
        chmod 0755 "$CHRONY_DIR"
        CHRONY_PORT=$(free_udp_port)
        cat >"$CHRONY_DIR/chrony.conf" <<CONF
port $CHRONY_PORT
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 8
cmdport 0
bindcmdaddress /
pidfile $CHRONY_DIR/chronyd.pid
CONF
        # -x: never adjust the system clock (the sandbox shares it with the host); -u root: no
        # switch to the _chrony user, which cannot read $T.
        "$chronyd" -d -x -u root -f "$CHRONY_DIR/chrony.conf" >"$CHRONY_DIR/chronyd.log" 2>&1 &
        CHRONY_PID=$!
        at_exit chrony_stop
        for ((i = 0; i < 100; i++)); do
                ntp_probe "$CHRONY_PORT" 2>/dev/null && return 0
                kill -0 "$CHRONY_PID" 2>/dev/null || break
                sleep 0.1
        done
        cat "$CHRONY_DIR/chronyd.log" >&2
        fail "chrony_start: chronyd did not answer NTP on 127.0.0.1:$CHRONY_PORT within 10 s"
}

chrony_port() { echo "$CHRONY_PORT"; }

chrony_stop() {
        local pid=$CHRONY_PID
        [ -n "$pid" ] || return 0
        CHRONY_PID=
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 0
}
