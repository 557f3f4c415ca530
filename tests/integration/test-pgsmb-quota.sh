#!/bin/bash
# pgSMB's max_storage_kb as a disk quota at logon (gateway):
#   - a home on a filesystem without user quotas (or a kernel without quota support): logged that
#     the limit is checked at logoff only, and the logon goes on;
#   - a home on an ext4 image with user quotas on: setquota sets soft = hard = max_storage_kb, and
#     the user cannot write past it.
# The second case needs a kernel with disk quotas and the v2 quota format (CONFIG_QUOTA,
# CONFIG_QFMT_V2); elsewhere the test runs the first case, then SKIPs with the reason. The size
# check at logoff (upload refused, local home kept) is tested with the upload tests.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store
mkdir -p "$STORE"
pgsmb_pam_service
# $1: extract_to
write_conf() {
        pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
extract_to = $1
max_storage_kb = 1024
CONF
}

step "no quotas on the home's filesystem: logged, the logon goes on"
write_conf /home/%u
pgina_start
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "max_storage_kb (1024 KiB) is checked at logoff only"
assert_not_contains "$PGINA_LOG" "disk quota of"
pgina_stop

step "a filesystem with user quotas: soft = hard = max_storage_kb"
need setquota repquota quotaon mkfs.ext4
# Does the kernel know quotas at all? quotactl(Q_SYNC) answers ENOSYS when not.
"$PYTHON" -c '
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.quotactl.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
r = libc.quotactl((0x800001 << 8) | 0, None, 0, None)  # QCMD(Q_SYNC, USRQUOTA)
sys.exit(3 if r < 0 and ctypes.get_errno() == errno.ENOSYS else 0)' ||
        skip "the kernel $(uname -r) has no disk quota support (CONFIG_QUOTA off): setquota at logon not testable here"
MNT=$T/quota-fs
mkdir -p "$MNT"
truncate -s 64M "$T/quota.img"
mkfs.ext4 -q -O quota -E quotatype=usrquota "$T/quota.img" >"$T/mkfs.log" 2>&1 || {
        cat "$T/mkfs.log" >&2
        fail "mkfs.ext4 with the quota feature failed"
}
mount -o loop "$T/quota.img" "$MNT" 2>"$T/mount.log" ||
        skip "cannot mount an ext4 image with the quota feature (kernel $(uname -r) without CONFIG_QFMT_V2?): $(head -n 1 "$T/mount.log")"
at_exit umount -l "$MNT"
quotaon -pu "$MNT" 2>&1 | grep -q 'is on' ||
        skip "user quotas are not on for an ext4 image with the quota feature (kernel $(uname -r) without CONFIG_QFMT_V2?)"
chmod 0755 "$MNT"
write_conf "$MNT/%u"
pgina_start
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "bob: disk quota of 1024 KiB set on $MNT"
repquota -u "$MNT" | awk '$1 == "bob" { print $4, $5 }' >"$T/limits"
assert_eq "1024 1024" "$(cat "$T/limits")" "bob's block soft and hard limits"
assert_fail setpriv --reuid=bob --regid=bob --init-groups -- \
        dd if=/dev/zero of="$MNT/bob/big" bs=1M count=4 status=none
pgina_stop
