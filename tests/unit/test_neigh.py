# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nodocker.lab.neigh: resource-module diff logic (no kernel)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _neigh


def n(ip, mac):
    return {'ip': ip, 'mac': mac}


def test_merged():
    want = [n('11.11.11.3', '02:42:c0:a8:00:03')]
    assert _neigh.compute_changes([], want, 'merged') == [('add', want[0])]
    assert _neigh.compute_changes(want, want, 'merged') == []
    moved = [n('11.11.11.3', '02:42:c0:a8:00:33')]
    assert _neigh.compute_changes(want, moved, 'merged') == [('replace', moved[0])]


def test_overridden_and_deleted():
    have = [n('11.11.11.3', '02:42:c0:a8:00:03'), n('11.11.11.4', '02:42:c0:a8:00:04')]
    assert _neigh.compute_changes(have, have[:1], 'overridden') == [('del', have[1])]
    assert _neigh.compute_changes(have, [n('11.11.11.4', None)], 'deleted') == [('del', have[1])]
    assert _neigh.compute_changes(have, [n('11.11.11.4', '02:42:c0:a8:00:99')], 'deleted') == []


def test_after_sorted_numerically():
    got = _neigh.apply_ops([], [('add', n('11.11.11.10', 'a')), ('add', n('11.11.11.9', 'b'))])
    assert [x['ip'] for x in got] == ['11.11.11.9', '11.11.11.10']


@pytest.mark.parametrize('entries, state, msg', [
    ([{'ip': '11.11.11.256', 'mac': '02:42:c0:a8:00:03'}], 'merged', 'not a valid IP'),
    ([{'ip': '11.11.11.3'}], 'merged', 'mac is required'),
    ([{'ip': '11.11.11.3', 'mac': '02:42:c0:a8:00:03'},
      {'ip': '11.11.11.3', 'mac': '02:42:c0:a8:00:04'}], 'merged', 'twice'),
])
def test_bad_input(entries, state, msg):
    with pytest.raises(ValueError, match=msg):
        _neigh.validate({'dev': 'vxlan1', 'netns': 'overns', 'state': state, 'entries': entries})


def test_deleted_needs_no_mac():
    _neigh.validate({'dev': 'vxlan1', 'netns': None, 'state': 'deleted',
                     'entries': [{'ip': '11.11.11.3'}]})


def test_command():
    assert _neigh.command_for('overns', 'vxlan1', 'add', n('11.11.11.3', '02:42:c0:a8:00:03')) == \
        'ip -n overns neigh add 11.11.11.3 lladdr 02:42:c0:a8:00:03 dev vxlan1 nud permanent'


@pytest.mark.parametrize('alias, state', [('present', 'merged'), ('absent', 'deleted')])
def test_present_absent_are_aliases(alias, state):
    entries = [{'ip': '11.11.11.3', 'mac': '02:42:c0:a8:00:03'}]
    got = _neigh.validate({'dev': 'vxlan1', 'netns': None, 'state': alias, 'entries': entries})
    assert got[2] == state


def test_absent_needs_no_mac_either():
    got = _neigh.validate({'dev': 'vxlan1', 'netns': None, 'state': 'absent',
                           'entries': [{'ip': '11.11.11.3'}]})
    assert got[2:] == ('deleted', [{'ip': '11.11.11.3', 'mac': None}])
    assert _neigh.validate({'dev': 'vxlan1', 'netns': None, 'state': 'present',
                            'entries': []})[2] == 'merged'


def test_unknown_state_names_the_aliases():
    with pytest.raises(ValueError, match='present, absent|absent, present'):
        _neigh.validate({'dev': 'vxlan1', 'netns': None, 'state': 'replaced', 'entries': []})
