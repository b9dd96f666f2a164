# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile image archives: each is rejected with a clear error, nothing written.

The archives are built here with tarfile. A check that "nothing was written"
looks at the whole store directory, and at a canary directory next to it
(outside the store) that the hostile layers aim at by absolute path: its
mode, owner, content, inode, link count, xattrs and ctime must not change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'collections'))

from ansible_collections.nodocker.lab.plugins.module_utils import _image  # noqa: E402


# ------------------------------------------------------------------ builders

def entry(name, kind='file', data=b'', target=None, mode=None, pax=None, dev=(0, 0),
          uid=0, gid=0):
    return dict(name=name, kind=kind, data=data, target=target, mode=mode, pax=pax, dev=dev,
                uid=uid, gid=gid)


def layer_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e['name'])
            ti.mtime = 1700000000
            ti.uid, ti.gid = e.get('uid', 0), e.get('gid', 0)
            if e['kind'] == 'file':
                ti.size = len(e['data'])
                ti.mode = e['mode'] or 0o644
            elif e['kind'] == 'dir':
                ti.type, ti.mode = tarfile.DIRTYPE, e['mode'] or 0o755
            elif e['kind'] == 'symlink':
                ti.type, ti.linkname = tarfile.SYMTYPE, e['target']
            elif e['kind'] == 'hardlink':
                ti.type, ti.linkname = tarfile.LNKTYPE, e['target']
            elif e['kind'] == 'fifo':
                ti.type, ti.mode = tarfile.FIFOTYPE, e['mode'] or 0o644
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


def make_canary(tmp_path):
    """Files OUTSIDE the store that hostile layers aim at (by absolute path)."""
    canary = tmp_path / 'canary'
    if not canary.exists():
        (canary / 'sub').mkdir(parents=True)
        (canary / 'secret').write_bytes(b'canary secret\n')
        os.chmod(str(canary / 'secret'), 0o600)
        os.chmod(str(canary / 'sub'), 0o750)
        os.chmod(str(canary), 0o755)
    return canary


