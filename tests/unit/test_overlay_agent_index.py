# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent's MAC index: built once per registry read, used by L2 misses
(plain data and a fake netlink object, no kernel)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import types

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _overlay_agent as agent
from ansible_collections.nodocker.lab.plugins.module_utils import _registry as reg

SELF = '192.168.104.2'
MAC3 = '02:42:c0:a8:00:03'


def records(*recs):
    return dict((r['ip'], r) for r in recs)


def rec(n, host='192.168.104.3'):
    return reg.make_record('11.11.11.%d' % n, '02:42:C0:A8:00:%02X' % n, host, 'c%d' % n, 42)


class Registry:
    """A registry stand-in: ``records()`` answers its current dict or raises."""

    kind = 'fake'

    def __init__(self, *recs):
        self.current = records(*recs)
        self.reads = 0
        self.fail = None

    def records(self, errors=None):
        self.reads += 1
        if self.fail:
            raise self.fail
        return dict((ip, dict(r)) for ip, r in self.current.items())


class FakeIPRoute:
    def __init__(self):
        self.calls = []

    async def neigh(self, command, **kw):
        self.calls.append(('neigh', command, kw))

    async def fdb(self, command, **kw):
        self.calls.append(('fdb', command, kw))


def make_agent(registry):
    a = agent.Agent(types.SimpleNamespace(self_ip=SELF, dev='vxlan1', netns='overns'), registry)
    a.vx_index = 9
    return a


def test_by_mac_indexes_lower_case_macs():
    rs = records(rec(3), rec(4))
    assert reg.by_mac(rs) == {MAC3: rs['11.11.11.3'], '02:42:c0:a8:00:04': rs['11.11.11.4']}
    assert reg.by_mac({}) == {}


def test_answer_uses_the_given_index_for_l2_misses():
    rs = records(rec(3))
    assert agent.answer('l2', MAC3, rs, SELF, reg.by_mac(rs))[0] is rs['11.11.11.3']
    # the index is what answers L2 misses: an empty one knows nothing ...
    assert agent.answer('l2', MAC3, rs, SELF, {}) == (None, 'no registry record')
    # ... and records are not looked through again
    other = reg.make_record('11.11.11.7', MAC3, '192.168.104.7', 'c7', 42)
    assert agent.answer('l2', MAC3, rs, SELF, {MAC3: other})[0]['host'] == '192.168.104.7'
    # without an index it is built from the records (the old behaviour)
    assert agent.answer('l2', MAC3, rs, SELF)[0] is rs['11.11.11.3']
    # L3 misses never use the index
    assert agent.answer('l3', '11.11.11.3', rs, SELF, {})[0] is rs['11.11.11.3']
    # a MAC of this host's own container is not answered, through the index too
    local = records(rec(3, host=SELF))
    assert agent.answer('l2', MAC3, local, SELF, reg.by_mac(local)) == (
        None, 'owned by this host (local, learned by the bridge)')


def test_read_registry_rebuilds_the_index_with_the_records():
    registry = Registry(rec(3), rec(4))
    a = make_agent(registry)
    assert a.macs == {} and a.records == {}
    a.read_registry()
    assert a.macs == reg.by_mac(a.records)
    assert sorted(a.macs) == [MAC3, '02:42:c0:a8:00:04']
    assert a.macs[MAC3] is a.records['11.11.11.3']
    # container 3 moved, 4 detached, 5 attached: the next read replaces the index
    registry.current = records(rec(3, host='192.168.104.9'), rec(5))
    a.read_registry()
    assert sorted(a.macs) == [MAC3, '02:42:c0:a8:00:05']
    assert a.macs[MAC3]['host'] == '192.168.104.9'
    assert agent.answer('l2', '02:42:c0:a8:00:04', a.records, SELF, a.macs) == (None, 'no registry record')


def test_failed_read_keeps_records_and_index_together():
    registry = Registry(rec(3))
    a = make_agent(registry)
    a.read_registry()
    before = (a.records, a.macs, a.last_read)
    registry.fail = IOError('etcd down')
    a.read_registry()
    assert (a.records, a.macs, a.last_read) == before


def test_l2_miss_answered_from_the_index_without_reading_again():
    registry = Registry(rec(3))
    a = make_agent(registry)
    a.read_registry()
    ipr = FakeIPRoute()
    asyncio.run(a.on_miss(ipr, 'l2', MAC3))
    assert registry.reads == 1
    assert ipr.calls == [('fdb', 'replace', dict(ifindex=9, lladdr=MAC3, dst='192.168.104.3',
                                                 state=agent.NUD_PERMANENT | agent.NUD_NOARP,
                                                 flags=agent.NTF_SELF))]


def test_l2_miss_of_a_new_mac_reads_again_and_uses_the_new_index():
    registry = Registry(rec(3))
    a = make_agent(registry)
    a.read_registry()
    registry.current = records(rec(3), rec(5))  # attached since the last read
    a.last_read -= 1.0  # the re-read is rate limited to one per 0.2 s
    ipr = FakeIPRoute()
    asyncio.run(a.on_miss(ipr, 'l2', '02:42:c0:a8:00:05'))
    assert registry.reads == 2
    assert '02:42:c0:a8:00:05' in a.macs
    assert [(c[0], c[2]['lladdr'], c[2]['dst']) for c in ipr.calls] == [
        ('fdb', '02:42:c0:a8:00:05', '192.168.104.3')]


@pytest.mark.parametrize('recent,reads', [(True, 1), (False, 2)])
def test_unknown_mac_rate_limited_re_read(recent, reads):
    registry = Registry(rec(3))
    a = make_agent(registry)
    a.read_registry()
    if not recent:
        a.last_read -= 1.0
    ipr = FakeIPRoute()
    asyncio.run(a.on_miss(ipr, 'l2', '02:42:c0:a8:00:99'))
    assert registry.reads == reads and ipr.calls == []
