#!/bin/bash
# tests/sandbox.sh CMD... — run CMD as root in a private sandbox that cannot change the host:
# new mount, network and pid namespaces; /etc and /var/lib are overlays whose writes land in a
# tmpfs that dies with the sandbox; /home and /run are fresh tmpfs; only lo is up. Every process
# started inside dies with it. The host's accounts and /home are compared before and after.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" # useradd, sshd, ip (CI shells may lack them)

if [ $# -eq 0 ]; then
        echo "usage: $0 CMD [ARGS...]" >&2
        exit 2
fi
if [ "$(id -u)" != 0 ]; then
        echo "sandbox.sh: must run as root (it uses mount and network namespaces)" >&2
        exit 2
fi
for tool in unshare mount ip; do
        command -v "$tool" >/dev/null || {
                echo "sandbox.sh: $tool not found (util-linux, iproute2)" >&2
                exit 2
        }
done

host_fingerprint() {
        md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow 2>/dev/null || true
        ls -la --time-style=+ /home 2>/dev/null || true
        ls -la --time-style=+ /etc/pam.d 2>/dev/null || true
}

tmp=$(mktemp -d /tmp/pgina-sandbox.XXXXXX)
before=$(host_fingerprint)
cleanup() {
        # The tmpfs holding the overlays' writes was mounted only inside the sandbox's namespace,
        # so on the host this is an empty directory.
        rmdir "$tmp" 2>/dev/null || rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

# The inner script runs as pid 1 of the new pid namespace. $1 = the temp dir, then CMD.
inner='
set -e
t=$1
shift
mount --make-rprivate /
mount -t tmpfs -o mode=0700 pgina-sandbox "$t"
mkdir -p "$t/etc/u" "$t/etc/w" "$t/varlib/u" "$t/varlib/w"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$t/etc/u,workdir=$t/etc/w" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$t/varlib/u,workdir=$t/varlib/w" /var/lib
mount -t tmpfs -o mode=0755 tmpfs /home
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/pgina /run/sshd /run/lock /var/lib/pgina
chmod 0755 /run/sshd
ip link set lo up
export PGINA_SANDBOX=1
"$@"
'
set +e
unshare --mount --net --pid --mount-proc --fork --kill-child -- \
        bash -c "$inner" pgina-sandbox "$tmp" "$@"
rc=$?
set -e

after=$(host_fingerprint)
if [ "$before" != "$after" ]; then
        echo "sandbox.sh: THE HOST CHANGED (accounts, /home or /etc/pam.d) while running: $*" >&2
        diff <(echo "$before") <(echo "$after") >&2 || true
        exit 125
fi
exit "$rc"
