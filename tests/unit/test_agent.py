# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chapter 7 agent's decisions (no kernel): misses, answers, sync, sync-host."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import json
import os
import socket
import threading
import types

import pytest

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


# ------------------------------------------- an unreadable registry deletes nothing
class FakeDevice:
    """The VXLAN device's permanent entries behind a fake AsyncIPRoute."""

    def __init__(self, neigh, fdb):
        self.neigh_entries = dict(neigh)  # ip -> mac
        self.fdb_entries = dict(fdb)  # mac -> dst
        self.calls = []

    async def link_lookup(self, ifname):
        return [9]

    @staticmethod
    async def _iter(msgs):
        for m in msgs:
            yield m

    async def neigh(self, command, **kw):
        if command == 'dump':
            return self._iter([{'ifindex': 9, 'NDA_DST': ip, 'NDA_LLADDR': mac,
                                'state': agent.NUD_PERMANENT}
                               for ip, mac in self.neigh_entries.items()])
        self.calls.append(('neigh', command, kw['dst']))
        if command == 'del':
            del self.neigh_entries[kw['dst']]
        else:
            self.neigh_entries[kw['dst']] = kw['lladdr']
        return None

    async def fdb(self, command, **kw):
        if command == 'dump':
            return self._iter([{'ifindex': 9, 'NDA_LLADDR': mac, 'NDA_DST': dst,
                                'flags': agent.NTF_SELF, 'state': agent.NUD_PERMANENT}
                               for mac, dst in self.fdb_entries.items()])
        self.calls.append(('fdb', command, kw['lladdr']))
        if command == 'del':
            del self.fdb_entries[kw['lladdr']]
        else:
            self.fdb_entries[kw['lladdr']] = kw['dst']
        return None


class FlakyRegistry:
    kind = 'fake'

    def __init__(self, recs):
        self.current = recs
        self.fail = None

    def records(self, errors=None):
        if self.fail:
            raise self.fail
        return dict((ip, dict(r)) for ip, r in self.current.items())


def make_agent(registry, interval=2.0):
    return agent.Agent(types.SimpleNamespace(self_ip=SELF, dev='vxlan1', netns='overns',
                                             interval=interval), registry)


C2 = ('11.11.11.3', '02:42:c0:a8:00:03', '192.168.104.3')
C4 = ('11.11.11.4', '02:42:c0:a8:00:04', '192.168.104.4')


def device_with_c2_and_c4():
    return FakeDevice({C2[0]: C2[1], C4[0]: C4[1]}, {C2[1]: C2[2], C4[1]: C4[2]})


def test_agent_started_while_the_registry_is_down_deletes_nothing():
    registry = FlakyRegistry(records())
    registry.fail = IOError('etcd: connection refused')
    a = make_agent(registry)
    dev = device_with_c2_and_c4()
    asyncio.run(a.sync(dev))
    assert dev.calls == [] and not a.have_view
    assert dev.neigh_entries == {C2[0]: C2[1], C4[0]: C4[1]}
    assert dev.fdb_entries == {C2[1]: C2[2], C4[1]: C4[2]}
    # a miss finds no answer, and says why
    asyncio.run(a.on_miss(dev, 'l3', '11.11.11.5'))
    assert dev.calls == []
    # the first read that succeeds is applied: c4 has no record, c2 stays
    registry.fail = None
    asyncio.run(a.sync(dev))
    assert a.have_view
    assert sorted(dev.calls) == [('fdb', 'del', C4[1]), ('neigh', 'del', C4[0])]
    assert dev.neigh_entries == {C2[0]: C2[1]} and dev.fdb_entries == {C2[1]: C2[2]}


def test_a_later_failed_read_keeps_the_entries_of_the_last_good_view():
    registry = FlakyRegistry(records())
    a = make_agent(registry)
    dev = FakeDevice({C2[0]: C2[1]}, {C2[1]: C2[2]})
    asyncio.run(a.sync(dev))
    assert dev.calls == []
    registry.fail = OSError('NFS share gone')
    asyncio.run(a.sync(dev))
    assert dev.calls == [] and a.records['11.11.11.3']['host'] == C2[2]


def test_missing_registry_directory_is_a_failed_read_not_an_empty_one(tmp_path):
    a = make_agent(reg.DirectoryRegistry(str(tmp_path / 'not-mounted'), vni=42))
    dev = device_with_c2_and_c4()
    asyncio.run(a.sync(dev))
    assert dev.calls == [] and not a.have_view


def test_sync_waits_for_a_slow_read_at_most_its_budget():
    gate = threading.Event()

    class SlowRegistry(FlakyRegistry):
        def records(self, errors=None):
            gate.wait(30)  # released below: the test never waits for this
            return FlakyRegistry.records(self, errors)

    registry = SlowRegistry(records())
    a = make_agent(registry)
    a.budget = 0.05
    dev = device_with_c2_and_c4()

    async def scenario():
        try:
            await a.sync(dev)  # the read is still blocked: nothing known, nothing deleted
            assert dev.calls == [] and not a.have_view
            first = a._reading
            await a.sync(dev)  # no second read while one is in flight
            assert a._reading is first
        finally:
            gate.set()
        await first
        assert a.have_view
        await a.sync(dev)

    asyncio.run(scenario())
    assert sorted(dev.calls) == [('fdb', 'del', C4[1]), ('neigh', 'del', C4[0])]


