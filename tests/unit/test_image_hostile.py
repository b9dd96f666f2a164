# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile image archives: each is rejected with a clear error, nothing written.

The archives are built here with tarfile. A check that "nothing was written"
looks at the whole store directory (and a canary next to it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'collections'))

from ansible_collections.nodocker.lab.plugins.module_utils import _image  # noqa: E402


# ------------------------------------------------------------------ builders

def entry(name, kind='file', data=b'', target=None, mode=None, pax=None, dev=(0, 0)):
    return dict(name=name, kind=kind, data=data, target=target, mode=mode, pax=pax, dev=dev)


def layer_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e['name'])
            ti.mtime = 1700000000
            if e['kind'] == 'file':
                ti.size = len(e['data'])
                ti.mode = e['mode'] or 0o644
            elif e['kind'] == 'dir':
                ti.type, ti.mode = tarfile.DIRTYPE, e['mode'] or 0o755
            elif e['kind'] == 'symlink':
                ti.type, ti.linkname = tarfile.SYMTYPE, e['target']
            elif e['kind'] == 'hardlink':
                ti.type, ti.linkname = tarfile.LNKTYPE, e['target']
            elif e['kind'] in ('chr', 'blk'):
                ti.type = tarfile.CHRTYPE if e['kind'] == 'chr' else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = e['dev']
            if e['pax']:
                ti.pax_headers = e['pax']
            tf.addfile(ti, io.BytesIO(e['data']) if e['kind'] == 'file' else None)
    return buf.getvalue()


def sha(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def docker_archive(path, layers, tag='test/img:1', gz=False, diff_ids=None,
                   config_name=None, mangle=None):
    """A `docker save` archive (legacy layout) with the given layer tars."""
    blobs = [gzip.compress(lt, mtime=0) if gz else lt for lt in layers]
    config = json.dumps({'architecture': 'amd64', 'os': 'linux',
                         'config': {'Cmd': ['/bin/sh']},
                         'rootfs': {'type': 'layers',
                                    'diff_ids': diff_ids or [sha(lt) for lt in layers]}}).encode()
    cfg_name = config_name or (sha(config)[7:] + '.json')
    names = ['%s/layer.tar' % sha(b)[7:] for b in blobs]
    manifest = json.dumps([{'Config': cfg_name, 'RepoTags': [tag], 'Layers': names}]).encode()
    files = [('manifest.json', manifest), (cfg_name, config)] + list(zip(names, blobs))
    if mangle:
        files = mangle(files)
    with tarfile.open(path, 'w') as tf:
        for n, data in files:
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def oci_archive(path, layers, ref='test/oci:1', gz=True, mangle_blob=None):
    """An OCI image layout archive (index.json -> manifest -> config + layers)."""
    blobs = {}

    def add(data):
        blobs['blobs/sha256/' + sha(data)[7:]] = data
        return sha(data)
    layer_descs = []
    for lt in layers:
        blob = gzip.compress(lt, mtime=0) if gz else lt
        layer_descs.append({'mediaType': 'application/vnd.oci.image.layer.v1.tar' +
                            ('+gzip' if gz else ''), 'digest': add(blob), 'size': len(blob)})
    config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {},
                         'rootfs': {'type': 'layers',
                                    'diff_ids': [sha(lt) for lt in layers]}}).encode()
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': _image.OCI_MANIFEST,
                           'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                                      'digest': add(config), 'size': len(config)},
                           'layers': layer_descs}).encode()
    mdig = add(manifest)
    index = json.dumps({'schemaVersion': 2, 'manifests': [
        {'mediaType': _image.OCI_MANIFEST, 'digest': mdig, 'size': len(manifest),
         'annotations': {'org.opencontainers.image.ref.name': ref}}]}).encode()
    files = [('oci-layout', b'{"imageLayoutVersion": "1.0.0"}'), ('index.json', index)]
    files += sorted(blobs.items())
    if mangle_blob:
        files = [(n, mangle_blob(n, d)) for n, d in files]
    with tarfile.open(path, 'w') as tf:
        for n, data in files:
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = dict(src=None, name=None, store=None, state='present')
        self.params.update(params)
        self.check_mode = check_mode

    def fail_json(self, msg, **kw):
        raise Failed(msg)


def run(store, src, name=None, check_mode=False, state='present'):
    return _image.run_image(FakeModule(check_mode=check_mode, src=str(src), name=name,
                                       store=str(store), state=state))


GOOD = [entry('etc', 'dir'), entry('etc/hostname', data=b'ok\n')]


