#!/bin/bash
# The Debian packages (issue 17), as the admin of a lab installs them: `dpkg-buildpackage -us -uc
# -b` builds pgina, libpam-pgina, libnss-pgina and pgina-dev at meson.build's version from a copy
# of the source (the checkout stays clean), lintian finds no error in them, and on a fresh Debian
# 12 machine without pgina `apt-get install` of the four .debs leaves pginad enabled and running
# from its unit, /etc/pgina/pgina.conf a conffile, pam_pgina in the common-* PAM files (the
# pam-auth-update profile registered) and nsswitch.conf untouched. An ssh logon and logoff with
# a roaming (pgSMB, file://) profile works, and the profile is restored at the next logon.
# An authorization rule that refuses everyone refuses alice but never root (root's ssh key logon:
# the profile's pam_succeed_if uid eq 0 line). A logoff whose upload fails (the store gone during
# the session) leaves upload_failed=1 and a job in the journal: `apt-get purge` then keeps
# /var/lib/pgina and names those files, and after a reinstall pginad resumes the job and saves
# alice's newer home, which her next logon keeps (without that state it would restore the older
# profile over it). `apt-get purge` then takes pam_pgina out of PAM, leaves no pgina file behind
# (/var/lib/pgina, /etc/pgina, the unit's links: all gone) and local accounts still log on
# through pam_unix, also with README's hand-written account lines left behind (module_unknown).
. "$(dirname "$0")/lib.sh"

PACKAGES=(pgina libpam-pgina libnss-pgina pgina-dev)

step "dpkg-buildpackage -us -uc -b, from a copy of the source"
for tool in dpkg-buildpackage dh lintian fakeroot; do
        command -v "$tool" >/dev/null || skip "$tool not found (tests/deps.sh installs debhelper, dpkg-dev, lintian, fakeroot)"
