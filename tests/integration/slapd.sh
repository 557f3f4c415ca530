# tests/integration/slapd.sh — a private OpenLDAP server for tests, sourced after lib.sh (inside
# the sandbox). slapd_start runs slapd on 127.0.0.1 on a free port with its own slapd.conf, mdb
# database and TLS files under $T/slapd, suffix dc=pgina,dc=test, and loads the test directory
# with ldapadd as the rootdn:
#   ou=people   alice (uid 20001), bob (20002), carol (20003): posixAccount + inetOrgPerson with
#               cn, mail, homeDirectory, loginShell, employeeType, roomNumber, userPassword {SSHA}
#   ou=groups   posixGroup staff (memberUid alice carol), posixGroup banned (memberUid bob),
#               groupOfNames admins (member alice), groupOfNames blocked (member bob); the memberof
#               overlay gives users memberOf for the groupOfNames ones
#   cn=pgina-svc,dc=pgina,dc=test   the service account (SLAPD_SVC_PASSWORD): reads everything
#               and may reset userPassword
# Anonymous users may search (no userPassword); a user may change their own password (password
# modify extended operation, stored as {SSHA}).
#   slapd_start             start it (StartTLS and ldaps:// available), fail after 10 s
#   slapd_url               ldap://127.0.0.1:PORT      slapd_ldaps_url  ldaps://127.0.0.1:PORT2
#   slapd_stop              SIGTERM by pid, wait; slapd_restart: the same data, same ports
#   SLAPD_CA                the CA that signed the server's certificate (PEM)
#   SLAPD_WRONG_CA          another CA, which did not
#   SLAPD_LOG               slapd's stats log (every BIND, SRCH, EXT line)
#   slapd_admin CMD ARGS    run an ldap-utils CMD bound as the rootdn (ldapmodify, ldapsearch...)
# shellcheck shell=bash

SLAPD_DIR=$T/slapd
SLAPD_SUFFIX=dc=pgina,dc=test
SLAPD_ROOTDN=cn=admin,$SLAPD_SUFFIX
SLAPD_ROOTPW=${SLAPD_ROOTPW:-Root pw 0}
SLAPD_SVC_DN=cn=pgina-svc,$SLAPD_SUFFIX
SLAPD_SVC_PASSWORD=${SLAPD_SVC_PASSWORD:-Svc pw 9}
SLAPD_CA=$SLAPD_DIR/ca.pem
SLAPD_WRONG_CA=$SLAPD_DIR/wrong-ca.pem
SLAPD_LOG=$SLAPD_DIR/slapd.log
SLAPD_PORT=
SLAPD_TLS_PORT=
SLAPD_PID=
# Passwords of the test users
SLAPD_ALICE_PW='Alice ldap 1'
SLAPD_BOB_PW='Bob ldap 2'
SLAPD_CAROL_PW='Carol ldap 3'

_slapd_fail() {
        if declare -F fail >/dev/null; then fail "$@"; fi
        echo "FAIL: $*" >&2
        exit 1
}

_slapd_free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

slapd_url() { echo "ldap://127.0.0.1:$SLAPD_PORT"; }
slapd_ldaps_url() { echo "ldaps://127.0.0.1:$SLAPD_TLS_PORT"; }

# _slapd_hash PASSWORD: an {SSHA} hash (the password goes to slappasswd through a file, not argv).
_slapd_hash() {
        local f=$SLAPD_DIR/pw.tmp h
        (umask 077 && printf '%s' "$1" >"$f")
        h=$(slappasswd -h '{SSHA}' -T "$f") || _slapd_fail "slappasswd failed"
        rm -f "$f"
        echo "$h"
}

# A CA and a server certificate for 127.0.0.1/localhost signed by it, plus an unrelated CA.
_slapd_certs() {
        local d=$SLAPD_DIR
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pgina test CA" \
                -keyout "$d/ca.key" -out "$d/ca.pem" >"$d/openssl.log" 2>&1 &&
                openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pgina wrong CA" \
                        -keyout "$d/wrong-ca.key" -out "$d/wrong-ca.pem" >>"$d/openssl.log" 2>&1 &&
                openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
                        -keyout "$d/server.key" -out "$d/server.csr" >>"$d/openssl.log" 2>&1 &&
                printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' \
                        >"$d/ext.cnf" &&
                openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
                        -CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" \
                        >>"$d/openssl.log" 2>&1 ||
                _slapd_fail "openssl could not make the test certificates (see $d/openssl.log)"
}

_slapd_conf() {
        local d=$SLAPD_DIR
        cat >"$d/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $d/slapd.pid
argsfile $d/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile $d/ca.pem
TLSCertificateFile $d/server.pem
TLSCertificateKeyFile $d/server.key
password-hash {SSHA}

database mdb
suffix "$SLAPD_SUFFIX"
rootdn "$SLAPD_ROOTDN"
rootpw $(_slapd_hash "$SLAPD_ROOTPW")
directory $d/db
maxsize 33554432
overlay memberof
access to attrs=userPassword
        by self write
        by dn.exact="$SLAPD_SVC_DN" write
        by anonymous auth
        by * none
access to *
        by * read
CONF
}

