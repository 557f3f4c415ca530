#!/bin/bash
# pginactl status, plugins and sessions show what pginad has: the daemon's version, pid, config
# and socket; each plugin with stages, ABI, path, health and options; each session's users.
. "$(dirname "$0")/lib.sh"

run() { # run NAME CMD...: output in $T/NAME.out, must succeed
        local name=$1 rc=0
        shift
        "$@" >"$T/$name.out" 2>"$T/$name.err.log" || rc=$?
        [ "$rc" = 0 ] || {
                cat "$T/$name.out" "$T/$name.err.log" >&2
                fail "$* exited $rc"
        }
}

make_user alice 'Alice pw 1'
make_user bob 'Bob pw 2'
pgina_conf <<'C'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
C
pgina_start

step "status: daemon line, config, socket, plugins with health, no jobs"
run status pginactl status
has_line "$T/status.out" "^pginad [0-9]+\.[0-9]+\.[0-9]+, pid $PGINA_PID, up "
assert_contains "$T/status.out" "Config:   /etc/pgina/pgina.conf"
assert_contains "$T/status.out" "Socket:   /run/pgina/pginad.sock"
has_line "$T/status.out" '^ *Sessions: 0$'
has_line "$T/status.out" '^PLUGIN +STAGES +HEALTH'
has_line "$T/status.out" '^localmachine +[a-z_,]*authentication[a-z_,]* +ok$'
assert_contains "$T/status.out" "No pending jobs."

step "plugins: name, version, stages, ABI, health, order, path"
run plugins pginactl plugins
has_line "$T/plugins.out" '^NAME +VERSION +ABI +STAGES +ORDER +PATH +HEALTH$'
ABI=$(sed -n 's/^#define PGINA_PLUGIN_ABI_VERSION \([0-9]*\)u$/\1/p' "$SRC/include/pgina/plugin.h")
has_line "$T/plugins.out" "^localmachine +[^ ]+ +$ABI +[a-z_,]*authentication[a-z_,]* +authentication:1 authorization:1 gateway:1 +$BUILD/plugins/localmachine.so +ok$"

step "plugins -v: options with type, default and help"
run plugins-v pginactl plugins -v
has_line "$T/plugins-v.out" '^localmachine'
has_line "$T/plugins-v.out" "^  path +$BUILD/plugins/localmachine.so"
has_line "$T/plugins-v.out" '^    always_authenticate \(bool[a-z]*, default false\)'
has_line "$T/plugins-v.out" '^    admin_group \(string, default sudo\)'
has_line "$T/plugins-v.out" '^    logoff_action \(string, default none\)'

step "sessions: none, then the session pam_pgina opened"
run sessions pginactl sessions
assert_contains "$T/sessions.out" "No sessions."
pam_service pgina-test <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
session  required pam_pgina.so
P
assert_ok pam_run pgina-test alice 'Alice pw 1' authenticate acct_mgmt open_session
run sessions pginactl sessions
has_line "$T/sessions.out" '^SESSION +INDEX +USER +UID +SERVICE +TTY +RHOST +OPENED +SCENARIO +LOGIND$'
uid=$(id -u alice)
has_line "$T/sessions.out" "^[^ ]+ +0 +alice +$uid +pgina-test +.* [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +logon +-$" # no logind in the sandbox
run status pginactl status
has_line "$T/status.out" '^ *Sessions: 1$'

step "a pending logoff job is listed with its user and state"
pgina_stop
pgina_conf <<'C'
[order]
authentication = localmachine
notification = testplugin

[testplugin]
notify_sleep_ms = 4000
C
pgina_start
# bob's only session: closing it is his logoff (alice still has the session opened above)
assert_ok pam_run pgina-test bob 'Bob pw 2' authenticate open_session close_session
run status pginactl status
has_line "$T/status.out" '^ *Pending logoff jobs: 1$'
assert_contains "$T/status.out" "Pending jobs:"
has_line "$T/status.out" '^USER +STATE +SINCE +NEXT TRY +LAST ERROR$'
has_line "$T/status.out" '^bob +(queued|running) +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]+ +- +-$'

step "a plugin that crashed is shown as failed, with the reason"
pgina_stop
pgina_conf <<'C'
[order]
authentication = testplugin localmachine

[testplugin]
authenticate = crash
C
pgina_start
rc=0
echo 'Alice pw 1' | pginactl simulate alice >"$T/sim.out" 2>"$T/sim.err.log" || rc=$?
assert_eq 3 "$rc" "simulate with a crashing plugin"
assert_contains "$T/sim.err.log" "testplugin"
run status pginactl status
has_line "$T/status.out" '^testplugin +[a-z_,]+ +failed: .*crash'
has_line "$T/status.out" '^localmachine +[a-z_,]+ +ok$'
run plugins pginactl plugins
has_line "$T/plugins.out" '^testplugin .* failed: .*crash'

step "options before or after the command, --help per command"
run status2 pginactl status --socket /run/pgina/pginad.sock
run status3 pginactl --timeout 5 status
run help pginactl status --help
assert_contains "$T/help.out" "Usage: pginactl [OPTIONS] status"
run help2 pginactl help simulate
assert_contains "$T/help2.out" "--gateway"
run help3 pginactl --help
assert_contains "$T/help3.out" "Exit status:"
run version pginactl --version
has_line "$T/version.out" '^pginactl [0-9]+\.[0-9]+'
rc=0
pginactl frobnicate 2>"$T/err" || rc=$?
assert_eq 2 "$rc" "unknown command"
exit 0
