# tests/integration/samba-ad.sh — a private Active Directory for tests: a Samba AD DC (realm
# ACC.TEST, domain ACC, RFC 2307 attributes on, no DNS server), provisioned under $T/ad and
# started on the sandbox's loopback, sourced after lib.sh (inside the sandbox: it binds the
# standard ports 389/636/88 of the sandbox's own network, and names the DC dc1.acc.test in the
# sandbox's /etc/hosts). LDAPS presents the certificate Samba makes for itself at first start,
# signed by its own CA ($AD_CA).
#   ad_start                provision (a few seconds), start, wait until LDAPS answers (60 s)
#   ad_user NAME PW [ARGS]  create a user (samba-tool user create ... ARGS), RFC 2307 ids when
#                           ARGS has --uid-number=...
#   ad_tool ARGS...         samba-tool against the DC's own database (local access, no bind)
#   ad_show USER ATTRS      the user's attributes (comma-separated), "name: value" lines, SIDs as text
#   ad_stop                 SIGTERM (then SIGKILL) samba by its pid
# shellcheck shell=bash

AD_DIR=$T/ad
AD_REALM=ACC.TEST
AD_DOMAIN=ACC
AD_HOST=dc1.acc.test
AD_BASE=DC=acc,DC=test
AD_ADMIN_PASSWORD=${AD_ADMIN_PASSWORD:-Adm1n-Pw.of-acc}
AD_CA=$AD_DIR/private/tls/ca.pem
AD_URL=ldaps://$AD_HOST
AD_PID=

_ad_fail() {
        if declare -F fail >/dev/null; then fail "$@"; fi
        echo "FAIL: $*" >&2
        exit 1
}

ad_tool() { samba-tool "$@" -s "$AD_DIR/etc/smb.conf" >>"$AD_DIR/tool.log" 2>&1; }

ad_show() { samba-tool user show "$1" --attributes="$2" -s "$AD_DIR/etc/smb.conf" 2>>"$AD_DIR/tool.log"; }

ad_start() {
        [ -z "$AD_PID" ] || _ad_fail "ad_start: samba already running (pid $AD_PID)"
        command -v samba >/dev/null && command -v samba-tool >/dev/null ||
                _ad_fail "ad_start: samba-ad-dc is not installed (tests/deps.sh)"
        mkdir -p "$AD_DIR"
        grep -q " $AD_HOST\$" /etc/hosts || echo "127.0.0.1 $AD_HOST dc1" >>/etc/hosts
        # the provisioning takes its DC name from --host-name; the admin password is on the
        # command line of this test tool only (samba-tool has no other way)
        samba-tool domain provision --realm="$AD_REALM" --domain="$AD_DOMAIN" --server-role=dc \
                --dns-backend=NONE --use-rfc2307 --host-name=dc1 --adminpass="$AD_ADMIN_PASSWORD" \
                --targetdir="$AD_DIR" --option="interfaces = lo" --option="bind interfaces only = yes" \
                --option="log file = $AD_DIR/log.%m" >"$AD_DIR/provision.log" 2>&1 ||
                { tail -n 20 "$AD_DIR/provision.log" >&2; _ad_fail "ad_start: provisioning failed (above)"; }
        # AD (and Samba) accept the previous password for 60 minutes after a change by default
        # ("old password allowed period"); the tests check that the old one stops working
        sed -i 's/^\[global\]$/[global]\n\told password allowed period = 0/' "$AD_DIR/etc/smb.conf"
        # a test changes passwords right after setting them
        ad_tool domain passwordsettings set --min-pwd-age=0 --history-length=3 ||
                _ad_fail "ad_start: cannot set the password settings ($AD_DIR/tool.log)"
        samba -i -s "$AD_DIR/etc/smb.conf" </dev/null >"$AD_DIR/samba.log" 2>&1 &
        AD_PID=$!
        at_exit ad_stop
        local i
        for ((i = 0; i < 600; i++)); do
                if [ -s "$AD_CA" ] && LDAPTLS_CACERT=$AD_CA ldapsearch -x -H "$AD_URL" -b "" -s base \
                        -o nettimeout=2 defaultNamingContext >/dev/null 2>&1; then
                        return 0
                fi
                kill -0 "$AD_PID" 2>/dev/null || { tail -n 20 "$AD_DIR/samba.log" >&2; _ad_fail "ad_start: samba exited (above)"; }
                sleep 0.1
        done
        tail -n 20 "$AD_DIR/samba.log" >&2
        _ad_fail "ad_start: samba does not answer LDAPS on $AD_URL after 60 s"
}

# ad_user NAME PASSWORD [samba-tool user create ARGS]
ad_user() {
        local name=$1 password=$2
        shift 2
        ad_tool user create "$name" "$password" "$@" || {
                tail -n 5 "$AD_DIR/tool.log" >&2
                _ad_fail "ad_user: cannot create $name (above)"
        }
}

ad_stop() {
        [ -n "$AD_PID" ] || return 0
        local i
        kill -TERM "$AD_PID" 2>/dev/null
        for ((i = 0; i < 50; i++)); do
                kill -0 "$AD_PID" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$AD_PID" 2>/dev/null
        wait "$AD_PID" 2>/dev/null
        AD_PID=
}
