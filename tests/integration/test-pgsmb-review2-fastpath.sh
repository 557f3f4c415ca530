#!/bin/bash
# Review 2 (question 3): the logoff's fast path takes "manifest N is listed with the size saved
# here" for "manifest N is the one this home holds", without its id. When slot N was written
# again (the share restored from a snapshot, an admin removing the newest manifest, a server
# whose exclusive create is not), another machine's version N of the same size is silently built
# over: its change is dropped from N+1. (The slow path reads manifest N, sees another id, merges.)
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
V2=$BUILD/tests/tools/v2-tool

pgsmb_delta_file_store_start
current() { "$V2" show "$STORE/alice" alice.tar.zst | head -n 1; }
archive_of() { "$V2" show "$STORE/alice" alice.tar.zst | awk -v p="$1" '$NF == p { print $2 }'; }
host=$(hostname -s)

step "version 1, then version 2 from this machine (docs/f1 rewritten, same size)"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'mkdir -p /home/alice/docs; for i in $(seq 1 10); do head -c 4000 /dev/urandom > /home/alice/docs/f$i; done'
sleep 0.3
pgina_close_session alice
base=$(archive_of docs/f2)
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'head -c 4000 /dev/urandom > /home/alice/docs/f1'
sleep 0.3
pgina_close_session alice
current
size_x=$(stat -c %s "$STORE/alice/alice.tar.zst.m00000002")

step "the share is rolled back to version 1 (snapshot); another machine commits its own version 2"
rm "$STORE/alice/alice.tar.zst.m00000002"
head -c 4000 /dev/urandom >"$T/f2"
for try in $(seq 1 20); do
        # (its archives carry its name and tag, as this machine's do)
        V2_SELF="0e0e0e0e-$host" "$V2" commit "$STORE/alice" alice.tar.zst "$host" docs/f2="$T/f2" >/dev/null
        size_y=$(stat -c %s "$STORE/alice/alice.tar.zst.m00000002")
        [ "$size_y" = "$size_x" ] && break
        rm "$STORE/alice/alice.tar.zst.m00000002"
done
[ "$size_y" = "$size_x" ] || skip "could not make a version 2 of the same size ($size_x, $size_y)"
current
theirs=$(archive_of docs/f2)
echo "manifest 2: $size_x bytes here and there; docs/f2 of the other machine's version 2: $theirs"

step "this machine's next session and logoff"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
as_user alice bash -c 'echo mine > /home/alice/docs/mine.txt'
pgina_close_session alice
grep -E "alice: (home is already|home brought|version 2 from|saved version)" "$PGINA_LOG" | tail -n 3
current
now=$(archive_of docs/f2)
[ "$now" = "$theirs" ] || fail "the other machine's docs/f2 (in $theirs) is not in $(current | cut -d' ' -f1-2): docs/f2 is in $now (version 1's base is $base)"
