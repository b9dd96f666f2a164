# -*- coding: utf-8 -*-
"""Chapter 3's proof, checked inside the simulated host."""

import json


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
