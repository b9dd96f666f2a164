# -*- coding: utf-8 -*-
"""Registry pull (nodocker.lab.image ``pull``) against a real local registry.

Two simulated hosts on one lab switch (nothing reaches the internet):

* ``registry`` (192.168.104.2) runs Debian's ``docker-registry`` three times on
  the same storage (in the host's private /tmp): ``:5000`` open, ``:5001`` with
  token auth, its tokens issued by a tiny Python token server on ``:5002``
  (RS256 JWTs signed with ``openssl``, the way the Docker Hub auth service
  works), and ``:5003`` over HTTPS with a certificate for its IP address
  signed by a throwaway CA made with ``openssl`` (not in any trust store).
  Images built here with ``tarfile`` are pushed with ``skopeo`` from inside
  that host.
* ``puller`` (192.168.104.3) pulls them with the module over the underlay,
  mounts an overlay root on the pulled layers and looks at the files.

The image: layer 1 (gzip) has /etc/hello, /usr/share/doomed and a symlink;
layer 2 (plain tar) adds /etc/added and deletes /usr/share/doomed with a
``.wh.doomed`` whiteout. A second, multi-arch image (an OCI index with
linux/arm64 first and linux/amd64 second) checks the platform pick.

Needs the Debian packages docker-registry, skopeo and openssl.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import textwrap
import time

import subprocess

import pytest

from tests.lib import ansible_run
from tests.lib.testinfra_simhost import simhost

LAB = 'regpull'
REG_IP = '192.168.104.2'
OPEN = 'http://%s:5000' % REG_IP
AUTH = 'http://%s:5001' % REG_IP
TOKEN_PORT = 5002
TLS_PORT = 5003
TLS = '%s:%d' % (REG_IP, TLS_PORT)     # no scheme: HTTPS, the default
RUN = '/tmp/ndl-regpull'               # in the registry host's private /tmp
STORE = '/var/lib/nodocker-lab/regpull/images'   # the puller's private /var/lib/nodocker-lab
ROOTS = '/var/lib/nodocker-lab/regpull/c1'
USER, PASSWORD = 'ndl', 'lab-secret'
PY = sys.executable  # a real interpreter path, visible inside the simulated hosts

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'
LAYER_GZ = 'application/vnd.oci.image.layer.v1.tar+gzip'


@pytest.fixture(autouse=True)
def registry_tools():
    """scripts/setup.sh installs these (scripts/apt-packages.txt): a missing one is a
    broken setup, and a skip here would hide that the registry pull is untested."""
    missing = [t for t in ('docker-registry', 'skopeo', 'openssl') if not shutil.which(t)]
    if missing:
        pytest.fail('missing %s: run ./scripts/setup.sh (Debian packages docker-registry, '
                    'skopeo, openssl)' % ', '.join(missing))


# --- building images with tarfile -------------------------------------------------------------
def _tar(entries):
    """entries: [(name, bytes | ('symlink', target) | None for a directory)] -> tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif isinstance(data, tuple):
                ti.type, ti.linkname = tarfile.SYMTYPE, data[1]
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI image layout being written as blobs in memory."""

    def __init__(self):
        self.blobs = {}
        self.index = []

    def blob(self, data, media_type, **extra):
        self.blobs[_sha(data)] = data
        d = dict(mediaType=media_type, digest=_sha(data), size=len(data))
        d.update(extra)
        return d

    def image(self, layers, arch='amd64'):
        """layers: [(tar bytes, gzip?)] bottom first -> manifest descriptor."""
        descs, diff_ids = [], []
        for tar, gz in layers:
            diff_ids.append(_sha(tar))
            descs.append(self.blob(gzip.compress(tar, mtime=0) if gz else tar,
                                   LAYER_GZ if gz else LAYER_TAR))
        config = json.dumps({'architecture': arch, 'os': 'linux',
                             'config': {'Cmd': ['/bin/sh']},
                             'rootfs': {'type': 'layers', 'diff_ids': diff_ids}}).encode()
        manifest = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                               'config': self.blob(config, OCI_CONFIG),
                               'layers': descs}).encode()
        return self.blob(manifest, OCI_MANIFEST,
                         platform={'architecture': arch, 'os': 'linux'}), diff_ids

    def write(self, path):
        index = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX,
                            'manifests': self.index}).encode()
        with tarfile.open(path, 'w') as tf:
            for name, data in [('oci-layout', b'{"imageLayoutVersion":"1.0.0"}'),
                               ('index.json', index)] + [
                    ('blobs/sha256/' + d.split(':')[1], b) for d, b in self.blobs.items()]:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))


def build_images(path):
    """The test's images in one OCI archive: ref 'demo' and ref 'multi'."""
    lay = Layout()
    l1 = _tar([('etc', None), ('etc/hello', b'hello from layer 1\n'), ('usr', None),
               ('usr/share', None), ('usr/share/doomed', b'deleted by layer 2\n'),
               ('usr/bin', None), ('usr/bin/hello', ('symlink', '../../etc/hello'))])
    l2 = _tar([('etc', None), ('etc/added', b'added by layer 2\n'), ('usr', None),
               ('usr/share', None), ('usr/share/.wh.doomed', b'')])
    demo, demo_diff_ids = lay.image([(l1, True), (l2, False)])
    demo = dict(demo, annotations={'org.opencontainers.image.ref.name': 'demo'})
    demo.pop('platform')
    arm, dummy = lay.image([(_tar([('arch', b'arm64\n')]), True)], arch='arm64')
    amd, dummy = lay.image([(_tar([('arch', b'amd64\n')]), True)], arch='amd64')
    multi_index = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX,
                              'manifests': [arm, amd]}).encode()
    multi = lay.blob(multi_index, OCI_INDEX,
                     annotations={'org.opencontainers.image.ref.name': 'multi'})
    lay.index = [demo, multi]
    lay.write(path)
    return dict(demo_manifest=demo['digest'], demo_diff_ids=demo_diff_ids,
                amd_manifest=amd['digest'])


