#!/bin/bash
# LocalMachine, authorization stage, judged on the record's groups: authz_require_admin (with
# admin_group), authz_groups (at least one), authz_apply_to_all (false = only users LocalMachine
# authenticated) and mirror_groups (copy the local account's groups first). A denial names the
# missing group.
. "$(dirname "$0")/lib.sh"

# configure LOCALMACHINE_OPTIONS [AUTH_ORDER]: restart pginad with these [localmachine] lines.
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = ${2:-localmachine}
authorization = localmachine

[testplugin]
password = Ext pw

[localmachine]
$1
C
        pgina_start
}

pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
groupadd -f sudo
groupadd wheel
groupadd staff
make_user admin 'Admin pw' -G sudo
make_user wheely 'Wheely pw' -G wheel
make_user plain 'Plain pw'
make_user staffer 'Staffer pw' -G staff

step "authz_require_admin: a member of sudo is allowed"
configure "authz_require_admin = true"
assert_ok pam_run pgtest admin 'Admin pw' authenticate acct_mgmt
step "authz_require_admin: a non-member is denied, the message names the group"
assert_fail pam_run pgtest plain 'Plain pw' authenticate acct_mgmt
assert_fail pgina_simulate 'Plain pw' plain
has_line "$T/sim.out" '^authorization +localmachine +failure +.*not a member of the group sudo'

step "admin_group: another group is the administrator group"
configure "authz_require_admin = true
admin_group = wheel"
assert_ok pam_run pgtest wheely 'Wheely pw' authenticate acct_mgmt
assert_fail pam_run pgtest admin 'Admin pw' authenticate acct_mgmt
assert_fail pgina_simulate 'Admin pw' admin
has_line "$T/sim.out" 'not a member of the group wheel'

step "authz_groups: a member of one of the groups is allowed"
configure "authz_groups = staff wheel"
assert_ok pam_run pgtest staffer 'Staffer pw' authenticate acct_mgmt
assert_ok pam_run pgtest wheely 'Wheely pw' authenticate acct_mgmt
step "authz_groups: a member of none is denied, the message names the groups"
assert_fail pam_run pgtest plain 'Plain pw' authenticate acct_mgmt
assert_fail pgina_simulate 'Plain pw' plain
has_line "$T/sim.out" '^authorization +localmachine +failure +.*not a member of any of the groups staff, wheel'

step "authz_groups empty (default): everyone authenticated is allowed"
configure ""
assert_ok pam_run pgtest plain 'Plain pw' authenticate acct_mgmt

step "authz_apply_to_all=true (default): users another plugin authenticated are judged too"
configure "authz_require_admin = true" "testplugin"
assert_fail pam_run pgtest plain 'Ext pw' authenticate acct_mgmt
assert_fail pgina_simulate 'Ext pw' plain
has_line "$T/sim.out" 'not a member of the group sudo'

step "authz_apply_to_all=false: users another plugin authenticated are not judged"
configure "authz_require_admin = true
authz_apply_to_all = false" "testplugin"
assert_ok pam_run pgtest plain 'Ext pw' authenticate acct_mgmt
assert_ok pam_run pgtest nolocalaccount 'Ext pw' authenticate acct_mgmt
step "authz_apply_to_all=false: users LocalMachine authenticated are judged"
configure "authz_require_admin = true
authz_apply_to_all = false" "testplugin localmachine"
assert_fail pam_run pgtest plain 'Plain pw' authenticate acct_mgmt
assert_ok pam_run pgtest admin 'Admin pw' authenticate acct_mgmt

step "mirror_groups=false (default): another plugin's user has no local groups in the record"
configure "authz_groups = staff" "testplugin"
assert_fail pam_run pgtest staffer 'Ext pw' authenticate acct_mgmt
step "mirror_groups=true: the local account's groups are copied before judging"
configure "authz_groups = staff
mirror_groups = true" "testplugin"
assert_ok pam_run pgtest staffer 'Ext pw' authenticate acct_mgmt
assert_fail pam_run pgtest plain 'Ext pw' authenticate acct_mgmt
assert_ok pgina_simulate 'Ext pw' staffer
has_line "$T/sim.out" '^Groups: .*staff'
exit 0
