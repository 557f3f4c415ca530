#!/bin/bash
# pgSMB's smb:// profile store (libsmbclient) against a private smbd, through store-tool: a 20 MiB
# round trip, list/stat, new files never truncate, rename with and without replace, server-side
# copy, rm, messages that name the URL and path, a wrong password, a server that stops answering
# mid-download (bounded by the timeout) and a server that is gone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/smbd.sh"

ST=$BUILD/tests/tools/store-tool
[ -x "$ST" ] || skip "store-tool not built ($ST)"
need smbd smbpasswd sha256sum ss strace

# Sanitizer builds: libsmbclient's one-time global setup (smbc_new_context -> reopen_logs ->
# debug_set_logfile) is never freed; that is Samba's, not ours. Full unwinding so the
# suppression can see past libtalloc, which has no frame pointers.
printf 'leak:debug_set_logfile\n' >"$T/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$T/lsan.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

smbd_start
URL=$(smbd_url)
TMO=3
# st ARGS: store-tool as the share's owner; the password goes through fd 3 only.
st() { "$ST" "$URL" --user "$SMBD_USER" --password-fd 3 --timeout "$TMO" "$@" 3<<<"$SMBD_PASSWORD"; }
sha() { sha256sum | cut -d' ' -f1; }
now_ms() { date +%s%3N; }

step "put and get a 20 MiB file: same sha256"
head -c 20M /dev/urandom >"$T/big"
assert_ok st mkdirs alice/sub
assert_ok st put alice/alice.tar.zst <"$T/big"
st get alice/alice.tar.zst >"$T/big.back" || fail "get failed"
assert_eq "$(sha <"$T/big")" "$(sha <"$T/big.back")" "sha256 after the round trip"
cmp -s "$T/big" "$T/share/alice/alice.tar.zst" || fail "the file on the share differs"

step "stat and list"
st stat alice/alice.tar.zst >"$T/stat.out" || fail "stat failed"
assert_contains "$T/stat.out" "type=file size=20971520 "
st stat alice >"$T/stat.out" || fail "stat of a folder failed"
assert_contains "$T/stat.out" "type=dir"
st list alice >"$T/list.out" || fail "list failed"
assert_eq "file	alice.tar.zst	20971520
dir	sub" "$(cut -f1-3 "$T/list.out" | sed 's/\t0$//')" "listing of alice"
st list . >"$T/list.out" || fail "list of the root failed"
assert_contains "$T/list.out" "dir	alice	"

step "reads stop at the size seen at open: empty, small and folder"
: >"$T/share/alice/empty"
printf 'version=1\n' >"$T/share/alice/small"
chown "$SMBD_USER" "$T/share/alice/empty" "$T/share/alice/small"
st get alice/empty >"$T/empty.back" || fail "get of an empty file failed"
[ ! -s "$T/empty.back" ] || fail "an empty file read back non-empty"
st get alice/small >"$T/small.back" || fail "get of a small file failed"
assert_eq "version=1" "$(cat "$T/small.back")" "small file read back"
assert_fail st get alice/sub 2>"$T/err"
assert_contains "$T/err" "$URL/alice/sub: Is a directory"

step "errors name the URL and the path"
assert_fail st stat alice/nothing 2>"$T/err"
assert_contains "$T/err" "$URL/alice/nothing: No such file or directory"
assert_fail st get ../etc/passwd 2>"$T/err"
assert_contains "$T/err" "refusing path"
assert_fail st get 'alice/x:stream' 2>"$T/err"
assert_contains "$T/err" "not allowed on an SMB share"

step "a new file never replaces an existing one"
echo small | assert_fail st put alice/alice.tar.zst 2>"$T/err"
assert_contains "$T/err" "$URL/alice/alice.tar.zst: File exists"
cmp -s "$T/big" "$T/share/alice/alice.tar.zst" || fail "put onto an existing file changed it"

step "rename without replace keeps an existing target"
echo new | assert_ok st put alice/new.tmp
assert_fail st rename alice/new.tmp alice/alice.tar.zst 2>"$T/err"
assert_contains "$T/err" "File exists"
cmp -s "$T/big" "$T/share/alice/alice.tar.zst" || fail "rename without replace changed the target"
assert_ok st rename alice/new.tmp alice/fresh
assert_eq new "$(st get alice/fresh)" "renamed file"
assert_fail st stat alice/new.tmp 2>/dev/null

step "rename with replace"
echo newer | assert_ok st put alice/newer.tmp
assert_ok st rename alice/newer.tmp alice/fresh --replace
assert_eq newer "$(st get alice/fresh)" "replaced file"
assert_fail st stat alice/newer.tmp 2>/dev/null
st list alice >"$T/list.out"
assert_not_contains "$T/list.out" "replaced-"
assert_fail st rename alice/missing alice/fresh --replace 2>"$T/err"
assert_contains "$T/err" "alice/missing: No such file or directory"
assert_eq newer "$(st get alice/fresh)" "target after a failed replace"