# --- the registry host ------------------------------------------------------------------------
REGISTRY_CONFIG = textwrap.dedent('''\
    version: 0.1
    log:
      level: info
    storage:
      filesystem:
        rootdirectory: {run}/data
      delete:
        enabled: true
    http:
      addr: {ip}:{port}
    {tls}
    {auth}
    ''')

TLS_CONFIG = '  tls:\n    certificate: {cert}\n    key: {key}'   # under http:

TOKEN_AUTH = textwrap.dedent('''\
    auth:
      token:
        realm: http://{ip}:{token_port}/token
        service: ndl-registry
        issuer: ndl-token-issuer
        rootcertbundle: {run}/token.crt''')

# A token server like Docker Hub's auth service: checks HTTP basic
# credentials, answers {"token": JWT} granting pull on the requested scope.
TOKEN_SERVER = textwrap.dedent('''\
    import base64, json, subprocess, sys, time, uuid
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs, urlsplit
    ip, port, key, cert, issuer, user, password, log = sys.argv[1:9]
    der = subprocess.check_output(['openssl', 'x509', '-in', cert, '-outform', 'DER'])
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b'=').decode()
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            q = parse_qs(urlsplit(self.path).query)
            good = 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
            with open(log, 'a') as f:
                f.write('%s auth=%s\\n' % (self.path, self.headers.get('Authorization') == good))
            if self.headers.get('Authorization') != good:
                self.send_response(401)
                self.end_headers()
                return
            access = []
            for scope in q.get('scope', []):
                typ, name, actions = scope.split(':', 2)
                access.append({'type': typ, 'name': name,
                               'actions': [a for a in actions.split(',') if a == 'pull']})
            now = int(time.time())
            head = {'alg': 'RS256', 'typ': 'JWT', 'x5c': [base64.b64encode(der).decode()]}
            claims = {'iss': issuer, 'sub': user, 'aud': q.get('service', [''])[0],
                      'exp': now + 300, 'nbf': now - 10, 'iat': now, 'jti': uuid.uuid4().hex,
                      'access': access}
            signed = b64(json.dumps(head).encode()) + '.' + b64(json.dumps(claims).encode())
            sig = subprocess.run(['openssl', 'dgst', '-sha256', '-sign', key],
                                 input=signed.encode(), stdout=subprocess.PIPE, check=True).stdout
            body = json.dumps({'token': signed + '.' + b64(sig), 'expires_in': 300}).encode()
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    HTTPServer((ip, int(port)), Handler).serve_forever()
    ''')


