#!/bin/bash
# bench/inner.sh — the part of bench/run that runs inside tests/sandbox.sh (it creates users and
# starts pginad, smbd and the delay proxy, all of which die with the sandbox). Not meant to be
# run by hand: bench/run sets the environment below.
#   SRC BUILD    the pgina tree whose tests/integration helpers we reuse, and its release build
#   BENCH        this directory;  RUN  this run's on-disk directory;  T  = $RUN/t (lib.sh's)
#   TEMPLATE     the generated home;  MANIFEST  its "kind bytes path" list
#   CASES RTTS   comma lists;  PGSMB_EXTRA  extra [pgsmb] lines;  PROXY  the delay proxy binary
# Each measurement is a line "KEY SECONDS" in $RUN/raw.txt; bench/run turns them into the table.
# shellcheck disable=SC1091
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/smbd.sh"

RAW=$RUN/raw.txt
USER_NAME=alice
USER_PW='Bench-pw-1'
HOME_DIR=/home/$USER_NAME
: >"$RAW"

note() { echo "bench: $*" | tee -a "$RUN/notes.txt"; }
record() { echo "$1 $2" >>"$RAW"; }
has_case() { [[ ",$CASES," == *",$1,"* ]]; }

# The homes must live on disk like real ones, not in the sandbox's tmpfs /home.
mkdir -p "$RUN/home"
mount --bind "$RUN/home" /home || fail "cannot bind $RUN/home over /home"

# Every timed case starts from a cold page cache: what is read comes from the disk, as at a real
# logon; dirty pages of the previous step are written first so they do not land in the timing.
cold() {
        sync
        echo 3 >/proc/sys/vm/drop_caches
}

# timed KEY CMD...: run CMD, record its wall time under KEY. Returns CMD's status.
timed() {
        local key=$1 s e rc=0
        shift
        s=$EPOCHREALTIME
        "$@" || rc=$?
        e=$EPOCHREALTIME
        record "$key" "$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }')"
        return "$rc"
}

# The tree under DIR must hold what the manifest says: same number of files, same bytes.
EXPECT_FILES=$(wc -l <"$MANIFEST")
# %.0f: mawk prints sums past 2^31 as 5.22368e+09 (the large home), which compares
# imprecisely and breaks shell arithmetic.
EXPECT_BYTES=$(awk '{ s += $2 } END { printf "%.0f\n", s }' "$MANIFEST")
check_tree() { # DIR WHAT
        local got
        got=$(find "$1" -type f -printf '%s\n' | awk '{ n++; s += $1 } END { printf "%d %.0f\n", n, s }')
        [ "$got" = "$EXPECT_FILES $EXPECT_BYTES" ] ||
                fail "$2: $1 holds $got (files bytes), expected $EXPECT_FILES $EXPECT_BYTES"
}

# change_files LIST: as the user, every file of LIST (paths in the home) rewritten reversed
change_files() {
        as_user "$USER_NAME" "$PYTHON" -c '
import sys
home = sys.argv[1]
for rel in open(sys.argv[2]).read().splitlines():
    p = home + "/" + rel
    with open(p, "rb") as f:
        d = f.read()
    with open(p, "wb") as f:
        f.write(d[::-1])
' "$HOME_DIR" "$1"
}

