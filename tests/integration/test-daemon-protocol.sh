#!/bin/bash
# pginad's socket: malformed, oversized, wrong-version, unknown-type and truncated messages close
# that connection only; the daemon keeps answering everyone else.
. "$(dirname "$0")/lib.sh"

pgina_conf <<'CONF'
[order]
authentication = localmachine
CONF
pgina_start

still_serving() {
        assert_ok pginactl status >"$T/status.out"
        assert_contains "$T/status.out" "pginad"
}

# expect_closed WHAT CLIENT-ARGS...: the daemon closes (or refuses) without an OK result.
expect_closed() {
        local what=$1 out
        shift
        out=$(pgclient --wait 5 "$@")
        echo "$what -> $out"
        case $out in
        closed) ;;
        "result 6 "*) ;; # PROTO_BAD_REQUEST, then closed
        *) fail "$what: expected the connection to be closed, got '$out'" ;;
        esac
        still_serving
}

step "a well-formed STATUS through the raw client is answered (the client itself works)"
out=$(pgclient status)
assert_eq "result 0" "$(echo "$out" | cut -d' ' -f1-2)" "raw STATUS"

step "garbage bytes"
expect_closed "garbage" raw "$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/^/ffffffff/')"
expect_closed "text line" raw "$(printf 'GET / HTTP/1.0\r\n\r\n' | od -An -tx1 | tr -d ' \n')"

step "a length header over the 64 KiB maximum, before any body"
expect_closed "length 0x7fffffff" length 2147483647
expect_closed "length max+1" length $((64 * 1024 + 1))

step "a real over-max frame body (the daemon must not buffer it whole)"

expect_closed "70 KiB frame" frame 1 16 zeros:$((70 * 1024))

step "length below the header size"
expect_closed "length 3" raw 0000000300011000

step "wrong protocol version"
expect_closed "version 2" frame 2 16 ""
expect_closed "version 0" frame 0 16 ""

step "unknown message type, and a daemon-to-client type sent to the daemon"
expect_closed "type 999" frame 1 999 ""
expect_closed "type RESULT" frame 1 101 "00000000"

step "trailing bytes after a complete request"
expect_closed "STATUS + 1 byte" frame 1 16 "00"

step "truncated LOGIN payload (string length beyond the frame)"
expect_closed "truncated login" frame 1 1 "00000000ff61"

step "embedded NUL in the user name"
# scenario 0 | str "ro\0ot" | str "pw" | service | rhost | tty | session
expect_closed "NUL in user" frame 1 1 "0000000005726f006f7400000002707700000000000000000000000000000000"

step "NSS lookups (GETPWNAM 32, GETGRNAM 33): truncated, trailing bytes, NUL in the name"
expect_closed "GETGRNAM without the gid" frame 1 33 "00000003616263"
expect_closed "GETGRNAM + 1 byte" frame 1 33 "0000000361626300000000ff"
expect_closed "GETGRNAM NUL in name" frame 1 33 "00000003610062""00000000"
expect_closed "GETPWNAM length beyond the frame" frame 1 32 "000000ff61"
step "a GETGRNAM no plugin answers: not found (7), not an error"
out=$(pgclient --wait 5 frame 1 33 "00000005737461666600000000")
assert_eq "result 7" "$(echo "$out" | cut -d' ' -f1-2)" "GETGRNAM staff without lookup plugins"

step "a half-sent frame held open does not block other clients"
pgclient hold 8 "0000001000011000" >/dev/null &
holder=$!
sleep 0.5
t0=$(date +%s%N)
still_serving
elapsed=$((($(date +%s%N) - t0) / 1000000))
echo "status while a connection hangs: ${elapsed} ms"
[ "$elapsed" -lt 3000 ] || fail "pginactl status took ${elapsed} ms while another client held a half frame"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

step "many idle connections at once do not take the daemon down"
pids=()
for _ in $(seq 1 40); do
        pgclient hold 3 "" >/dev/null 2>&1 &
        pids+=($!)
done
sleep 0.5
still_serving
wait "${pids[@]}" 2>/dev/null

step "the daemon logged the malformed frames and is still the same process"
assert_contains "$PGINA_LOG" "malformed"
kill -0 "$PGINA_PID" || fail "pginad died"