def make_tls(d):
    """A throwaway CA, a server certificate for the registry's IP signed by it,
    and an unrelated second CA (trusting it must not help). Files in d."""
    def openssl(*args):
        subprocess.run(('openssl',) + args, cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes')
    for ca in ('ca', 'other-ca'):
        openssl('req', '-x509', *ec, '-days', '1', '-subj', '/CN=ndl throwaway %s' % ca,
                '-keyout', ca + '.key', '-out', ca + '.pem',
                '-addext', 'basicConstraints=critical,CA:TRUE',
                '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    with open(os.path.join(d, 'server.ext'), 'w') as f:
        f.write('subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\n'
                'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n'
                'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n' % REG_IP)
    openssl('req', *ec, '-subj', '/CN=%s' % REG_IP, '-keyout', 'registry.key',
            '-out', 'registry.csr')
    openssl('x509', '-req', '-in', 'registry.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-set_serial', '2', '-days', '1', '-extfile', 'server.ext', '-out', 'registry.pem')
    # skopeo's --cert-dir: every *.crt is a CA (and a lone *.key would be a client key)
    os.mkdir(os.path.join(d, 'skopeo'))
    shutil.copy(os.path.join(d, 'ca.pem'), os.path.join(d, 'skopeo', 'ca.crt'))
    return dict(ca=os.path.join(d, 'ca.pem'), other_ca=os.path.join(d, 'other-ca.pem'),
                cert=os.path.join(d, 'registry.pem'), key=os.path.join(d, 'registry.key'),
                skopeo=os.path.join(d, 'skopeo'))


def run_ok(host, cmd):
    r = host.run(cmd)
    assert r.rc == 0, '%s: rc=%s\n%s\n%s' % (cmd, r.rc, r.stdout, r.stderr)
    return r.stdout


def start_background(host, argv, log):
    """Start a daemon in the simulated host; its pid (destroying the host kills it anyway)."""
    return int(run_ok(host, 'setsid %s > %s 2>&1 < /dev/null & echo $!' % (argv, log)).strip())


def wait_http(host, url, timeout=20, ca=None):
    """Until url answers; over HTTPS, with a certificate that verifies against ca."""
    probe = ('%s -c "import ssl, sys, urllib.request, urllib.error\n'
             'ctx = ssl.create_default_context(cafile=sys.argv[2] or None)\n'
             'try:\n urllib.request.urlopen(sys.argv[1], timeout=2, context=ctx)\n'
             'except urllib.error.HTTPError:\n pass\n" %s \'%s\'') % (PY, url, ca or '')
    deadline = time.time() + timeout
    while True:
        r = host.run(probe)
        if r.rc == 0:
            return
        if time.time() > deadline:
            raise AssertionError('%s did not answer within %ss: %s'
                                 % (url, timeout, r.stderr[-2000:]))
        time.sleep(0.3)


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp('regpull')
    inv = ansible_run.simulated_inventory(str(d / 'inventory.yml'), LAB, {
        'registry': {'nodocker_underlay_address': REG_IP + '/24'},
        'puller': {'nodocker_underlay_address': '192.168.104.3/24'}})
    # the image archive must be readable inside the simulated host: /var/tmp is
    # shared (its /tmp is private)
    shared = tempfile.mkdtemp(prefix='ndl-regpull-', dir='/var/tmp')
    ansible_run.create_simhosts(inv)
    pids = []
    reg = simhost('registry', lab=LAB)
    try:
        images = build_images(os.path.join(shared, 'images.tar'))
        os.mkdir(os.path.join(shared, 'tls'))
        tls = make_tls(os.path.join(shared, 'tls'))
        run_ok(reg, 'mkdir -p %s/data' % RUN)
        run_ok(reg, 'openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ndl-token '
                    '-keyout %s/token.key -out %s/token.crt 2>/dev/null' % (RUN, RUN))
        token_auth = TOKEN_AUTH.format(ip=REG_IP, run=RUN, token_port=TOKEN_PORT)
        tls_config = TLS_CONFIG.format(cert=tls['cert'], key=tls['key'])
        for port, auth, tls_cfg in ((5000, '', ''), (5001, token_auth, ''),
                                    (TLS_PORT, '', tls_config)):
            cfg = REGISTRY_CONFIG.format(run=RUN, ip=REG_IP, port=port, auth=auth, tls=tls_cfg)
            reg.run('cat > %s/config-%d.yml <<"EOF"\n%sEOF' % (RUN, port, cfg))
            pids.append(start_background(reg, 'docker-registry serve %s/config-%d.yml'
                                         % (RUN, port), '%s/registry-%d.log' % (RUN, port)))
        reg.run('cat > %s/token_server.py <<"EOF"\n%sEOF' % (RUN, TOKEN_SERVER))
        pids.append(start_background(reg, '%s %s/token_server.py %s %d %s/token.key %s/token.crt '
                                          'ndl-token-issuer %s %s %s/token.log'
                                     % (PY, RUN, REG_IP, TOKEN_PORT, RUN, RUN, USER, PASSWORD,
                                        RUN), '%s/token-server.out' % RUN))
        for port in (5000, 5001, TOKEN_PORT):
            wait_http(reg, 'http://%s:%d/' % (REG_IP, port))
        try:
            wait_http(reg, 'https://%s/v2/' % TLS, ca=tls['ca'])
        except AssertionError as e:
            raise AssertionError('%s\nregistry log:\n%s' % (e, reg.run(
                'tail -20 %s/registry-%d.log' % (RUN, TLS_PORT)).stdout))
        archive = os.path.join(shared, 'images.tar')
        run_ok(reg, 'skopeo copy -q --dest-tls-verify=false oci-archive:%s:demo '
                    'docker://%s:5000/ndl/demo:1' % (archive, REG_IP))
        run_ok(reg, 'skopeo copy -q --all --dest-tls-verify=false oci-archive:%s:multi '
                    'docker://%s:5000/ndl/multi:1' % (archive, REG_IP))
        # skopeo may re-serialise manifests on push: take the digests the
        # registry serves (the raw manifest's sha256) as the expected ones
        images['demo_manifest'] = run_ok(reg, "skopeo inspect --tls-verify=false --format "
                                              "'{{.Digest}}' docker://%s:5000/ndl/demo:1"
                                         % REG_IP).strip()
        index = json.loads(run_ok(reg, 'skopeo inspect --raw --tls-verify=false '
                                       'docker://%s:5000/ndl/multi:1' % REG_IP))
        images['amd_manifest'] = [m['digest'] for m in index['manifests']
                                  if m['platform']['architecture'] == 'amd64'][0]
        # verified against the throwaway CA: a Go client trusts this certificate too
        run_ok(reg, 'skopeo copy -q --dest-cert-dir %s oci-archive:%s:demo docker://%s/ndl/tls:1'
               % (tls['skopeo'], archive, TLS))
        images['tls_manifest'] = run_ok(reg, "skopeo inspect --cert-dir %s --format '{{.Digest}}' "
                                             "docker://%s/ndl/tls:1" % (tls['skopeo'], TLS)).strip()
        yield dict(inventory=inv, dir=d, images=images, registry=reg, tls=tls,
                   puller=simhost('puller', lab=LAB))
    finally:
        for pid in pids:
            reg.run('kill %d' % pid)
        ansible_run.destroy_simhosts(inv)
        shutil.rmtree(shared, ignore_errors=True)


def play(lab, name, tasks):
    """Run tasks on the puller; returns the CompletedProcess."""
    pb = os.path.join(str(lab['dir']), name + '.yml')
    with open(pb, 'w') as f:
        f.write('- name: %s\n  hosts: puller\n  gather_facts: false\n  tasks:\n' % name)
        f.write(textwrap.indent(tasks, '    '))
    return ansible_run.playbook(pb, lab['inventory'], check=False)


def four_times(task, register='pulled'):
    """community.crypto's pattern: check, apply, check (unchanged), apply (unchanged)."""
    out = ''
    for i, check in enumerate((True, False, True, False)):
        out += task.replace('NAME', '%s (%s %d)' % (register, 'check' if check else 'apply', i)) + \
            '  check_mode: %s\n  register: %s_%d\n' % (str(check).lower(), register, i)
    out += textwrap.dedent('''\
        - name: Changed the first two times, unchanged after
          ansible.builtin.assert:
            that:
              - {r}_0 is changed
              - {r}_1 is changed
              - {r}_2 is not changed
              - {r}_3 is not changed
              - {r}_0.new_layers | length == {r}_1.new_layers | length
              - {r}_3.commands == []
        ''').format(r=register)
    return out


def test_pull_open_registry_then_overlay_root(lab):
    pull = textwrap.dedent('''\
        - name: NAME
          nodocker.lab.image:
            pull: {open}/ndl/demo:1
            name: demo:1
            store: {store}
        ''').format(open=OPEN, store=STORE)
    tasks = four_times(pull) + textwrap.dedent('''\
        - name: The pull matches the pushed image
          ansible.builtin.assert:
            that:
              - pulled_1.manifest_digest == '{manifest}'
              - pulled_1.diff_ids == {diff_ids}
              - pulled_1.layers | length == 2
              - pulled_1.reference == '{ip}:5000/ndl/demo:1'
        - name: A container root on the pulled layers
          nodocker.lab.overlay:
            path: {roots}/merged
            lower: "{{{{ pulled_1.layers }}}}"
            upper: {roots}/upper
            work: {roots}/work
        ''').format(manifest=lab['images']['demo_manifest'],
                    diff_ids=json.dumps(lab['images']['demo_diff_ids']), ip=REG_IP,
                    roots=ROOTS)
    p = play(lab, 'pull-open', tasks)
    assert p.returncode == 0, p.stdout[-20000:]
    h = lab['puller']
    merged = ROOTS + '/merged'
    try:
        assert h.file(merged + '/etc/hello').content_string == 'hello from layer 1\n'
        assert h.file(merged + '/etc/added').content_string == 'added by layer 2\n'
        assert h.file(merged + '/usr/bin/hello').linked_to == merged + '/etc/hello'
        # deleted by the image's top layer: hidden in the container root ...
        assert not h.file(merged + '/usr/share/doomed').exists
        assert h.file(merged + '/usr/share').is_directory
        # ... because layer 2 holds a whiteout (0:0 char device) over layer 1's file
        top, bottom = [STORE + '/layers/sha256/' + d.split(':')[1]
                       for d in reversed(lab['images']['demo_diff_ids'])]
        assert run_ok(h, "stat -c '%%F %%t:%%T' %s/usr/share/doomed" % top).strip() == \
            'character special file 0:0'
        assert h.file(bottom + '/usr/share/doomed').exists
    finally:
        cleanup = play(lab, 'pull-open-cleanup', textwrap.dedent('''\
            - name: Unmount the container root
              nodocker.lab.overlay:
                path: {roots}/merged
                state: unmounted
            - name: Forget the image
              nodocker.lab.image:
                name: demo:1
                store: {store}
                state: absent
            ''').format(roots=ROOTS, store=STORE))
        assert cleanup.returncode == 0, cleanup.stdout[-5000:]
    assert not h.file(top).exists


def test_pull_by_digest_and_platform_pick(lab):
    h = lab['puller']
    tasks = four_times(textwrap.dedent('''\
        - name: NAME
          nodocker.lab.image:
            pull: {open}/ndl/demo@{manifest}
            store: {store}
        ''').format(open=OPEN, manifest=lab['images']['demo_manifest'], store=STORE),
        register='bydigest') + four_times(textwrap.dedent('''\
        - name: NAME
          nodocker.lab.image:
            pull: {open}/ndl/multi:1
            name: multi:1
            store: {store}
        ''').format(open=OPEN, store=STORE), register='multi') + textwrap.dedent('''\
        - name: The linux/amd64 manifest was picked from the index
          ansible.builtin.assert:
            that:
              - multi_1.manifest_digest == '{amd}'
              - bydigest_1.name == '{ip}:5000/ndl/demo@{manifest}'
        - name: Forget both images
          nodocker.lab.image:
            name: "{{{{ item }}}}"
            store: {store}
            state: absent
          loop: ["{{{{ bydigest_1.name }}}}", multi:1]
        ''').format(amd=lab['images']['amd_manifest'], ip=REG_IP,
                    manifest=lab['images']['demo_manifest'], store=STORE)
    p = play(lab, 'pull-digest', tasks)
    assert p.returncode == 0, p.stdout[-20000:]
    assert run_ok(h, 'ls -A %s/layers/sha256' % STORE).strip() == ''


def test_pull_with_token_auth(lab):
    pull = textwrap.dedent('''\
        - name: NAME
          nodocker.lab.image:
            pull: {auth}/ndl/demo:1
            name: demo-auth:1
            store: {store}
            registry_username: {user}
            registry_password: {password}
        ''').format(auth=AUTH, store=STORE, user=USER, password=PASSWORD)
    tasks = four_times(pull, register='authed') + textwrap.dedent('''\
        - name: Forget the image
          nodocker.lab.image:
            name: demo-auth:1
            store: {store}
            state: absent
        ''').format(store=STORE)
    p = play(lab, 'pull-token', tasks)
    assert p.returncode == 0, p.stdout[-20000:]
    # the registry really asked: the token server saw authenticated requests
    log = run_ok(lab['registry'], 'cat %s/token.log' % RUN)
    assert 'scope=repository%3Andl%2Fdemo%3Apull' in log and 'auth=True' in log, log


def test_pull_over_tls_with_a_private_ca(lab):
    """HTTPS: the throwaway CA's certificate verifies only with ca_path; without it (the
    system's CAs), or with an unrelated CA, the pull fails before anything is written;
    validate_certs=false pulls without checking."""
    tls, h = lab['tls'], lab['puller']
    ref = TLS + '/ndl/tls:1'
    untrusted = [
        ('system CAs only', dict(), 'unable to get local issuer certificate'),
        ('an unrelated CA', dict(ca_path=tls['other_ca']), 'CA certificates in ca_path %s' % tls['other_ca']),
        ('ca_path not a file', dict(ca_path=tls['ca'] + '.missing'), 'is not a file'),
        ('ca_path not PEM', dict(ca_path=os.path.join(os.path.dirname(tls['ca']), 'server.ext')),
         'cannot load CA certificates'),
    ]
    tasks = ''
    for i, (what, args, _msg) in enumerate(untrusted):
        tasks += textwrap.dedent('''\
            - name: Untrusted - {what}
              nodocker.lab.image: {args}
              register: untrusted_{i}
              ignore_errors: true
            ''').format(what=what, i=i, args=json.dumps(dict(args, pull=ref, name='tls:1',
                                                             store=STORE)))
    tasks += textwrap.dedent('''\
        - name: Failed, before any command
          ansible.builtin.assert:
            that:
              - lookup('vars', 'untrusted_' ~ item) is failed
              - lookup('vars', 'untrusted_' ~ item).commands == []
          loop: {loop}
        - name: Results
          ansible.builtin.debug:
            msg: "{{{{ [{results}] | map(attribute='msg') | list }}}}"
        ''').format(loop=list(range(len(untrusted))),
                    results=', '.join('untrusted_%d' % i for i in range(len(untrusted))))
    p = play(lab, 'pull-tls-untrusted', tasks)
    assert p.returncode == 0, p.stdout[-20000:]
    assert 'ignored=%d' % len(untrusted) in p.stdout, p.stdout[-5000:]
    for what, _args, msg in untrusted:
        assert msg in p.stdout, (what, msg, p.stdout[-8000:])
    assert ('TLS certificate verification failed for https://%s/v2/ndl/tls/manifests/1' % TLS
            in p.stdout and 'give the CA' in p.stdout), p.stdout[-8000:]
    # nothing written: no ref, no layer
    assert not h.file(STORE + '/refs').exists or run_ok(h, 'ls -A %s/refs' % STORE).strip() == ''
    assert not h.file(STORE + '/layers/sha256').exists or \
        run_ok(h, 'ls -A %s/layers/sha256' % STORE).strip() == ''

    trusted = textwrap.dedent('''\
        - name: NAME
          nodocker.lab.image:
            pull: {ref}
            name: tls:1
            store: {store}
            ca_path: {ca}
        ''').format(ref=ref, store=STORE, ca=tls['ca'])
    unchecked = textwrap.dedent('''\
        - name: NAME
          nodocker.lab.image:
            pull: {ref}
            name: tls-unchecked:1
            store: {store}
            validate_certs: false
        ''').format(ref=ref, store=STORE)
    forget = textwrap.dedent('''\
        - name: Forget {name}
          nodocker.lab.image:
            name: {name}
            store: {store}
            state: absent
        ''')
    tasks = four_times(trusted, register='trusted') + textwrap.dedent('''\
        - name: The pull over HTTPS matches the pushed image
          ansible.builtin.assert:
            that:
              - trusted_1.manifest_digest == '{manifest}'
              - trusted_1.diff_ids == {diff_ids}
              - trusted_1.new_layers | length == 2
              - trusted_1.reference == '{ref}'
              - trusted_1.commands | select('search', 'curl ') | list ==
                trusted_1.commands | select('search', 'curl -fsSL --cacert {ca} ') | list
              - trusted_1.commands | select('search', 'curl -fsSL --cacert ') | list | length >= 2
            fail_msg: "{{{{ trusted_1.commands }}}}"
        ''').format(manifest=lab['images']['tls_manifest'], ref=ref, ca=tls['ca'],
                    diff_ids=json.dumps(lab['images']['demo_diff_ids'])) + \
        forget.format(name='tls:1', store=STORE) + \
        four_times(unchecked, register='unchecked') + textwrap.dedent('''\
        - name: The unchecked pull downloaded the layers again
          ansible.builtin.assert:
            that:
              - unchecked_1.manifest_digest == '{manifest}'
              - unchecked_1.new_layers | length == 2
              # every download as curl -k (the config too, unless kept from an earlier pull)
              - unchecked_1.commands | select('search', 'curl ') | list ==
                unchecked_1.commands | select('search', 'curl -fsSL -k ') | list
              - unchecked_1.commands | select('search', 'curl -fsSL -k ') | list | length >= 2
            fail_msg: "{{{{ unchecked_1.commands }}}}"
        ''').format(manifest=lab['images']['tls_manifest']) + \
        forget.format(name='tls-unchecked:1', store=STORE)
    p = play(lab, 'pull-tls', tasks)
    assert p.returncode == 0, p.stdout[-20000:]
    assert run_ok(h, 'ls -A %s/layers/sha256' % STORE).strip() == ''


BAD = [
    ('no credentials for the token server', dict(pull=AUTH + '/ndl/demo:1'),
     'token server'),
    ('wrong password', dict(pull=AUTH + '/ndl/demo:1', registry_username=USER,
                            registry_password='wrong'), 'check the credentials'),
    ('unknown tag', dict(pull=OPEN + '/ndl/demo:nope'), 'HTTP 404'),
    ('unknown digest', dict(pull=OPEN + '/ndl/demo@sha256:' + '0' * 64), 'HTTP 404'),
    ('bad reference', dict(pull=OPEN + '/NDL/Demo:1'), 'invalid repository name'),
    ('bad digest syntax', dict(pull=OPEN + '/ndl/demo@sha256:abc'), 'sha256:<64 hex'),
    ('nobody listening', dict(pull='http://%s:5999/ndl/demo:1' % REG_IP), 'cannot reach'),
    ('src and pull together', dict(pull=OPEN + '/ndl/demo:1', src='/nonexistent'),
     'mutually exclusive'),
]


def test_bad_pulls_fail_clearly_and_write_nothing(lab):
    tasks = ''
    for i, (what, args, _msg) in enumerate(BAD):
        args = dict(args, name='bad:%d' % i, store=STORE)
        tasks += textwrap.dedent('''\
            - name: Bad pull - {what}
              nodocker.lab.image: {args}
              register: bad_{i}
              ignore_errors: true
            ''').format(what=what, args=json.dumps(args), i=i)
    tasks += '- name: Results\n  ansible.builtin.debug:\n    msg: "{{ [%s] | map(attribute=\'msg\') | list }}"\n' \
        % ', '.join('bad_%d' % i for i in range(len(BAD)))
    p = play(lab, 'pull-bad', tasks)
    assert p.returncode == 0, p.stdout[-20000:]
    assert 'failed=0' in p.stdout and 'ignored=%d' % len(BAD) in p.stdout, p.stdout[-5000:]
    for what, _args, msg in BAD:
        assert msg in p.stdout, (what, msg, p.stdout[-8000:])
    h = lab['puller']
    assert not h.file(STORE + '/refs').exists or run_ok(h, 'ls -A %s/refs' % STORE).strip() == ''
    assert not h.file(STORE + '/layers/sha256').exists or \
        run_ok(h, 'ls -A %s/layers/sha256' % STORE).strip() == ''


def test_ch05_role_pulls_its_image_from_the_registry(lab):
    """Chapter 5 with the course's `docker create nginx` replaced by a pull."""
    pb = os.path.join(ansible_run.ROOT, 'playbooks', 'ch05_overlayfs.yml')
    common = ('-e', 'nodocker_hosts=puller', '-e', 'ch05_image_name=demo:1',
              '-e', 'ch05_image_pull=%s/ndl/demo:1' % OPEN)
    h = lab['puller']
    merged = '/var/lib/nodocker-lab/ch05/containers/img1/merged'
    try:
        p = ansible_run.playbook(pb, lab['inventory'], *common, check=False)
        assert p.returncode == 0, p.stdout[-20000:]
        again = ansible_run.playbook(pb, lab['inventory'], *common, check=False)
        assert again.returncode == 0 and 'changed=0' in again.stdout, again.stdout[-5000:]
        assert h.file(merged + '/etc/added').content_string == 'added by layer 2\n'
        assert not h.file(merged + '/usr/share/doomed').exists
        assert not h.file('/var/lib/nodocker-lab/ch05/ch05-image.tar').exists  # pulled, not built
    finally:
        reset = ansible_run.playbook(pb, lab['inventory'], *(common + ('-e', 'ch05_state=absent')),
                                     check=False)
        assert reset.returncode == 0, reset.stdout[-5000:]
    assert not h.file('/var/lib/nodocker-lab/ch05').exists
