# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Importing good archives: layers shared, whiteouts, idempotence, removal."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from tests.unit.test_image_hostile import (GOOD, docker_archive, entry, layer_tar,
                                           oci_archive, run)

BASE = GOOD + [entry('bin', 'dir'), entry('bin/tool', data=b'#!/bin/sh\n', mode=0o4755),
               entry('bin/link', 'symlink', target='tool'),
               entry('bin/hard', 'hardlink', target='bin/tool'),
               entry('gone', 'dir'), entry('gone/file', data=b'x'),
               entry('etc/cap', pax={'SCHILY.xattr.user.note': 'kept'})]
TOP = [entry('etc', 'dir'), entry('etc/.wh.hostname'), entry('gone', 'dir'),
       entry('gone/.wh..wh..opq'), entry('gone/new', data=b'n')]


@pytest.mark.parametrize('gz', [False, True])
def test_docker_archive_import_idempotent(tmp_path, gz):
    store = tmp_path / 'store'
    src = docker_archive(str(tmp_path / 'img.tar'), [layer_tar(BASE), layer_tar(TOP)], gz=gz)
    check = run(store, src, 'test/img:1', check_mode=True)
    assert check['changed'] and not store.exists()
    r = run(store, src, 'test/img:1')
    assert r['changed'] and len(r['new_layers']) == 2
    assert r['layers'][0].endswith(r['diff_ids'][1][7:])  # top first
    again = run(store, src, 'test/img:1')
    assert not again['changed'] and again['commands'] == []
    base, top = r['layers'][1], r['layers'][0]
    st = os.lstat(os.path.join(base, 'bin/tool'))
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_nlink == 2
    assert os.readlink(os.path.join(base, 'bin/link')) == 'tool'
    assert os.getxattr(os.path.join(base, 'etc/cap'), 'user.note') == b'kept'
    wh = os.lstat(os.path.join(top, 'etc/hostname'))
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert os.getxattr(os.path.join(top, 'gone'), 'trusted.overlay.opaque') == b'y'
    assert not os.path.exists(os.path.join(top, 'gone/.wh..wh..opq'))


def test_layers_shared_between_images(tmp_path):
    store = tmp_path / 'store'
    a = docker_archive(str(tmp_path / 'a.tar'), [layer_tar(BASE)], tag='a:1')
    b = oci_archive(str(tmp_path / 'b.tar'), [layer_tar(BASE), layer_tar(TOP)], ref='b:1')
    ra = run(store, a, 'a:1')
    rb = run(store, b, 'b:1')
    assert len(rb['new_layers']) == 1  # the base layer is already there
    assert rb['layers'][1] == ra['layers'][0]
    gone = run(store, a, 'a:1', state='absent')
    assert gone['changed'] and os.path.isdir(ra['layers'][0])  # still used by b:1
    run(store, b, 'b:1', state='absent')
    assert not os.path.exists(ra['layers'][0])
    assert not run(store, b, 'b:1', state='absent')['changed']


@pytest.mark.skipif(os.geteuid() != 0, reason='setting owners needs root')
def test_owners_modes_and_times_survive_extraction(tmp_path):
    entries = [entry('home', 'dir', mode=0o755), entry('home/u', 'dir', mode=0o2750, uid=1000,
                                                       gid=1001),
               entry('home/u/suid', data=b'x', mode=0o4755, uid=1000, gid=1001),
               entry('home/u/l', 'symlink', target='suid', uid=1002, gid=1003),
               entry('home/u/p', 'fifo', mode=0o620, uid=1004, gid=1005),
               entry('home/u/h', 'hardlink', target='home/u/suid')]
    src = docker_archive(str(tmp_path / 'img.tar'), [layer_tar(entries)])
    layer = run(tmp_path / 'store', src)['layers'][0]

    def owner_mode(rel):
        st = os.lstat(os.path.join(layer, rel))
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
    assert owner_mode('home') == (0, 0, 0o755)
    assert owner_mode('home/u') == (1000, 1001, 0o2750)
    assert owner_mode('home/u/suid') == (1000, 1001, 0o4755)  # chown did not clear setuid
    assert owner_mode('home/u/l')[:2] == (1002, 1003)
    assert owner_mode('home/u/p') == (1004, 1005, 0o620)
    assert os.lstat(os.path.join(layer, 'home/u/h')).st_ino == \
        os.lstat(os.path.join(layer, 'home/u/suid')).st_ino
    for rel in ('home', 'home/u', 'home/u/suid', 'home/u/l', 'home/u/p'):
        assert os.lstat(os.path.join(layer, rel)).st_mtime == 1700000000, rel


def test_failed_import_leaves_no_empty_store(tmp_path, monkeypatch):
    from tests.unit.test_image_hostile import Failed
    from ansible_collections.nodocker.lab.plugins.module_utils import _image, _layers

    def broken(fileobj, dest, diffid):
        with open(os.path.join(dest, 'partial'), 'w'):
            pass
        raise _layers.LayerError('disk on fire')
    monkeypatch.setattr(_image, 'extract_layer', broken)
    src = docker_archive(str(tmp_path / 'img.tar'), [layer_tar(BASE)])
    with pytest.raises(Failed, match='disk on fire'):
        run(tmp_path / 'store' / 'deeper', src)
    assert not (tmp_path / 'store').exists()


