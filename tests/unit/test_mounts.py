# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing the mount table the overlay module compares against."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'collections'))

from ansible_collections.nodocker.lab.plugins.module_utils import _mounts  # noqa: E402

NEW_API = ('49 27 0:39 / /tmp/m rw,relatime - overlay overlay rw,lowerdir+=/a,'
           'lowerdir+=/b,upperdir=/u,workdir=/w,uuid=on')
LEGACY = (r'50 27 0:40 / /tmp/with\040space rw - overlay overlay rw,lowerdir=/x:/y\:z,'
          'upperdir=/u,workdir=/w')


def test_new_api_layers():
    ov = _mounts.overlay_at(_mounts.parse_mountinfo(NEW_API), '/tmp/m')
    assert ov['lower'] == ['/a', '/b'] and ov['upper'] == '/u' and ov['work'] == '/w'


def test_legacy_layers_and_escapes():
    ov = _mounts.overlay_at(_mounts.parse_mountinfo(LEGACY), '/tmp/with space')
    assert ov['lower'] == ['/x', '/y:z']


def test_top_mount_wins():
    tmpfs = '51 27 0:41 / /tmp/m rw - tmpfs none rw'
    ov = _mounts.overlay_at(_mounts.parse_mountinfo(NEW_API + '\n' + tmpfs), '/tmp/m')
    assert ov['fstype'] == 'tmpfs'


def test_mount_command():
    assert _mounts.mount_command('/m', ['/a', '/b'], '/u', '/w') == \
        'mount -t overlay overlay -o lowerdir=/a:/b,upperdir=/u,workdir=/w /m'


# --- the legacy option string: absolute when it fits, relative when it must ---

def test_legacy_options_absolute_when_they_fit():
    assert _mounts.legacy_options(['/l/a', '/l/b'], '/l/u', '/l/w') == \
        (None, 'lowerdir=/l/a:/l/b,upperdir=/l/u,workdir=/l/w')


def _many(n, prefix='/var/lib/nodocker-lab/test/layers/'):
    return [prefix + '%04d' % i for i in range(n)]


def test_legacy_options_relative_past_a_page():
    lower = _many(200)   # about 7 KB absolute, about 1 KB relative
    base, opts = _mounts.legacy_options(lower, '/var/lib/nodocker-lab/test/u',
                                        '/var/lib/nodocker-lab/test/w')
    assert base == '/var/lib/nodocker-lab/test'
    assert opts.startswith('lowerdir=layers/0000:layers/0001:')
    assert opts.endswith(',upperdir=u,workdir=w') and len(opts) < _mounts.PAGE_SIZE


def test_legacy_options_too_many_even_relative():
    assert _mounts.legacy_options(_many(2000), None, None) == (None, None)


def test_mount_command_relative_runs_from_the_base():
    lower = _many(200)
    cmd = _mounts.mount_command('/m', lower, '/var/lib/nodocker-lab/test/u',
                                '/var/lib/nodocker-lab/test/w')
    assert cmd.startswith('cd /var/lib/nodocker-lab/test && mount -t overlay overlay '
                          '-o lowerdir=layers/0000:')
    assert cmd.endswith(',upperdir=u,workdir=w /m')


def test_mount_command_lowerdir_plus_when_nothing_fits():
    cmd = _mounts.mount_command('/m', _many(2000), None, None)
    assert cmd.startswith('mount -t overlay overlay -o lowerdir+=/var/lib/')
    assert cmd.count('lowerdir+=') == 2000


# --- the fallback decision (kernels without lowerdir+) ---

class _Calls:
    def __init__(self, monkeypatch, new_api_error, has_plus, legacy_error=None):
        self.calls = []

        def fsconfig(*a):
            self.calls.append('fsconfig')
            if new_api_error:
                raise new_api_error

        def legacy(*a):
            self.calls.append('legacy')
            if legacy_error:
                raise legacy_error

        def probe():
            self.calls.append('probe')
            return has_plus
        monkeypatch.setattr(_mounts, 'mount_overlay_fsconfig', fsconfig)
        monkeypatch.setattr(_mounts, 'mount_overlay_legacy', legacy)
        monkeypatch.setattr(_mounts, 'has_lowerdir_plus', probe)


