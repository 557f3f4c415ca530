#!/bin/bash
# pginad survives a client that pipelines many requests without reading the answers and then
# disconnects while answers are still queued: the connection is freed once, and nothing touches
# it afterwards (under ASan a use-after-free in the event loop fails this test).
. "$(dirname "$0")/lib.sh"

pgina_conf <<'CONF'
[order]
authentication = localmachine
[localmachine]
CONF
pgina_start

step "a root client queues ~1 MiB of PLUGINS answers, never reads, then closes"
for round in 1 2 3; do
        "$PYTHON" - "$PGINA_SOCKET" <<'PY' || fail "the flooding client failed"
import socket, struct, sys, time
req = struct.pack(">IHH", 4, 1, 18)  # PLUGINS, empty payload
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.setblocking(False)
sent = 0
deadline = time.monotonic() + 3
# One request per wake-up of pginad's loop, so each is answered while we read nothing.
while time.monotonic() < deadline and sent < 800:
    try:
        s.send(req)
        sent += 1
    except BlockingIOError:
        pass
    time.sleep(0.002)
time.sleep(0.5)  # let pginad fill its side and queue more
s.close()        # unread data: pginad's next send fails with EPIPE
print("sent", sent)
PY
        sleep 0.3
done

step "pginad is still alive and answering"
assert_ok pginactl status >"$T/status.out"
assert_contains "$T/status.out" "pginad"
kill -0 "$PGINA_PID" || fail "pginad died"
