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


def test_unknown_name(tmp_path):
    from tests.unit.test_image_hostile import Failed
    src = docker_archive(str(tmp_path / 'a.tar'), [layer_tar(BASE)], tag='a:1')
    with pytest.raises(Failed, match="not in the archive"):
        run(tmp_path / 'store', src, 'nope:1')
