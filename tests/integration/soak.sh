# tests/integration/soak.sh — logon/logoff cycles for the soak test (test-soak-cycles.sh) and
# bench/soak, sourced after lib.sh (inside the sandbox: it creates users and starts pginad).
# pginad runs testplugin (authentication), pgsmb + localmachine (gateway, notification) with a
# file:// store in $T/store and logoff_action = remove, so every logon creates the account and
# restores the home from the store, and every logoff saves it and removes account and home.
#   soak_start USER...     write skel, PAM service, pgina.conf; start pginad
#   soak_cycles N          N cycles in all, shared among the users, who run in parallel
#                          (pamtester authenticate open_session close_session, then pginactl
#                          wait USER); fails the test when a cycle fails
#   soak_sample NAME       pginad's descriptors ($T/soak-NAME.fds: "fd -> target" lines), VmRSS
#                          and RssAnon; sets SOAK_FDS, SOAK_RSS_KIB, SOAK_ANON_KIB
#   soak_sampler_start/stop  VmRSS, descriptors and RssAnon every 0.5 s in the background;
#                          stop sets SOAK_PEAK_KIB, SOAK_PEAK_FDS and SOAK_PEAK_ANON_KIB
#   soak_leftovers         fails unless no worker, no user process, no home is left over
#   soak_check_store       every archive readable, each user's last one holding its last cycle
#   soak_pam_sockets N     N sessions opened and closed, pamtester holding no socket after any
# Each open_session also runs /etc/pgina/soak-session.sh (pam_exec, after pam_pgina): as the user
# it reads the counter the restored home holds, writes counter + 1 and a fresh token, and logs
# "USER N TOKEN" to $SOAK_LOG. A restore that lost the last save shows as a counter that does not
# go 1, 2, 3, ... for that user. At open_session and close_session it also logs how many sockets
# pamtester (the PAM host, its parent) holds after pam_pgina's call to $SOAK_HOST_LOG: none.
# shellcheck shell=bash
# SOAK_* figures are set here for the script that sources this file:
# shellcheck disable=SC2034

SOAK_USERS=()
SOAK_STORE=$T/store
SOAK_LOG=$T/soak-sessions.log
SOAK_HOST_LOG=$T/soak-pam-sockets.log
SOAK_PW=soak-secret
SOAK_SAMPLER=
SOAK_FDS=
SOAK_RSS_KIB=
SOAK_PEAK_KIB=
SOAK_PEAK_FDS=
SOAK_ANON_KIB=
SOAK_PEAK_ANON_KIB=

# A small home: a few files from /etc/skel (the sandbox's /etc is an overlay); the session
# script adds two more.
_soak_skel() {
        mkdir -p /etc/skel/docs /etc/skel/.config/app
        head -c 4096 /dev/urandom | base64 >/etc/skel/docs/notes.txt
        head -c 65536 /dev/urandom >/etc/skel/docs/blob.bin
        printf 'key=value\n' >/etc/skel/.config/app/settings.ini
        ln -sf docs/notes.txt /etc/skel/notes-link
}

