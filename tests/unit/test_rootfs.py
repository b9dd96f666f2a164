# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure-Python ELF reader finds what ldd finds; path mirroring keeps symlinks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'collections'))

from ansible_collections.nodocker.lab.plugins.module_utils import _rootfs  # noqa: E402


def ldd_paths(prog):
    out = subprocess.run(['ldd', prog], stdout=subprocess.PIPE, check=True).stdout.decode()
    paths = set()
    for line in out.splitlines():
        parts = line.split()
        if '=>' in parts and parts[parts.index('=>') + 1].startswith('/'):
            paths.add(os.path.realpath(parts[parts.index('=>') + 1]))
        elif parts and parts[0].startswith('/'):
            paths.add(os.path.realpath(parts[0]))
    return paths


@pytest.mark.parametrize('prog', ['ls', 'ps', 'mount', 'sh'])
def test_closure_matches_ldd(prog):
    path = shutil.which(prog)
    if path is None or shutil.which('ldd') is None:
        pytest.skip('%s or ldd missing' % prog)
    real = os.path.realpath(path)
    ours = set(os.path.realpath(p) for p in _rootfs.LibraryResolver().closure(real)[1:])
    assert ours == ldd_paths(real)


def test_not_elf(tmp_path):
    f = tmp_path / 'script'
    f.write_text('#!/bin/sh -e\necho hi\n')
    assert _rootfs.read_elf(str(f)) is None
    assert _rootfs.shebang_interpreter(str(f)) == '/bin/sh'


def test_truncated_elf(tmp_path):
    f = tmp_path / 'bad'
    f.write_bytes(open(os.path.realpath(shutil.which('ls')), 'rb').read()[:70])
    with pytest.raises(_rootfs.RootfsError, match='truncated or corrupt'):
        _rootfs.read_elf(str(f))


def test_mirror_keeps_symlinks(tmp_path):
    real = tmp_path / 'usr' / 'bin'
    real.mkdir(parents=True)
    (real / 'tool').write_text('x')
    (tmp_path / 'bin').symlink_to('usr/bin')
    entries = []
    end = _rootfs.mirror_entries(str(tmp_path / 'bin' / 'tool'), entries, set())
    assert end == str(real / 'tool')
    assert ('symlink', str(tmp_path / 'bin'), 'usr/bin') in entries
    assert entries[-1] == ('file', str(real / 'tool'), str(real / 'tool'))


def test_ld_so_conf_include(tmp_path):
    (tmp_path / 'd').mkdir()
    (tmp_path / 'd' / 'a.conf').write_text('/opt/a\n# comment\n')
    conf = tmp_path / 'ld.so.conf'
    conf.write_text('include %s/d/*.conf\n/opt/b\n' % tmp_path)
    assert _rootfs.ld_so_conf_dirs(str(conf)) == ['/opt/a', '/opt/b']


@pytest.mark.parametrize('bad', ['', 'relative', '/', '/usr', '/etc/'])
def test_bad_root_paths(bad):
    with pytest.raises(_rootfs.RootfsError):
        _rootfs.check_root_path(bad)