# tree_sig DIR: every entry's type, mode, size, mtime and path, and every file's sha256
tree_sig() { # a directory's size is the filesystem's history, not content: left out
        (cd "$1" && find . -mindepth 1 \( -type d -printf '%y %m - %Ts %P\n' \) -o -printf '%y %m %s %Ts %P\n' |
                LC_ALL=C sort &&
                find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

# ---- servers and the account ------------------------------------------------------------------
smbd_start
# A generous ceiling: smbd's own log level and the default "smbd:backgroundqueue" are as the test
# suite runs it; the share lives on disk under $T/share.
make_user "$USER_NAME" "$USER_PW"
USER_UID=$(id -u "$USER_NAME")
CREDS=/etc/pgina/smb-bench.cred
mkdir -p /etc/pgina
printf 'username = %s\npassword = %s\ndomain = PGTEST\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$CREDS"
chmod 0600 "$CREDS"
# smbclient for the peers runs as the user (its files are the user's, as pgina's are); its
# authentication file is the user's own, mode 0600.
AUTHFILE=$T/smbclient.auth
install -m 0600 -o "$USER_NAME" "$CREDS" "$AUTHFILE"

SHARE_PORT=$SMBD_PORT
write_conf() { # PORT
        mkdir -p /etc/pgina
        cat >"$PGINA_CONF" <<CONF
[service]
plugin_dir = $BUILD/plugins
log_level = info
request_timeout = 7200
job_timeout = 7200

[order]
authentication = localmachine
gateway = pgsmb localmachine
notification = pgsmb localmachine

[pgsmb]
share = smb://127.0.0.1:$1/profiles
credentials = $CREDS
timeout = 120
${PGSMB_EXTRA:-}
CONF
}
write_conf "$SHARE_PORT"
pam_service pgbench <<'PAM'
auth     required pam_pgina.so timeout=600
account  required pam_pgina.so
session  required pam_pgina.so
PAM
pam_service pgunix <<'PAM'
auth     required pam_unix.so
account  required pam_unix.so
PAM
pgina_start

# ---- pgina's product path ---------------------------------------------------------------------
# A logon as login would do it: pamtester, password on stdin (no 150 ms prompt detection).
logon() {
        printf '%s\n' "$USER_PW" | pam_host_exec pamtester pgbench "$USER_NAME" \
                authenticate acct_mgmt open_session >>"$RUN/pamtester.log" 2>&1
}
# The logoff: CLOSE_SESSION as login sends it, then wait until the logoff job is done. The
# session id and the frame are prepared before the clock starts.
CLOSE_FRAME=
prepare_logoff() {
        local sid
        sid=$(pginactl sessions | awk -v u="$USER_NAME" '$0 ~ u { print $1; exit }')
        [ -n "$sid" ] || fail "no open session of $USER_NAME"
        CLOSE_FRAME=$(pgina_close_session_frame "$sid" "$USER_NAME")
}
logoff() {
        pgclient frame 1 4 "$CLOSE_FRAME" >"$T/close.out" || return 1
        grep -q "result 0" "$T/close.out" || return 1
        # pginad answers the moment the job ends (no polling: on 2 cores a status poll every
        # 20 ms cost the measured logoff ~0.8 s of CPU)
        pginactl wait
}
# memwatch around a pgina step: peak RSS of pginad and its children (case 6).
MEMWATCH_PID=
mem_start() {
        "$PYTHON" "$BENCH/memwatch" "$PGINA_PID" "$T/mem.out" &
        MEMWATCH_PID=$!
}
mem_stop() { # KEY
        kill -TERM "$MEMWATCH_PID"
        wait "$MEMWATCH_PID"
        MEMWATCH_PID=
        grep -q "peak_sum_pss_kib=[0-9]" "$T/mem.out" 2>/dev/null || fail "bench/memwatch wrote no peaks for $1"
        record "mem.$1" "$(sed -n 's/.*peak_hwm_kib=\([0-9]*\).*/\1/p' "$T/mem.out")"
        record "memsum.$1" "$(sed -n 's/.*peak_sum_rss_kib=\([0-9]*\).*/\1/p' "$T/mem.out")"
        record "mempss.$1" "$(sed -n 's/.*peak_sum_pss_kib=\([0-9]*\).*/\1/p' "$T/mem.out")"
        cat "$T/mem.out" >>"$RUN/notes.txt"
}
# --profile: perf (system-wide: pginad, its children and smbd) or strace (pginad and every process
# it forks) around pgina's restore and upload; the timings of a profiled run are not comparable.
PROF_PID=
prof_start() { # KEY
        case ${PROFILE:-} in
        perf)
                perf record -a -g -q -o "$RUN/perf.$1.data" >/dev/null 2>&1 &
                PROF_PID=$!
                sleep 1 ;;
        strace)
                strace -f -qq -ttt -T -o "$RUN/strace.$1" -p "$PGINA_PID" &
                PROF_PID=$!
                sleep 1 ;;
        timeline)
                # Few system calls, traced through seccomp: timings close to the real ones.
                strace -f -qq -ttt --seccomp-bpf -e trace=execve,clone,clone3,connect,exit_group,rename,mkdir,openat,sendto,sendmsg,writev \
                        -o "$RUN/timeline.$1" -p "$PGINA_PID" -p "$SMBD_PID" &
                PROF_PID=$!
                sleep 1 ;;
        esac
}
prof_stop() { # KEY
        [ -n "$PROF_PID" ] || return 0
        kill -INT "$PROF_PID"
        wait "$PROF_PID"
        PROF_PID=
        case $PROFILE in
        perf)
                perf report -i "$RUN/perf.$1.data" --no-children -g none --sort comm,dso --stdio \
                        --percent-limit 0.5 >"$RUN/profile.$1.comm-dso.txt" 2>/dev/null
                perf report -i "$RUN/perf.$1.data" --no-children -g none --sort comm,dso,sym --stdio \
                        --percent-limit 0.3 >"$RUN/profile.$1.sym.txt" 2>/dev/null ;;
        strace)
                "$PYTHON" "$BENCH/stracesum" "$RUN/strace.$1" >"$RUN/profile.$1.strace.txt" ;;
        timeline)
                cp "$RUN/timeline.$1" "$RUN/profile.$1.timeline.txt" ;;
        esac
        note "profile $1: $RUN/profile.$1.*"
}
log_mark() { wc -l <"$PGINA_LOG"; }
log_since() { tail -n +"$(($1 + 1))" "$PGINA_LOG"; }