_soak_session_script() {
        cat >/etc/pgina/soak-session.sh <<SH
#!/bin/sh
# pam_exec (after pam_pgina): at open_session, count this logon in the restored home, as the user.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
# pamtester's sockets after pam_pgina's call: one request per PAM call, none kept open
echo "\$PAM_TYPE \$PAM_USER \$(ls -l /proc/\$PPID/fd | grep -c socket:)" >>"$SOAK_HOST_LOG"
[ "\$PAM_TYPE" = open_session ] || exit 0
line=\$(setpriv --reuid="\$PAM_USER" --regid="\$(id -g "\$PAM_USER")" --init-groups -- sh -c '
        cd "/home/\$1" || exit 1
        n=\$(cat cycles 2>/dev/null || echo 0)
        n=\$((n + 1))
        tok=\$(od -An -N8 -tx8 /dev/urandom | tr -d " ")
        echo "\$n" >cycles.new && mv cycles.new cycles || exit 1
        echo "\$tok" >last-token || exit 1
        echo "\$n \$tok"' soak "\$PAM_USER") || exit 1
echo "\$PAM_USER \$line" >>"$SOAK_LOG"
SH
        chmod 0755 /etc/pgina/soak-session.sh
}

soak_start() {
        SOAK_USERS=("$@")
        mkdir -p "$SOAK_STORE" /etc/pgina
        : >"$SOAK_LOG"
        : >"$SOAK_HOST_LOG"
        _soak_skel
        _soak_session_script
        pam_service pgsoak <<'PAM'
auth     required pam_pgina.so timeout=60
account  required pam_pgina.so
session  required pam_pgina.so
session  required pam_exec.so /etc/pgina/soak-session.sh
PAM
        # log_level info: at debug, 1,000 cycles log ~100 MB
        PGINA_SERVICE_EXTRA="request_timeout = 60
log_level = info" pgsmb_conf "$SOAK_PW" <<CONF
share = file://$SOAK_STORE
store_format = 1
retries = 1
retry_delay = 0
logoff_process_wait = 2
keep_versions = 2
[localmachine]
logoff_action = remove
CONF
        pgina_start
}

# One user's cycles: $1 user, $2 count. The first failure ends the loop; its reason lands in
# $T/soak-USER.fail.
_soak_user_loop() {
        local user=$1 n=$2 i out=$T/soak-$1.pam
        for ((i = 0; i < n; i++)); do
                if ! printf '%s\n' "$SOAK_PW" | pam_host_exec pamtester pgsoak "$user" \
                        authenticate open_session close_session >"$out" 2>&1; then
                        echo "cycle $i: pamtester failed: $(tail -n 3 "$out" | tr '\n' ' ')" >"$T/soak-$user.fail"
                        return 1
                fi
                if ! pginactl -t 60 wait "$user" >"$out" 2>&1; then
                        echo "cycle $i: pginactl wait $user: $(cat "$out")" >"$T/soak-$user.fail"
                        return 1
                fi
        done
}

# soak_cycles N: N cycles in all; the first N % users users run one more than the others.
soak_cycles() {
        local n=$1 k=${#SOAK_USERS[@]} i pids=() bad=
        for ((i = 0; i < k; i++)); do
                _soak_user_loop "${SOAK_USERS[i]}" "$((n / k + (i < n % k)))" &
                pids+=($!)
        done
        for pid in "${pids[@]}"; do
                wait "$pid" || bad=1
        done
        if [ -n "$bad" ]; then
                cat "$T"/soak-*.fail >&2
                tail -n 30 "$PGINA_LOG" >&2
                fail "a logon/logoff cycle failed"
        fi
}

# soak_sample NAME: pginad's open descriptors (readlink of each) and its VmRSS, at a quiet moment.
soak_sample() {
        local fd
        for fd in /proc/"$PGINA_PID"/fd/*; do
                printf '%s -> %s\n' "${fd##*/}" "$(readlink "$fd")"
        done | sort -n >"$T/soak-$1.fds"
        SOAK_FDS=$(wc -l <"$T/soak-$1.fds")
        SOAK_RSS_KIB=$(awk '/^VmRSS:/ { print $2 }' /proc/"$PGINA_PID"/status)
        SOAK_ANON_KIB=$(awk '/^RssAnon:/ { print $2 }' /proc/"$PGINA_PID"/status)
        if [ -z "$SOAK_RSS_KIB" ] || [ -z "$SOAK_ANON_KIB" ]; then
                fail "cannot read pginad's VmRSS and RssAnon"
        fi
}

soak_sampler_start() {
        local pid=$PGINA_PID
        local fds
        : >"$T/soak.samples"
        while kill -0 "$pid" 2>/dev/null; do
                fds=(/proc/"$pid"/fd/*)
                awk -v f="${#fds[@]}" '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 }
                        END { if (r) print r, f, a }' /proc/"$pid"/status >>"$T/soak.samples" 2>/dev/null
                sleep 0.5
        done &
        SOAK_SAMPLER=$!
        at_exit soak_sampler_stop
}

soak_sampler_stop() {
        [ -n "$SOAK_SAMPLER" ] || return 0
        kill "$SOAK_SAMPLER" 2>/dev/null
        wait "$SOAK_SAMPLER" 2>/dev/null
        SOAK_SAMPLER=
        SOAK_PEAK_KIB=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$T/soak.samples")
        SOAK_PEAK_FDS=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$T/soak.samples")
        SOAK_PEAK_ANON_KIB=$(awk '$3 > m { m = $3 } END { print m + 0 }' "$T/soak.samples")
}

# soak_leftovers: after the last logoff job, pginad has no child (a worker ends with its
# request; give the last one 5 s to be reaped), no process runs as anyone but root, /home is
# empty and the only temporary files are none.
soak_leftovers() {
        local i kids procs
        for ((i = 0; i < 50; i++)); do
                kids=$(pgrep -P "$PGINA_PID")
                [ -z "$kids" ] && break
                sleep 0.1
        done
        [ -z "$kids" ] || fail "pginad's children left over: $(ps -o pid=,args= -p "$(echo "$kids" | paste -sd,)")"
        procs=$(ps -eo uid=,pid=,args= | awk '$1 != 0')
        [ -z "$procs" ] || fail "processes of users left over: $procs"
        [ -z "$(ls -A /home)" ] || fail "left in /home after the last logoff: $(ls -A /home)"
        i=$(find "$SOAK_STORE" -name '*.tmp-*' | head -n 3)
        [ -z "$i" ] || fail "temporary files left in the store: $i"
}

# soak_pam_sockets N: the session script saw N open_session and N close_session calls, after none
# of which pamtester held a socket (pam_pgina closes its connection to pginad at every call).
soak_pam_sockets() {
        local bad
        assert_eq "$1" "$(grep -c '^open_session ' "$SOAK_HOST_LOG")" "open_session calls seen by the session script"
        assert_eq "$1" "$(grep -c '^close_session ' "$SOAK_HOST_LOG")" "close_session calls seen by the session script"
        bad=$(awk '$3 != 0' "$SOAK_HOST_LOG" | head -n 3)
        [ -z "$bad" ] || fail "pamtester held sockets after pam_pgina's call: $bad"
}

# soak_files: the number of files in pginad's state dir and the store (bounded: keep_versions).
soak_files() { find /var/lib/pgina /run/pgina "$SOAK_STORE" -xdev | wc -l; }

# soak_check_store: every archive in the store reads to its end; the meta's sha256 is the
# current archive's; each user's counter went 1, 2, ... N without a gap, and the current archive
# holds N and the token of the last cycle.
soak_check_store() {
        local user a last n tok want
        while IFS= read -r a; do
                tar --warning=no-unknown-keyword --zstd -tf "$a" >/dev/null 2>&1 ||
                        fail "archive $a does not read to its end"
        done < <(find "$SOAK_STORE" -type f -name '*.tar.zst*' ! -name '*.meta')
        for user in "${SOAK_USERS[@]}"; do
                a=$SOAK_STORE/$user/$user.tar.zst
                [ -s "$a" ] || fail "no archive of $user in the store"
                want=$(sed -n 's/^sha256=//p' "$a.meta")
                [ "$(sha256sum <"$a" | cut -d' ' -f1)" = "$want" ] || fail "$a does not match its .meta"
                awk -v u="$user" '$1 == u { if ($2 != ++n) { print "cycle " n ": counter " $2; exit 1 } }' \
                        "$SOAK_LOG" >"$T/soak-seq.out" ||
                        fail "$user's counter skipped (a restore lost a save): $(cat "$T/soak-seq.out")"
                last=$(awk -v u="$user" '$1 == u { l = $2 " " $3 } END { print l }' "$SOAK_LOG")
                [ -n "$last" ] || fail "no cycle of $user logged"
                n=$(archived "$a" cycles)
                tok=$(archived "$a" last-token)
                assert_eq "$last" "$n $tok" "$user's last cycle (counter, token) in the store"
        done
}
