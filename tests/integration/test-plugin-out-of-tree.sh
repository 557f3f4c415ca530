#!/bin/bash
# A plugin can be built out of tree: `meson install` into a DESTDIR, then tests/oot-plugin/oot.c
# compiled with nothing of the source tree, only the installed headers and libpgina-plugin that
# pkg-config pgina-plugin names; pginad loads it, and its authenticate (the tool runner and the
# account lookup of the library) and authorize (request data from authenticate) run in one
# request, whose end runs the data's cleanup once; a figure it reports (pgina_ctx_metric) is
# counted in pginactl metrics.
. "$(dirname "$0")/lib.sh"
need pkg-config cc meson

DEST=$T/destdir
step "meson install into a DESTDIR"
meson install -C "$BUILD" --destdir "$DEST" --no-rebuild --quiet >"$T/install.log" 2>&1 ||
        fail "meson install failed: $(tail -n 5 "$T/install.log")"
pc=$(find "$DEST" -name pgina-plugin.pc | head -n 1)
[ -n "$pc" ] || fail "no pgina-plugin.pc installed"
for h in plugin.h util.h account.h run.h spawn.h secret.h buf.h; do
        [ -e "$DEST/usr/include/pgina/$h" ] || fail "include/pgina/$h not installed"
done

step "build the plugin with the installed headers and pkg-config only"
export PKG_CONFIG_SYSROOT_DIR=$DEST PKG_CONFIG_LIBDIR=$(dirname "$pc") PKG_CONFIG_PATH=
flags=$(pkg-config --cflags --libs pgina-plugin) || fail "pkg-config pgina-plugin failed"
echo "pkg-config: $flags"
case " $flags " in *" -I$DEST/usr/include "*) ;; *) fail "pkg-config's -I is not in the DESTDIR: $flags" ;; esac
mkdir -p "$T/oot-plugins"
chmod 0755 "$T/oot-plugins"
cp "$SRC/tests/oot-plugin/oot.c" "$T/oot.c" # away from the source tree's include/
# shellcheck disable=SC2086 # $flags is a list of words
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
        -o "$T/oot-plugins/oot.so" "$T/oot.c" $flags >"$T/cc.log" 2>&1 ||
        fail "the out-of-tree plugin does not build: $(head -n 20 "$T/cc.log")"
chmod 0644 "$T/oot-plugins/oot.so"
undefined=$(nm -D --undefined-only "$T/oot-plugins/oot.so" | awk '$2 !~ /@/ && $2 !~ /^_/ { print $2 }' |
        grep -v '^pgina_' || true)
[ -z "$undefined" ] || fail "the plugin needs symbols neither libc nor pginad gives: $undefined"

step "pginad loads it and runs it"
pgina_conf <<C
[order]
authentication = oot
authorization = oot

[oot]
password = oot-pw
log_file = $T/oot.log
C
sed -i "s|^plugin_dir = .*|plugin_dir = $T/oot-plugins|" "$PGINA_CONF"
pginactl config check >"$T/check.out" 2>&1 || fail "config check: $(cat "$T/check.out")"
pgina_start
pam_service pgtest <<'P'
auth     required pam_pgina.so
account  required pam_pgina.so
P
assert_ok pam_run pgtest ootuser 'oot-pw' authenticate
assert_contains "$T/oot.log" "authenticate user=ootuser run=0 status=0 root=1 uid=0"
assert_contains "$T/oot.log" "authorize user=ootuser ootuser"
assert_eq 1 "$(grep -c '^cleanup user=ootuser' "$T/oot.log")" "cleanups of the request data"
assert_fail pam_run pgtest ootuser 'wrong' authenticate
has_line "$PGINA_LOG" 'out-of-tree plugin authenticated ootuser' || fail "no log line of the plugin"
pginactl metrics >"$T/metrics.out" || fail "pginactl metrics failed"
has_line "$T/metrics.out" '^pgina_plugin_events_total\{plugin="oot",event="oot_checks"\} 1$'
echo OK
