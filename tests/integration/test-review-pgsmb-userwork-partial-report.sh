#!/bin/bash
# pgsmb-userwork runs as the user after an exec, so it is dumpable: alice (logged on elsewhere,
# where ptrace is allowed between her processes) can take it over. For the login script the
# worker gives the program login_script_timeout + 10 s; but once the report socket is readable
# it read the rest of the report with no limit, so a program that wrote one byte of its report
# and stopped held root's worker forever. Here a hostile program (root's, in a copy of the
# plugin directory) does exactly that for the script's job: the worker must give up at its
# deadline, kill it and log the script as not run.
. "$(dirname "$0")/lib.sh"
[ -e "$BUILD/plugins/pgsmb.so" ] || skip "pgsmb plugin not built"
need pamtester

STORE=$T/store
PLUGINS=$T/plugins
mkdir -p "$STORE" "$PLUGINS" /etc/pgina/scripts
chmod 0755 "$T" "$PLUGINS"
cp "$BUILD"/plugins/pgsmb.so "$BUILD"/plugins/localmachine.so "$BUILD"/plugins/testplugin.so "$PLUGINS"/
cat >"$PLUGINS/pgsmb-userwork" <<PY
#!/usr/bin/python3
import os, time
try:
    target = os.readlink("/proc/self/fd/5")
except OSError:
    target = ""
if target.startswith("pipe:"):
    os.write(2, b"hostile-userwork: one byte of the report, then nothing\n")
    os.write(3, b"\\0")
    time.sleep(3600)
os.execv("$BUILD/plugins/pgsmb-userwork", ["pgsmb-userwork"])
PY
chmod 0755 "$PLUGINS/pgsmb-userwork"
cat >/etc/pgina/scripts/login.sh <<'SH'
#!/bin/sh
echo hello
SH
chmod 0755 /etc/pgina/scripts/login.sh

pgsmb_pam_service
pgsmb_conf secret <<CONF
share = file://$STORE
retries = 1
login_script = /etc/pgina/scripts/login.sh
login_script_timeout = 1
CONF
sed -i "s|^plugin_dir = .*|plugin_dir = $PLUGINS|" "$PGINA_CONF"
pgina_start

step "the program stops after one byte of its report: the worker gives up at its deadline"
assert_ok pam_run pgtest alice secret authenticate acct_mgmt open_session
pgina_wait_log "hostile-userwork: one byte of the report" 100
# the limit is 1 s + 10 s for the program; 30 s is generous
pgina_wait_log "alice: login script /etc/pgina/scripts/login.sh not run" 300
pgrep -u alice -f "$PLUGINS/pgsmb-userwork" >/dev/null && fail "the hostile program was left running"
exit 0
