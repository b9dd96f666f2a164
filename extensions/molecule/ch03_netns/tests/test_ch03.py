# -*- coding: utf-8 -*-
"""Chapter 3's proof, checked inside the simulated host."""

import json
import os
import re

from tests.lib import ansible_run


def ns(host, name, cmd):
    return host.run('ip netns exec %s %s' % (name, cmd))


def test_red_pings_blue_through_the_bridge(simhosts):
    h = simhosts['host1']
    r = ns(h, 'RED', 'ping -c 2 -W 2 11.11.11.3')
    assert r.rc == 0, r.stdout + r.stderr


def test_red_sees_only_its_own_links(simhosts):
    h = simhosts['host1']
    links = json.loads(ns(h, 'RED', 'ip -j link show').stdout)
    assert sorted(l['ifname'] for l in links) == ['lo', 'reth0']


def test_bridge_learned_both_macs(simhosts):
    h = simhosts['host1']
    ns(h, 'RED', 'ping -c 1 -W 2 11.11.11.3')
    macs = {json.loads(ns(h, n, 'ip -j link show %s' % i).stdout)[0]['address']
            for n, i in (('RED', 'reth0'), ('BLUE', 'beth0'))}
    fdb = json.loads(h.run('bridge -j fdb show br br0').stdout)
    learned = {e['mac'] for e in fdb if 'permanent' not in e.get('state', '')}
    assert macs <= learned, (macs, fdb)


def test_bridge_ports_and_addresses(simhosts):
    h = simhosts['host1']
    ports = json.loads(h.run('ip -j link show master br0').stdout)
    assert sorted(p['ifname'] for p in ports) == ['beth1', 'reth1']
    addr = json.loads(ns(h, 'BLUE', 'ip -j addr show beth0').stdout)[0]['addr_info']
    assert any(a['local'] == '11.11.11.3' and a['prefixlen'] == 24 for a in addr)


def test_forward_rule(simhosts):
    h = simhosts['host1']
    assert '-A FORWARD -s 11.11.11.0/24' in h.run('iptables -S FORWARD').stdout


def converge(topology):
    """Run the chapter's playbook on this scenario's hosts; return (changed, output)."""
    p = ansible_run.playbook(os.path.join(ansible_run.ROOT, 'playbooks', 'ch03_netns.yml'),
                             os.environ['NODOCKER_INVENTORY'], '-e', 'ch03_topology=%s' % topology)
    recap = re.findall(r'^host1\s*:.*\bchanged=(\d+)', p.stdout, re.M)
    assert recap, p.stdout[-3000:]
    return int(recap[-1]), p.stdout


def test_first_step_direct_veth_pair(simhosts):
    """The chapter's first step, as a student runs it before the bridge: RED and BLUE
    joined by one veth pair (ch03_topology=veth), then back to the bridge. Runs last
    (the file's order): it leaves the bridge topology as converge made it."""
    h = simhosts['host1']
    try:
        changed, out = converge('veth')
        assert changed > 0, out[-3000:]
        changed, out = converge('veth')
        assert changed == 0, 'second run of the veth topology changed something:\n' + out[-5000:]
        assert sorted(link['ifname'] for link in json.loads(ns(h, 'RED', 'ip -j link show').stdout)) \
            == ['lo', 'veth0']
        peer = json.loads(ns(h, 'BLUE', 'ip -j addr show veth1').stdout)[0]
        assert any(a['local'] == '11.11.11.3' for a in peer['addr_info']), peer
        # no bridge in between: the host has none of the bridge topology's links
        host_links = [link['ifname'] for link in json.loads(h.run('ip -j link show').stdout)]
        assert not {'br0', 'reth1', 'beth1'} & set(host_links), host_links
        r = ns(h, 'RED', 'ping -c 2 -W 2 11.11.11.3')
        assert r.rc == 0, r.stdout + r.stderr
    finally:
        converge('bridge')
    # step 2 replaced the pair: the bridge topology is back and works
    assert sorted(link['ifname'] for link in json.loads(ns(h, 'RED', 'ip -j link show').stdout)) \
        == ['lo', 'reth0']
    r = ns(h, 'RED', 'ping -c 2 -W 2 11.11.11.3')
    assert r.rc == 0, r.stdout + r.stderr
