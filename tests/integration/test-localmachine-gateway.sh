#!/bin/bash
# LocalMachine, gateway stage: creates a missing account (home from /etc/skel, GECOS "pGina
# created", full name in the GECOS's fifth field, the record's uid/gid), makes its groups exactly
# the record's groups plus mandatory_groups (adding and removing, creating missing groups), applies
# group_create_fail_is_fail, and syncs the groups of an account that existed before pgina without
# ever marking it.
. "$(dirname "$0")/lib.sh"

# configure TESTPLUGIN_OPTIONS LOCALMACHINE_OPTIONS: testplugin authenticates (password "Ext pw")
# and fills the record; LocalMachine is the gateway.
configure() {
        pgina_stop
        pgina_conf <<C
[order]
authentication = testplugin
gateway = localmachine

[testplugin]
password = Ext pw
$1

[localmachine]
$2
C
        pgina_start
}
groups_of() { id -nG "$1" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'; }
gecos_of() { getent passwd "$1" | cut -d: -f5; }

pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
echo "from skel" >/etc/skel/.pgina-skel-marker
groupadd staff

step "a missing account is created: GECOS 'pGina created' + full name, home from /etc/skel"
configure "add_groups = staff projx
set_attr = fullname=Newton" ""
assert_fail getent passwd newton
assert_ok pam_run pgtest newton 'Ext pw' authenticate acct_mgmt
assert_ok getent passwd newton
assert_eq "pGina created,,,,Newton" "$(gecos_of newton)" "GECOS of a created account"
assert_eq "from skel" "$(cat /home/newton/.pgina-skel-marker)" "home populated from /etc/skel"
assert_eq "newton" "$(stat -c %U /home/newton)" "home owner"
step "... its groups are the record's, a missing group (projx) is created"
assert_ok getent group projx
assert_eq "newton projx staff" "$(groups_of newton)" "groups of newton"

step "exact sync: a group no longer in the record is removed at the next logon"
configure "add_groups = staff" ""
assert_ok pam_run pgtest newton 'Ext pw' authenticate
assert_eq "newton staff" "$(groups_of newton)" "groups after removal"

step "exact sync: an empty record leaves only the primary group"
configure "" ""
assert_ok pam_run pgtest newton 'Ext pw' authenticate
assert_eq "newton" "$(groups_of newton)" "groups with an empty record"

step "mandatory_groups are added (created if missing) besides the record's groups"
configure "add_groups = staff" "mandatory_groups = mand1 staff"
assert_ok pam_run pgtest newton 'Ext pw' authenticate
assert_eq "mand1 newton staff" "$(groups_of newton)" "groups with mandatory_groups"

step "the record's uid and gid are used for a new account (the gid's group is created)"
configure "set_attr = uid=4321 gid=4322" ""
assert_ok pam_run pgtest idsuser 'Ext pw' authenticate
assert_eq "4321" "$(id -u idsuser)" "uid from the record"
assert_eq "4322" "$(id -g idsuser)" "gid from the record"
assert_eq "pGina created" "$(gecos_of idsuser)" "GECOS without a full name"

step "group_create_fail_is_fail=true (default): a group that cannot be created fails the logon"
configure "add_groups = staff BadGroup" ""
assert_fail pam_run pgtest failer 'Ext pw' authenticate
assert_fail getent group BadGroup
step "group_create_fail_is_fail=false: that group is skipped, the logon succeeds"
configure "add_groups = staff BadGroup" "group_create_fail_is_fail = false"
assert_ok pam_run pgtest skipper 'Ext pw' authenticate
assert_eq "skipper staff" "$(groups_of skipper)" "groups with a skipped group"
assert_contains "$PGINA_LOG" "BadGroup"

step "an account that existed before pgina: groups synced, GECOS never marked"
make_user oldtimer 'Old pw' -c 'Old Timer' -G mand1
configure "add_groups = staff
set_attr = fullname=Someone" ""
assert_ok pam_run pgtest oldtimer 'Ext pw' authenticate
assert_eq "oldtimer staff" "$(groups_of oldtimer)" "groups of a pre-existing account"
assert_eq "Old Timer" "$(gecos_of oldtimer)" "GECOS of a pre-existing account"

step "the gateway does not run when authentication fails"
assert_fail pam_run pgtest ghost 'wrong' authenticate
assert_fail getent passwd ghost
exit 0
