# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing the mount table the overlay module compares against."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

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
