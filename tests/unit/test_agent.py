# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chapter 7 agent's decisions (no kernel): misses, answers, sync, sync-host."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.nodocker.lab.plugins.module_utils import _overlay_agent as agent
from ansible_collections.nodocker.lab.plugins.module_utils import _registry as reg

SELF = '192.168.104.2'


def records():
    rs = [reg.make_record('11.11.11.2', '02:42:c0:a8:00:02', SELF, 'c1', 42),
          reg.make_record('11.11.11.3', '02:42:c0:a8:00:03', '192.168.104.3', 'c2', 42)]
    return dict((r['ip'], r) for r in rs)


def test_classify_l3_and_l2_misses():
    l3 = {'event': 'RTM_GETNEIGH', 'ifindex': 5, 'family': socket.AF_INET,
          'NDA_DST': '11.11.11.3'}
    # this kernel reports L2 misses with family AF_INET and only NDA_LLADDR
    l2 = {'event': 'RTM_GETNEIGH', 'ifindex': 5, 'family': socket.AF_INET,
          'NDA_LLADDR': '02:42:C0:A8:00:03'}
    assert agent.classify_miss(l3, 5) == ('l3', '11.11.11.3')
    assert agent.classify_miss(l2, 5) == ('l2', '02:42:c0:a8:00:03')
    assert agent.classify_miss(l3, 6) is None
    assert agent.classify_miss(dict(l3, event='RTM_NEWNEIGH'), 5) is None


def test_answers():
    rs = records()
    assert agent.answer('l3', '11.11.11.3', rs, SELF)[0]['host'] == '192.168.104.3'
    assert agent.answer('l2', '02:42:c0:a8:00:03', rs, SELF)[0]['ip'] == '11.11.11.3'
    assert agent.answer('l3', '11.11.11.9', rs, SELF) == (None, 'no registry record')
    assert agent.answer('l3', '11.11.11.2', rs, SELF)[0] is None  # local container


def test_sync_removes_gone_and_fixes_moved():
    rs = records()
    neigh = {'11.11.11.3': '02:42:c0:a8:00:03', '11.11.11.4': '02:42:c0:a8:00:04',
             '11.11.11.2': '02:42:c0:a8:00:02'}
    fdb = {'02:42:c0:a8:00:03': '192.168.104.9', '02:42:c0:a8:00:04': '192.168.104.4',
           '00:00:00:00:00:00': '192.168.104.3'}
    ops = agent.plan_sync(neigh, fdb, rs, SELF)
    assert ('del', 'neigh', '11.11.11.4', '02:42:c0:a8:00:04') in ops
    assert ('del', 'neigh', '11.11.11.2', '02:42:c0:a8:00:02') in ops  # now local
    assert ('replace', 'fdb', '02:42:c0:a8:00:03', '192.168.104.3') in ops
    assert ('del', 'fdb', '02:42:c0:a8:00:04', '192.168.104.4') in ops
    assert all(o[2] != '00:00:00:00:00:00' for o in ops)
    assert agent.plan_sync({'11.11.11.3': '02:42:c0:a8:00:03'},
                           {'02:42:c0:a8:00:03': '192.168.104.3'}, rs, SELF) == []


def test_sync_answers_stale_entries_of_returning_containers():
    ops = agent.plan_sync({}, {}, records(), SELF, stale={'11.11.11.3', '11.11.11.7'})
    assert ops == [('replace', 'neigh', '11.11.11.3', '02:42:c0:a8:00:03'),
                   ('replace', 'fdb', '02:42:c0:a8:00:03', '192.168.104.3')]


def test_sync_host(tmp_path):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    r.put(reg.make_record('11.11.11.9', '02:42:c0:a8:00:09', SELF, 'old', 42))
    r.put(reg.make_record('11.11.11.3', '02:42:c0:a8:00:03', '192.168.104.3', 'c2', 42))
    want = [reg.make_record('11.11.11.2', '02:42:c0:a8:00:02', SELF, 'c1', 42)]
    assert agent.sync_host(r, SELF, want) is True
    assert sorted(r.records()) == ['11.11.11.2', '11.11.11.3']
    assert agent.sync_host(r, SELF, want) is False
