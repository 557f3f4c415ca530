#!/bin/bash
# pginactl config check: runs without the daemon; 0 and "FILE: OK" for a good file, 1 and one
# "FILE:LINE: ..." line per problem on stderr for a bad one; the default file is pgina.conf.
. "$(dirname "$0")/lib.sh"

check() { # check FILE: run config check, outputs in $T/check.out / $T/check.err.log, returns its exit
        local rc=0
        pginactl config check "$@" >"$T/check.out" 2>"$T/check.err.log" || rc=$?
        return "$rc"
}
expect_exit() { # expect_exit CODE CMD...
        local want=$1 rc=0
        shift
        "$@" || rc=$?
        assert_eq "$want" "$rc" "exit status of $*"
}

step "good config: exit 0, FILE: OK"
pgina_conf <<'C'
[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine
change_password = localmachine

[localmachine]
always_authenticate = false
authz_require_admin = no
admin_group = sudo
logoff_action = none
C
expect_exit 0 check
assert_contains "$T/check.out" "/etc/pgina/pgina.conf: OK"
expect_exit 0 check "$PGINA_CONF"
assert_contains "$T/check.out" "$PGINA_CONF: OK"

step "no daemon is needed"
[ ! -S /run/pgina/pginad.sock ] || fail "a pginad socket exists in a fresh sandbox"

step "core syntax and values: FILE:LINE for each error, exit 1"
cat >"$T/bad-core.conf" <<C
[service]
plugin_dir = $BUILD/plugins
request_timeout = soon
colour = blue
[order]
authentication = localmachine
frobnicate = localmachine
C
expect_exit 1 check "$T/bad-core.conf"
assert_contains "$T/check.err.log" "$T/bad-core.conf:3:"
assert_contains "$T/check.err.log" "request_timeout"
assert_contains "$T/check.err.log" "$T/bad-core.conf:4:"
assert_contains "$T/check.err.log" "colour"
assert_contains "$T/check.err.log" "$T/bad-core.conf:7:"
assert_contains "$T/check.err.log" "frobnicate"
assert_not_contains "$T/check.out" "OK"

step "syntax error line"
printf '[service\nplugin_dir = %s\n' "$BUILD/plugins" >"$T/syntax.conf"
expect_exit 1 check "$T/syntax.conf"
assert_contains "$T/check.err.log" "$T/syntax.conf:1:"

step "unknown plugin option: FILE:LINE naming the key"
cat >"$T/bad-option.conf" <<C
[service]
plugin_dir = $BUILD/plugins
[order]
authentication = localmachine

[localmachine]
always_authenticate = true
no_such_option = 1
C
expect_exit 1 check "$T/bad-option.conf"
assert_contains "$T/check.err.log" "$T/bad-option.conf:8:"
assert_contains "$T/check.err.log" "no_such_option"

step "option of the wrong type: FILE:LINE"
cat >"$T/bad-type.conf" <<C
[service]
plugin_dir = $BUILD/plugins
[order]
authentication = localmachine
[localmachine]
authz_apply_to_all = perhaps
C
expect_exit 1 check "$T/bad-type.conf"
assert_contains "$T/check.err.log" "$T/bad-type.conf:6:"
assert_contains "$T/check.err.log" "authz_apply_to_all"

step "a plugin that does not exist is named with its file"
cat >"$T/missing.conf" <<C
[service]
plugin_dir = $BUILD/plugins
[order]
authentication = nosuchplugin
C
expect_exit 1 check "$T/missing.conf"
assert_contains "$T/check.err.log" "nosuchplugin"
assert_contains "$T/check.err.log" "$BUILD/plugins/nosuchplugin.so"

step "a missing file: exit 1, the path named"
expect_exit 1 check "$T/does-not-exist.conf"
assert_contains "$T/check.err.log" "$T/does-not-exist.conf"

step "the shipped example is valid, also with every key uncommented"
sed "s|^#plugin_dir = .*|plugin_dir = $BUILD/plugins|" "$SRC/packaging/pgina.conf.example" \
        >"$T/example.conf"
expect_exit 0 check "$T/example.conf"
sed 's/^#\([a-z_]* = \)/\1/' "$T/example.conf" >"$T/example-all.conf"
[ "$(grep -c '^[a-z_]* = ' "$T/example-all.conf")" -ge 18 ] || fail "example: keys missing"
expect_exit 0 check "$T/example-all.conf"

# Issue 12.7: traps in the configuration.
step "localmachine before pgsmb at logoff with logoff_action = remove: refused with FILE:LINE, by pginad too"
cat >"$T/order.conf" <<C
[service]
plugin_dir = $BUILD/plugins
[order]
authentication = localmachine
gateway = pgsmb localmachine
notification = localmachine pgsmb
[localmachine]
logoff_action = remove
[pgsmb]
share = file://$T/store
C
expect_exit 1 check "$T/order.conf"
assert_contains "$T/check.err.log" "$T/order.conf:6: [order] notification runs localmachine before pgsmb while [localmachine] logoff_action = remove (line 8)"
sed 's/^notification = .*/notification = localmachine/' "$T/order.conf" >"$T/order-nosmb.conf"
expect_exit 1 check "$T/order-nosmb.conf"
assert_contains "$T/check.err.log" "$T/order-nosmb.conf:6: [order] notification runs localmachine without pgsmb"
sed 's/^notification = .*/notification = pgsmb localmachine/' "$T/order.conf" >"$T/order-good.conf"
expect_exit 0 check "$T/order-good.conf"
sed 's/^logoff_action = .*/logoff_action = scramble/' "$T/order.conf" >"$T/order-scramble.conf"
expect_exit 0 check "$T/order-scramble.conf"
cp "$T/order.conf" "$PGINA_CONF"
rc=0
timeout 20 "$BUILD/pginad" -f >"$T/pginad-order.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "pginad started with the localmachine-before-pgsmb order"
assert_contains "$T/pginad-order.log" "notification runs localmachine before pgsmb"

step "restore_readers out of range: refused, the key and the range named"
sed "s|^share = .*|&\nrestore_readers = 9|" "$T/order-good.conf" >"$T/readers.conf"
expect_exit 1 check "$T/readers.conf"
assert_contains "$T/check.err.log" "restore_readers must be 0 to 4, not 9"
sed "s|^share = .*|&\nrestore_readers = 0|" "$T/order-good.conf" >"$T/readers0.conf"
expect_exit 0 check "$T/readers0.conf"

step "extract_to must lie under root-owned parents no one else may write"
mkdir -p "$T/homes-open" && chmod 0777 "$T/homes-open"
sed "s|^share = .*|&\nextract_to = $T/homes-open/%u|" "$T/order-good.conf" >"$T/extract.conf"
expect_exit 1 check "$T/extract.conf"
assert_contains "$T/check.err.log" "extract_to: the home's parent directories must be root's and writable by no one else, but $T/homes-open is uid 0, mode 0777"
chmod 0755 "$T/homes-open"
expect_exit 0 check "$T/extract.conf"
chown nobody "$T/homes-open"
expect_exit 1 check "$T/extract.conf"
assert_contains "$T/check.err.log" "$T/homes-open is uid $(id -u nobody)"

step "LDAP over plain ldap:// without StartTLS: a warning with FILE:LINE, still OK"
cat >"$T/ldap-clear.conf" <<C
[service]
plugin_dir = $BUILD/plugins
[order]
authentication = ldap
[ldap]
servers = ldaps://ldap.example.com ldap://ldap2.example.com
dn_pattern = uid=%u,ou=people,dc=example,dc=com
C
expect_exit 0 check "$T/ldap-clear.conf"
assert_contains "$T/check.out" "$T/ldap-clear.conf: OK"
assert_contains "$T/check.err.log" "$T/ldap-clear.conf:6: warning: [ldap] servers: ldap://ldap2.example.com without start_tls = true sends every password in clear text"
assert_not_contains "$T/check.err.log" "ldaps://ldap.example.com without"
printf 'start_tls = true\n' >>"$T/ldap-clear.conf"
expect_exit 0 check "$T/ldap-clear.conf"
assert_not_contains "$T/check.err.log" "clear text"

step "usage errors: exit 2"
expect_exit 2 pginactl config
expect_exit 2 pginactl config frob
expect_exit 2 pginactl config check a b

step "non-root can check a readable file"
chmod 0644 "$T/bad-option.conf"
rc=0
setpriv --reuid=nobody --regid=nogroup --clear-groups "$BUILD/pginactl" config check \
        "$T/bad-option.conf" 2>"$T/check.err.log" || rc=$?
assert_eq 1 "$rc" "config check as nobody"
assert_contains "$T/check.err.log" "no_such_option"
exit 0
