#!/bin/bash
# The restore's ring is memory the worker shares with pgsmb-userwork, which runs as the user and
# parses her own, possibly hostile, archive. Code running there (as alice) must not be able to
# crash or steer the root worker through the ring: shrinking the memfd under the worker's
# mapping would kill it with SIGBUS mid-restore, writing to it would change what the worker
# hashes. Here pgsmb-userwork is wrapped by a hostile program (as root's, in a copy of the plugin
# directory) that tries both on descriptor 5 before it runs the real one: both are refused and
# the restore completes.
. "$(dirname "$0")/lib.sh"
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
need pamtester

STORE=$T/store
PLUGINS=$T/plugins
mkdir -p "$STORE" "$PLUGINS"
chmod 0755 "$T" "$PLUGINS"
cp "$BUILD"/plugins/pgsmb.so "$BUILD"/plugins/localmachine.so "$BUILD"/plugins/testplugin.so "$PLUGINS"/
cat >"$PLUGINS/pgsmb-userwork" <<PY
#!/usr/bin/python3
import mmap, os, sys
def say(what):
    os.write(2, ("hostile-userwork: %s\n" % what).encode())
try:
    target = os.readlink("/proc/self/fd/5")
except OSError:
    target = ""
if target.startswith("/memfd:"):
    size = os.fstat(5).st_size
    try:
        os.ftruncate(5, 0)
        say("ftruncate done: the ring shrank to %d bytes" % os.fstat(5).st_size)
    except OSError as e:
        say("ftruncate refused (%s)" % e.strerror)
    try:
        m = mmap.mmap(5, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:4] = b"evil"
        say("write done through a mapping")
    except (OSError, ValueError) as e:
        say("writable mapping refused (%s)" % e)
    try:
        os.pwrite(5, b"evil", 0)
        say("pwrite done")
    except OSError as e:
        say("pwrite refused (%s)" % e.strerror)
os.execv("$BUILD/plugins/pgsmb-userwork", ["pgsmb-userwork"])
PY
chmod 0755 "$PLUGINS/pgsmb-userwork"

pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 60" pgsmb_conf Ring-pw-1 <<CONF
share = file://$STORE
retries = 1
retry_delay = 0
[localmachine]
logoff_action = remove
CONF
sed -i "s|^plugin_dir = .*|plugin_dir = $PLUGINS|" "$PGINA_CONF"
pgina_start

step "first logon and logoff: alice's profile goes to the store"
pam_ok pgtest alice Ring-pw-1 authenticate acct_mgmt open_session
as_user alice sh -c 'head -c 20M /dev/urandom >"$HOME/data.bin"; echo kept >"$HOME/note.txt"' ||
        fail "cannot write alice's home"
sum=$(sha256sum </home/alice/data.bin)
pgina_close_session alice
assert_contains "$PGINA_LOG" "alice: saved"
[ ! -e /home/alice ] || fail "alice's home was not removed at logoff (logoff_action = remove)"

step "second logon: the hostile program attacks the ring, the restore completes"
pam_ok pgtest alice Ring-pw-1 authenticate acct_mgmt open_session
assert_contains "$PGINA_LOG" "hostile-userwork: ftruncate refused"
assert_contains "$PGINA_LOG" "hostile-userwork: writable mapping refused"
assert_contains "$PGINA_LOG" "hostile-userwork: pwrite refused"
assert_not_contains "$PGINA_LOG" "hostile-userwork: ftruncate done"
assert_contains "$PGINA_LOG" "alice: restored"
assert_eq "$sum" "$(sha256sum </home/alice/data.bin)" "alice's restored data.bin"
assert_eq kept "$(cat /home/alice/note.txt)" "alice's restored note.txt"
pgina_close_session alice
exit 0