# ---- the peers (all as the user, from and to the same share) ------------------------------------
smbc() { # PORT COMMANDS
        as_user "$USER_NAME" smbclient -m SMB3 -A "$AUTHFILE" -p "$1" //127.0.0.1/profiles \
                -c "$2" >>"$RUN/smbclient.log" 2>&1
}
# Trees are moved aside during the run, and deleted only at its end: ext4 without a journal
# (this VM's disk) skips inodes deleted in the last 60 s when it allocates new ones (the kernel's
# recently_deleted()), which made whichever extraction came right after a big deletion up to
# 25% slower, so the order of the cases decided the ratios. Now every extraction starts alike.
RETIRED=/home/.bench-retired
mkdir -p "$RETIRED"
retire() { # DIR: out of the way, not deleted (yet)
        [ -e "$1" ] || return 0
        mv "$1" "$(mktemp -u "$RETIRED/t.XXXXXX")"
        # ... unless the disk runs short: then they go now (and a note says so)
        local avail
        avail=$(df -P -B1 /home | awk 'NR == 2 { print $4 }')
        if [ "$avail" -lt $((3 * EXPECT_BYTES)) ]; then
                note "disk short ($avail bytes free): retired trees deleted during the run"
                find "$RETIRED" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
        fi
}
retired_cleanup() { rm -rf --one-file-system "$RETIRED"; }
at_exit retired_cleanup
fresh_dir() { # DIR: empty, the user's
        retire "$1"
        install -d -m 0700 -o "$USER_NAME" -g "$(id -g "$USER_NAME")" "$1"
}
peer_mget() { smbc "$1" "prompt OFF; recurse ON; lcd /home/peer; cd tree; mget *"; }
peer_get() { smbc "$1" "get peer-get.tar.zst /dev/null"; }
peer_mput() { smbc "$1" "prompt OFF; recurse ON; lcd $HOME_DIR; mkdir $2; cd $2; mput *"; }
peer_put() { smbc "$1" "put $LOCAL/peer.tar.zst $2"; }
peer_unzstd_tar() { as_user "$USER_NAME" bash -c "zstd -dc -q '$LOCAL/home.tar.zst' | tar -xf - -C /home/peer --warning=no-unknown-keyword"; }
peer_untar() { as_user "$USER_NAME" tar -xf "$LOCAL/home.tar" -C /home/peer --warning=no-unknown-keyword; }
peer_tar_zstd() { as_user "$USER_NAME" bash -c "tar -cf - -C '$HOME_DIR' . | zstd -T0 -3 -q -f -o '$LOCAL/peer.tar.zst'"; }
peer_tar_zstd_put() { peer_tar_zstd && peer_put "$1" "$2"; }
# PORT DIR LIST: smbclient put of the files of LIST (relative to the home) over their copies in the
# share's DIR (the tree mput made), one session: what a 1%-change logoff has to send at least
peer_put_changed() {
        local cmds="" p
        while IFS= read -r p; do cmds+="put \"$HOME_DIR/$p\" \"$2/$p\"; "; done <"$3"
        smbc "$1" "$cmds"
}

