#!/bin/bash
# Security review (issue 12.1, local root): the home share's mount point is opened from the home
# by descriptor, no symlink followed, no mount crossed, and the share lands on that very
# directory. Between two logons alice swaps ~/H (home_mount = H) for a symlink to a root-owned
# directory (the attack's /etc/pam.d): the next logon refuses the mount point with a log line and
# mounts nothing anywhere; the same with home_mount = a/H and a symlinked ~/a (root must not
# create or chown a directory outside the home). An absolute home_mount works under a root-owned
# parent and is refused under a parent others may write (/tmp), and from a directory attribute.
#
# The kernel of this machine kind has no cifs filesystem, so /usr/sbin/mount.cifs is, in this
# sandbox's private overlay only, a stand-in that does what mount.cifs does as root: mount (a
# tmpfs holding a SHARE-OF file) on the path it is given, symlinks resolved.
. "$(dirname "$0")/lib.sh"
need pamtester findmnt
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

mkdir -p "$T/sbin"
mount -t tmpfs -o mode=0755 pgina-sbin "$T/sbin" || fail "tmpfs for the /usr/sbin overlay"
mkdir "$T/sbin/u" "$T/sbin/w"
mount -t overlay overlay -o "lowerdir=/usr/sbin,upperdir=$T/sbin/u,workdir=$T/sbin/w" /usr/sbin ||
        fail "cannot overlay /usr/sbin"
cat >/usr/sbin/mount.cifs <<'SH'
#!/bin/sh
# stand-in for mount.cifs SRC DIR -o OPTS (password on PASSWD_FD): mounts on DIR as given
src=$1 dir=$2
read -r _pw <&0 || true
mount -t tmpfs -o size=1m,mode=0755 pgina-fake-cifs "$dir" || exit 32
echo "$src" >"$dir/SHARE-OF"
SH
chmod 0755 /usr/sbin/mount.cifs

mounted_anywhere() { grep -c ' pgina-fake-cifs ' /proc/self/mountinfo; }

STORE=$T/store
mkdir -p "$STORE" /etc/pgina-victim /etc/pgina-victim2 /srv/pgina-mnt
chmod 0755 /etc/pgina-victim /etc/pgina-victim2 /srv/pgina-mnt
echo "auth sufficient pam_permit.so" >"$T/evil-su"
pgsmb_pam_service
write_conf() { # $1: home_mount, $2: extra [testplugin] lines
        PGINA_SERVICE_EXTRA="request_timeout = 60" PGSMB_TESTPLUGIN_EXTRA="${2:-}" pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
home_share = smb://fileserver/homes/%u
home_mount = $1
[localmachine]
logoff_action = none
CONF
}

step "home_mount = H: the share is mounted on ~/H, a directory alice owns, and unmounted at logoff"
write_conf H
pgina_start
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "alice: home share //fileserver/homes/alice mounted on "
assert_eq "//fileserver/homes/alice" "$(cat /home/alice/H/SHARE-OF)" "the share on ~/H"
findmnt -n /home/alice/H >/dev/null || fail "nothing is mounted on /home/alice/H"
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: home share unmounted from "
assert_eq 0 "$(mounted_anywhere)" "mounts of the share after the logoff"
[ "$(stat -c %U /home/alice/H)" = alice ] || fail "~/H is not alice's: $(stat -c %U /home/alice/H)"

step "alice swaps ~/H for a symlink to a root-owned directory: the next logon mounts nothing"
as_user alice bash -c 'rm -rf /home/alice/H && ln -s /etc/pgina-victim /home/alice/H' || fail "the swap"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
# the gateway (and so the mount) is done when open_session returns
findmnt -n /etc/pgina-victim >/dev/null && fail "the share was mounted over the victim: $(findmnt -n /etc/pgina-victim)"
[ -z "$(ls -A /etc/pgina-victim)" ] || fail "the share landed in /etc/pgina-victim: $(ls -A /etc/pgina-victim)"
assert_eq 0 "$(mounted_anywhere)" "mounts of the share after the attack"
pgina_wait_log "alice: home share not mounted: mount point H refused: 'H' is a symbolic link"
pgina_close_session alice

step "home_mount = a/H with ~/a a symlink: root creates and chowns nothing outside the home"
write_conf a/H
assert_ok pginactl reload
as_user alice bash -c 'ln -s /etc/pgina-victim2 /home/alice/a' || fail "the link"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
[ -e /etc/pgina-victim2/H ] && fail "root created /etc/pgina-victim2/H (owner $(stat -c %U /etc/pgina-victim2/H))"
[ "$(stat -c %U /etc/pgina-victim2)" = root ] || fail "the victim directory was given away"
assert_eq 0 "$(mounted_anywhere)" "mounts of the share (a/H)"
pgina_wait_log "alice: home share not mounted: mount point a/H refused: 'a' is a symbolic link"
pgina_close_session alice

step "home_mount = a/H with no ~/a: both made, alice's, the share on ~/a/H"
rm /home/alice/a
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "alice: home share //fileserver/homes/alice mounted on a/H"
[ "$(stat -c %U:%a /home/alice/a)" = alice:700 ] || fail "~/a is $(stat -c %U:%a /home/alice/a)"
assert_eq "//fileserver/homes/alice" "$(cat /home/alice/a/H/SHARE-OF)" "the share on ~/a/H"
pgina_close_session alice
assert_eq 0 "$(mounted_anywhere)" "mounts of the share after the a/H logoff"

step "an absolute home_mount under a root-owned parent works"
write_conf "/srv/pgina-mnt/%u"
assert_ok pginactl reload
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
pgina_wait_log "bob: home share //fileserver/homes/bob mounted on /srv/pgina-mnt/bob"
assert_eq "//fileserver/homes/bob" "$(cat /srv/pgina-mnt/bob/SHARE-OF)" "the share on /srv/pgina-mnt/bob"
pgina_close_session bob
assert_eq 0 "$(mounted_anywhere)" "mounts of the share after bob's logoff"

step "an absolute home_mount under a parent others may write (/tmp) is refused"
write_conf "/tmp/pgina-mnt-%u"
assert_ok pginactl reload
assert_ok pam_run pgtest carol secret authenticate acct_mgmt open_session
pgina_wait_log "carol: home share not mounted: mount point /tmp/pgina-mnt-carol refused: 'tmp' is writable by others than root"
assert_eq 0 "$(mounted_anywhere)" "mounts of the share under /tmp"
pgina_close_session carol

step "an absolute mount point from the directory (usri4_home_dir_drive) is refused"
write_conf H "set_attr = usri4_home_dir_drive=/srv/pgina-mnt/%u"
assert_ok pginactl reload
assert_ok pam_run pgtest dave secret authenticate acct_mgmt open_session
pgina_wait_log "dave: home share not mounted: mount point /srv/pgina-mnt/dave (usri4_home_dir_drive) refused: a mount point from the user's directory entry must lie inside the home"
assert_eq 0 "$(mounted_anywhere)" "mounts of the share from the attribute"
[ -e /srv/pgina-mnt/dave ] && fail "root created /srv/pgina-mnt/dave for a directory attribute"
pgina_close_session dave
exit 0
