#!/bin/bash
# pam_pgina.so through real libpam (pamtester) when pginad cannot give an answer: no socket, a
# stale socket, a daemon that never answers, one that hangs up, one that sends a malformed or
# oversized frame, one that says "OK" without the fields a logon needs. Each case: a PAM error
# (PAM_AUTHINFO_UNAVAIL; PAM_SESSION_ERR for sessions), quickly (within timeout= plus a margin),
# never success, and one syslog line naming the socket and the cause, never the password.
# The stand-in daemons here are python one-liners for these negative cases only; every positive
# case runs against the real pginad (test-pam-basic.sh).
. "$(dirname "$0")/lib.sh"
need pamtester python3

PASSWORD='Pa55-secret-word'
SYSLOG=$T/syslog.log
UNAVAIL='Authentication service cannot retrieve authentication info'
SESSION_ERR='Cannot make/remove an entry for the specified session'


# fake_daemon MODE SOCKET: a stand-in that misbehaves in one way on every connection.
#   mute       accept, read, never answer       hangup    read the request, close
#   badversion answer a frame of version 9      oversize  announce a 16 MiB frame
#   okempty    a well-formed RESULT: status OK, no rows (a LOGIN answer without "authorized")
#   slowinfo   5 progress INFO frames 0.6 s apart, then RESULT AUTH_FAILED "slow refusal"
fake_daemon() {
        local mode=$1 sock=$2
        rm -f "$sock"
        python3 -c '
import os, socket, struct, sys, threading, time
mode, path = sys.argv[1], sys.argv[2]
def frame(ver, typ, payload):
    return struct.pack(">IHH", 4 + len(payload), ver, typ) + payload
def serve(c):
    try:
        c.settimeout(30)
        if mode != "mute":
            c.recv(65536)
        if mode == "mute":
            time.sleep(3600)
        elif mode == "badversion":
            c.sendall(frame(9, 101, b"\0" * 12))
        elif mode == "oversize":
            c.sendall(struct.pack(">IHH", 16 << 20, 1, 101))
        elif mode == "okempty":
            c.sendall(frame(1, 101, struct.pack(">III", 0, 0, 0)))
        elif mode == "slowinfo":
            for i in range(5):
                text = b"still working"
                c.sendall(frame(1, 100, struct.pack(">BI", 2, len(text)) + text))
                time.sleep(0.6)
            text = b"slow refusal"
            c.sendall(frame(1, 101, struct.pack(">II", 1, len(text)) + text + struct.pack(">I", 0)))
        time.sleep(3600) if mode != "hangup" else None
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$mode" "$sock" &
        FAKE_PID=$!
        at_exit kill "$FAKE_PID"
        for ((i = 0; i < 50; i++)); do [ -S "$sock" ] && return 0; sleep 0.1; done
        fail "fake daemon ($mode) did not start"
}
fake_stop() { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; rm -f "$1"; }

# service NAME ARGS...: every management group through pam_pgina.so with ARGS.
service() {
        local name=$1
        shift
        pam_service "$name" <<EOF
auth     required pam_pgina.so $*
account  required pam_pgina.so $*
session  required pam_pgina.so $*
password required pam_pgina.so $*
EOF
}

# expect_pam_fail MAX_SECONDS EXPECTED_ERROR SERVICE USER OPS...: pamtester fails, prints the
# PAM error, within MAX_SECONDS; the password never reaches syslog.
expect_pam_fail() {
        local max=$1 err=$2 rc=0 t0 t1
        shift 2
        t0=$(date +%s%N)
        pam_run "$@" <<<"" || rc=$?
        t1=$(date +%s%N)
        ELAPSED_MS=$(((t1 - t0) / 1000000))
        [ "$rc" -ne 0 ] || fail "pamtester $* succeeded; expected failure"
        assert_contains "$T/pam.out" "$err"
        [ "$ELAPSED_MS" -le $((max * 1000)) ] || fail "pamtester $* took ${ELAPSED_MS} ms (max ${max} s)"
        sleep 0.2 # let the listener write the datagram
        assert_not_contains "$SYSLOG" "$PASSWORD"
}

syslog_capture "$SYSLOG"
DEFAULT_SOCK=/run/pgina/pginad.sock
SOCK=$T/fake.sock

step "no socket at the default path: PAM_AUTHINFO_UNAVAIL at once, syslog names path and cause"
rm -f "$DEFAULT_SOCK"
service pgina-default
expect_pam_fail 3 "$UNAVAIL" pgina-default alice "$PASSWORD" authenticate
assert_contains "$T/pam.out" "Password: "
assert_contains "$SYSLOG" "pginad not reachable at $DEFAULT_SOCK: No such file or directory"

step "acct_mgmt for a user another module authenticated: PAM_AUTHINFO_UNAVAIL"
expect_pam_fail 3 "$UNAVAIL" pgina-default alice "$PASSWORD" acct_mgmt
step "open_session with pginad down: PAM_SESSION_ERR"
expect_pam_fail 3 "$SESSION_ERR" pgina-default alice "$PASSWORD" open_session
step "chauthtok with pginad down: fails, no password change reported"
expect_pam_fail 3 "pamtester:" pgina-default alice "$PASSWORD" chauthtok
assert_not_contains "$T/pam.out" "successfully"
step "close_session with no pgina session on the handle: nothing to do, PAM_SUCCESS"
assert_ok pam_run pgina-default alice "$PASSWORD" close_session