# ---- setup (not timed): the user's home, a first logon and logoff to put an archive in the share
step "setup: $EXPECT_FILES files, $EXPECT_BYTES bytes from $TEMPLATE"
logon || fail "first logon failed: $(tail -n 5 "$RUN/pamtester.log")"
grep -q "$USER_NAME: no profile in" "$PGINA_LOG" || fail "first logon did not see an empty share"
# exactly the generated tree: /etc/skel's files go (the peers copy the template, not skel)
find "$HOME_DIR" -mindepth 1 -delete
cp -a "$TEMPLATE/." "$HOME_DIR/" && chown -R "$USER_NAME:$(id -g "$USER_NAME")" "$HOME_DIR"
prepare_logoff
cold
timed setup.first_upload logoff || fail "first logoff failed"
grep -q "$USER_NAME: saved" "$PGINA_LOG" || fail "first upload not saved: $(tail -n 5 "$PGINA_LOG")"
# Store format 2 (the default): the base archive the first logoff wrote; format 1: the one archive.
ARCHIVE=$(find "$SMBD_SHARE/$USER_NAME" -maxdepth 1 -name "$USER_NAME.tar.zst.a-*" | head -n 1)
[ -n "$ARCHIVE" ] || ARCHIVE=$SMBD_SHARE/$USER_NAME/$USER_NAME.tar.zst
record info.archive_bytes "$(stat -c %s "$ARCHIVE")"
# smbclient get's copy: later logoffs write new bases and prune this one
install -m 0644 -o "$SMBD_USER" "$ARCHIVE" "$SMBD_SHARE/peer-get.tar.zst"
# pgsmb's record of what this machine last saved (format 2): without it a logoff uploads the
# whole home as a new base
PGSMB_STATE=/var/lib/pgina/plugins/pgsmb
RECORD=$PGSMB_STATE/$USER_NAME.record
# Local copies for the floors, and the same tree as plain files in the share for mget.
LOCAL=$RUN/local
install -d -m 0755 -o "$USER_NAME" "$LOCAL"
install -m 0644 -o "$USER_NAME" "$ARCHIVE" "$LOCAL/home.tar.zst"
zstd -dc -q "$LOCAL/home.tar.zst" >"$LOCAL/home.tar" && chown "$USER_NAME" "$LOCAL/home.tar"
record info.tar_bytes "$(stat -c %s "$LOCAL/home.tar")"
if has_case restore && [ "${QUICK:-0}" = 0 ]; then
        mkdir "$SMBD_SHARE/tree"
        cp -a "$TEMPLATE/." "$SMBD_SHARE/tree/"
        chown -R "$SMBD_USER" "$SMBD_SHARE/tree"
fi

