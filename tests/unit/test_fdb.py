# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nodocker.lab.fdb: resource-module diff logic (no kernel)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _fdb

Z = '00:00:00:00:00:00'


def e(mac, dst, vni=42, port=4789):
    return {'mac': mac, 'dst': dst, 'vni': vni, 'port': port}


def ops(have, want, state, protected=()):
    return _fdb.compute_changes(have, want, state, protected)


def test_defaults_filled_from_the_device():
    got = _fdb.fill_defaults([{'mac': 'aa:bb:cc:dd:ee:ff', 'dst': '1.1.1.1', 'vni': None,
                               'port': None}], 42, 4789)
    assert got == [e('aa:bb:cc:dd:ee:ff', '1.1.1.1')]


def test_merged_adds_missing_and_nothing_twice():
    want = [e('02:42:c0:a8:00:03', '192.168.104.3')]
    assert ops([], want, 'merged') == [('add', want[0])]
    assert ops(want, want, 'merged') == []


def test_merged_replaces_a_moved_mac():
    have = [e('02:42:c0:a8:00:03', '192.168.104.3')]
    want = [e('02:42:c0:a8:00:03', '192.168.104.5')]
    assert ops(have, want, 'merged') == [('replace', want[0])]


def test_flood_entries_append():
    want = [e(Z, '192.168.104.3'), e(Z, '192.168.104.4')]
    got = ops([e(Z, '192.168.104.3')], want, 'merged')
    assert got == [('append', e(Z, '192.168.104.4'))]


def test_overridden_removes_unlisted_but_keeps_protected_default():
    have = [e(Z, '239.1.1.1'), e(Z, '192.168.104.3'), e('02:42:c0:a8:00:09', '192.168.104.9')]
    want = [e(Z, '192.168.104.4')]
    got = ops(have, want, 'overridden', protected={(Z, '239.1.1.1', 42, 4789)})
    assert ('append', e(Z, '192.168.104.4')) in got
    assert ('del', e(Z, '192.168.104.3')) in got
    assert ('del', e('02:42:c0:a8:00:09', '192.168.104.9')) in got
    assert all(x[1]['dst'] != '239.1.1.1' for x in got)


def test_deleted_only_removes_matching_entries():
    have = [e('02:42:c0:a8:00:03', '192.168.104.3')]
    assert ops(have, [e('02:42:c0:a8:00:03', '192.168.104.7')], 'deleted') == []
    assert ops(have, have, 'deleted') == [('del', have[0])]


def test_check_mode_after_matches_ops():
    have = [e('02:42:c0:a8:00:03', '192.168.104.3')]
    want = [e('02:42:c0:a8:00:03', '192.168.104.5'), e(Z, '192.168.104.5')]
    after = _fdb.apply_ops(have, ops(have, want, 'overridden'))
    assert after == _fdb.sort_entries(want)


def test_commands_leave_out_default_vni_port_only_on_delete():
    c = _fdb.command_for('overns', 'vxlan1', 'add', e('02:42:c0:a8:00:03', '1.1.1.1'), 42, 4789)
    assert c == ('bridge -n overns fdb add 02:42:c0:a8:00:03 dev vxlan1 self dst 1.1.1.1 '
                 'vni 42 port 4789 permanent')
    d = _fdb.command_for('overns', 'vxlan1', 'del', e('02:42:c0:a8:00:03', '1.1.1.1'), 42, 4789)
    assert d == 'bridge -n overns fdb del 02:42:c0:a8:00:03 dev vxlan1 self dst 1.1.1.1'


@pytest.mark.parametrize('entry, msg', [
    ({'mac': 'zz', 'dst': '1.1.1.1'}, 'invalid'),
    ({'mac': '02:42:c0:a8:00:03'}, 'dst'),
    ({'mac': '02:42:c0:a8:00:03', 'dst': '1.1.1'}, 'not a valid IP'),
    ({'mac': '02:42:c0:a8:00:03', 'dst': '1.1.1.1', 'vni': -1}, 'out of range'),
    ({'mac': '02:42:c0:a8:00:03', 'dst': '1.1.1.1', 'port': 0}, 'out of range'),
    ({'mac': '02:42:c0:a8:00:03', 'dst': '1.1.1.1', 'bogus': 1}, 'unknown key'),
])
def test_bad_entries(entry, msg):
    with pytest.raises(ValueError, match=msg):
        _fdb.validate({'dev': 'vxlan1', 'netns': None, 'state': 'merged', 'entries': [entry]})


def test_thousand_entries_diff_is_fast():
    import time
    want = [e('02:42:00:%02x:%02x:01' % (i >> 8, i & 255), '192.168.104.%d' % (2 + i % 200))
            for i in range(1000)]
    t = time.perf_counter()
    assert ops(want, want, 'overridden') == []
    assert time.perf_counter() - t < 0.2


@pytest.mark.parametrize('alias, state', [('present', 'merged'), ('absent', 'deleted')])
def test_present_absent_are_aliases(alias, state):
    entries = [{'mac': '02:42:c0:a8:00:03', 'dst': '192.168.104.3'}]
    got = _fdb.validate({'dev': 'vxlan1', 'netns': None, 'state': alias, 'entries': entries})
    assert got[2] == state
    want = _fdb.fill_defaults(got[3], 42, 4789)
    have = [] if state == 'merged' else want
    assert ops(have, want, got[2]) == [('add' if state == 'merged' else 'del', want[0])]


def test_unknown_state_names_the_aliases():
    with pytest.raises(ValueError, match='absent, present'):
        _fdb.validate({'dev': 'vxlan1', 'netns': None, 'state': 'replaced', 'entries': []})