step "copy (server-side) and copy onto an existing file"
assert_ok st copy alice/alice.tar.zst alice/alice.tar.zst.1
assert_eq "$(sha <"$T/big")" "$(st get alice/alice.tar.zst.1 | sha)" "sha256 of the copy"
assert_fail st copy alice/alice.tar.zst alice/fresh 2>"$T/err"
assert_contains "$T/err" "File exists"
assert_eq newer "$(st get alice/fresh)" "copy target untouched"
st list alice >"$T/list.out"
assert_not_contains "$T/list.out" ".copy-"

step "rm"
assert_ok st rm alice/alice.tar.zst.1
assert_fail st rm alice/alice.tar.zst.1 2>"$T/err"
assert_contains "$T/err" "$URL/alice/alice.tar.zst.1: No such file or directory"

step "a written file read back on its own handle (store_reread, as a manifest's commit does)"
head -c 50000 /dev/urandom >"$T/rr"
trace_put() { # COMMAND REL: store-tool put or put-reread under strace, to $T/REL.trace
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -e trace=writev -s 80 \
                -o "$T/$2.trace" "$ST" "$URL" --user "$SMBD_USER" --password-fd 3 "$1" "alice/$2" \
                3<<<"$SMBD_PASSWORD" <"$T/rr" >"$T/$2.back" || fail "$1 alice/$2 failed"
}
trace_put put rr-plain
trace_put put-reread rr-back
cmp "$T/rr" "$T/rr-back.back" || fail "put-reread read back other bytes than it wrote"
assert_eq "$(sha <"$T/rr")" "$(st get alice/rr-back | sha)" "sha256 of the file as stored"
# SMB2 CREATE is command 5, READ 8 (byte 12 of the header): no second open; two reads, the
# bytes and the one that finds the end (a byte past what was written is asked for: a file the
# server holds longer shows), none after it
smb_cmds() { grep -c 'SMB@\\0\\1\\0\\0\\0\\0\\0\\'"$1"'\\0' "$2" || true; }
assert_eq "$(smb_cmds 5 "$T/rr-plain.trace")" "$(smb_cmds 5 "$T/rr-back.trace")" \
        "CREATE requests of put-reread and put ($T/rr-back.trace)"
assert_eq 2 "$(smb_cmds 10 "$T/rr-back.trace")" "READ requests of put-reread ($T/rr-back.trace)"
assert_fail st put-reread alice/rr-back <"$T/rr" 2>"$T/err" # never over an existing file
assert_contains "$T/err" "File exists"

step "opening with the first listing (store_open_listing, as pgSMB connects)"
# list and mkdirs connect with the listing of their folder: one request fewer than a stat
# (LeakSanitizer cannot run under ptrace)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -e trace=writev -s 80 -o "$T/list.trace" "$ST" "$URL" --user "$SMBD_USER" --password-fd 3 list alice \
        3<<<"$SMBD_PASSWORD" >"$T/list.out" || fail "list failed"
assert_contains "$T/list.out" "file	fresh	"
# SMB2 CREATE is command 5 (byte 12 of the header); the listing's open is the only one after the
# connection's own (the share's attributes): a stat of the root first would be a third
creates=$(grep -c 'SMB@\\0\\1\\0\\0\\0\\0\\0\\5\\0' "$T/list.trace" || true)
assert_eq 2 "$creates" "CREATE requests of a listing open (strace: $T/list.trace)"
assert_ok st mkdirs alice # there: nothing to make
assert_ok st mkdirs alice/sub2/deeper # missing: the root is checked, then each part made
[ -d "$T/share/alice/sub2/deeper" ] || fail "mkdirs after a listing open made no folder"
assert_fail st list nothing 2>"$T/err"
assert_contains "$T/err" "$URL/nothing: No such file or directory"
assert_fail st list 'alice/x:y' 2>"$T/err" # refused before any request: the folder named
assert_contains "$T/err" "$URL/alice/x:y: name not allowed on an SMB share"
assert_fail "$ST" "$URL/nowhere" --user "$SMBD_USER" --password-fd 3 list alice 3<<<"$SMBD_PASSWORD" 2>"$T/err"
assert_contains "$T/err" "$URL/nowhere: No such file or directory"
echo x | assert_ok st put alice/plainfile
assert_fail "$ST" "$URL/alice/plainfile" --user "$SMBD_USER" --password-fd 3 list . 3<<<"$SMBD_PASSWORD" 2>"$T/err"
assert_contains "$T/err" "$URL/alice/plainfile: Not a directory"
assert_ok st rm alice/plainfile
for what in alice .; do
        rc=0
        "$ST" "$URL" --user "$SMBD_USER" --password-fd 3 list "$what" 3<<<"not the password" 2>"$T/err" || rc=$?
        assert_eq 1 "$rc" "exit status of list $what with a wrong password"
        assert_contains "$T/err" "$URL: Permission denied (wrong user name or password"