# The files changed before the second logoff, the issue's "1% of the home": every 100th of the
# manifest's files (200 of the medium home's 20000) among those no larger than 1% of the home's
# bytes (~10 MB changed). Every 100th of all of them would hold the medium home's 100 MiB mbox,
# 10% of its bytes alone: that set is timed too, as its own logoff (change1big, info rows).
# pick_changed MAX LIST KEY: every 100th manifest file no larger than MAX bytes into LIST, their
# bytes recorded as KEY
pick_changed() {
        record "$3" "$(awk -v max="$1" -v list="$2" '$2 <= max && ++n % 100 == 0 {
                s += $2; $1 = ""; $2 = ""; sub(/^  /, ""); print >list } END { printf "%.0f", s }' "$MANIFEST")"
}
pick_changed "$((EXPECT_BYTES / 100))" "$T/changed.list" info.changed_bytes
pick_changed "$EXPECT_BYTES" "$T/changed-big.list" info.changedbig_bytes

# ---- rtt-independent floors -------------------------------------------------------------------
# Measured with the first round trip time's pgina cases, one before each repetition, so that a
# machine that gets slower or faster during the run moves both sides of a ratio alike.
floor_restore() {
        fresh_dir /home/peer; cold
        timed floor.untar peer_untar || fail "tar -x failed"
        check_tree /home/peer "tar -x"
        fresh_dir /home/peer; cold
        timed floor.unzstd_tar peer_unzstd_tar || fail "zstd -d | tar -x failed"
        check_tree /home/peer "zstd -d | tar -x"
        retire /home/peer
}
floor_upload() {
        cold
        timed floor.tar_zstd peer_tar_zstd || fail "tar | zstd failed"
        record info.peer_archive_bytes "$(stat -c %s "$LOCAL/peer.tar.zst")"
}
REPEAT=${REPEAT:-1}

# ---- per round trip time ------------------------------------------------------------------------
PROXY_PID=
proxy_stop() {
        [ -n "$PROXY_PID" ] || return 0
        kill "$PROXY_PID" 2>/dev/null
        wait "$PROXY_PID" 2>/dev/null
        PROXY_PID=
}
at_exit proxy_stop

