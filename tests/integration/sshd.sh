# tests/integration/sshd.sh — a real sshd on 127.0.0.1 inside the sandbox, sourced after lib.sh:
# PAM (the sandbox's /etc/pam.d/sshd, which the test writes), keyboard-interactive only unless
# told otherwise, a host key and its config in $T, stopped by its pid at the test's end.
#   sshd_start [LINE...]   start it on a free port ($SSHD_PORT), each LINE an extra sshd_config
#                          line (e.g. "PasswordAuthentication yes", "MaxAuthTries 3"); wait
#                          until it accepts connections (5 s), fail the test otherwise
# shellcheck shell=bash

SSHD_PORT=
SSHD_PID=

sshd_start() {
        local line
        SSHD_PORT=$(free_port)
        ssh-keygen -q -t ed25519 -N '' -f "$T/ssh_host_ed25519_key" || fail "ssh-keygen failed"
        {
                cat <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $T/ssh_host_ed25519_key
PidFile $T/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
UseDNS no
StrictModes no
LogLevel VERBOSE
CONF
                for line in "$@"; do echo "$line"; done
                # sshd takes the first value of an option: the defaults of this file go last
                echo "PasswordAuthentication no"
        } >"$T/sshd_config"
        pam_host_exec "$(command -v sshd)" -D -e -f "$T/sshd_config" >"$T/sshd.log" 2>&1 &
        SSHD_PID=$!
        at_exit kill "$SSHD_PID"
        for _ in $(seq 1 50); do
                (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && return 0
                kill -0 "$SSHD_PID" 2>/dev/null || { cat "$T/sshd.log"; fail "sshd exited"; }
                sleep 0.1
        done
        cat "$T/sshd.log"
        fail "sshd does not accept connections on port $SSHD_PORT"
}
