#!/bin/bash
# tests/machine/root.sh BUILD_DIR — print the path of a Debian 12 root that boots under
# systemd-nspawn (systemd, dbus, logind, sshd) and holds pgina's runtime libraries, building it
# with debootstrap the first time. The root is cached under /var/tmp/pgina-machine/KEY/root, KEY
# being a hash of its package list (base list + pgina's runtime libraries), so one build serves
# every machine test of a run, and later runs.
# It is never booted or written by the tests: each machine is an overlay over it.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
build=${1:?usage: root.sh BUILD_DIR}
cache=${PGINA_MACHINE_CACHE:-/var/tmp/pgina-machine}
mirror=${PGINA_DEBIAN_MIRROR:-http://deb.debian.org/debian}

base=(systemd systemd-sysv dbus libpam-systemd libpam-runtime libpam-modules openssh-server
        openssh-client sshpass iproute2 procps psmisc passwd login util-linux zstd tar acl
        python3-minimal)

# pgina's runtime libraries (the packages of the NEEDED entries of pginad, pginactl, pam_pgina,
# libnss_pgina and the plugins); lib.sh checks after each install that nothing is missing.
# A fixed list, not read off the build: a list computed while a build relinks, or from a
# changing ld.so.cache, changed the cache key and once built a root without libsmbclient.
runtime=(libinih1 libarchive13 libzstd1 libsmbclient libldap-2.5-0 libcurl4 libsystemd0 libacl1
        libxxhash0 libcrypt1 libpam0g libssl3)

packages=$(printf '%s\n' "${base[@]}" "${runtime[@]}" | sort -u | tr '\n' ',' | sed 's/,$//')
key=$(printf 'bookworm %s\n' "$packages" | sha256sum | cut -c1-16)
root=$cache/$key/root
if [ -e "$cache/$key/ok" ]; then
        echo "$root"
        exit 0
fi
for tool in debootstrap systemd-nspawn nsenter; do
        command -v "$tool" >/dev/null || {
                echo "root.sh: $tool not found (packages debootstrap, systemd-container, util-linux)" >&2
                exit 2
        }
done
mkdir -p "$cache"
# One build at a time (parallel runs share the cache): wait for another's, then use it.
exec 9>"$cache/.lock"
flock 9
if [ -e "$cache/$key/ok" ]; then
        echo "$root"
        exit 0
fi
tmp=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
echo "root.sh: building a Debian 12 root for the machine tests in $cache/$key (once)" >&2
t0=$(date +%s)
if ! debootstrap --variant=minbase --include="$packages" bookworm "$tmp/root" "$mirror" \
        >"$tmp/debootstrap.log" 2>&1; then
        tail -n 20 "$tmp/debootstrap.log" >&2
        echo "root.sh: debootstrap failed (log above)" >&2
        exit 1
fi
# No daemon of the root may start at install time later (pam-auth-update, systemctl enable run
# in a chroot), and the machine needs a name and no root password prompt in its way.
echo pgina-machine >"$tmp/root/etc/hostname"
printf '127.0.1.1 pgina-machine\n' >>"$tmp/root/etc/hosts"
chroot "$tmp/root" ssh-keygen -A >/dev/null # the machines share host keys: tests only
chroot "$tmp/root" apt-get clean >/dev/null 2>&1 || true
mkdir -p "$cache/$key"
rm -rf --one-file-system "$root"
mv "$tmp/root" "$root"
mv "$tmp/debootstrap.log" "$cache/$key/debootstrap.log"
printf '%s\n' "$packages" | tr ',' '\n' >"$cache/$key/packages"
touch "$cache/$key/ok"
echo "root.sh: built in $(($(date +%s) - t0)) s" >&2
echo "$root"
