#!/bin/bash
# pgSMB delta profiles: a store that lies about its archives' sizes (the security review's
# finding 5). A manifest whose archive sizes add up past 2^64 made the catch-up's sums wrap, so
# a chain of exabytes looked like a few bytes to download into memory. Now the sums saturate: the
# logon does not catch up from such a version, it restores whole, whose checks refuse the lie,
# with an error that names the archive; pginad neither crashes nor hangs.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool

pgsmb_delta_file_store_start

step "version 1 here; another machine commits versions 2, 3 and 4 (three deltas)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs && for i in $(seq 1 20); do head -c 10000 /dev/urandom > /home/alice/docs/f$i; done'
pgina_close_session alice
echo two >"$T/two"
echo three >"$T/three"
assert_eq 2 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/two="$T/two")" "version 2"
assert_eq 3 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/three="$T/three")" "version 3"
assert_eq 4 "$("$V2" commit "$STORE/alice" alice.tar.zst othermachine docs/four="$T/three")" "version 4"

step "the store rewrites manifest 4: its deltas' sizes (each at most 2^63 - 1, as the parser allows) add up to 2^64 + 1000 bytes"
"$PYTHON" - "$STORE/alice/alice.tar.zst.m00000004" <<'PY'
import hashlib, sys
path = sys.argv[1]
lines = open(path, "rb").read().split(b"\n")
body = [l for l in lines if l and not l.startswith(b"sha256 ")]
arch = [i for i, l in enumerate(body) if l.startswith(b"a ")]
assert len(arch) == 4, arch
sizes = {1: 2**63 - 1, 2: 2**63 - 1, 3: 1002}
for n, i in enumerate(arch):
    if n in sizes:
        f = body[i].split(b" ")
        f[3] = str(sizes[n]).encode()
        body[i] = b" ".join(f)
text = b"\n".join(body) + b"\n"
open(path, "wb").write(text + b"sha256 " + hashlib.sha256(text).hexdigest().encode() + b"\n")
PY
"$V2" show "$STORE/alice" alice.tar.zst | head -n 1 | grep -q '^version 4 ' || fail "the rewritten manifest 4 does not parse"

step "the logon does not catch up from it (its sum did not wrap), and fails cleanly"
pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "alice: version 4 differs from 1 here by"
assert_contains "$PGINA_LOG" "restored whole"
assert_not_contains "$PGINA_LOG" "home brought from version 1 to 4"
kill -0 "$PGINA_PID" || fail "pginad died"
assert_ok pginactl status
[ -z "$(find /home -user root -mindepth 2 2>/dev/null)" ] || fail "root-owned file in a home"