def snapshot(top):
    """Everything about every path below top that a hostile layer could change
    (ctime catches even a chmod/chown/xattr/link that restored the old value)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for n in [''] + dirnames + filenames:
            path = os.path.join(dirpath, n) if n else dirpath
            st = os.lstat(path)
            info = (st.st_mode, st.st_uid, st.st_gid, st.st_ino, st.st_nlink, st.st_size,
                    st.st_mtime_ns, st.st_ctime_ns,
                    sorted(os.listxattr(path, follow_symlinks=False)))
            if stat.S_ISREG(st.st_mode):
                with open(path, 'rb') as f:
                    info += (hashlib.sha256(f.read()).hexdigest(),)
            elif stat.S_ISLNK(st.st_mode):
                info += (os.readlink(path),)
            out[os.path.relpath(path, str(top))] = info
    return out


def assert_rejected(tmp_path, layers, pattern, **kw):
    store = tmp_path / 'store'
    canary = make_canary(tmp_path)
    src = docker_archive(str(tmp_path / 'img.tar'), [layer_tar(x) for x in layers], **kw)
    before = snapshot(tmp_path)
    assert 'canary/secret' in before
    with pytest.raises(Failed, match=pattern):
        run(store, src)
    assert not store.exists(), 'a hostile archive wrote into the store'
    assert snapshot(tmp_path) == before, 'a hostile archive changed something outside the store'
    assert oct(stat.S_IMODE(os.lstat(str(canary)).st_mode)) == oct(0o755)
    assert os.lstat(str(canary / 'secret')).st_nlink == 1


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


@pytest.mark.parametrize('pax,match', [
    ({'SCHILY.xattr.user.a\0b': 'x'}, 'malformed xattr name'),
    ({'SCHILY.xattr.nonamespace': 'x'}, 'malformed xattr name'),
    ({'uid': str(2 ** 40)}, 'outside 0..4294967294'),
    ({'mtime': '1e30'}, 'impossible modification time'),
], ids=['xattr-nul', 'xattr-no-namespace', 'uid-2**40', 'mtime-1e30'])
def test_metadata_the_kernel_cannot_take(tmp_path, pax, match):
    """Accepted by tar, refused by the kernel or by Python half-way through
    extraction: refused up front instead, with nothing written."""
    assert_rejected(tmp_path, [GOOD + [entry('etc/x', pax=pax)]], match)


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


# ------------------------------------------------------------------ escapes found in review
# Each of these got past the old validator and changed something outside the layer.

def test_dir_replaced_by_symlink_cannot_chmod_outside(tmp_path):
    # extraction used to chmod the directory's path last, through the symlink
    canary = make_canary(tmp_path)
    assert_rejected(tmp_path, [[entry('a', 'dir', mode=0o4777),
                                entry('a', 'symlink', target=str(canary))]],
                    'would replace the directory')


def test_deeper_dir_replaced_via_parent_symlink(tmp_path):
    canary = make_canary(tmp_path)
    assert_rejected(tmp_path, [[entry('a', 'dir'), entry('a/sub', 'dir', mode=0o777),
                                entry('a', 'symlink', target=str(canary))]],
                    'would replace the directory')


def test_dir_replaced_by_file_is_refused(tmp_path):
    assert_rejected(tmp_path, [[entry('a', 'dir'), entry('a/x', data=b'x'),
                                entry('a', data=b'file')]], 'would replace the directory')


def test_hardlink_through_replaced_dir_to_host_file(tmp_path):
    canary = make_canary(tmp_path)
    assert_rejected(tmp_path, [[entry('a', 'dir'), entry('a/secret', data=b'x'),
                                entry('a', 'symlink', target=str(canary)),
                                entry('g', 'hardlink', target='a/secret')]],
                    'would replace the directory')


def test_hardlink_through_whited_out_dir_to_host_file(tmp_path):
    # the whiteout legitimately removes a/ (and a/secret); a/ then becomes a symlink
    canary = make_canary(tmp_path)
    assert_rejected(tmp_path, [[entry('a', 'dir'), entry('a/secret', data=b'x'),
                                entry('.wh.a'), entry('a', 'symlink', target=str(canary)),
                                entry('g', 'hardlink', target='a/secret')]],
                    'through the symlink')


def test_hardlink_to_a_directory(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('g', 'hardlink', target='etc')]],
                    'earlier regular file')


def test_hardlink_to_symlink_pointing_out(tmp_path):
    canary = make_canary(tmp_path)
    assert_rejected(tmp_path, [GOOD + [entry('l', 'symlink', target=str(canary / 'secret')),
                                       entry('g', 'hardlink', target='l')]],
                    'earlier regular file')


def test_hardlink_to_relative_symlink_moved_up(tmp_path):
    # a/b/l -> ../.. stays inside from a/b, a hard link to it at the root would not
    assert_rejected(tmp_path, [[entry('a/b', 'dir'), entry('a/b/l', 'symlink', target='../..'),
                                entry('l2', 'hardlink', target='a/b/l')]],
                    'earlier regular file')


def test_hardlink_to_itself(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('g', data=b'x'), entry('g', 'hardlink', target='g')]],
                    'earlier regular file')


def test_entry_below_a_file(tmp_path):
    assert_rejected(tmp_path, [[entry('f', data=b'x'), entry('f/y', data=b'y')]],
                    'not a directory')


@pytest.mark.parametrize('name', ['.wh...', '.wh.', '.wh..', 'etc/.wh...', 'etc/.wh.'])
def test_whiteout_of_dot_dot_or_nothing(tmp_path, name):
    # .wh... once made extraction rmtree(<layer>/..)
    assert_rejected(tmp_path, [GOOD + [entry(name)]],
                    'a whiteout must name an entry of its directory')


def test_whiteout_messages_are_clear(tmp_path):
    assert_rejected(tmp_path, [GOOD + [entry('.wh...')]], r"whiteout '\.wh\.\.\.' .*'\.\.'")


# ------------------------------------------------------------------ accepted, but harmless
# Docker semantics that look like the escapes above: imported, nothing outside touched.

def _import_ok(tmp_path, entries):
    canary = make_canary(tmp_path)
    src = docker_archive(str(tmp_path / 'img.tar'), [layer_tar(entries)])
    before = snapshot(canary)
    r = run(tmp_path / 'store', src)
    assert snapshot(canary) == before, 'an import changed something outside the store'
    return r['layers'][0]


def test_symlink_replaced_by_dir(tmp_path):
    canary = make_canary(tmp_path)
    layer = _import_ok(tmp_path, [entry('a', 'symlink', target=str(canary)),
                                  entry('a', 'dir', mode=0o777), entry('a/x', data=b'x')])
    st = os.lstat(os.path.join(layer, 'a'))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o777
    assert not (canary / 'x').exists()


def test_file_replaced_by_dir_and_repeated_entries(tmp_path):
    layer = _import_ok(tmp_path, [entry('a', data=b'file'), entry('a', 'dir', mode=0o700),
                                  entry('a/x', data=b'one'), entry('a/x', data=b'two'),
                                  entry('a', 'dir', mode=0o751), entry('l', 'symlink', target='a'),
                                  entry('l', 'symlink', target='a/x')])
    assert stat.S_IMODE(os.lstat(os.path.join(layer, 'a')).st_mode) == 0o751
    with open(os.path.join(layer, 'a/x'), 'rb') as f:
        assert f.read() == b'two'
    assert os.readlink(os.path.join(layer, 'l')) == 'a/x'


def test_whiteout_then_symlink_then_dir_meta_not_applied_outside(tmp_path):
    canary = make_canary(tmp_path)
    layer = _import_ok(tmp_path, [entry('a', 'dir', mode=0o777), entry('.wh.a'),
                                  entry('a', 'symlink', target=str(canary))])
    assert os.readlink(os.path.join(layer, 'a')) == str(canary)


def test_xattr_and_owner_on_symlink_stay_on_the_link(tmp_path):
    canary = make_canary(tmp_path)
    layer = _import_ok(tmp_path, [entry('l', 'symlink', target=str(canary / 'secret'),
                                        pax={'SCHILY.xattr.trusted.ndl': 'x'}, uid=1234, gid=4321)])
    link = os.path.join(layer, 'l')
    assert os.getxattr(link, 'trusted.ndl', follow_symlinks=False) == b'x'
    st = os.lstat(link)
    assert (st.st_uid, st.st_gid) == (1234, 4321)


# ------------------------------------------------------------------ extraction on its own
# Defence in depth: even if the validator let these through, extract_layer must not
# follow a symlink out of the layer.

@pytest.fixture
def lax_validator(monkeypatch):
    from ansible_collections.nodocker.lab.plugins.module_utils import _layers

    def lax(m, state):  # the names are clean, nothing else is checked
        return _layers.clean_name(m.name)
    monkeypatch.setattr(_layers, 'validate_member', lax)
    return _layers


@pytest.mark.parametrize('hostile', ['chmod', 'hardlink', 'dotdot', 'below_symlink'])
def test_extract_layer_alone_does_not_escape(tmp_path, lax_validator, hostile):
    canary = make_canary(tmp_path)
    entries = {
        'chmod': [entry('a', 'dir', mode=0o4777), entry('a/sub', 'dir', mode=0o777),
                  entry('a', 'symlink', target=str(canary))],
        'hardlink': [entry('a', 'dir'), entry('a/secret', data=b'x'),
                     entry('a', 'symlink', target=str(canary)),
                     entry('g', 'hardlink', target='a/secret')],
        'dotdot': [entry('etc', 'dir'), entry('etc/.wh...')],
        'below_symlink': [entry('a', 'symlink', target=str(canary)),
                          entry('a/sub/x', data=b'pwned')],
    }[hostile]
    lt = layer_tar(entries)
    dest = tmp_path / 'layer'
    dest.mkdir()
    before = snapshot(canary)
    try:
        lax_validator.extract_layer(io.BytesIO(lt), str(dest), sha(lt))
    except lax_validator.LayerError:
        assert hostile != 'chmod'  # that one is harmless once nothing follows the link
    else:
        assert hostile == 'chmod'
        assert os.readlink(str(dest / 'a')) == str(canary)
    assert snapshot(canary) == before


def test_directory_metadata_is_not_set_through_a_symlink(tmp_path, lax_validator, monkeypatch):
    # even if the extractor's own bookkeeping kept a directory that a symlink
    # replaced, its metadata is set only on a real directory of the layer
    canary = make_canary(tmp_path)

    def remove_but_remember(dir_fd, name, rel, dirs):
        return real_remove(dir_fd, name, rel, {})
    real_remove = lax_validator._remove
    monkeypatch.setattr(lax_validator, '_remove', remove_but_remember)
    lt = layer_tar([entry('a', 'dir', mode=0o4777), entry('a/sub', 'dir', mode=0o777),
                    entry('a', 'symlink', target=str(canary))])
    dest = tmp_path / 'layer'
    dest.mkdir()
    before = snapshot(canary)
    with pytest.raises(lax_validator.LayerError, match='not a directory of this layer'):
        lax_validator.extract_layer(io.BytesIO(lt), str(dest), sha(lt))
    assert snapshot(canary) == before