IFS=, read -r -a rtt_list <<<"$RTTS"
for rtt in "${rtt_list[@]}"; do
        proxy_stop
        port=$SMBD_PORT
        if [ "$rtt" != 0 ]; then
                port=$(free_port)
                # one-way delay = half the round trip, in microseconds
                "$PROXY" "$port" "$SMBD_PORT" "$(awk -v r="$rtt" 'BEGIN { printf "%d", r * 500 }')" \
                        2>>"$RUN/notes.txt" &
                PROXY_PID=$!
                for ((i = 0; i < 50; i++)); do
                        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                        sleep 0.1
                done
        fi
        write_conf "$port"
        pginactl reload >/dev/null || fail "pginactl reload failed"
        step "rtt $rtt ms (smb port $port)"

        first_rtt=0
        [ "$rtt" = "${rtt_list[0]}" ] && first_rtt=1
        for ((rep = 1; rep <= REPEAT; rep++)); do
                [ "$REPEAT" = 1 ] || step "rtt $rtt ms: repetition $rep of $REPEAT"
                if has_case restore; then
                        [ "$first_rtt" = 0 ] || floor_restore
                        # Case 1: logon restore. The home is gone (a new machine, or
                        # logoff_action=remove).
                        retire "$HOME_DIR"
                        cold
                        mark=$(log_mark)
                        mem_start
                        prof_start "restore.$rtt.$rep"
                        timed "pgina.restore.$rtt" logon ||
                                fail "restore logon failed: $(tail -n 5 "$RUN/pamtester.log")"
                        prof_stop "restore.$rtt.$rep"
                        mem_stop "restore.$rtt"
                        log_since "$mark" | grep -q "$USER_NAME: restored" ||
                                fail "no restore at rtt $rtt: $(log_since "$mark" | tail -n 5)"
                        check_tree "$HOME_DIR" "pgina restore"
                        bad=$(find "$HOME_DIR" ! -uid "$USER_UID" | head -n 3)
                        [ -z "$bad" ] || fail "restored files not owned by $USER_NAME: $bad"
                        prepare_logoff
                else
                        logon || fail "logon failed"
                        prepare_logoff
                fi

                if has_case upload; then
                        [ "$first_rtt" = 0 ] || floor_upload
                        # Case 2: logoff upload of the whole home (archive, upload, verify,
                        # commit). Format 2 uploads what changed: without the record of what
                        # was saved, all of it (a new base).
                        rm -f "$RECORD"
                        cold
                        mark=$(log_mark)
                        mem_start
                        prof_start "upload.$rtt.$rep"
                        timed "pgina.upload.$rtt" logoff || fail "logoff failed"
                        prof_stop "upload.$rtt.$rep"
                        mem_stop "upload.$rtt"
                        log_since "$mark" | grep -q "$USER_NAME: saved" ||
                                fail "no upload at rtt $rtt: $(log_since "$mark" | tail -n 5)"
                else
                        logoff || fail "logoff failed"
                fi
        done
        # The cases below start logged off, as every repetition ends.

        if has_case relogon; then
                # Case 3: logon again on this machine; the share holds the version here.
                for ((rep = 1; rep <= REPEAT; rep++)); do
                        if [ "$rep" -gt 1 ]; then
                                prepare_logoff
                                logoff || fail "logoff between re-logons failed"
                        fi
                        cold
                        mark=$(log_mark)
                        prof_start "relogon.$rtt.$rep"
                        timed "pgina.relogon.$rtt" logon || fail "re-logon failed"
                        prof_stop "relogon.$rtt.$rep"
                        log_since "$mark" | grep -q "no download" ||
                                fail "the re-logon downloaded: $(log_since "$mark" | tail -n 5)"
                done
                # ... then 1% of the files change and the user logs off (--repeat times: one
                # logoff alone is too noisy for its ratios; each repetition logs on first, with
                # no download, and changes the same files again).
                for ((rep = 1; rep <= REPEAT; rep++)); do
                        if [ "$rep" -gt 1 ]; then
                                logon || fail "logon between the 1% logoffs failed"
                        fi
                        change_files "$T/changed.list" || fail "cannot change 1% of the files"
                        prepare_logoff
                        cold
                        prof_start "change1.$rtt.$rep"
                        timed "pgina.change1.$rtt" logoff || fail "second logoff failed"
                        prof_stop "change1.$rtt.$rep"
                done
                # The same re-logon with the page cache as the logoff left it (binaries and
                # libraries cached, as on a machine in use): what the logon itself costs.
                mark=$(log_mark)
                timed "pgina.relogon_warm.$rtt" logon || fail "warm re-logon failed"
                log_since "$mark" | grep -q "no download" ||
                        fail "the warm re-logon downloaded: $(log_since "$mark" | tail -n 5)"
                # ... and the other 200 files, with the home's largest among them
                change_files "$T/changed-big.list" || fail "cannot change the files of changed-big.list"
                prepare_logoff
                cold
                timed "pgina.change1big.$rtt" logoff || fail "logoff after the warm re-logon failed"
        fi

        if has_case delta; then
                # (--repeat times: one run of it is too noisy for its ratios)
                for ((rep = 1; rep <= REPEAT; rep++)); do
                        # Case 7: delta profiles (store format 2). The machine holding this version keeps
                        # its home, pgsmb state and record aside; five logoffs with 1% changed each follow;
                        # then that machine catches up, a new machine restores the chain, and a new
                        # machine restores a fresh base of the same content.
                        logon || fail "logon before the delta case failed"
                        prepare_logoff
                        logoff || fail "logoff before the delta case failed"
                        # The home itself goes aside (a rename: its files keep their inodes and times,
                        # as on a machine nobody touched; a copy would be "changed here since the
                        # logoff" to the catch-up); the five logoffs are another machine's, which
                        # restores the profile first.
                        retire "$RUN/snap"
                        mkdir -p "$RUN/snap"
                        rm -rf --one-file-system /home/.bench-snap-home
                        mv "$HOME_DIR" /home/.bench-snap-home
                        cp -a "$PGSMB_STATE/$USER_NAME".{state,manifest} "$RECORD" "$RUN/snap/"
                        for round in 1 2 3 4 5; do
                                logon || fail "logon $round of the delta case failed"
                                awk -v r="$round" 'NR % 100 == r { $1 = ""; $2 = ""; sub(/^  /, ""); print }' \
                                        "$MANIFEST" >"$T/changed-$round.list"
                                change_files "$T/changed-$round.list" || fail "cannot change 1% of the files"
                                prepare_logoff
                                mark=$(log_mark)
                                logoff || fail "delta logoff $round failed"
                                log_since "$mark" | grep -q "$USER_NAME: saved version .* entries changed" ||
                                        fail "delta logoff $round saved no delta: $(log_since "$mark" | tail -n 5)"
                        done
                        # the machine that held the version before the five
                        retire "$HOME_DIR"
                        mv /home/.bench-snap-home "$HOME_DIR"
                        cp -a "$RUN/snap/$USER_NAME".{state,record,manifest} "$PGSMB_STATE/"
                        cold
                        mark=$(log_mark)
                        timed "pgina.catchup.$rtt" logon || fail "catch-up logon failed"
                        log_since "$mark" | grep -q "$USER_NAME: home brought from version" ||
                                fail "no catch-up at rtt $rtt: $(log_since "$mark" | tail -n 5)"
                        check_tree "$HOME_DIR" "pgina catch-up"
                        tree_sig "$HOME_DIR" >"$T/catchup.sig"
                        prepare_logoff
                        logoff || fail "logoff after the catch-up failed"
                        # a new machine: base + deltas
                        retire "$HOME_DIR"
                        cold
                        mark=$(log_mark)
                        timed "pgina.restore_chain.$rtt" logon || fail "chain restore failed"
                        log_since "$mark" | grep -q "$USER_NAME: restored version .* from [2-9] archive" ||
                                fail "the chain restore read no chain: $(log_since "$mark" | tail -n 5)"
                        check_tree "$HOME_DIR" "pgina chain restore"
                        tree_sig "$HOME_DIR" >"$T/chain.sig"
                        cmp -s "$T/catchup.sig" "$T/chain.sig" || fail "the catch-up and the chain restore differ"
                        # the same content as one fresh base
                        prepare_logoff
                        rm -f "$RECORD"
                        logoff || fail "the fresh base's logoff failed"
                        retire "$HOME_DIR"
                        cold
                        mark=$(log_mark)
                        timed "pgina.restore_fresh.$rtt" logon || fail "fresh base restore failed"
                        log_since "$mark" | grep -q "$USER_NAME: restored version .* from 1 archive" ||
                                fail "the fresh base restore read a chain: $(log_since "$mark" | tail -n 5)"
                        tree_sig "$HOME_DIR" >"$T/fresh.sig"
                        cmp -s "$T/chain.sig" "$T/fresh.sig" || fail "the chain restore and the fresh base differ"
                        prepare_logoff
                        logoff || fail "logoff after the delta case failed"
                done
        fi

        # ---- the peers at this rtt (--quick: not the file-by-file whole-tree copies mget and
        # mput, which take minutes at 10 ms; the archive get/put and the put of the changed
        # files stay, so every ratio against pgina's own delta and upload is still measured)
        if has_case restore; then
                if [ "${QUICK:-0}" = 0 ]; then
                        fresh_dir /home/peer; cold
                        timed "peer.mget.$rtt" peer_mget "$port" || fail "smbclient mget failed"
                        check_tree /home/peer "smbclient mget"
                        retire /home/peer
                fi
                cold
                timed "peer.get.$rtt" peer_get "$port" || fail "smbclient get failed"
        fi
        if has_case upload; then
                if [ "${QUICK:-0}" = 0 ]; then
                        cold
                        timed "peer.mput.$rtt" peer_mput "$port" "mput-$rtt" || fail "smbclient mput failed"
                        check_tree "$SMBD_SHARE/mput-$rtt" "smbclient mput"
                else # the tree mput would have left, for the put of the changed files below
                        mkdir "$SMBD_SHARE/mput-$rtt"
                        cp -a "$TEMPLATE/." "$SMBD_SHARE/mput-$rtt/"
                        chown -R "$SMBD_USER" "$SMBD_SHARE/mput-$rtt"
                fi
                cold
                timed "peer.tarzstd_put.$rtt" peer_tar_zstd_put "$port" "peer-$rtt.tar.zst" ||
                        fail "tar | zstd; put failed"
                if has_case relogon && [ -d "$HOME_DIR" ]; then
                        cold
                        timed "peer.put_changed.$rtt" peer_put_changed "$port" "mput-$rtt" "$T/changed.list" ||
                                fail "smbclient put of the changed files failed"
                        cold
                        timed "peer.put_changedbig.$rtt" peer_put_changed "$port" "mput-$rtt" "$T/changed-big.list" ||
                                fail "smbclient put of the files of changed-big.list failed"
                fi
        fi
        if has_case upload; then rm -rf "$SMBD_SHARE/mput-$rtt" "$SMBD_SHARE/peer-$rtt.tar.zst"; fi
