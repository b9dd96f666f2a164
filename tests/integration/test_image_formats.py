# -*- coding: utf-8 -*-
"""Archives written by a real tool, not by the tests: skopeo converts an OCI layout
archive into a `docker save` archive and into another OCI archive (gzip layers
recompressed, its own index/manifest/config spelling), and the image module imports
each to the same layers, whiteouts and opaque directories included.

No kernel objects: the store is a temporary directory on the controller."""

import os
import shutil
import stat
import subprocess

import pytest

from tests.unit.test_image_hostile import entry, layer_tar, oci_archive, run

BASE = [entry('etc', 'dir'), entry('etc/hostname', data=b'img\n'),
        entry('bin', 'dir'), entry('bin/tool', data=b'#!/bin/sh\n', mode=0o755),
        entry('bin/link', 'symlink', target='tool'),
        entry('srv', 'dir', uid=1000, gid=1000), entry('srv/data', data=b'd', uid=1000, gid=1000),
        entry('old', 'dir'), entry('old/a', data=b'a')]
TOP = [entry('etc', 'dir'), entry('etc/.wh.hostname'),
       entry('old', 'dir'), entry('old/.wh..wh..opq'), entry('old/b', data=b'b')]


def tree(layer):
    """A layer directory as {path: (type, mode, uid, gid, content or target or rdev)}."""
    out = {}
    for top, dirs, files in os.walk(layer):
        for name in dirs + files:
            p = os.path.join(top, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                with open(p, 'rb') as f:
                    what = f.read()
            elif stat.S_ISCHR(st.st_mode):
                what = st.st_rdev
            else:
                what = sorted(os.listxattr(p, follow_symlinks=False))
            out[os.path.relpath(p, layer)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                              st.st_uid, st.st_gid, what)
    return out


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    if not shutil.which('skopeo'):
        pytest.fail('skopeo is missing: run ./scripts/setup.sh')
    d = tmp_path_factory.mktemp('formats')
    ours = oci_archive(str(d / 'ours.tar'), [layer_tar(BASE), layer_tar(TOP)], ref='fmt:1')
    made = {'ours': ours}
    for kind in ('docker-archive', 'oci-archive'):
        dest = str(d / ('%s.tar' % kind))
        ref = '%s:%s' % (kind, dest) + (':fmt:1' if kind == 'docker-archive' else ':fmt:1')
        subprocess.run(['skopeo', '--insecure-policy', 'copy', '--quiet',
                        'oci-archive:%s:fmt:1' % ours, ref], check=True)
        made[kind] = dest
    return d, made


@pytest.mark.parametrize('kind', ['docker-archive', 'oci-archive'])
def test_skopeo_written_archive_imports_to_the_same_layers(sources, kind):
    d, made = sources
    want = run(d / ('store-ours-%s' % kind), made['ours'], 'fmt:1')
    got = run(d / ('store-%s' % kind), made[kind], 'fmt:1')
    assert got['changed'] and got['diff_ids'] == want['diff_ids']
    assert [tree(p) for p in got['layers']] == [tree(p) for p in want['layers']]
    top, base = got['layers']
    assert tree(base)['srv/data'][2:4] == (1000, 1000)            # owners kept
    assert tree(top)['etc/hostname'][:1] == (stat.S_IFCHR,)       # whiteout: 0:0 device
    assert os.getxattr(os.path.join(top, 'old'), 'trusted.overlay.opaque') == b'y'
    again = run(d / ('store-%s' % kind), made[kind], 'fmt:1')
    assert not again['changed'] and again['commands'] == []
