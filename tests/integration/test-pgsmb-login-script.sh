#!/bin/bash
# pgSMB's login script (notification LOGON, in the background):
#   - a local script runs as the user, HOME and cwd = the home, a minimal environment with
#     PGINA_HOME_SHARE/PGINA_HOME_MOUNT (also exported into the PAM session by the gateway) and
#     nothing of pginad's, stdin /dev/null; stdout and stderr logged line by line;
#   - a script still running after login_script_timeout is killed with what it started;
#   - a script others may write is refused;
#   - a script on the share (a path relative to it) is downloaded into a private 0700 file owned
#     by the user, run, and deleted.
. "$(dirname "$0")/lib.sh"
need pamtester
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"

STORE=$T/store
mkdir -p "$STORE/scripts" /etc/pgina/scripts

cat >/etc/pgina/scripts/login.sh <<'SH'
#!/bin/sh
echo "uid=$(id -u) home=$HOME pwd=$(pwd) share=$PGINA_HOME_SHARE mount=$PGINA_HOME_MOUNT path=$PATH" >"$HOME/login-ran"
env | sort >"$HOME/login-env"
read -r line && echo "stdin was not empty: $line"
echo "hello from the login script"
echo "to stderr" >&2
printf 'no newline at the end'
SH
cat >/etc/pgina/scripts/slow.sh <<'SH'
#!/bin/sh
sleep 60 &
echo $! >"$HOME/bg.pid"
echo "slow script started"
sleep 60
echo "slow script was not killed"
SH
cat >/etc/pgina/scripts/open.sh <<'SH'
#!/bin/sh
touch "$HOME/open-ran"
SH
cat >"$STORE/scripts/share-login.sh" <<'SH'
#!/bin/sh
echo "uid=$(id -u) mode=$(stat -c '%a %U' "$0") path=$0" >"$HOME/share-ran"
echo "hello from the share"
SH
chmod 0755 /etc/pgina/scripts/login.sh /etc/pgina/scripts/slow.sh
chmod 0777 /etc/pgina/scripts/open.sh
chmod 0644 "$STORE/scripts/share-login.sh" # not executable on the share: the copy is

cat >/etc/pgina/dump-env.sh <<SH
#!/bin/sh
env >"$T/session-env.\$PAM_USER"
SH
chmod 0755 /etc/pgina/dump-env.sh
pgsmb_pam_service
echo "session  optional pam_exec.so /etc/pgina/dump-env.sh" >>/etc/pam.d/pgtest
# $1: login_script, $2: login_script_timeout
write_conf() {
        pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
home_share = smb://fileserver/homes/%u
home_mount = /mnt/home-%u
login_script = $1
login_script_timeout = $2
CONF
}

step "a local script runs as the user, in the home, with a minimal environment; output logged"
write_conf /etc/pgina/scripts/login.sh 20
PGINA_LEAK_CANARY=1 pgina_start
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "alice: login script /etc/pgina/scripts/login.sh exited with status 0"
uid=$(id -u alice)
assert_eq "uid=$uid home=/home/alice pwd=/home/alice share=smb://fileserver/homes/alice mount=/mnt/home-alice path=/usr/local/bin:/usr/bin:/bin" \
        "$(cat /home/alice/login-ran)" "what the login script saw"
[ "$(stat -c %u /home/alice/login-ran)" = "$uid" ] || fail "login-ran not written by alice"
assert_not_contains /home/alice/login-env "PGINA_LEAK_CANARY"
assert_eq "HOME LOGNAME PATH PGINA_HOME_MOUNT PGINA_HOME_SHARE PWD USER" \
        "$(cut -d= -f1 /home/alice/login-env | grep -v '^SHLVL$\|^_$' | tr '\n' ' ' | sed 's/ $//')" "environment of the script"
assert_contains "$PGINA_LOG" "pgsmb: alice: login script: hello from the login script"
assert_contains "$PGINA_LOG" "pgsmb: alice: login script: to stderr"
assert_contains "$PGINA_LOG" "pgsmb: alice: login script: no newline at the end"
assert_not_contains "$PGINA_LOG" "stdin was not empty"
assert_contains "$T/session-env.alice" "PGINA_HOME_SHARE=smb://fileserver/homes/alice"
assert_contains "$T/session-env.alice" "PGINA_HOME_MOUNT=/mnt/home-alice"
pgina_stop

step "a script past login_script_timeout is killed, with what it started"
write_conf /etc/pgina/scripts/slow.sh 2
pgina_start
assert_ok pam_run pgtest bob secret authenticate acct_mgmt open_session
pgina_wait_log "bob: login script /etc/pgina/scripts/slow.sh killed after 2 s (login_script_timeout)" 100
assert_contains "$PGINA_LOG" "bob: login script: slow script started"
assert_not_contains "$PGINA_LOG" "slow script was not killed"
bg=$(cat /home/bob/bg.pid)
sleep 0.2
kill -0 "$bg" 2>/dev/null && fail "the script's background process $bg survived the timeout"
pgina_stop

step "a script others may write is refused"
write_conf /etc/pgina/scripts/open.sh 20
pgina_start
assert_ok pam_run pgtest carol secret authenticate acct_mgmt open_session
pgina_wait_log "carol: login script /etc/pgina/scripts/open.sh must be owned by root or the user and writable by no one else: not run"
[ -e /home/carol/open-ran ] && fail "a world-writable login script ran"
pgina_stop

step "a script on the share runs from a private copy that is deleted afterwards"
write_conf scripts/share-login.sh 20
pgina_start
assert_ok pam_run pgtest dave secret authenticate acct_mgmt open_session
pgina_wait_log "dave: login script scripts/share-login.sh exited with status 0"
assert_contains /home/dave/share-ran "uid=$(id -u dave) mode=700 dave path=/home/dave/.pgina-login-script."
assert_contains "$PGINA_LOG" "dave: login script: hello from the share"
left=$(find /home/dave -maxdepth 1 -name '.pgina-login-script*')
[ -z "$left" ] || fail "the copy of the share's script was left behind: $left"
pgina_stop
