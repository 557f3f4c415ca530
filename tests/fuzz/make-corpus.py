#!/usr/bin/env python3
"""tests/fuzz/make-corpus.py — (re)write the generated seeds of tests/fuzz/corpus/: valid frames,
NSS answers, configs, small archives (hostile ones included) and state files, each a few hundred
bytes. Regression seeds (crashes found and fixed) are named regress-* and are never rewritten.
Run from anywhere: python3 tests/fuzz/make-corpus.py"""
import io
import os
import re
import shutil
import struct
import subprocess
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, 'corpus')
ROOT = os.path.dirname(os.path.dirname(HERE))

# proto.h
VERSION = 1
LOGIN, AUTHORIZE, OPEN_SESSION, CLOSE_SESSION, CHANGE_PASSWORD = 1, 2, 3, 4, 5
STATUS, SESSIONS, PLUGINS, SIMULATE, RELOAD, PLUGIN_ADMIN, WAIT_JOBS, METRICS = 16, 17, 18, 19, 20, 21, 22, 23
GETPWNAM, GETGRNAM = 32, 33
INFO, RESULT = 100, 101
W_PLUGIN_BEGIN, W_HEALTH = 200, 201
OK, NOT_FOUND, UNAVAILABLE = 0, 7, 4


def u8(v): return struct.pack('>B', v)
def u16(v): return struct.pack('>H', v)
def u32(v): return struct.pack('>I', v)
def s(v): v = v.encode() if isinstance(v, str) else v; return u32(len(v)) + v


def frame(typ, payload=b''):
    body = u16(VERSION) + u16(typ) + payload
    return u32(len(body)) + body


def result_payload(status, message, rows):
    out = u32(status) + s(message) + u32(len(rows))
    for row in rows:
        out += u32(len(row)) + b''.join(s(k) + s(v) for k, v in row)
    return out


def result(status, message='', rows=()):
    return frame(RESULT, result_payload(status, message, rows))


def info(kind, text):
    return frame(INFO, u8(kind) + s(text))


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def clean(target):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if not n.startswith('regress-'):
                os.unlink(os.path.join(d, n))


PW_ROW = [('user', 'alice'), ('uid', '1000'), ('gid', '1000'), ('gecos', 'Alice A'),
          ('home', '/home/alice'), ('shell', '/bin/bash')]
GR_ROW = [('group', 'alice'), ('gid', '1000'), ('member', 'alice'), ('member', 'bob')]


def proto():
    clean('proto')
    reqs = {
        'login': frame(LOGIN, u8(0) + s('alice') + s('secret') + s('sshd') + s('10.0.0.1') +
                       s('ssh') + s('')),
        'unlock': frame(LOGIN, u8(1) + s('alice') + s('pw') + s('gdm') + s('') + s(':0') + s('7')),
        'authorize': frame(AUTHORIZE, s('alice') + s('sshd') + s('')),
        'open-session': frame(OPEN_SESSION, s('alice') + s('tok') + s('sshd') + s('pts/0') +
                              s('') + u32(4242)),
        'close-session': frame(CLOSE_SESSION, s('12') + s('alice')),
        'change-password': frame(CHANGE_PASSWORD, s('alice') + s('old') + s('new')),
        'status': frame(STATUS), 'sessions': frame(SESSIONS), 'plugins': frame(PLUGINS),
        'reload': frame(RELOAD),
        'simulate': frame(SIMULATE, s('alice') + s('pw') + u8(1)),
        'plugin-admin': frame(PLUGIN_ADMIN, s('pgsmb') + s('alice') + u32(2) + s('status') +
                              s('-v')),
        'wait-jobs': frame(WAIT_JOBS, s('') + u32(30)), 'metrics': frame(METRICS),
        'getpwnam': frame(GETPWNAM, s('alice') + u32(0)),
        'getpwuid': frame(GETPWNAM, s('') + u32(1000)),
        'getgrnam': frame(GETGRNAM, s('staff') + u32(0)),
        'w-plugin-begin': frame(W_PLUGIN_BEGIN, s('ldap') + s('authentication')),
        'w-health': frame(W_HEALTH, s('ldap') + u8(0) + s('server down')),
        'answer': info(3, '') + info(0, 'Restoring your profile') +
                  result(OK, 'ok', [[('token', 'abc'), ('user', 'alice'), ('uid', '1000'),
                                     ('authorized', 'yes')]]),
        'answer-rows': result(OK, '', [[('kind', 'daemon'), ('version', '0.1.0')],
                                       [('kind', 'plugin'), ('name', 'ldap')], []]),
    }
    for name, data in reqs.items():
        write('proto', name, data)
    # several requests on one connection, and a cut one at the end
    write('proto', 'pipeline', reqs['status'] + reqs['getpwnam'] + reqs['login'][:20])


