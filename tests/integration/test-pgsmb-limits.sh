#!/bin/bash
# pgSMB limits and hostile archives, through the file:// store:
#   - max_storage_kb: a home over the limit at logoff is not uploaded (the store keeps the previous
#     archive), stays local even with localmachine logoff_action=remove, the admin notice is
#     logged, and the next logon tells the user it was over its limit and uses the local copy;
#   - hostile archives in the store ("../../etc/evil", a symlink to /etc followed by a file
#     through it, a zstd bomb over max_profile_size): the logon gets a temporary profile
#     ("pGina created pgSMB tmp"), nothing is created outside the home, no staging directory is
#     left, the store's archive is not modified (not even at the logoff of the temporary profile);
#   - a damaged archive (its .meta sha256 does not match) gives a temporary profile too;
#   - an archive member's name with a newline or an escape sequence is escaped in the log
#     (issue 12.7: it cannot forge a log line).
. "$(dirname "$0")/lib.sh"
need pamtester zstd
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store
mkdir -p "$STORE"
store_sums() { (cd "$STORE" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
# the names in / and /etc (account files change, their names do not)
root_listing() { ls -A / /etc; }

# mkarchive USER KIND [META_SHA]: a hostile archive as USER's profile (tar via python3's tarfile,
# then zstd with $MKARCHIVE_ZSTD's options), with a .meta whose sha256 matches (or META_SHA)
mkarchive() {
        local user=$1 kind=$2 dir=$STORE/$1
        mkdir -p "$dir"
        "$PYTHON" - "$kind" "$T/$user.tar" <<'PY' || fail "cannot build the $2 archive"
import io, sys, tarfile
kind, out = sys.argv[1], sys.argv[2]
t = tarfile.open(out, "w", format=tarfile.PAX_FORMAT)
def add_file(name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    t.addfile(ti, io.BytesIO(data))
def add_dir(name):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    t.addfile(ti)
add_dir(".")
add_file("./harmless", b"harmless\n")
if kind == "dotdot":
    add_file("../../etc/evil", b"evil\n")
    add_file("./../../../etc/evil", b"evil\n")
elif kind == "symlink":
    ti = tarfile.TarInfo("./etclink")
    ti.type = tarfile.SYMTYPE
    ti.linkname = "/etc"
    t.addfile(ti)
    add_file("./etclink/evil-through-link", b"evil\n")
elif kind == "relsymlink":
    ti = tarfile.TarInfo("./rootlink")
    ti.type = tarfile.SYMTYPE
    ti.linkname = "../../../../.."
    t.addfile(ti)
    add_file("./rootlink/evil-through-relative-link", b"evil\n")
elif kind in ("bomb", "bomb-many"):
  class Zeros(io.RawIOBase):
        def __init__(self, n): self.n = n
        def readable(self): return True
        def readinto(self, b):
            k = min(len(b), self.n)
            b[:k] = bytes(k)
            self.n -= k
            return k
  if kind == "bomb":
    # 300 MB of zeros in one file: a few hundred KB once compressed
    ti = tarfile.TarInfo("./bomb")
    ti.size = 300 * 1024 * 1024
    t.addfile(ti, io.BufferedReader(Zeros(ti.size), 1 << 20))
  else:
    # 8 files of 10 MB: each under max_profile_size, 80 MB together
    for i in range(8):
      ti = tarfile.TarInfo("./part%d" % i)
      ti.size = 10 * 1024 * 1024
      t.addfile(ti, io.BufferedReader(Zeros(ti.size), 1 << 20))
elif kind == "newline":
    # a name that would forge a log line of its own (and a terminal escape)
    add_file("../\n<error> pginad: FORGED-LOG-LINE \x1b[2J", b"evil\n")
elif kind == "valid":
    add_file("./data", b"valid data\n" * 1000)
t.close()
PY
        # shellcheck disable=SC2086 # MKARCHIVE_ZSTD: extra zstd options, split on purpose
        zstd -q -f -3 ${MKARCHIVE_ZSTD:-} "$T/$user.tar" -o "$dir/$user.tar.zst" || fail "zstd failed"
        printf 'version=1700000000-%s\nsha256=%s\nsize=%s\nhost=elsewhere\ntime=1700000000\n' "$kind" \
                "${3:-$(sha256sum <"$dir/$user.tar.zst" | cut -d' ' -f1)}" "$(stat -c %s "$dir/$user.tar.zst")" \
                >"$dir/$user.tar.zst.meta"
}

pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
store_format = 1
retries = 2
retry_delay = 0
max_storage_kb = 10240
max_profile_size = 52428800
[localmachine]
logoff_action = remove
CONF
pgina_start

step "max_storage_kb: a small home is saved (account and home removed at logoff)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'printf "small\n" > /home/alice/small'
pgina_close_session alice
[ -s "$STORE/alice/alice.tar.zst" ] || fail "the small profile was not saved"
[ -e /home/alice ] && fail "alice's home was not removed at logoff"
sum0=$(store_sums)

step "max_storage_kb: a home over the limit is not uploaded and stays local"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq "small" "$(cat /home/alice/small)" "restored content"
as_user alice bash -c 'head -c 12M /dev/urandom > /home/alice/big && head -c 20M /dev/urandom > /home/alice/.cache-not-excluded'
as_user alice bash -c 'mkdir -p /home/alice/.cache && head -c 30M /dev/zero > /home/alice/.cache/excluded'
sum_big=$(sha256sum </home/alice/big)
pgina_close_session alice
assert_eq "$sum0" "$(store_sums)" "the store after an over-limit logoff"
[ -d /home/alice ] || fail "the over-limit home was removed at logoff (logoff_action=remove ignored pgina_keep_home)"
[ "$(sha256sum </home/alice/big)" = "$sum_big" ] || fail "the over-limit home lost data"
getent passwd alice >/dev/null || fail "alice's account was removed although her home could not be saved"
assert_contains "$PGINA_LOG" "over its limit of 10240 KiB"
assert_contains "$PGINA_LOG" "admin notice (profile over its size limit) for alice"
assert_contains "$PGINA_LOG" "alice: profile not saved, the local home is kept"

step "the next logon says the profile was over its limit and uses the local copy"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$T/pam.out" "over its size limit"
[ "$(sha256sum </home/alice/big)" = "$sum_big" ] || fail "the local over-limit home was replaced at logon"
assert_contains "$T/pam.out" "newer than the saved one"
# make room: the logoff saves again, the message goes away
rm -f /home/alice/big /home/alice/.cache-not-excluded
pgina_close_session alice
[ "$sum0" != "$(store_sums)" ] || fail "the profile back under its limit was not saved"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_not_contains "$T/pam.out" "over its size limit"
pgina_close_session alice

check_hostile() { # USER KIND: logon → temporary profile, nothing outside, store unchanged
        local user=$1 kind=$2 before_root before_store
        mkarchive "$user" "$kind"
        before_store=$(store_sums)
        before_root=$(root_listing)
        assert_ok pam_run pgtest "$user" secret authenticate acct_mgmt open_session
        getent passwd "$user" | grep -q "pGina created pgSMB tmp" ||
                fail "$kind archive: $user did not get a temporary profile ($(getent passwd "$user"))"
        assert_contains "$T/pam.out" "temporary profile"
        [ -e /etc/evil ] && fail "$kind archive: /etc/evil was created"
        [ -e /etc/evil-through-link ] && fail "$kind archive: /etc/evil-through-link was created"
        [ -e /evil-through-relative-link ] && fail "$kind archive: /evil-through-relative-link was created"
        [ -e /home/evil ] || [ -e /evil ] && fail "$kind archive: a file was created outside the home"
        assert_eq "$before_root" "$(root_listing)" "$kind archive: the names in / and /etc"
        compgen -G "/home/.pgina-*" >/dev/null && { ls -la /home >&2; fail "$kind archive: staging directory left in /home"; }
        [ -e "/home/$user/harmless" ] && fail "$kind archive: part of a refused archive was put in the home"
        [ "$(du -sk /home | cut -f1)" -lt 1024 ] || { du -sk /home/* /home/.??* >&2; fail "$kind archive: /home holds $(du -sk /home | cut -f1) KiB"; }
        assert_eq "$before_store" "$(store_sums)" "$kind archive: the store after the logon"
        pgina_close_session "$user"
        assert_eq "$before_store" "$(store_sums)" "$kind archive: the store after the temporary profile's logoff"
        assert_contains "$PGINA_LOG" "$user: temporary profile, not uploaded"
}

step "hostile archive: ../../etc/evil"
check_hostile bob dotdot
step "hostile archive: a symlink to /etc and a file through it"
check_hostile carol symlink
step "hostile archive: a relative symlink out of the home and a file through it"
check_hostile carl relsymlink
step "hostile archive: a name with a newline and an escape sequence is escaped in the log"
check_hostile fred newline
grep -q '^<error> pginad: FORGED-LOG-LINE' "$PGINA_LOG" && fail "the archive's name forged a log line"
grep -q $'\x1b' "$PGINA_LOG" && fail "the archive's escape sequence reached the log"
assert_contains "$PGINA_LOG" '\n<error> pginad: FORGED-LOG-LINE \x1b[2J'
step "hostile archive: a zstd bomb over max_profile_size"
t0=$(date +%s)
check_hostile dave bomb
[ $(($(date +%s) - t0)) -lt 60 ] || fail "the bomb took $(($(date +%s) - t0)) s"
grep -q 'dave: profile not restored, temporary profile: .*limit' "$PGINA_LOG" ||
        fail "the bomb's refusal does not name the limit: $(grep 'dave: profile not restored' "$PGINA_LOG")"

step "hostile archive: many files together over max_profile_size"
check_hostile gina bomb-many
grep -q 'gina: profile not restored, temporary profile: .*max_profile_size' "$PGINA_LOG" ||
        fail "the refusal does not name the limit: $(grep 'gina: profile not restored' "$PGINA_LOG")"

# A damaged archive: three ways of telling (zstd's frame checksums, the .meta's SHA-256 when
# the frames carry none, a checksummed first frame followed by one without).
check_damaged() { # USER WHAT-THE-LOG-SAYS
        local user=$1 said=$2 before_store
        before_store=$(store_sums)
        assert_ok pam_run pgtest "$user" secret authenticate acct_mgmt open_session
        getent passwd "$user" | grep -q "pGina created pgSMB tmp" || fail "$user did not get a temporary profile"
        assert_contains "$T/pam.out" "temporary profile"
        grep -q "$user: profile not restored, temporary profile: .*$said" "$PGINA_LOG" ||
                fail "$user: the log does not say '$said': $(grep "$user: profile not restored" "$PGINA_LOG")"
        [ -e "/home/$user/data" ] && fail "the damaged archive of $user was put in the home"
        compgen -G "/home/.pgina-*" >/dev/null && { ls -la /home >&2; fail "staging directory left in /home"; }
        pgina_close_session "$user"
        assert_eq "$before_store" "$(store_sums)" "the store after $user's temporary profile"
}

step "a damaged archive (a byte changed after the upload) gives a temporary profile"
mkarchive erin valid
"$PYTHON" - "$STORE/erin/erin.tar.zst" <<'PY' || fail "cannot damage the archive"
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[-6] ^= 0x20  # in the last block (its literals), not the header: decodes, to other bytes
open(p, "wb").write(bytes(b))
PY
check_damaged erin "damaged"

step "an archive without frame checksums whose .meta checksum does not match: temporary profile"
MKARCHIVE_ZSTD=--no-check mkarchive erika valid 0000000000000000000000000000000000000000000000000000000000000000
check_damaged erika "checksum does not match its .meta"

step "a checksummed zstd frame followed by one without a checksum: not verifiable, temporary profile"
mkarchive emil valid
head -c 5120 "$T/emil.tar" | zstd -q -3 >"$STORE/emil/emil.tar.zst"
tail -c +5121 "$T/emil.tar" | zstd -q -3 --no-check >>"$STORE/emil/emil.tar.zst"
printf 'version=1700000000-emil\nsha256=%s\nsize=%s\nhost=elsewhere\ntime=1700000000\n' \
        "$(sha256sum <"$STORE/emil/emil.tar.zst" | cut -d' ' -f1)" "$(stat -c %s "$STORE/emil/emil.tar.zst")" \
        >"$STORE/emil/emil.tar.zst.meta"
check_damaged emil "cannot be verified"

step "the same archive with a matching .meta restores fine (the checks above are not blanket refusals)"
mkarchive frank valid
zstd -q -t "$STORE/frank/frank.tar.zst" || fail "the valid archive does not test good"
head -c 5 "$STORE/frank/frank.tar.zst" | od -An -tx1 | grep -q "28 b5 2f fd .[4-7cdef]" ||
        fail "the valid archive's frame has no checksum flag: the fast path is not what was tested"
assert_ok pam_run pgtest frank secret authenticate acct_mgmt open_session
getent passwd frank | grep -q "pGina created pgSMB tmp" && fail "frank got a temporary profile from a valid archive"
[ "$(head -n 1 /home/frank/data)" = "valid data" ] || fail "the valid archive was not restored"
pgina_close_session frank
