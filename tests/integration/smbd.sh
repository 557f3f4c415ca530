# tests/integration/smbd.sh — a private Samba server for tests, sourced after lib.sh (inside the
# sandbox: it creates unix users). smbd_start runs smbd on 127.0.0.1 on a free port, SMB2+ only,
# with its own smb.conf, tdbsam and lock/state/pid dirs under $T/smbd and one share `profiles` at
# $T/share. A unix+samba user $SMBD_USER (password $SMBD_PASSWORD) owns the share; users added
# with smbd_add_user may create their own folders in it (mode 1777, like /tmp).
#   smbd_start [same-port] start it, wait until it accepts connections (fails the test after 10 s);
#                         same-port: on the port of the last start (a server that comes back)
#   smbd_add_user N PW    unix user (no home) + samba password
#   smbd_url              smb://127.0.0.1:PORT/profiles
#   smbd_pids             the pids of smbd and all its children
#   smbd_pause/resume     SIGSTOP/SIGCONT every smbd process (a hanging server)
#   smbd_stop             SIGTERM (then SIGKILL) by pid, wait
#   smbd_kill             SIGKILL every smbd process at once (a crash, a power cut), wait
# shellcheck shell=bash

SMBD_USER=${SMBD_USER:-smbprof}
SMBD_PASSWORD=${SMBD_PASSWORD:-Pr0files pw!}
SMBD_DIR=$T/smbd
SMBD_SHARE=$T/share
SMBD_CONF=$SMBD_DIR/smb.conf
SMBD_PORT=
SMBD_PID=

_smbd_free_port() {
        if declare -F free_port >/dev/null; then
                free_port
        else
                python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
        fi
}

_smbd_fail() {
        if declare -F fail >/dev/null; then fail "$@"; fi
        echo "FAIL: $*" >&2
        exit 1
}

# smbd_add_user NAME PASSWORD: the password goes to smbpasswd on stdin only.
smbd_add_user() {
        local name=$1 password=$2
        id "$name" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$name" ||
                _smbd_fail "smbd_add_user: useradd $name failed"
        printf '%s\n%s\n' "$password" "$password" |
                smbpasswd -c "$SMBD_CONF" -s -a "$name" >>"$SMBD_DIR/smbpasswd.log" 2>&1 ||
                _smbd_fail "smbd_add_user: smbpasswd -a $name failed (see $SMBD_DIR/smbpasswd.log)"
}

smbd_url() { echo "smb://127.0.0.1:$SMBD_PORT/profiles"; }

# All pids of the server: the main smbd and its descendants (connection children, helpers).
smbd_pids() {
        local queue=("$SMBD_PID") p c
        [ -n "$SMBD_PID" ] || return 0
        while [ ${#queue[@]} -gt 0 ]; do
                p=${queue[0]}
                queue=("${queue[@]:1}")
                echo "$p"
                # shellcheck disable=SC2013 # the file holds space-separated pids
                for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
                        queue+=("$c")
                done
        done
}

smbd_pause() {
        local p
        for p in $(smbd_pids); do kill -STOP "$p" 2>/dev/null; done
}

smbd_resume() {
        local p
        for p in $(smbd_pids); do kill -CONT "$p" 2>/dev/null; done
}

smbd_stop() {
        local pid=$SMBD_PID i pids
        [ -n "$pid" ] || return 0
        pids=$(smbd_pids)
        SMBD_PID=
        # shellcheck disable=SC2086
        kill -CONT $pids 2>/dev/null
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        wait "$pid" 2>/dev/null
        return 0
}

smbd_kill() {
        local pid=$SMBD_PID pids
        [ -n "$pid" ] || return 0
        pids=$(smbd_pids)
        SMBD_PID=
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        wait "$pid" 2>/dev/null
        return 0
}

smbd_start() {
        local i
        need smbd smbpasswd
        [ -z "$SMBD_PID" ] || _smbd_fail "smbd_start: smbd already running (pid $SMBD_PID)"
        mkdir -p "$SMBD_DIR"/{private,lock,state,cache,pid,ncalrpc,logs} "$SMBD_SHARE"
        if [ "${1:-}" != same-port ] || [ -z "$SMBD_PORT" ]; then
                SMBD_PORT=$(_smbd_free_port)
        fi
        cat >"$SMBD_CONF" <<CONF
[global]
  workgroup = PGTEST
  netbios name = PGTESTSMB
  server role = standalone server
  smb ports = $SMBD_PORT
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  passdb backend = tdbsam:$SMBD_DIR/private/passdb.tdb
  private dir = $SMBD_DIR/private
  lock directory = $SMBD_DIR/lock
  state directory = $SMBD_DIR/state
  cache directory = $SMBD_DIR/cache
  pid directory = $SMBD_DIR/pid
  ncalrpc dir = $SMBD_DIR/ncalrpc
  log file = $SMBD_DIR/logs/log.%m
  max log size = 0
  log level = 1
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  server min protocol = SMB2_02
  map to guest = never
  smbd:backgroundqueue = no

[profiles]
  path = $SMBD_SHARE
  read only = no
  browseable = yes
CONF
        smbd_add_user "$SMBD_USER" "$SMBD_PASSWORD"
        chown "$SMBD_USER" "$SMBD_SHARE"
        chmod 1777 "$SMBD_SHARE"
        smbd -F -s "$SMBD_CONF" </dev/null >"$SMBD_DIR/logs/smbd.out" 2>&1 &
        SMBD_PID=$!
        if declare -F at_exit >/dev/null; then at_exit smbd_stop; fi
        for ((i = 0; i < 100; i++)); do
                if (exec 3<>"/dev/tcp/127.0.0.1/$SMBD_PORT") 2>/dev/null; then
                        return 0
                fi
                kill -0 "$SMBD_PID" 2>/dev/null || break
                sleep 0.1
        done
        tail -n 20 "$SMBD_DIR/logs/smbd.out" >&2
        _smbd_fail "smbd did not listen on 127.0.0.1:$SMBD_PORT within 10 s"
}