def nss():
    clean('nss')
    def seed(name, flags, buflen, skew, stream):
        write('nss', name, u8(flags) + u16(buflen) + u8(skew) + stream)
    seed('passwd', 0, 1024, 0, info(3, '') + result(OK, '', [PW_ROW]))
    seed('passwd-by-uid', 2, 1024, 3, result(OK, '', [PW_ROW]))
    seed('passwd-erange', 0, 20, 0, result(OK, '', [PW_ROW]))
    seed('passwd-root', 0, 1024, 0, result(OK, '', [[(k, '0' if k == 'uid' else v)
                                                     for k, v in PW_ROW]]))
    seed('not-found', 0, 1024, 0, result(NOT_FOUND, 'no such user'))
    seed('unavailable', 1, 1024, 0, result(UNAVAILABLE, 'ldap down'))
    seed('group', 1, 1024, 5, result(OK, '', [GR_ROW]))
    seed('group-by-gid', 3, 1024, 0, result(OK, '', [GR_ROW]))
    seed('group-erange', 1, 40, 1, result(OK, '', [GR_ROW]))
    seed('group-many', 1, 4000, 7, result(OK, '', [GR_ROW + [('member', 'u%d' % i)
                                                             for i in range(40)]]))


CONF_CORE = """# pgina.conf
[service]
socket = /run/pgina/pginad.sock
state_dir = /var/lib/pgina
request_timeout = 300
max_workers = 8
max_queued = 64
log_level = info
preload_libraries = yes

[order]
authentication = localmachine
authorization = localmachine
gateway = localmachine
notification = localmachine
change_password = localmachine
"""


def config():
    clean('config')
    write('config', 'example', open(os.path.join(ROOT, 'packaging/pgina.conf.example'), 'rb').read())
    write('config', 'core', CONF_CORE.encode())
    write('config', 'localmachine', (CONF_CORE + """
[localmachine]
logoff_action = scramble
admin_group = sudo
authz_groups = staff users
mandatory_groups = users
logoff_exceptions = admin
""").encode())
    write('config', 'pgsmb', (CONF_CORE.replace('gateway = localmachine',
                                                'gateway = localmachine pgsmb') + """
[pgsmb]
share = smb://fs.example.com/profiles
remote_path = %u
filename = %u.tar.zst
extract_to = /home/%u
compression_level = 3
credentials = user
max_storage_kb = 0
""").encode())
    write('config', 'ldap', (CONF_CORE.replace('authentication = localmachine',
                                               'authentication = ldap localmachine') + """
[ldap]
servers = ldaps://ldap1.example.com ldap://ldap2.example.com:389
dn_pattern = uid=%u,ou=people,dc=example,dc=com
timeout = 5
group_attribute = memberUid
group_dn_pattern = cn=%g,ou=groups,dc=example,dc=com
authz_rules = deny:contractors allow:staff allow:!guests deny:cn=x\\20y,dc=example,dc=com
authz_default = allow
gateway_rules = staff=users admins=sudo
group_filter = (&(objectClass=posixGroup)(cn=*))

[ldap.attributes]
home = homeDirectory
fullname = displayName
""").encode())
    # the example with its commented plugin sections switched on
    lines = []
    for line in open(os.path.join(ROOT, 'packaging/pgina.conf.example')).read().splitlines():
        m = re.match(r'^# (\[[a-z.]+\]|[a-z_]+ = .*)$', line)
        lines.append(m.group(1) if m else line)
    write('config', 'example-all', ('\n'.join(lines) + '\n').encode())
    write('config', 'testplugin', b"""[order]
authentication = testplugin
gateway = testplugin
[testplugin]
""")
    write('config', 'bad', b"[service]\nmax_workers = 0\nfoo\n[Bad Name]\nx=1\n= y\n")


def tar(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=fmt) as t:
        for e in entries:
            info_, data = e if isinstance(e, tuple) else (e, None)
            t.addfile(info_, io.BytesIO(data) if data is not None else None)
    # tarfile pads to a 10 KiB record; the end marker is two zero blocks
    data = buf.getvalue()
    end = (len(data.rstrip(b'\0')) + 511) // 512 * 512
    return data[:end] + b'\0' * 1024


def ti(name, typ=tarfile.REGTYPE, data=b'', mode=0o644, link='', pax=None, **kw):
    t = tarfile.TarInfo(name)
    t.type = typ
    t.mode = mode
    t.mtime = 1700000000
    t.linkname = link
    if typ == tarfile.REGTYPE:
        t.size = len(data)
    if pax:
        t.pax_headers = pax
    for k, v in kw.items():
        setattr(t, k, v)
    return (t, data if typ == tarfile.REGTYPE else None)


