#!/bin/bash
# packaging/pam-configs/pgina, enabled with pam-auth-update: logins go through pgina (its
# authorization refusal is final), and pam_unix stays the fallback while pginad is down.
. "$(dirname "$0")/lib.sh"
need pam-auth-update pamtester

step "pam-auth-update --enable pgina writes pam_pgina into the common-* files"
# Only inside this sandbox's mount namespace: the host's /usr/share/pam-configs is untouched.
mkdir -p "$T/pam-configs"
cp -a /usr/share/pam-configs/. "$T/pam-configs/"
cp "$SRC/packaging/pam-configs/pgina" "$T/pam-configs/pgina"
mount --bind "$T/pam-configs" /usr/share/pam-configs || skip "cannot bind-mount /usr/share/pam-configs"
DEBIAN_FRONTEND=noninteractive pam-auth-update --enable pgina >"$T/pam-auth-update.log" 2>&1 ||
        fail "pam-auth-update --enable pgina failed: $(cat "$T/pam-auth-update.log")"
for g in auth account session password; do
        assert_contains "/etc/pam.d/common-$g" "pam_pgina.so"
done
# pgina before pam_unix in auth and password, so pam_unix is the fallback
for g in auth password; do
        pg=$(grep -n 'pam_pgina.so' "/etc/pam.d/common-$g" | head -n 1 | cut -d: -f1)
        ux=$(grep -n 'pam_unix.so' "/etc/pam.d/common-$g" | head -n 1 | cut -d: -f1)
        [ "$pg" -lt "$ux" ] || fail "common-$g: pam_pgina is not before pam_unix"
done
# The built module instead of the bare name (it is not installed on this machine).
sed -i "s#\bpam_pgina\.so\b#$PAM_MODULE#" /etc/pam.d/common-auth /etc/pam.d/common-account \
        /etc/pam.d/common-session /etc/pam.d/common-password
pam_service pgina-common <<'P'
@include common-auth
@include common-account
@include common-session
P

make_user alice 'Alice pw 1'
make_user bob 'Bob pw 2'
usermod -aG users alice
pgina_conf <<'C'
[order]
authentication = localmachine
authorization = localmachine

[localmachine]
authz_groups = users
C
pgina_start

step "a user pgina allows logs in, and pginad has the session"
assert_ok pam_run pgina-common alice 'Alice pw 1' authenticate acct_mgmt open_session
pginactl sessions >"$T/sessions.out"
assert_contains "$T/sessions.out" "alice"

step "a wrong password fails"
assert_fail pam_run pgina-common alice 'wrong' authenticate

step "pgina's authorization refusal is final (pam_unix does not override it)"
assert_fail pam_run pgina-common bob 'Bob pw 2' authenticate acct_mgmt

step "pginad down: pam_unix is the fallback"
pgina_stop
assert_ok pam_run pgina-common alice 'Alice pw 1' authenticate acct_mgmt
assert_fail pam_run pgina-common alice 'wrong' authenticate
exit 0