def test_new_api_works_no_probe(monkeypatch):
    c = _Calls(monkeypatch, None, True)
    _mounts.mount_overlay('/m', ['/a', '/b'], None, None)
    assert c.calls == ['fsconfig']


def test_before_6_5_fails_at_create_then_legacy(monkeypatch):
    # legacy fs_context: lowerdir+ accepted by fsconfig, refused at CMD_CREATE
    c = _Calls(monkeypatch, _mounts.MountError('overlay refused by the kernel: Invalid argument'),
               False)
    _mounts.mount_overlay('/m', ['/a', '/b'], None, None)
    assert c.calls == ['fsconfig', 'probe', 'legacy']


def test_6_5_refuses_lowerdir_plus_then_legacy(monkeypatch):
    c = _Calls(monkeypatch, OSError(22, "fsconfig lowerdir+=/a: Unknown parameter 'lowerdir+'"),
               False)
    _mounts.mount_overlay('/m', ['/a', '/b'], None, None)
    assert c.calls == ['fsconfig', 'probe', 'legacy']


def test_no_fsopen_then_legacy(monkeypatch):
    c = _Calls(monkeypatch, OSError(38, 'fsopen(overlay): Function not implemented'), False)
    _mounts.mount_overlay('/m', ['/a', '/b'], None, None)
    assert c.calls == ['fsconfig', 'probe', 'legacy']


def test_real_refusal_with_lowerdir_plus_is_reported(monkeypatch):
    c = _Calls(monkeypatch, _mounts.MountError('overlay refused by the kernel: workdir busy'), True)
    with pytest.raises(_mounts.MountError) as err:
        _mounts.mount_overlay('/m', ['/a', '/b'], '/u', '/w')
    assert 'workdir busy' in str(err.value)
    assert c.calls == ['fsconfig', 'probe']


def test_legacy_failure_is_one_clear_message(monkeypatch):
    _Calls(monkeypatch, _mounts.MountError('overlay refused by the kernel: Invalid argument'),
           False, _mounts.MountError('mount -t overlay at /m failed: Invalid argument'))
    with pytest.raises(_mounts.MountError) as err:
        _mounts.mount_overlay('/m', ['/a', '/b'], '/u', '/w')
    msg = str(err.value)
    assert msg.startswith('mount -t overlay at /m failed: Invalid argument')
    assert 'no lowerdir+' in msg and 'refused by the kernel' not in msg


# --- "same mount?" with the relative paths a legacy mount leaves in mountinfo ---

WANTED = {'fstype': 'overlay', 'lower': ['/v/l/a', '/v/l/b'], 'upper': '/v/u', 'work': '/v/w'}


def test_same_overlay_relative_paths_resolve_against_the_base():
    line = ('52 27 0:42 / /m rw - overlay overlay rw,lowerdir=l/a:l/b,'
            'upperdir=u,workdir=w')
    cur = _mounts.overlay_at(_mounts.parse_mountinfo(line), '/m')
    assert _mounts.same_overlay(cur, WANTED)


def test_same_overlay_absolute_and_differences():
    line = '52 27 0:42 / /m rw - overlay overlay rw,lowerdir=/v/l/a:/v/l/b,upperdir=/v/u,workdir=/v/w'
    cur = _mounts.overlay_at(_mounts.parse_mountinfo(line), '/m')
    assert _mounts.same_overlay(cur, WANTED)
    assert not _mounts.same_overlay(cur, dict(WANTED, lower=['/v/l/b', '/v/l/a']))
    assert not _mounts.same_overlay(cur, dict(WANTED, upper='/v/u2'))
    ro = _mounts.overlay_at(_mounts.parse_mountinfo(
        '52 27 0:42 / /m rw - overlay overlay rw,lowerdir=a:b'), '/m')  # base /v/l
    assert _mounts.same_overlay(ro, dict(WANTED, upper=None, work=None))
    assert not _mounts.same_overlay({'fstype': 'tmpfs', 'lower': None, 'upper': None,
                                     'work': None}, WANTED)