_slapd_ldif() {
        local s=$SLAPD_SUFFIX
        cat <<LDIF
dn: $s
objectClass: top
objectClass: dcObject
objectClass: organization
o: pgina test
dc: pgina

dn: ou=people,$s
objectClass: organizationalUnit
ou: people

dn: ou=groups,$s
objectClass: organizationalUnit
ou: groups

dn: $SLAPD_SVC_DN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: pgina-svc
userPassword: $(_slapd_hash "$SLAPD_SVC_PASSWORD")

LDIF
        _slapd_user alice 20001 "Alice Liddell" "$SLAPD_ALICE_PW" /bin/bash
        _slapd_user bob 20002 "Bob Builder" "$SLAPD_BOB_PW" /bin/sh
        _slapd_user carol 20003 "Carol Danvers" "$SLAPD_CAROL_PW" /bin/bash
        cat <<LDIF
dn: cn=ldapusers,ou=groups,$s
objectClass: posixGroup
cn: ldapusers
gidNumber: 20000

dn: cn=staff,ou=groups,$s
objectClass: posixGroup
cn: staff
gidNumber: 20010
memberUid: alice
memberUid: carol

dn: cn=banned,ou=groups,$s
objectClass: posixGroup
cn: banned
gidNumber: 20011
memberUid: bob

dn: cn=admins,ou=groups,$s
objectClass: groupOfNames
cn: admins
member: uid=alice,ou=people,$s

dn: cn=blocked,ou=groups,$s
objectClass: groupOfNames
cn: blocked
member: uid=bob,ou=people,$s

LDIF
}

# _slapd_user NAME UID FULLNAME PASSWORD SHELL
_slapd_user() {
        cat <<LDIF
dn: uid=$1,ou=people,$SLAPD_SUFFIX
objectClass: inetOrgPerson
objectClass: posixAccount
uid: $1
cn: $3
sn: ${3#* }
mail: $1@pgina.test
uidNumber: $2
gidNumber: 20000
homeDirectory: /home/$1
loginShell: $5
employeeType: $1-profile.tar.zst
roomNumber: room-$1
userPassword: $(_slapd_hash "$4")

LDIF
}

_slapd_wait() {
        local i
        for ((i = 0; i < 100; i++)); do
                if ldapsearch -x -H "$(slapd_url)" -b "" -s base -o nettimeout=1 \
                        >/dev/null 2>&1; then
                        return 0
                fi
                kill -0 "$SLAPD_PID" 2>/dev/null || break
                sleep 0.1
        done
        tail -n 20 "$SLAPD_LOG" >&2
        _slapd_fail "slapd did not answer on $(slapd_url) within 10 s"
}

_slapd_run() {
        # -d stats: the operations go to stderr (the log tests read); foreground, killed by pid.
        slapd -d stats -f "$SLAPD_DIR/slapd.conf" \
                -h "$(slapd_url)/ $(slapd_ldaps_url)/" </dev/null >>"$SLAPD_LOG" 2>&1 &
        SLAPD_PID=$!
        _slapd_wait
}

# slapd_admin CMD ARGS: an ldap-utils command bound as the rootdn.
slapd_admin() {
        local cmd=$1
        shift
        (umask 077 && printf '%s' "$SLAPD_ROOTPW" >"$SLAPD_DIR/rootpw")
        "$cmd" -x -H "$(slapd_url)" -D "$SLAPD_ROOTDN" -y "$SLAPD_DIR/rootpw" "$@"
}

slapd_start() {
        if declare -F need >/dev/null; then need slapd slappasswd ldapadd ldapsearch openssl; fi
        [ -z "$SLAPD_PID" ] || _slapd_fail "slapd_start: slapd already running (pid $SLAPD_PID)"
        mkdir -p "$SLAPD_DIR/db"
        chmod 0700 "$SLAPD_DIR"
        SLAPD_PORT=$(_slapd_free_port)
        SLAPD_TLS_PORT=$(_slapd_free_port)
        # Two asks may get the same free port back: slapd would then fail to listen twice.
        while [ "$SLAPD_TLS_PORT" = "$SLAPD_PORT" ]; do
                SLAPD_TLS_PORT=$(_slapd_free_port)
        done
        _slapd_certs
        _slapd_conf
        slaptest -u -f "$SLAPD_DIR/slapd.conf" >"$SLAPD_DIR/slaptest.log" 2>&1 ||
                _slapd_fail "slaptest refused $SLAPD_DIR/slapd.conf: $(tail -n 3 "$SLAPD_DIR/slaptest.log")"
        _slapd_run
        if declare -F at_exit >/dev/null; then at_exit slapd_stop; fi
        _slapd_ldif >"$SLAPD_DIR/data.ldif"
        slapd_admin ldapadd -f "$SLAPD_DIR/data.ldif" >"$SLAPD_DIR/ldapadd.log" 2>&1 ||
                _slapd_fail "ldapadd of the test directory failed: $(tail -n 3 "$SLAPD_DIR/ldapadd.log")"
}

slapd_stop() {
        local pid=$SLAPD_PID i
        [ -n "$pid" ] || return 0
        SLAPD_PID=
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 0
}

# slapd_restart: start the stopped server again with the same database and ports.
slapd_restart() {
        [ -z "$SLAPD_PID" ] || _slapd_fail "slapd_restart: slapd is running"
        _slapd_run
}