def assert_rejected(tmp_path, layers, pattern, **kw):
    store = tmp_path / 'store'
    canary = tmp_path / 'canary'
    src = docker_archive(str(tmp_path / 'img.tar'), [layer_tar(x) for x in layers], **kw)
    with pytest.raises(Failed, match=pattern):
        run(store, src)
    assert not store.exists(), 'a hostile archive wrote into the store'
    assert not canary.exists()


# ------------------------------------------------------------------ hostile

def test_absolute_path(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('/etc/passwd', data=b'x')]], 'absolute path')


def test_dotdot_component(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('etc/../../canary', data=b'x')]], r'"\.\." component')


def test_symlink_leading_outside(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('etc/up', 'symlink', target='../../canary')]],
                    'leads outside the layer')


def test_hardlink_leading_outside(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('etc/hl', 'hardlink', target='../canary')]],
                    'hard link .* leads outside|".." component')


def test_hardlink_to_absolute_host_file(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('etc/shadow', 'hardlink', target='/etc/shadow')]],
                    'hard link')


def test_hardlink_to_missing_member(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('etc/hl', 'hardlink', target='etc/nothing')]],
                    'earlier regular file')


def test_write_through_planted_symlink(tmp_path):
    # an absolute symlink is allowed by itself; writing through it is not
    assert_rejected(tmp_path, [GOOD + [entry('evil', 'symlink', target='/'),
                                       entry('evil/canary', data=b'pwned')]],
                    'written through the symlink')


def test_write_through_planted_dir_symlink_in_same_layer(tmp_path):
    assert_rejected(tmp_path, [[entry('a', 'dir'), entry('a/b', 'symlink', target='.'),
                                entry('a/b/c', data=b'x')]], 'written through the symlink')


def test_char_device(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('dev/kmem', 'chr', dev=(1, 2))]], 'device node')


def test_block_device(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('dev/sda', 'blk', dev=(8, 0))]], 'device node')


def test_overlay_xattr_smuggled(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('etc/x', 'dir', pax={
        'SCHILY.xattr.trusted.overlay.redirect': '/etc'})]], 'overlayfs xattr')


def test_layer_digest_mismatch(tmp_path):
    lt = layer_tar(GOOD)
    assert_rejected(tmp_path, [GOOD], 'digest mismatch',
                    diff_ids=[sha(lt + b'\0' * 512)])


def test_config_digest_mismatch(tmp_path):
    assert_rejected(tmp_path, [GOOD], 'digest mismatch', config_name='0' * 64 + '.json')


def test_truncated_layer(tmp_path):
    lt = layer_tar(GOOD + [entry('big', data=b'A' * 10000)])
    cut = lt[:2048]
    store = tmp_path / 'store'
    src = docker_archive(str(tmp_path / 'img.tar'), [cut], diff_ids=[sha(lt)])
    with pytest.raises(Failed, match='truncated|corrupt|mismatch'):
        run(store, src)
    assert not store.exists()


def test_truncated_gzip_layer(tmp_path):
    lt = layer_tar(GOOD + [entry('big', data=os.urandom(20000))])
    gz = gzip.compress(lt)
    src = docker_archive(str(tmp_path / 'img.tar'), [gz[:len(gz) // 2]], diff_ids=[sha(lt)])
    with pytest.raises(Failed, match='truncated|corrupt'):
        run(tmp_path / 'store', src)
    assert not (tmp_path / 'store').exists()


def test_truncated_outer_archive(tmp_path):
    src = docker_archive(str(tmp_path / 'img.tar'), [layer_tar(GOOD)])
    data = open(src, 'rb').read()
    with open(src, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(Failed, match='cannot read|truncated|no member|corrupt'):
        run(tmp_path / 'store', src)
    assert not (tmp_path / 'store').exists()


def test_oci_blob_digest_mismatch(tmp_path):
    def flip(name, data):
        if name.startswith('blobs/') and data[:2] == b'\x1f\x8b':
            return gzip.compress(layer_tar(GOOD + [entry('etc/evil', data=b'x')]))
        return data
    src = oci_archive(str(tmp_path / 'oci.tar'), [layer_tar(GOOD)], mangle_blob=flip)
    with pytest.raises(Failed, match='digest mismatch'):
        run(tmp_path / 'store', src)
    assert not (tmp_path / 'store').exists()


def test_hostile_second_layer_leaves_first_unwritten(tmp_path):
    assert_rejected(tmp_path, [GOOD, [entry('/abs', data=b'x')]], 'absolute path')


def test_fewer_diff_ids_than_layers(tmp_path):
    assert_rejected(tmp_path, [GOOD, GOOD + [entry('x')]], 'diff_ids',
                    diff_ids=[sha(layer_tar(GOOD))])
