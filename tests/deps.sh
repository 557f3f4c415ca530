# tests/deps.sh — sourced by ./demo and ./run-tests: installs the Debian 12 packages pgina needs
# to build and test (../shared/DESIGN.md), through apt-get, on first use only. (llvm: the
# llvm-symbolizer that names the lines in a sanitizer's or libFuzzer's report; debhelper, dpkg-dev,
# fakeroot and lintian: dpkg-buildpackage of debian/ in test-machine-deb-install, whose other
# Build-Depends are in this list too.)
# shellcheck shell=bash

PGINA_BUILD_PACKAGES=(build-essential meson ninja-build pkg-config clang libclang-rt-14-dev llvm
        libpam0g-dev libinih-dev libarchive-dev libzstd-dev libsmbclient-dev libldap-dev
        libcurl4-openssl-dev libcrypt-dev libsystemd-dev libacl1-dev libcmocka-dev libssl-dev openssl
        libxxhash-dev debhelper dpkg-dev fakeroot lintian)
PGINA_TEST_PACKAGES=(pamtester libpam-wrapper samba smbclient slapd ldap-utils python3
        python3-aiosmtpd python3-prometheus-client openssh-server openssh-client sshpass chrony quota
        e2fsprogs iproute2 strace
        passwd util-linux procps acl zstd tar libpam-modules-bin debootstrap systemd-container
        samba-ad-dc samba-ad-provision)
# What installing samba-ad-dc (a Samba AD DC the Active Directory tests start in the sandbox) may
# change for the whole host: winbind's NSS and PAM packages add `winbind` to nsswitch.conf and to
# the common-* PAM stacks. pgina_install_deps puts these files back as they were.
PGINA_HOST_AUTH_FILES=(/etc/nsswitch.conf /etc/pam.d/common-auth /etc/pam.d/common-account
        /etc/pam.d/common-password /etc/pam.d/common-session /etc/pam.d/common-session-noninteractive)

# Packages of the lists above that are not installed.
pgina_missing_packages() {
        local p
        for p in "${PGINA_BUILD_PACKAGES[@]}" "${PGINA_TEST_PACKAGES[@]}"; do
                dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
                        echo "$p"
        done
}

# Install what is missing. Servers (slapd, smbd, sshd, chronyd) must not start system-wide: a
# policy-rc.d that refuses every start is put in place for the install, if none exists.
pgina_install_deps() {
        local missing rc=0 made_policy=
        mapfile -t missing < <(pgina_missing_packages)
        [ "${#missing[@]}" -eq 0 ] && return 0
        if [ "$(id -u)" != 0 ]; then
                echo "Missing packages: ${missing[*]} — run as root to install them." >&2
                return 1
        fi
        echo "Installing ${#missing[@]} missing packages: ${missing[*]}"
        local saved f
        saved=$(mktemp -d /tmp/pgina-deps-auth.XXXXXX)
        for f in "${PGINA_HOST_AUTH_FILES[@]}"; do
                [ -e "$f" ] && cp -p "$f" "$saved/${f//\//_}"
        done
        if [ ! -e /usr/sbin/policy-rc.d ]; then
                printf '#!/bin/sh\n# written by pgina tests/deps.sh during apt-get install\nexit 101\n' \
                        >/usr/sbin/policy-rc.d
                chmod 0755 /usr/sbin/policy-rc.d
                made_policy=1
        fi
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
                </dev/null >/tmp/pgina-apt.log 2>&1 || rc=$?
        [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
        for f in "${PGINA_HOST_AUTH_FILES[@]}"; do
                if [ -e "$saved/${f//\//_}" ] && ! cmp -s "$f" "$saved/${f//\//_}"; then
                        echo "deps.sh: the install changed $f (winbind); putting it back as it was"
                        cp -p "$saved/${f//\//_}" "$f"
                fi
        done
        rm -rf "$saved"
        if [ "$rc" -ne 0 ]; then
                tail -n 30 /tmp/pgina-apt.log >&2
                echo "apt-get failed (exit $rc); full log in /tmp/pgina-apt.log" >&2
                return 1
        fi
        mapfile -t missing < <(pgina_missing_packages)
        if [ "${#missing[@]}" -ne 0 ]; then
                echo "Still missing after apt-get: ${missing[*]}" >&2
                return 1
        fi
        return 0
}