def test_unknown_name(tmp_path):
    from tests.unit.test_image_hostile import Failed
    src = docker_archive(str(tmp_path / 'a.tar'), [layer_tar(BASE)], tag='a:1')
    with pytest.raises(Failed, match="not in the archive"):
        run(tmp_path / 'store', src, 'nope:1')


# --- registry client: references, the 401 -> token dance, digests, platform pick -------------
# No sockets: the client's opener is replaced by a fake registry in memory.

import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
from urllib.error import HTTPError  # noqa: E402

from ansible_collections.nodocker.lab.plugins.module_utils import _registry_client as rc  # noqa: E402


@pytest.mark.parametrize('text,registry,name,tag,digest,scheme', [
    ('nginx', rc.DOCKER_HUB, 'library/nginx', 'latest', None, 'https'),
    ('nginx:1.25', rc.DOCKER_HUB, 'library/nginx', '1.25', None, 'https'),
    ('team/app', rc.DOCKER_HUB, 'team/app', 'latest', None, 'https'),
    ('localhost/app:2', 'localhost', 'app', '2', None, 'https'),
    ('http://192.168.104.2:5000/ndl/demo:1', '192.168.104.2:5000', 'ndl/demo', '1', None, 'http'),
    ('reg.example.com/a/b@sha256:' + 'a' * 64, 'reg.example.com', 'a/b', None,
     'sha256:' + 'a' * 64, 'https'),
])
def test_reference_parsing(text, registry, name, tag, digest, scheme):
    ref = rc.Reference(text)
    assert (ref.registry, ref.name, ref.tag, ref.digest, ref.scheme) == \
        (registry, name, tag, digest, scheme)


@pytest.mark.parametrize('text', ['Upper/Case', 'a/b@sha256:abc', 'a:b:c:', 'a/b:bad tag', ''])
def test_bad_references_are_refused(text):
    with pytest.raises(rc.RegistryError):
        rc.Reference(text)


def test_parse_challenge():
    scheme, params = rc.parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
    assert scheme == 'bearer'
    assert params == {'realm': 'https://auth.example/token', 'service': 'reg',
                      'scope': 'repository:a/b:pull'}


class _Resp(io.BytesIO):
    def __init__(self, data, headers=None):
        super().__init__(data)
        self.headers = headers or {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeRegistry:
    """Answers like a registry that wants a Bearer token from its realm."""

    def __init__(self, blobs, manifests, token='T0K', creds=None):
        self.blobs, self.manifests, self.token, self.creds = blobs, manifests, token, creds
        self.requests = []

    def open(self, req, timeout=None):
        url, auth = req.full_url, req.get_header('Authorization')
        self.requests.append((url, auth))
        if url.startswith('https://auth.example/token'):
            if self.creds and auth != self.creds:
                raise HTTPError(url, 401, 'Unauthorized', {}, io.BytesIO(b''))
            return _Resp(json.dumps({'token': self.token}).encode())
        if auth != 'Bearer ' + self.token:
            raise HTTPError(url, 401, 'Unauthorized', {
                'WWW-Authenticate': 'Bearer realm="https://auth.example/token",service="reg",'
                                    'scope="repository:ndl/demo:pull"'}, io.BytesIO(b''))
        ref = url.rsplit('/', 1)[1]
        if '/manifests/' in url and ref in self.manifests:
            mt, data = self.manifests[ref]
            return _Resp(data, {'Content-Type': mt})
        if '/blobs/' in url and ref in self.blobs:
            return _Resp(self.blobs[ref])
        raise HTTPError(url, 404, 'Not Found', {}, io.BytesIO(b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"x"}]}'))


def _digest(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def _registry(layer=b'layer-bytes', corrupt_blob=False):
    config = b'{"rootfs":{"diff_ids":[]}}'
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': rc.OCI_MANIFEST,
                           'config': {'digest': _digest(config)},
                           'layers': [{'digest': _digest(layer), 'mediaType': 'x.tar'}]}).encode()
    arm = json.dumps({'schemaVersion': 2, 'mediaType': rc.OCI_MANIFEST,
                      'config': {'digest': _digest(b'arm')}, 'layers': []}).encode()
    index = json.dumps({'schemaVersion': 2, 'mediaType': rc.OCI_INDEX, 'manifests': [
        {'digest': _digest(arm), 'platform': {'os': 'linux', 'architecture': 'arm64'}},
        {'digest': _digest(manifest), 'platform': {'os': 'linux', 'architecture': 'amd64'}},
    ]}).encode()
    manifests = {'1': (rc.OCI_INDEX, index), _digest(manifest): (rc.OCI_MANIFEST, manifest),
                 _digest(arm): (rc.OCI_MANIFEST, arm)}
    blobs = {_digest(config): config, _digest(layer): b'evil' if corrupt_blob else layer}
    return FakeRegistry(blobs, manifests), manifest, layer