done
proxy_stop

# ---- case 5: authentication --------------------------------------------------------------------
if has_case auth; then
        step "authentication"
        # pgina without pgsmb: what every logon pays before any profile work.
        cat >"$PGINA_CONF" <<CONF
[service]
plugin_dir = $BUILD/plugins
log_level = info
[order]
authentication = localmachine
gateway = localmachine
notification = localmachine
CONF
        pginactl reload >/dev/null || fail "reload for auth failed"
        make_user authu "$USER_PW"
        N=${AUTH_N:-100}
        auth_loop() { # SERVICE
                local i
                for ((i = 0; i < N; i++)); do
                        printf '%s\n' "$USER_PW" | pam_host_exec pamtester "$1" authu authenticate acct_mgmt \
                                >/dev/null 2>&1 || return 1
                done
        }
        timed "auth.pgina" auth_loop pgbench || fail "pam_pgina logons failed"
        timed "auth.unix" auth_loop pgunix || fail "pam_unix logons failed"
        record info.auth_n "$N"
        # 200 different users at once
        C=${AUTH_CONCURRENT:-200}
        for ((i = 0; i < C; i++)); do useradd -M "cu$i" || fail "useradd cu$i"; done
        for ((i = 0; i < C; i++)); do echo "cu$i:$USER_PW"; done | chpasswd -c YESCRYPT
        : >"$T/conc.out"
        pids=()
        for ((i = 0; i < C; i++)); do
                (
                        s=$EPOCHREALTIME
                        printf '%s\n' "$USER_PW" | pam_host_exec pamtester pgbench "cu$i" authenticate acct_mgmt \
                                >"$T/conc-$i.log" 2>&1
                        rc=$?
                        echo "$rc $(awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.3f", e - s }')" >>"$T/conc.out"
                ) &
                pids+=($!)
        done
        wait "${pids[@]}" # only these: pginad and smbd are children of this shell too
        # pginad refuses past its limit of request workers: say how often
        record auth.concurrent_busy "$(grep -l 'pginad is busy' "$T"/conc-*.log 2>/dev/null | wc -l)"
        ok=$(awk '$1 == 0' "$T/conc.out" | wc -l)
        record auth.concurrent_ok "$ok"
        record auth.concurrent_n "$C"
        record auth.concurrent_p50 "$(awk '{ print $2 }' "$T/conc.out" | sort -n | awk '{ a[NR] = $1 } END { print a[int(NR * 0.50 + 0.5)] }')"
        record auth.concurrent_p99 "$(awk '{ print $2 }' "$T/conc.out" | sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; print a[i] }')"
fi
cp "$PGINA_LOG" "$RUN/pginad.log"
step "done"
