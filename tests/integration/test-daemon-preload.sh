#!/bin/bash
# [service] preload_libraries: pginad holds the libraries the configured plugins link against
# (read from their ELF DT_NEEDED, the plugins themselves not loaded into pginad), so a worker
# inherits them; a reload adds those of newly named plugins; false turns it off; a bad value is
# refused naming the file and line. Logons work either way, and an upgraded plugin file is
# what the next worker runs (the plugins are not held by pginad).
. "$(dirname "$0")/lib.sh"

make_user alice 'Alice pw 1'
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
maps() { cat "/proc/$PGINA_PID/maps"; }

step "default: the libraries of localmachine (libcrypt), not the plugin itself"
pgina_conf <<'C'
[order]
authentication = localmachine
C
pgina_start
maps >"$T/maps.1"
assert_contains "$T/maps.1" "libcrypt.so"
grep -q "plugins/localmachine.so" "$T/maps.1" && fail "pginad holds the plugin localmachine.so itself"
grep -q "libsmbclient" "$T/maps.1" && fail "libsmbclient preloaded though no plugin needs it"
assert_contains "$PGINA_LOG" "preloaded 1 libraries"
assert_ok pam_run pgtest alice 'Alice pw 1' authenticate acct_mgmt

step "reload with pgsmb named: its libraries (libsmbclient, libcurl) are added (libarchive is the as-user program's only)"
pgina_conf <<'C'
[order]
authentication = localmachine
gateway = pgsmb
[pgsmb]
share = file:///nonexistent
C
pginactl reload >/dev/null || fail "reload failed: $(tail -n 5 "$PGINA_LOG")"
maps >"$T/maps.2"
assert_contains "$T/maps.2" "libsmbclient.so"
assert_contains "$T/maps.2" "libcurl.so"
grep -q "plugins/pgsmb.so" "$T/maps.2" && fail "pginad holds the plugin pgsmb.so itself"
pgina_stop

step "preload_libraries = false: nothing preloaded, logons still work"
PGINA_SERVICE_EXTRA="preload_libraries = false" pgina_conf <<'C'
[order]
authentication = localmachine
C
pgina_start
maps >"$T/maps.3"
grep -q "libcrypt.so" "$T/maps.3" && fail "libcrypt preloaded with preload_libraries = false"
assert_ok pam_run pgtest alice 'Alice pw 1' authenticate acct_mgmt
pgina_stop

step "a plugin file replaced on disk is what the next worker loads (pginad holds no plugin)"
install -d -m 0755 "$T/plugins"
install -m 0644 "$BUILD/plugins/localmachine.so" "$BUILD/plugins/testplugin.so" "$T/plugins/"
pgina_conf <<C
[order]
authentication = testplugin localmachine
[testplugin]
password = other
C
sed -i "s|^plugin_dir = .*|plugin_dir = $T/plugins|" "$PGINA_CONF"
pgina_start
assert_ok pam_run pgtest alice 'Alice pw 1' authenticate acct_mgmt
# testplugin2 calls itself testplugin2: a worker that loads the new file says so
install -m 0644 "$BUILD/plugins/testplugin2.so" "$T/plugins/testplugin.so.new"
mv "$T/plugins/testplugin.so.new" "$T/plugins/testplugin.so"
pam_run pgtest alice 'Alice pw 1' authenticate acct_mgmt || true
assert_contains "$PGINA_LOG" "calls itself 'testplugin2'"
pgina_stop

step "a bad value: refused by pginactl config check, naming file, line and key"
PGINA_SERVICE_EXTRA="preload_libraries = maybe" pgina_conf <<'C'
[order]
authentication = localmachine
C
line=$(grep -n "preload_libraries" "$PGINA_CONF" | cut -d: -f1)
rc=0
pginactl config check >"$T/check.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "pginactl config check accepted preload_libraries = maybe"
assert_contains "$T/check.out" "$PGINA_CONF:$line:"
assert_contains "$T/check.out" "preload_libraries must be true or false"
exit 0