done

step "another samba user works in its own folder"
smbd_add_user bob 'B0b pw'
echo hi | "$ST" "$URL" --user bob --domain PGTEST --password-fd 3 mkdirs bob 3<<<'B0b pw' ||
        fail "bob: mkdirs failed"
echo hi | "$ST" "$URL" --user bob --password-fd 3 put bob/b 3<<<'B0b pw' || fail "bob: put failed"
assert_eq bob "$(stat -c %U "$T/share/bob/b")" "owner of bob's file"

step "a wrong password fails clearly"
rc=0
"$ST" "$URL" --user "$SMBD_USER" --password-fd 3 stat . 3<<<"not the password" 2>"$T/err" || rc=$?
assert_eq 1 "$rc" "exit status with a wrong password"
assert_contains "$T/err" "$URL: Permission denied (wrong user name or password"
assert_fail "$ST" "$URL" stat . 2>"$T/err" # anonymous: no guest fallback
assert_contains "$T/err" "Permission denied"

step "the server drops the connection between two requests: the store reconnects"
mkfifo "$T/go"
st stat-twice alice/small <"$T/go" >"$T/twice.out" 2>"$T/twice.err" &
twice=$!
exec 5>"$T/go"
for ((i = 0; i < 100; i++)); do
        [ -s "$T/twice.out" ] && break
        sleep 0.1
done
assert_contains "$T/twice.out" "type=file size=10 "
# the smbd child at the other end of store-tool's own connection
cport=$(ss -tnpH state established "( dport = :$SMBD_PORT )" | grep '"store-tool"' |
        awk '{ n = split($3, a, ":"); print a[n]; exit }')
[ -n "$cport" ] || fail "store-tool has no connection to smbd"
conn=$(ss -tnpH state established "( sport = :$SMBD_PORT and dport = :$cport )" |
        grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)
[ -n "$conn" ] || fail "no smbd child serves store-tool's connection (port $cport)"
kill -KILL "$conn"
sleep 0.2
echo go >&5
exec 5>&-
rc=0
wait "$twice" || rc=$?
assert_eq 0 "$rc" "exit status of the second stat after the connection was dropped ($(cat "$T/twice.err"))"
assert_eq 2 "$(grep -c 'type=file size=10 ' "$T/twice.out")" "stats on the same store"

step "smbd stops answering mid-download: bounded failure"
head -c 64M /dev/urandom >"$T/share/huge"
chmod 0644 "$T/share/huge"
# The reader starts after 2 s, so the download is blocked on the pipe when smbd is paused.
(
        rc=0
        st get huge 2>"$T/hang.err" || rc=$?
        echo "$rc" >"$T/hang.rc"
        now_ms >"$T/hang.end"
) | { sleep 2; cat >"$T/hang.out"; } &
pipe=$!
sleep 1
smbd_pause
t0=$(now_ms)
wait "$pipe"
elapsed=$(($(cat "$T/hang.end") - t0))
smbd_resume
echo "download failed after ${elapsed} ms (timeout ${TMO} s, reader started after 1 s)"
assert_eq 1 "$(cat "$T/hang.rc")" "exit status of the stalled download"
assert_contains "$T/hang.err" "$URL/huge: Connection timed out"
[ "$elapsed" -le $(((TMO + 5) * 1000)) ] || fail "the stalled download took ${elapsed} ms"
[ "$(stat -c %s "$T/hang.out")" -lt 67108864 ] || fail "the download completed although smbd was paused"

step "smbd paused before connecting: bounded failure"
smbd_pause
t0=$(now_ms)
assert_fail st stat huge 2>"$T/err"
elapsed=$(($(now_ms) - t0))
smbd_resume
assert_contains "$T/err" "Connection timed out"
[ "$elapsed" -le $(((TMO + 5) * 1000)) ] || fail "connecting to a paused smbd took ${elapsed} ms"

step "the server is still fine afterwards"
assert_eq newer "$(st get alice/fresh)" "read after the stalls"

step "smbd gone: connection error"
smbd_stop
t0=$(now_ms)
assert_fail st stat alice 2>"$T/err"
elapsed=$(($(now_ms) - t0))
assert_contains "$T/err" "$URL: cannot reach 127.0.0.1 port $SMBD_PORT: Connection refused"
[ "$elapsed" -le 5000 ] || fail "failing against a stopped smbd took ${elapsed} ms"
echo "ok"