step "a stale socket nobody listens on: connection refused"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
service pgina-stale "socket=$SOCK" timeout=2
expect_pam_fail 3 "$UNAVAIL" pgina-stale alice "$PASSWORD" authenticate
assert_contains "$SYSLOG" "pginad not reachable at $SOCK: Connection refused"
rm -f "$SOCK"

step "a daemon that accepts but never answers, timeout=2: fails after ~2 s, not success"
fake_daemon mute "$SOCK"
service pgina-mute "socket=$SOCK" timeout=2
expect_pam_fail 4 "$UNAVAIL" pgina-mute alice "$PASSWORD" authenticate
[ "$ELAPSED_MS" -ge 1900 ] || fail "gave up after ${ELAPSED_MS} ms, before timeout=2"
assert_contains "$SYSLOG" "pginad at $SOCK did not answer the LOGIN request within 2 s"
step "the same for open_session: PAM_SESSION_ERR after ~2 s"
expect_pam_fail 4 "$SESSION_ERR" pgina-mute alice "$PASSWORD" open_session
assert_contains "$SYSLOG" "pginad at $SOCK did not answer the OPEN_SESSION request within 2 s"
fake_stop "$SOCK"

step "timeout= bounds the silence between frames, not the whole answer; INFO is relayed"
fake_daemon slowinfo "$SOCK"
service pgina-slow "socket=$SOCK" timeout=1
expect_pam_fail 6 "Authentication failure" pgina-slow alice "$PASSWORD" authenticate
[ "$ELAPSED_MS" -ge 2900 ] || fail "answer after ${ELAPSED_MS} ms: the daemon's 3 s of progress were not awaited"
assert_contains "$T/pam.out" "still working" # PROTO_INFO_PROGRESS as PAM_TEXT_INFO
assert_contains "$T/pam.out" "slow refusal"  # the result message as PAM_ERROR_MSG
assert_not_contains "$SYSLOG" "did not answer the LOGIN request within 1 s"
fake_stop "$SOCK"

step "a daemon that hangs up after the request"
fake_daemon hangup "$SOCK"
service pgina-hangup "socket=$SOCK" timeout=2
expect_pam_fail 3 "$UNAVAIL" pgina-hangup alice "$PASSWORD" authenticate
assert_contains "$SYSLOG" "pginad at $SOCK closed the connection during the LOGIN request"
fake_stop "$SOCK"

step "an answer with a wrong protocol version: malformed"
fake_daemon badversion "$SOCK"
service pgina-badver "socket=$SOCK" timeout=2
expect_pam_fail 3 "$UNAVAIL" pgina-badver alice "$PASSWORD" authenticate
assert_contains "$SYSLOG" "pginad at $SOCK sent a malformed answer to the LOGIN request"
fake_stop "$SOCK"

step "an answer announcing 16 MiB: refused before allocating"
fake_daemon oversize "$SOCK"
service pgina-big "socket=$SOCK" timeout=2
expect_pam_fail 3 "$UNAVAIL" pgina-big alice "$PASSWORD" authenticate
assert_contains "$SYSLOG" "pginad at $SOCK sent a malformed answer to the LOGIN request: Message too long"
fake_stop "$SOCK"

step "status OK without \"authorized\": never success"
fake_daemon okempty "$SOCK"
service pgina-okempty "socket=$SOCK" timeout=2
expect_pam_fail 3 "$UNAVAIL" pgina-okempty alice "$PASSWORD" authenticate
assert_contains "$SYSLOG" "no valid \"authorized\" field"
step "status OK without a session id: open_session fails"
expect_pam_fail 3 "$SESSION_ERR" pgina-okempty alice "$PASSWORD" open_session
assert_contains "$SYSLOG" "no valid session id"
fake_stop "$SOCK"

step "arguments: unknown ones are logged and ignored, a bad value fails without a prompt"
service pgina-args bogus_flag "socket=$T/none.sock"
expect_pam_fail 3 "$UNAVAIL" pgina-args alice "$PASSWORD" authenticate
assert_contains "$SYSLOG" "Ignoring unknown module argument bogus_flag"
for bad in scenario=logn timeout=0 timeout=abc socket=relative.sock; do
        service pgina-bad "$bad"
        expect_pam_fail 3 "Error in service module" pgina-bad alice "$PASSWORD" authenticate
        assert_not_contains "$T/pam.out" "Password: "
        assert_contains "$SYSLOG" "Invalid module argument $bad"
done

step "use_first_pass with no earlier password: no prompt, no request"
service pgina-ufp use_first_pass "socket=$T/none.sock"
expect_pam_fail 3 "pamtester:" pgina-ufp alice "$PASSWORD" authenticate
assert_not_contains "$T/pam.out" "Password: "
assert_contains "$SYSLOG" "No password from an earlier module"

step "the password never appears in any log"
assert_not_contains "$SYSLOG" "$PASSWORD"
assert_not_contains "$T/pam.log" "$PASSWORD"
exit 0
