#!/bin/bash
# pgSMB delta profiles: two machines of one short host name share a store (lab machines cloned
# from one image keep its "debian"; a machine with no name is "localhost"). The clone's logoff
# has uploaded its delta and is verifying it when this machine's logon prunes. Before, the prune
# took every alice.tar.zst.a-HOST-* archive as this machine's own (no grace, only a mark here
# kept one): it removed the clone's delta, the clone then committed a version naming an archive
# that was gone, and no machine could restore alice's current version. Now an archive is this
# machine's only under its own name, TAG-HOST (install id and boot id): the clone's waits for
# the grace period like any other machine's; this machine's own dead upload still goes at once.
. "$(dirname "$0")/lib.sh"
PGSMB_EXTRA="keep_versions = 1" pgsmb_delta_test
D=$STORE/alice
host=$(hostname)
host=${host%%.*}
host=${host:0:32}

step "versions 1 to 3 from this machine"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs && echo one >/home/alice/docs/a && echo b >/home/alice/docs/b'
sleep 0.2 # past the racy-clean window
pgina_close_session alice
assert_ok pam_run pgtest alice secret authenticate open_session
as_user alice bash -c 'echo two >/home/alice/docs/a'
sleep 0.2
pgina_close_session alice
assert_ok pam_run pgtest alice secret authenticate open_session
as_user alice bash -c 'echo three >/home/alice/docs/b'
sleep 0.2
pgina_close_session alice
assert_eq 3 "$(current)" "version after three logoffs"
ours=$(cd "$D" && ls | grep -E "^alice\.tar\.zst\.a-[0-9a-f]{8}-$host-[0-9a-f]{16}\$" | head -n 1)
[ -n "$ours" ] || { ls -la "$D" >&2; fail "no archive named alice.tar.zst.a-TAG-$host-ID in the store"; }
tag=${ours#alice.tar.zst.a-}
tag=${tag%%-*}
echo "this machine's archives: alice.tar.zst.a-$tag-$host-*"
other=c10e0000
[ "$tag" != "$other" ] || other=c10e0001

step "the clone (host $host too) has uploaded its delta and verifies it"
echo "the clone's work" >"$T/clone-file"
mkfifo "$T/go"
exec 9<>"$T/go"
V2_PAUSE=1 V2_SELF="$other-$host" "$V2" commit "$D" alice.tar.zst "$host" docs/clone="$T/clone-file" <"$T/go" >"$T/clone.out" 2>&1 &
clone_pid=$!
stop_clone() { kill "$clone_pid" 2>/dev/null || true; }
at_exit stop_clone
for ((i = 0; i < 100; i++)); do grep -q '^staged ' "$T/clone.out" && break; sleep 0.1; done
staged=$(sed -n 's/^staged //p' "$T/clone.out")
[ -n "$staged" ] || { cat "$T/clone.out" >&2; fail "the clone staged nothing"; }
echo "the clone's delta: $staged"
# and what this machine's own upload that died left (no mark): still removed at once
orphan="alice.tar.zst.a-$tag-$host-fedcba9876543210"
echo x >"$D/$orphan"
# what an older pgina on a clone names its upload in progress (no tag): another machine's too
# (the old prune took it for its own and removed it)
old_name="alice.tar.zst.a-$host-0123456789abcdef"
echo x >"$D/$old_name"

step "this machine's logon prunes (version 1 is older than keep_versions = 1 allows)"
assert_ok pam_run pgtest alice secret authenticate open_session
pgina_wait_log "alice: removed alice.tar.zst.m00000001 (older than keep_versions = 1)" 300
pgina_wait_log "alice: removed $orphan (no version names it)" 300
flock /var/lib/pgina/plugins/pgsmb/alice.prune true # the prune is over
[ -e "$D/$staged" ] || { grep "alice: removed" "$PGINA_LOG" >&2; fail "the prune removed the clone's delta in progress ($staged)"; }
[ -e "$D/$old_name" ] || fail "the prune removed another machine's recent archive ($old_name)"
assert_not_contains "$PGINA_LOG" "removed $staged"

step "the clone commits; this machine restores its version whole"
echo go >&9
wait "$clone_pid" || { cat "$T/clone.out" >&2; fail "the clone's commit failed"; }
assert_eq 4 "$(current)" "the clone's version"
pgina_close_session alice # this machine's logoff: merges onto version 4 (nothing changed here)
rm -rf /home/alice /var/lib/pgina/plugins/pgsmb/alice.* # a machine new to alice
assert_ok pam_run pgtest alice secret authenticate open_session
assert_eq "the clone's work" "$(cat /home/alice/docs/clone)" "the clone's file after a fresh restore"
assert_eq "two" "$(cat /home/alice/docs/a)" "docs/a after a fresh restore"
assert_eq "three" "$(cat /home/alice/docs/b)" "docs/b after a fresh restore"
assert_not_contains "$PGINA_LOG" "temporary profile"
pgina_close_session alice
echo "PASS"