def zstd(data):
    return subprocess.run(['zstd', '-q', '-c', '--check', '-3'], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def unpack():
    clean('unpack')
    home = [ti('./', tarfile.DIRTYPE, mode=0o755), ti('.profile', data=b'export A=1\n'),
            ti('docs', tarfile.DIRTYPE, mode=0o700), ti('docs/a.txt', data=b'hello\n' * 10),
            ti('docs/link', tarfile.SYMTYPE, link='a.txt'),
            ti('docs/hard', tarfile.LNKTYPE, link='docs/a.txt'),
            ti('ro', tarfile.DIRTYPE, mode=0o500), ti('ro/f', data=b'x', mode=0o400),
            ti('empty', data=b'')]
    write('unpack', 'home.tar', tar(home))
    write('unpack', 'home.tar.zst', zstd(tar(home)))
    write('unpack', 'home-gnu.tar', tar(home, tarfile.GNU_FORMAT))
    write('unpack', 'home-ustar.tar', tar(home, tarfile.USTAR_FORMAT))
    write('unpack', 'xattr-acl.tar', tar([
        ti('x', data=b'xattr', pax={'SCHILY.xattr.user.pgina': 'v'}),
        ti('acl', data=b'acl', pax={'SCHILY.acl.access': 'user::rw-,user:root:r--,group::r--,'
                                                        'mask::r--,other::---'}),
        ti('d', tarfile.DIRTYPE, mode=0o755, pax={'SCHILY.xattr.user.d': '1'}),
        ti('d/f', data=b'in d')]))
    write('unpack', 'sparse.tar', tar([ti('sp', data=b'', pax={
        'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'sp',
        'GNU.sparse.realsize': '65536'})]))
    write('unpack', 'long-names.tar', tar([ti('d' * 100 + '/', tarfile.DIRTYPE, mode=0o755),
                                           ti('d' * 100 + '/' + 'f' * 150, data=b'long')]))
    write('unpack', 'implicit-dirs.tar', tar([ti('a/b/c/file', data=b'deep'),
                                              ti('a/b/l', tarfile.SYMTYPE, link='../b/c')]))
    # hostile: each must be refused or kept inside
    write('unpack', 'evil-dotdot.tar', tar([ti('../outside/dir/x', data=b'escape')]))
    write('unpack', 'evil-absolute.tar', tar([ti('/tmp/pgina-fuzz-absolute', data=b'escape')]))
    write('unpack', 'evil-symlink-out.tar', tar([ti('l', tarfile.SYMTYPE, link='../outside/dir'),
                                                 ti('l/x', data=b'through the link')]))
    write('unpack', 'evil-symlink-abs.tar', tar([ti('l', tarfile.SYMTYPE, link='/tmp'),
                                                 ti('l/x', data=b'through')]))
    write('unpack', 'evil-symlink-updown.tar', tar([ti('a', tarfile.DIRTYPE, mode=0o755),
                                                    ti('a/l', tarfile.SYMTYPE, link='x/../../..')]))
    write('unpack', 'evil-hardlink-out.tar', tar([ti('h', tarfile.LNKTYPE,
                                                     link='../outside/canary')]))
    write('unpack', 'evil-hardlink-symlink.tar', tar([ti('l', tarfile.SYMTYPE, link='.'),
                                                      ti('h', tarfile.LNKTYPE, link='l')]))
    write('unpack', 'evil-twice.tar', tar([ti('f', data=b'1'), ti('f', data=b'2')]))
    write('unpack', 'evil-file-then-dir.tar', tar([ti('f', data=b'1'),
                                                   ti('f/g', data=b'2')]))
    write('unpack', 'evil-special.tar', tar([
        ti('fifo', tarfile.FIFOTYPE), ti('dev', tarfile.CHRTYPE, devmajor=1, devminor=3)]))
    write('unpack', 'evil-setuid.tar', tar([ti('suid', data=b'#!/bin/sh\n', mode=0o4755),
                                            ti('sgid', tarfile.DIRTYPE, mode=0o2775)]))
    write('unpack', 'evil-big.tar', tar([ti('big', data=b'', pax={'size': '99999999999'})]))
    write('unpack', 'evil-cut.tar', tar(home)[:1500])


def state():
    clean('state')
    write('state', 'state', b'version=1700000000.000000001-00112233445566778899aabb\n'
                            b'upload_failed=1\nover_limit=0\ntemporary=0\n')
    write('state', 'meta', b'version=1700000000.000000001-00112233445566778899aabb\n'
                           b'sha256=' + b'ab' * 32 + b'\nsize=12345\nhost=ws1\ntime=1700000000\n')
    row = [('session', '3'), ('index', '0'), ('service', 'sshd'), ('tty', 'pts/0'),
           ('rhost', '10.0.0.1'), ('opened', '1700000000'), ('scenario', '0'), ('leader', '4242'),
           ('entry_user', 'alice'), ('user', 'alice'), ('uid', '1000'), ('gid', '1000'),
           ('attr:home', '/home/alice'), ('group', 'users')]
    credui = [(k, {'index': '1', 'scenario': '2', 'entry_user': 'root', 'user': 'root',
                   'uid': '0', 'gid': '0'}.get(k, v)) for k, v in row]
    # bob's entry is a newer pginad's: the logon's phases (alice's, an older one's, has none)
    other = [(k, {'session': '4', 'user': 'bob', 'entry_user': 'bob'}.get(k, v)) for k, v in row] + \
        [('phases', '812 ms (authentication 120 ms, gateway 650 ms: pgsmb download 400 ms extract 150 ms)')]
    write('state', 'sessions', b'PGINA-SESSIONS 1\n' +
          result_payload(0, '5 0d3c9d7c-6f7e-4c1e-9b55-0e7b3c2a8f10', [row, credui, other]))


if __name__ == '__main__':
    proto()
    nss()
    config()
    unpack()
    state()
