# tests/integration/smtp.sh — a private SMTP server for tests (aiosmtpd, system python3), sourced
# after lib.sh. Every message it takes is appended to $SMTP_MAILBOX as:
#   X-Envelope-From: <from>
#   X-Envelope-To: <rcpt>        (one line per recipient)
#   <the message as received>
#   ----- end of message -----
# No TLS and no AUTH offered (aiosmtpd's default without TLS): a client must not send a password.
#   smtp_start   start it on 127.0.0.1 at a free port, wait until it answers (fails after 10 s)
#   smtp_port    its port
#   smtp_count   how many messages it took
#   smtp_stop    SIGTERM by pid, wait
# shellcheck shell=bash

SMTP_DIR=$T/smtp
SMTP_MAILBOX=$T/smtp/mailbox.txt
SMTP_PORT=
SMTP_PID=
SMTP_PYTHON=/usr/bin/python3

# smtp_available: can the system python run aiosmtpd? (Debian: python3-aiosmtpd)
smtp_available() { "$SMTP_PYTHON" -c 'import aiosmtpd' 2>/dev/null; }

smtp_start() {
        smtp_available || skip "aiosmtpd is not installed for $SMTP_PYTHON (apt-get install python3-aiosmtpd)"
        mkdir -p "$SMTP_DIR"
        : >"$SMTP_MAILBOX"
        cat >"$SMTP_DIR/pgina_smtp_sink.py" <<'PY'
# Appends each message, with its envelope, to the file named on the command line.
class Sink:
    def __init__(self, path):
        self.path = path

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("pgina_smtp_sink.Sink takes the mailbox file")
        return cls(*args)

    async def handle_DATA(self, server, session, envelope):
        with open(self.path, "ab") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\n")
            for rcpt in envelope.rcpt_tos:
                f.write(b"X-Envelope-To: " + rcpt.encode() + b"\n")
            data = envelope.original_content or envelope.content
            if isinstance(data, str):
                data = data.encode()
            f.write(data.replace(b"\r\n", b"\n"))
            f.write(b"\n----- end of message -----\n")
        return "250 Message accepted for delivery"
PY
        SMTP_PORT=$(free_port)
        PYTHONPATH=$SMTP_DIR "$SMTP_PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
                -c pgina_smtp_sink.Sink "$SMTP_MAILBOX" >"$SMTP_DIR/smtpd.log" 2>&1 &
        SMTP_PID=$!
        at_exit smtp_stop
        local i
        for ((i = 0; i < 100; i++)); do
                if "$SMTP_PYTHON" - "$SMTP_PORT" <<'PY' 2>/dev/null; then
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=1)
s.ehlo()
s.quit()
PY
                        return 0
                fi
                kill -0 "$SMTP_PID" 2>/dev/null || break
                sleep 0.1
        done
        cat "$SMTP_DIR/smtpd.log" >&2
        fail "smtp_start: aiosmtpd did not answer on 127.0.0.1:$SMTP_PORT within 10 s"
}

smtp_port() { echo "$SMTP_PORT"; }

smtp_count() { grep -c '^----- end of message -----$' "$SMTP_MAILBOX" 2>/dev/null || true; }

smtp_stop() {
        local pid=$SMTP_PID
        [ -n "$pid" ] || return 0
        SMTP_PID=
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 0
}
