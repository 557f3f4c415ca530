#!/bin/bash
# pginactl profile list|restore|upload against the file:// store:
#   - after several logoffs the store keeps the current archive and at most keep_versions older
#     ".v-" versions; `profile list USER` shows the current version and the kept ones;
#   - `profile restore USER VERSION` is refused while USER is logged on (nothing changes), and
#     otherwise makes that version current again (same bytes, a new version id, the replaced
#     current one kept), so the next logon gets the old file contents;
#   - `profile upload USER` saves the home now: the .meta version changes and the archive holds
#     the home as it is; the following logoff is a normal upload, not a conflict copy.
. "$(dirname "$0")/lib.sh"
need pamtester zstd tar
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store
mkdir -p "$STORE"
meta_version() { sed -n 's/^version=//p' "$STORE/alice/alice.tar.zst.meta"; }
# the content of FILE (relative to the home) inside the store archive ARCHIVE

pgsmb_pam_service
PGINA_SERVICE_EXTRA="request_timeout = 120" pgsmb_conf secret <<CONF
share = file://$STORE
store_format = 1
retries = 1
retry_delay = 0
keep_versions = 2
[localmachine]
logoff_action = none
CONF
pgina_start

step "four logons/logoffs, each writing generation N: versions V1..V4"
declare -a V
for n in 1 2 3 4; do
        assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
        as_user alice bash -c "printf 'generation $n\n' > /home/alice/gen"
        sleep 1.1 # version ids start with the time in seconds: keep them apart
        pgina_close_session alice
        V[$n]=$(meta_version)
        [ -n "${V[$n]}" ] || fail "no version in the .meta after logoff $n"
        assert_eq "generation $n" "$(archived "$STORE/alice/alice.tar.zst" gen)" "archive after logoff $n"
done
ls -la "$STORE/alice" >"$T/store.list"
nv=$(find "$STORE/alice" -name 'alice.tar.zst.v-*' | wc -l)
[ "$nv" -le 2 ] || { cat "$T/store.list" >&2; fail "keep_versions = 2 but $nv .v- files are kept"; }
[ "$nv" -eq 2 ] || { cat "$T/store.list" >&2; fail "expected 2 kept versions after 4 uploads, found $nv"; }
[ -e "$STORE/alice/alice.tar.zst.v-${V[3]}" ] || { cat "$T/store.list" >&2; fail "version V3 (${V[3]}) not kept"; }
[ -e "$STORE/alice/alice.tar.zst.v-${V[2]}" ] || { cat "$T/store.list" >&2; fail "version V2 (${V[2]}) not kept"; }
[ -e "$STORE/alice/alice.tar.zst.v-${V[1]}" ] && fail "version V1 (${V[1]}) kept beyond keep_versions"
assert_eq "generation 2" "$(archived "$STORE/alice/alice.tar.zst.v-${V[2]}" gen)" "content of kept V2"
assert_eq "generation 3" "$(archived "$STORE/alice/alice.tar.zst.v-${V[3]}" gen)" "content of kept V3"

step "pginactl profile list shows the current and the previous versions"
assert_ok pginactl profile list alice >"$T/list.out" 2>&1
cat "$T/list.out"
grep -E "^${V[4]} .*current" "$T/list.out" >/dev/null || fail "list: V4 (${V[4]}) not shown as current"
grep -E "^${V[3]} .*previous" "$T/list.out" >/dev/null || fail "list: V3 (${V[3]}) not shown as previous"
grep -E "^${V[2]} .*previous" "$T/list.out" >/dev/null || fail "list: V2 (${V[2]}) not shown as previous"
assert_not_contains "$T/list.out" "${V[1]}"
size4=$(stat -c %s "$STORE/alice/alice.tar.zst")
grep -E "^${V[4]} +$size4 " "$T/list.out" >/dev/null || fail "list: the size of the current archive ($size4) is not shown"

step "pginactl profile restore is refused while alice is logged on"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
sum_cur=$(sha256sum <"$STORE/alice/alice.tar.zst")
assert_fail pginactl profile restore alice "${V[2]}" >"$T/restore1.out" 2>&1
cat "$T/restore1.out"
assert_contains "$T/restore1.out" "logged on"
assert_eq "$sum_cur" "$(sha256sum <"$STORE/alice/alice.tar.zst")" "archive after a refused restore"
assert_eq "${V[4]}" "$(meta_version)" "meta version after a refused restore"
pgina_close_session alice

step "pginactl profile restore makes V3 current; the next logon gets generation 3"
# the logoff above uploaded again: V5 is current, V4 and V3 are kept (V2 was pruned)
V5=$(meta_version)
[ -e "$STORE/alice/alice.tar.zst.v-${V[2]}" ] && fail "V2 kept beyond keep_versions after logoff 5"
sum_v3=$(sha256sum <"$STORE/alice/alice.tar.zst.v-${V[3]}")
assert_ok pginactl profile restore alice "${V[3]}" >"$T/restore2.out" 2>&1
cat "$T/restore2.out"
assert_eq "$sum_v3" "$(sha256sum <"$STORE/alice/alice.tar.zst")" "the current archive is not V3's bytes"
V6=$(meta_version)
[ -n "$V6" ] && [ "$V6" != "$V5" ] && [ "$V6" != "${V[3]}" ] || fail "restore did not give a new version id (was $V5, now $V6)"
assert_contains "$STORE/alice/alice.tar.zst.meta" "sha256=$(cut -d' ' -f1 <<<"$sum_v3")"
[ -e "$STORE/alice/alice.tar.zst.v-$V5" ] || { ls -la "$STORE/alice" >&2; fail "the replaced current version $V5 was not kept"; }
find "$STORE/alice" -name '*.tmp-*' | grep -q . && { ls -la "$STORE/alice" >&2; fail "temporary files left in the store"; }
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
assert_eq "generation 3" "$(cat /home/alice/gen)" "home content after restoring V3"

step "pginactl profile upload saves the home now"
as_user alice bash -c "printf 'uploaded by the admin\n' > /home/alice/gen"
assert_ok pginactl profile upload alice >"$T/upload.out" 2>&1
cat "$T/upload.out"
V7=$(meta_version)
[ "$V7" != "$V6" ] || fail "profile upload did not change the .meta version"
assert_contains "$T/upload.out" "$V7"
assert_eq "uploaded by the admin" "$(archived "$STORE/alice/alice.tar.zst" gen)" "archive after profile upload"
assert_contains "$STORE/alice/alice.tar.zst.meta" "sha256=$(sha256sum <"$STORE/alice/alice.tar.zst" | cut -d' ' -f1)"
pgina_close_session alice
compgen -G "$STORE/alice/*conflict*" >/dev/null && { ls -la "$STORE/alice" >&2; fail "the logoff after profile upload made a conflict copy"; }
[ "$(meta_version)" != "$V7" ] || fail "the logoff after profile upload did not save"
nv=$(find "$STORE/alice" -name 'alice.tar.zst.v-*' | wc -l)
[ "$nv" -le 2 ] || { ls -la "$STORE/alice" >&2; fail "keep_versions = 2 but $nv .v- files are kept"; }

step "profile restore of an unknown version fails and changes nothing"
sum_cur=$(sha256sum <"$STORE/alice/alice.tar.zst")
assert_fail pginactl profile restore alice 12345-nosuchversion >"$T/restore3.out" 2>&1
assert_contains "$T/restore3.out" "no version"
assert_eq "$sum_cur" "$(sha256sum <"$STORE/alice/alice.tar.zst")" "archive after a failed restore"
