#!/bin/bash
# pgSMB's SNTP check at logon (notification LOGON, in the background): against a real chronyd on
# 127.0.0.1 the skew is logged; servers are tried in order (a dead port is logged, the next one
# answers); answers that do not echo our request, come from an unsynchronised server (stratum 0)
# are refused; a skew past ntp_max_skew is a warning, not corrected with ntp_set_clock = false.
# (ntp_set_clock = true is never exercised here: the sandbox shares the host's clock.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chrony.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
chrony_start

STORE=$T/store
mkdir -p "$STORE"
DEAD=$(free_udp_port)
FAKE=$(free_udp_port)

# A fake SNTP server: MODE = offset (answers 3600 s ahead, after one forged answer with another
# origin that claims 7200 s) or stratum0 (kiss-o'-death).
"$PYTHON" - "$FAKE" >"$T/fake-ntp.log" 2>&1 <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
def ts(t):
    t += 2208988800
    return struct.pack(">II", int(t), int((t % 1) * 2**32))
while True:
    req, peer = s.recvfrom(512)
    mode = open("/run/fake-ntp.mode").read().strip()
    origin = req[40:48]
    now = time.time() + (3600 if mode == "offset" else 0)
    stratum = 0 if mode == "stratum0" else 2
    def answer(orig, t):
        return bytes([0x24, stratum, 6, 0xec]) + bytes(8) + b"FAKE" + ts(t) + orig + ts(t) + ts(t)
    if mode == "offset":
        s.sendto(answer(b"\x01" * 8, now + 3600), peer)  # forged (+7200 s): must be ignored
    s.sendto(answer(origin, now), peer)
    print(mode, "answered", peer, flush=True)
PY
FAKE_PID=$!
at_exit kill "$FAKE_PID"


pgsmb_pam_service
# $1: ntp_servers
write_conf() {
        pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
ntp_servers = $1
ntp_max_skew = 5
ntp_set_clock = false
CONF
}

step "chronyd: the skew is logged; a dead server before it is logged and skipped"
write_conf "127.0.0.1:$DEAD 127.0.0.1:$(chrony_port)"
pgina_start
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "clock skew against NTP server 127.0.0.1:$(chrony_port) (127.0.0.1, stratum 8"
assert_contains "$PGINA_LOG" "NTP server 127.0.0.1:$DEAD: Connection refused"
skew=$(sed -n "s/.*clock skew against NTP server 127.0.0.1:$(chrony_port) .*: \([-+][0-9.]*\) s,.*/\1/p" "$PGINA_LOG")
awk -v s="$skew" 'BEGIN { exit !(s > -1 && s < 1) }' || fail "skew against the local chronyd is $skew s, expected about 0"
assert_not_contains "$PGINA_LOG" "the clock is off by"
pgina_stop

step "an unsynchronised server (stratum 0) is refused, the next one answers"
echo stratum0 >/run/fake-ntp.mode
write_conf "127.0.0.1:$FAKE 127.0.0.1:$(chrony_port)"
pgina_start
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
pgina_wait_log "NTP server 127.0.0.1:$FAKE: server is not synchronised (stratum 0, kiss-o'-death)"
pgina_wait_log "pgsmb: clock skew against NTP server 127.0.0.1:$(chrony_port)"
pgina_stop

step "a forged answer is ignored; an hour of skew is a warning, not corrected"
echo offset >/run/fake-ntp.mode
write_conf "127.0.0.1:$FAKE"
pgina_start
before=$(date +%s)
assert_ok pam_run pgtest carol secret authenticate acct_mgmt open_session
pgina_wait_log "the clock is off by +"
# an hour, give or take the round trip (a loaded machine measured +3599.999)
near_hour() { # TEXT-BEFORE-THE-SKEW
        local v
        v=$(grep -o -- "$1+[0-9.]*" "$PGINA_LOG" | head -n 1 | sed 's/.*+//')
        [ -n "$v" ] && awk -v v="$v" 'BEGIN { exit !(v > 3599.5 && v < 3600.5) }' ||
                fail "skew after '$1' is '$v', not an hour"
}
near_hour "the clock is off by "
near_hour "clock skew against NTP server 127.0.0.1:$FAKE (127.0.0.1, stratum 2): "
assert_contains "$PGINA_LOG" "more than ntp_max_skew = 5 s; not corrected (ntp_set_clock = false)"
assert_not_contains "$PGINA_LOG" "clock corrected"
[ $(($(date +%s) - before)) -lt 600 ] || fail "the system clock moved"
pgina_stop
