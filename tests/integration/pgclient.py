#!/usr/bin/python3
"""A raw pginad client for the integration tests: sends well-formed or deliberately broken frames
(see src/common/proto.h) and prints what came back, one line:
    result STATUS ROWS        a PROTO_MSG_RESULT arrived (status number, row count)
    closed                    the daemon closed the connection without answering
    silent                    nothing within the wait
Commands:
    status | sessions                       an admin request
    login USER PASSWORD [SCENARIO [SESSION]]  a LOGIN (scenario logon=0 unlock=1 credui=2)
    passwd USER OLD NEW                     a CHANGE_PASSWORD
    raw HEX                                 these bytes, as they are
    frame VERSION TYPE HEXPAYLOAD           a frame with any header values (HEXPAYLOAD
                                            zeros:N = N zero bytes)
    length N                                a header announcing N bytes, then nothing more
    hold SECONDS HEX                        send HEX, keep the connection open SECONDS, exit
Options (before the command): --socket PATH, --wait SECONDS (default 10), --silence SECONDS
(like pam_pgina's timeout=: more than this between two frames is "silent"; each INFO frame,
keepalives included, is then shown on stderr as "info KIND").
"""
import os
import select
import socket
import struct
import sys
import time

PROTO_VERSION = 1
MSG_INFO, MSG_RESULT = 100, 101


def s(v):
    b = v.encode() if isinstance(v, str) else v
    return struct.pack(">I", len(b)) + b


def frame(ftype, payload=b"", version=PROTO_VERSION):
    return struct.pack(">IHH", 4 + len(payload), version, ftype) + payload


def recv_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return None
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return b"" if not buf else buf
        buf += chunk
    return buf


def answer(sock, wait, silence=None):
    """Read INFO frames until a RESULT, EOF or the wait (or a silence) runs out."""
    end = time.monotonic() + wait
    while True:
        deadline = end if silence is None else min(end, time.monotonic() + silence)
        hdr = recv_exact(sock, 8, deadline)
        if hdr is None:
            return "silent"
        if len(hdr) < 8:
            return "closed"
        length, _version, ftype = struct.unpack(">IHH", hdr)
        body = recv_exact(sock, length - 4, deadline) if length > 4 else b""
        if body is None:
            return "silent"
        if ftype == MSG_INFO:
            if silence is not None and body:
                print("info %d" % body[0], file=sys.stderr, flush=True)
            continue
        if ftype != MSG_RESULT:
            return "frame %d" % ftype
        status = struct.unpack(">I", body[:4])[0]
        mlen = struct.unpack(">I", body[4:8])[0]
        nrows = struct.unpack(">I", body[8 + mlen:12 + mlen])[0]
        msg = body[8:8 + mlen].decode(errors="replace")
        return "result %d %d %s" % (status, nrows, msg)


def main(argv):
    path, wait = os.environ.get("PGINA_SOCKET", "/run/pgina/pginad.sock"), 10.0
    silence = None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--socket":
            path = argv[1]
        elif argv[0] == "--wait":
            wait = float(argv[1])
        elif argv[0] == "--silence":
            silence = float(argv[1])
        argv = argv[2:]
    cmd, args = argv[0], argv[1:]
    if cmd == "status":
        data = frame(16)
    elif cmd == "sessions":
        data = frame(17)
    elif cmd == "login":
        scenario = int(args[2]) if len(args) > 2 else 0
        session = args[3] if len(args) > 3 else ""
        data = frame(1, struct.pack(">B", scenario) + s(args[0]) + s(args[1]) + s("pgclient") +
                     s("") + s("") + s(session))
    elif cmd == "passwd":
        data = frame(5, s(args[0]) + s(args[1]) + s(args[2]))
    elif cmd == "raw":
        data = bytes.fromhex(args[0])
    elif cmd == "frame":
        if args[2].startswith("zeros:"):  # a big payload, not through argv
            payload = bytes(int(args[2][6:]))
        else:
            payload = bytes.fromhex(args[2])
        data = frame(int(args[1]), payload, version=int(args[0]))
    elif cmd == "length":
        data = struct.pack(">IHH", int(args[0]), PROTO_VERSION, 16)
    elif cmd == "hold":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.sendall(bytes.fromhex(args[1]))
        time.sleep(float(args[0]))
        print("held")
        return 0
    else:
        print("unknown command " + cmd, file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        print("closed")
        return 0
    print(answer(sock, wait, silence))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