@pytest.mark.parametrize('interval,budget', [(2, 1.0), (1, 0.5), (20, 3.0), (0.1, 0.1)])
def test_read_budget_keeps_the_removal_bound(interval, budget):
    assert agent.read_budget(interval) == budget


def test_sync_host_with_a_registry_directory_never_made(tmp_path):
    r = reg.DirectoryRegistry(str(tmp_path / 'never'), vni=42)
    assert agent.sync_host(r, SELF, []) is False


# ------------------------------------------------------------------ readiness
def test_listening_pid_is_the_last_listening_agent_if_alive(tmp_path):
    log = tmp_path / 'agent.log'
    assert agent.listening_pid(str(log), alive=lambda pid: True) is None  # no log yet
    log.write_text(
        '2026-11-28 10:00:00,000 agent[100] INFO %s vxlan1 in overns (...)\n'
        '2026-11-28 10:00:01,000 agent[100] INFO L3 miss 11.11.11.3: answered ...\n'
        'supervisor: agent exited with -9, restarting in 1s\n'
        '2026-11-28 10:00:03,000 agent[200] INFO %s vxlan1 in overns (...)\n'
        '2026-11-28 10:00:04,000 agent[200] INFO L2 miss 02:42:c0:a8:00:03: answered ...\n'
        % (agent.LISTENING, agent.LISTENING))
    assert agent.listening_pid(str(log), alive=lambda pid: True) == 200
    # the agent that logged the last "listening" line died (crash loop): not ready
    assert agent.listening_pid(str(log), alive=lambda pid: pid == 100) is None


def test_last_line_with_reads_backwards_across_chunks(tmp_path):
    log = tmp_path / 'agent.log'
    log.write_text('x' * 50 + '\nagent[7] listening for misses on vxlan1\n' + 'y' * 100 + '\n')
    for chunk in (8, 16, 4096):
        assert agent.last_line_with(str(log), 'listening', chunk) == \
            'agent[7] listening for misses on vxlan1'
    assert agent.last_line_with(str(log), 'nothing like this', 8) is None


def test_ready_fails_with_the_log_tail(tmp_path):
    log = tmp_path / 'agent.log'
    log.write_text('Traceback (most recent call last):\nModuleNotFoundError: No module named '
                   "'pyroute2'\nsupervisor: agent exited with 1, restarting in 8s\n")
    args = types.SimpleNamespace(log=str(log), timeout=0)
    rc, text = agent.cmd_ready(args, alive=lambda pid: True)
    assert rc == 1 and "No module named 'pyroute2'" in text and 'not listening' in text
    log.write_text('x agent[42] INFO %s vxlan1\n' % agent.LISTENING)
    assert agent.cmd_ready(args, alive=lambda pid: pid == 42) == (0, 'listening: agent 42')


def test_is_agent_process_rejects_other_processes():
    assert agent.is_agent_process(os.getpid()) is False
    assert agent.is_agent_process(2 ** 22 + 1) is False  # above pid_max: never a process


# ----------------------------------------------------- the other hosts' records
def test_check_records_sees_the_other_hosts_or_says_the_directory_is_not_shared(tmp_path):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    r.put(reg.make_record('11.11.11.2', '02:42:c0:a8:00:02', SELF, 'c1', 42))
    expect = [{'inventory_host': 'host2', 'ip': '11.11.11.3', 'host': '192.168.104.3'}]
    args = types.SimpleNamespace(registry='dir:' + str(tmp_path), expect=json.dumps(expect),
                                 timeout=0)
    rc, text = agent.cmd_check_records(args, r)
    assert rc == 1 and 'host2 (11.11.11.3 on 192.168.104.3)' in text and 'not shared' in text
    r.put(reg.make_record('11.11.11.3', '02:42:c0:a8:00:03', '192.168.104.3', 'c2', 42))
    assert agent.cmd_check_records(args, r)[0] == 0
    # a record of the IP held for another host does not count
    r.put(reg.make_record('11.11.11.3', '02:42:c0:a8:00:03', '192.168.104.9', 'c2', 42))
    assert agent.cmd_check_records(args, r)[0] == 1
    assert agent.cmd_check_records(types.SimpleNamespace(
        registry='dir:x', expect='[{"ip": 1}]', timeout=0), r)[0] == 2


def test_check_records_reports_an_unreadable_registry(tmp_path):
    r = reg.DirectoryRegistry(str(tmp_path / 'missing'), vni=42)
    args = types.SimpleNamespace(registry='dir:' + str(tmp_path / 'missing'),
                                 expect='[{"ip": "11.11.11.3", "host": "192.168.104.3"}]',
                                 timeout=0)
    rc, text = agent.cmd_check_records(args, r)
    assert rc == 1 and 'unreadable' in text


def test_another_interpreter_restarts_the_supervised_agent(monkeypatch):
    """ensure compares config_of with the running one: the agent runs with the
    interpreter that ran ensure, so changing ch07_agent_python (say, to one that
    has pyroute2) must restart it."""
    args = agent.parse_args(['ensure', '--registry', 'dir:/r', '--self-ip', SELF])
    before = agent.config_of(args)
    monkeypatch.setattr(agent.sys, 'executable', '/opt/other/bin/python3')
    after = agent.config_of(args)
    assert before != after and after['python'] == '/opt/other/bin/python3'
    assert agent.agent_argv(args)[0] == '/opt/other/bin/python3'