def _client(fake, **kw):
    c = rc.RegistryClient('reg.example/ndl/demo:1', **kw)
    c.opener = fake
    return c


def test_token_flow_and_platform_pick(monkeypatch):
    monkeypatch.setattr(rc, 'local_arch', lambda: 'amd64')
    fake, manifest, _layer = _registry()
    c = _client(fake)
    doc, digest = c.resolve()
    assert digest == _digest(manifest) and len(doc['layers']) == 1
    token_calls = [u for u, _a in fake.requests if 'auth.example' in u]
    assert len(token_calls) == 1 and 'scope=repository%3Andl%2Fdemo%3Apull' in token_calls[0]
    assert c.auth == 'Bearer T0K'


def test_token_server_gets_basic_credentials():
    fake, _m, _l = _registry()
    fake.creds = 'Basic ' + __import__('base64').b64encode(b'u:p').decode()
    with pytest.raises(rc.RegistryError, match='check the credentials'):
        _client(fake, username='u', password='wrong').resolve()
    _client(fake, username='u', password='p').blob_bytes(
        _digest(b'{"rootfs":{"diff_ids":[]}}'))


def test_manifest_digest_mismatch_is_refused(monkeypatch):
    monkeypatch.setattr(rc, 'local_arch', lambda: 'amd64')
    fake, manifest, _layer = _registry()
    fake.manifests[_digest(manifest)] = (rc.OCI_MANIFEST, manifest + b' ')
    with pytest.raises(rc.RegistryError, match='digest mismatch'):
        _client(fake).resolve()


def test_no_manifest_for_this_platform(monkeypatch):
    monkeypatch.setattr(rc, 'local_arch', lambda: 's390x')
    fake, _m, _l = _registry()
    with pytest.raises(rc.RegistryError, match='no image for linux/s390x'):
        _client(fake).resolve()


def test_corrupt_blob_is_refused_and_removed(tmp_path):
    fake, _m, layer = _registry(corrupt_blob=True)
    path = str(tmp_path / 'blob')
    with pytest.raises(rc.RegistryError, match='digest mismatch'):
        _client(fake).blob_to_file(_digest(layer), path)
    assert not os.path.exists(path)


def test_unknown_manifest_reports_the_registry_error():
    fake, _m, _l = _registry()
    c = rc.RegistryClient('reg.example/ndl/demo:nope')
    c.opener = fake
    with pytest.raises(rc.RegistryError, match='HTTP 404.*MANIFEST_UNKNOWN'):
        c.resolve()


def test_failed_pull_leaves_no_empty_store(tmp_path, monkeypatch):
    from tests.unit.test_image_hostile import Failed, FakeModule, sha
    from ansible_collections.nodocker.lab.plugins.module_utils import _image
    layer = layer_tar(BASE)
    config = json.dumps({'rootfs': {'type': 'layers', 'diff_ids': [sha(layer)]}}).encode()
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': rc.OCI_MANIFEST,
                           'config': {'digest': _digest(config)},
                           'layers': [{'digest': _digest(layer),
                                       'mediaType': rc.OCI_MANIFEST[:-len('manifest.v1+json')] +
                                       'layer.v1.tar'}]}).encode()
    fake = FakeRegistry({_digest(config): config, _digest(layer): b'not the layer'},
                        {'1': (rc.OCI_MANIFEST, manifest)})

    def client(ref, **kw):
        c = rc.RegistryClient(ref, **kw)
        c.opener = fake
        return c
    monkeypatch.setattr(_image, 'RegistryClient', client)
    store = tmp_path / 'store'
    module = FakeModule(store=str(store), pull='reg.example/ndl/demo:1', registry_username=None,
                        registry_password=None, validate_certs=True, timeout=5)
    with pytest.raises(Failed, match='digest mismatch'):
        _image.run_image(module)
    assert any('/blobs/' in u for u, _a in fake.requests)  # it got as far as downloading
    assert not store.exists()


@pytest.mark.parametrize('short,full', [
    ('nginx', 'docker.io/library/nginx:latest'),
    ('nginx:1.25', 'docker.io/library/nginx:1.25'),
    ('me/app:1', 'docker.io/me/app:1'),
    ('docker.io/library/nginx:1.25', 'docker.io/library/nginx:1.25'),
    ('index.docker.io/library/nginx', 'docker.io/library/nginx:latest'),
    ('docker.io/nginx', 'docker.io/library/nginx:latest'),
    ('index.docker.io/nginx:1', 'docker.io/library/nginx:1'),
    ('localhost/app', 'localhost/app:latest'),
    ('registry.local:5000/app', 'registry.local:5000/app:latest'),
    ('registry.local:5000/team/app:2', 'registry.local:5000/team/app:2'),
    ('nginx@sha256:' + 'a' * 64, 'docker.io/library/nginx@sha256:' + 'a' * 64),
])
def test_image_names_match_as_docker_spells_them(short, full):
    from ansible_collections.nodocker.lab.plugins.module_utils._image import normalized_name
    assert normalized_name(short) == full