done
mkdir -p "$T/deb/pgina"
touch "$T/build-start"
# the working tree as it is (tracked and new files, not what .gitignore leaves out: build dirs)
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$SRC" ls-files -z --cached --others --exclude-standard |
                (cd "$SRC" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$T/deb/pgina"
else
        (cd "$SRC" && tar --exclude='./build*' -cf - .) | tar -xf - -C "$T/deb/pgina"
fi
[ -x "$T/deb/pgina/debian/rules" ] || fail "no debian/rules in the copy of $SRC"
# the packages carry meson's project version (debian/changelog follows meson.build)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -n 1)
deb_version=$(cd "$T/deb/pgina" && dpkg-parsechangelog -S Version)
assert_eq "$meson_version" "${deb_version%%-*}" "debian/changelog's version against meson.build's"
(cd "$T/deb/pgina" && dpkg-checkbuilddeps) >"$T/builddeps.log" 2>&1 ||
        skip "build dependencies missing (tests/deps.sh installs them): $(cat "$T/builddeps.log")"
t0=$(date +%s)
(cd "$T/deb/pgina" && dpkg-buildpackage -us -uc -b) >"$T/dpkg-buildpackage.log" 2>&1 ||
        { tail -n 30 "$T/dpkg-buildpackage.log" >&2; fail "dpkg-buildpackage failed (log: $T/dpkg-buildpackage.log)"; }
echo "dpkg-buildpackage: built in $(($(date +%s) - t0)) s"
grep -E '^dpkg-buildpackage: info: binary-only' "$T/dpkg-buildpackage.log"
# a warning from the compiler or from dpkg-shlibdeps is a defect of the package
grep -E 'warning:' "$T/dpkg-buildpackage.log" >"$T/build-warnings"
[ -s "$T/build-warnings" ] && { cat "$T/build-warnings" >&2; fail "the package build warns (above)"; }
changes=$(ls "$T"/deb/pgina_*_*.changes 2>/dev/null) || fail "no .changes next to the source copy"
for p in "${PACKAGES[@]}"; do
        ls "$T"/deb/"${p}"_*.deb >/dev/null 2>&1 || fail "dpkg-buildpackage made no $p package"
done
for f in "$T"/deb/*.deb; do basename "$f"; done
# nothing of the build in the checkout or next to it (where dpkg-buildpackage writes)
for f in "$SRC"/obj-* "$SRC"/debian/tmp "$SRC"/debian/files "$SRC"/debian/.debhelper "$SRC"/../pgina_*.changes; do
        [ -e "$f" ] && [ "$f" -nt "$T/build-start" ] && fail "the package build wrote $f"
done

step "lintian: no error (warnings and infos listed, overrides in debian/*.lintian-overrides)"
lintian --display-info --tag-display-limit 0 "$changes" >"$T/lintian.out" 2>"$T/lintian.err"
lint_rc=$?
grep -v 'running with root privileges is not recommended' "$T/lintian.err" >&2
sed 's/^/lintian: /' "$T/lintian.out"
grep -qE '^E: ' "$T/lintian.out" && fail "lintian reports errors (above)"
[ "$lint_rc" -le 1 ] || fail "lintian could not check the packages (exit $lint_rc)"
echo "lintian: $(grep -c '^E: ' "$T/lintian.out") errors, $(grep -c '^W: ' "$T/lintian.out") warnings, $(grep -c '^I: ' "$T/lintian.out") infos"

step "a fresh Debian 12 machine without pgina; apt-get install ./*.deb inside it"
machine_prepare_bare
[ ! -e "$M/usr/sbin/pginad" ] || fail "the bare machine has a pginad already"
mkdir -p "$M/var/tmp/debs" "$M/srv/pgina/profiles"
for p in "${PACKAGES[@]}"; do cp "$T"/deb/"${p}"_*.deb "$M/var/tmp/debs/"; done
machine_user alice 'Alice-deb-pw-1'
machine_boot
# The machine has no network: every dependency is in its root (root.sh). Recommends are not:
# pgina-dev's (libc6-dev, pkgconf: to build a plugin) would be fetched.
machine_exec sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /var/tmp/debs/*.deb' \
        >"$T/apt-install.log" 2>&1 || { cat "$T/apt-install.log" >&2; fail "apt-get install of the packages failed"; }
for p in "${PACKAGES[@]}"; do
        assert_eq "ii " "$(machine_exec dpkg-query -W -f='${db:Status-Abbrev}' "$p")" "dpkg status of $p"
done

step "pginad is enabled and active from its unit; pgina.conf a conffile; PAM has pam_pgina"
assert_eq enabled "$(machine_exec systemctl is-enabled pginad)" "systemctl is-enabled pginad"
assert_eq active "$(machine_exec systemctl is-active pginad)" "systemctl is-active pginad"
machine_exec systemctl show -p FragmentPath pginad >"$T/fragment"
grep -qE '^FragmentPath=(/usr)?/lib/systemd/system/pginad.service$' "$T/fragment" ||
        fail "pginad's unit is not the packaged one: $(cat "$T/fragment")"
machine_exec dpkg-query -W -f='${Conffiles}\n' pgina >"$T/conffiles"
assert_contains "$T/conffiles" "/etc/pgina/pgina.conf"
machine_exec cmp /etc/pgina/pgina.conf /usr/share/doc/pgina/pgina.conf.example ||
        fail "/etc/pgina/pgina.conf is not the example"
machine_exec pginactl status >"$T/status.out" 2>&1 || { cat "$T/status.out" >&2; fail "pginactl status failed"; }
assert_contains "$T/status.out" "localmachine"
for f in common-auth common-account common-session common-password; do
        grep -q 'pam_pgina\.so' "$M/etc/pam.d/$f" || fail "/etc/pam.d/$f does not name pam_pgina after the install"
done
# libnss-pgina is used only once the admin adds it (README.Debian)
assert_not_contains "$M/etc/nsswitch.conf" pgina
grep -qE 'pam_unix\.so.*try_first_pass' "$M/etc/pam.d/common-auth" ||
        fail "pam_unix does not follow pam_pgina in common-auth: $(cat "$M/etc/pam.d/common-auth")"
# common-account: root skips pam_pgina (no rule, no directory outage refuses root), and a
# missing pam_pgina.so (a hand-edited line left behind by a removal) is ignored, not "bad"
grep -A1 -E '^account\s+\[success=1 default=ignore\]\s+pam_succeed_if\.so quiet uid eq 0$' \
        "$M/etc/pam.d/common-account" | tail -n 1 | grep -qE '^account\s.*module_unknown=ignore.*\spam_pgina\.so' ||
        fail "common-account: no root exemption right before pam_pgina, or no module_unknown=ignore: $(cat "$M/etc/pam.d/common-account")"

step "an authorization rule that refuses everyone: alice is refused, root still logs on (ssh key)"
machine_conf <<'CONF'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine
[localmachine]
authz_groups = pgina-nobody-is-in-this-group
CONF
machine_exec pginactl reload >"$T/reload0.out" 2>&1 || { cat "$T/reload0.out" >&2; fail "pginactl reload failed"; }
machine_exec sh -c 'mkdir -p -m 0700 /root/.ssh && ssh-keygen -q -t ed25519 -N "" -f /root/.ssh/id_ed25519 &&
        cat /root/.ssh/id_ed25519.pub >>/root/.ssh/authorized_keys' || fail "cannot make root's ssh key"
machine_exec timeout 60 ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -i /root/.ssh/id_ed25519 root@127.0.0.1 id -un >"$T/ssh-root.out" 2>&1 ||
        fail "root's ssh key logon is refused under a pgina authorization rule: $(cat "$T/ssh-root.out")"
assert_eq root "$(tail -n 1 "$T/ssh-root.out")" "id -un of root's key logon"
if machine_ssh alice 'Alice-deb-pw-1' true >"$T/ssh-refused.out" 2>&1; then
        fail "alice logged on though no authorization rule allows her"
fi
# The master's line: a worker's own (localmachine's "Authorization of alice denied") may reach the
# journal after the worker exited, without its unit, and `journalctl -u pginad` misses it.
machine_wait_journal "logon of alice (service sshd, from 127.0.0.1): authorization denied" pginad

step "the admin configures a roaming profile (pgSMB, file:// store) and reloads"
machine_conf_roaming "logoff_process_wait = 2"
machine_exec pginactl config check >"$T/check.out" 2>&1 || { cat "$T/check.out" >&2; fail "pginactl config check failed"; }
machine_exec pginactl reload >"$T/reload.out" 2>&1 || { cat "$T/reload.out" >&2; fail "pginactl reload failed"; }
machine_exec pginactl plugins >"$T/plugins.out" 2>&1
assert_contains "$T/plugins.out" "pgsmb"

step "apt-get install --reinstall of the same version: the admin's pgina.conf and PAM stay, pginad runs"
md5() { machine_exec md5sum /etc/pgina/pgina.conf /etc/pam.d/common-auth /etc/pam.d/common-account \
        /etc/pam.d/common-session /etc/pam.d/common-password; }
md5 >"$T/md5.before"
pid0=$(machine_exec systemctl show -p MainPID --value pginad)
machine_exec sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall --no-install-recommends /var/tmp/debs/*.deb' \
        </dev/null >"$T/apt-reinstall0.log" 2>&1 || { cat "$T/apt-reinstall0.log" >&2; fail "apt-get install --reinstall failed"; }
md5 >"$T/md5.after"
cmp -s "$T/md5.before" "$T/md5.after" || fail "the reinstall changed pgina.conf or PAM: $(diff "$T/md5.before" "$T/md5.after")"
assert_eq active "$(machine_exec systemctl is-active pginad)" "pginad after the reinstall"
pid1=$(machine_exec systemctl show -p MainPID --value pginad)
[ "$pid0" != "$pid1" ] || fail "the reinstall did not restart pginad (pid $pid0)"
echo "pginad restarted by the reinstall: pid $pid0 -> $pid1"
machine_exec pginactl plugins >"$T/plugins2.out" 2>&1
assert_contains "$T/plugins2.out" "pgsmb"

step "an ssh logon and logoff: the profile is saved to the store"
machine_ssh alice 'Alice-deb-pw-1' 'echo v1 > ~/f.txt' >"$T/ssh1.out" 2>&1 ||
        fail "ssh logon of alice failed: $(cat "$T/ssh1.out")"
machine_wait_journal "logon of alice (service sshd, from 127.0.0.1): ok" pginad
machine_wait_journal "alice: saved" pginad 600
machine_member f.txt >"$T/f.txt"
assert_eq v1 "$(cat "$T/f.txt")" "f.txt in the store"
machine_exec pginactl -t 120 wait alice || fail "alice's logoff work did not end"

step "the next logon restores the profile into an empty home"
machine_exec rm -rf /home/alice
machine_ssh alice 'Alice-deb-pw-1' 'cat ~/f.txt' >"$T/ssh2.out" 2>&1 ||
        fail "second ssh logon of alice failed: $(cat "$T/ssh2.out")"
assert_eq v1 "$(cat "$T/ssh2.out")" "f.txt restored at logon"
machine_wait_journal "logoff job of alice finished" pginad 600
for _ in $(seq 300); do
        [ "$(machine_journal -u pginad | grep -c 'logoff job of alice finished')" -ge 2 ] && break
        sleep 0.1
done
machine_exec pginactl -t 120 wait alice || fail "alice's second logoff work did not end"

step "a logoff whose upload fails (the store went away during the session): the home is kept"
logons() { machine_journal -u pginad | grep -c 'logon of alice (service sshd, from 127.0.0.1): ok'; }
saves() { machine_journal -u pginad | grep -c 'alice: saved'; }
n=$(logons)
machine_ssh alice 'Alice-deb-pw-1' 'echo v2 > ~/f.txt; sleep 4' >"$T/ssh-v2.out" 2>&1 &
ssh_pid=$!
for _ in $(seq 300); do [ "$(logons)" -gt "$n" ] && break; sleep 0.1; done
[ "$(logons)" -gt "$n" ] || fail "alice's third logon did not come: $(cat "$T/ssh-v2.out")"
machine_exec mv /srv/pgina/profiles /srv/pgina/profiles.away
wait "$ssh_pid" || fail "alice's third ssh logon failed: $(cat "$T/ssh-v2.out")"
machine_wait_journal "alice: profile not saved, the local home is kept" pginad 600
machine_exec grep -qx upload_failed=1 /var/lib/pgina/plugins/pgsmb/alice.state ||
        fail "pgSMB's state of alice does not say upload_failed=1"
machine_exec ls /var/lib/pgina/jobs >"$T/jobs.ls"
echo "the journal of pending logoff jobs: $(tr '\n' ' ' <"$T/jobs.ls")"

step "apt-get purge with that work pending: /var/lib/pgina is kept and named; PAM is clean"
machine_exec sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y ${PACKAGES[*]}" \
        >"$T/apt-purge-pending.log" 2>&1 || { cat "$T/apt-purge-pending.log" >&2; fail "apt-get purge failed"; }
grep '^pgina: ' "$T/apt-purge-pending.log"
assert_contains "$T/apt-purge-pending.log" "pgina: /var/lib/pgina is NOT removed"
assert_contains "$T/apt-purge-pending.log" "/var/lib/pgina/plugins/pgsmb/alice.state (upload_failed=1)"
machine_exec grep -qx upload_failed=1 /var/lib/pgina/plugins/pgsmb/alice.state ||
        fail "purge removed pgSMB's state of alice's unsaved home"
grep -l 'pam_pgina' "$M"/etc/pam.d/* >"$T/pam-left" && fail "pam_pgina is still in $(cat "$T/pam-left")"
machine_exec dpkg-query -W -f='${db:Status-Abbrev}' pgina >"$T/st" 2>/dev/null
case $(cat "$T/st") in "" | "un " | "pn ") ;; *) fail "pgina is still known to dpkg after the purge: '$(cat "$T/st")'" ;; esac

step "reinstall (the admin's pgina.conf back), the store back: alice's newer home is saved, not replaced"
machine_exec mv /srv/pgina/profiles.away /srv/pgina/profiles
machine_conf_roaming "logoff_process_wait = 2"
n=$(saves)
machine_exec sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confold /var/tmp/debs/*.deb' >"$T/apt-reinstall.log" 2>&1 ||
        { cat "$T/apt-reinstall.log" >&2; fail "apt-get install after the purge failed"; }
machine_exec pginactl -t 300 wait alice || fail "alice's resumed logoff work did not end"
[ "$(saves)" -gt "$n" ] || fail "pginad did not save alice's home after the reinstall: $(machine_journal -u pginad | grep alice | tail -n 5)"
machine_member f.txt >"$T/f2.txt"
assert_eq v2 "$(cat "$T/f2.txt")" "f.txt in the store after the reinstall"
machine_ssh alice 'Alice-deb-pw-1' 'cat ~/f.txt' >"$T/ssh4.out" 2>&1 ||
        fail "alice's logon after the reinstall failed: $(cat "$T/ssh4.out")"
assert_eq v2 "$(tail -n 1 "$T/ssh4.out")" "f.txt in alice's home after the reinstall"
n=$(saves)
for _ in $(seq 600); do [ "$(saves)" -gt "$n" ] && break; sleep 0.1; done
machine_exec pginactl -t 120 wait alice || fail "alice's last logoff work did not end"
machine_exec sh -c 'find / -xdev -name "*pgina*" 2>/dev/null' | sort >"$T/files.installed"

step "apt-get purge: pam_pgina leaves PAM, no pgina file is left"
machine_exec sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y ${PACKAGES[*]}" \
        >"$T/apt-purge.log" 2>&1 || { cat "$T/apt-purge.log" >&2; fail "apt-get purge failed"; }
for p in "${PACKAGES[@]}"; do
        st=$(machine_exec dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)
        case $st in "" | "un " | "pn ") ;; *) fail "$p is still known to dpkg after the purge: '$st'" ;; esac
done
grep -l 'pam_pgina' "$M"/etc/pam.d/* >"$T/pam-left" && fail "pam_pgina is still in $(cat "$T/pam-left")"
machine_exec dpkg -S pgina >"$T/dpkg-S" 2>&1 && fail "dpkg still knows pgina files: $(cat "$T/dpkg-S")"
assert_eq inactive "$(machine_exec systemctl is-active pginad)" "pginad after the purge"
# Everything named *pgina* on the machine, but the logs and what this test made itself: the
# profile store /srv/pgina, the packages in /var/tmp/debs, lib.sh's password file /run/pgina-test-pw.
machine_exec sh -c 'find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name "*pgina*" -print 2>/dev/null' |
        grep -vE '^(/var/log/|/srv/pgina(/|$)|/var/tmp/debs/|/run/pgina-test-pw$)' >"$T/files.left"
if [ -s "$T/files.left" ]; then
        cat "$T/files.left" >&2
        fail "files named *pgina* are left after the purge (above; installed: $T/files.installed)"
fi
# and nothing in /etc or pam-auth-update's state names it (nsswitch.conf was never edited), but
# the machine's name, pgina-machine (root.sh)
machine_exec grep -rl --exclude=hostname --exclude=hosts pgina /etc /var/lib/pam >"$T/text-left" 2>/dev/null &&
        fail "files still name pgina after the purge: $(cat "$T/text-left")"
for d in /var/lib/pgina /etc/pgina /run/pgina; do
        machine_exec test ! -e "$d" || fail "$d is left after the purge"
done

step "a local logon through pam_unix still works; a wrong password is still refused"
machine_ssh alice 'Alice-deb-pw-1' 'id -un' >"$T/ssh3.out" 2>&1 ||
        fail "ssh logon of alice through pam_unix failed after the purge: $(cat "$T/ssh3.out")"
assert_eq alice "$(tail -n 1 "$T/ssh3.out")" "id -un over ssh after the purge"
if machine_ssh alice 'wrong-password' true >"$T/wrong.out" 2>&1; then
        fail "ssh with a wrong password succeeded after the purge"
fi

step "README's hand-written account lines, the module gone: local logons still work"
# An admin who wrote the lines by hand (README, "Hooking pgina into PAM") and then removed the
# packages: pam-auth-update does not edit a file changed by hand, so the lines stay.
cp "$M/etc/pam.d/common-account" "$T/common-account.orig"
sed -n '/^account  \[success=1 default=ignore\]  *pam_succeed_if/,/pam_pgina\.so$/p' "$SRC/README.md" >"$T/readme-account"
[ "$(wc -l <"$T/readme-account")" = 2 ] || fail "README.md's common-account lines not found: $(cat "$T/readme-account")"
cat "$T/readme-account" >>"$M/etc/pam.d/common-account"
machine_ssh alice 'Alice-deb-pw-1' 'id -un' >"$T/ssh5.out" 2>&1 ||
        fail "a missing pam_pgina.so with README's account lines locks alice out: $(cat "$T/ssh5.out")"
assert_eq alice "$(tail -n 1 "$T/ssh5.out")" "id -un with README's account lines and no pam_pgina.so"
cp "$T/common-account.orig" "$M/etc/pam.d/common-account"
machine_stop
exit 0
