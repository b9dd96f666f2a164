# -*- coding: utf-8 -*-
"""Chapter 6's proof, checked inside the simulated hosts.

Every container pings a container on every other host through the VXLAN;
a capture on the underlay shows UDP 4789; a ping with DF set at the inner
MTU passes (the veth MTU leaves room for the 50 bytes of VXLAN).
"""

import json
import time

import pytest

PORT = 4789


def containers(inventory):
    """[(host, container)] from the inventory."""
    out = []
    for h, hv in sorted(inventory['hosts'].items()):
        for c in hv.get('ch06_containers') or []:
            out.append((h, c))
    return out


def pairs(inventory):
    cs = containers(inventory)
    return [(h1, c1, h2, c2) for h1, c1 in cs for h2, c2 in cs if h1 != h2]


def ns(host, name, cmd):
    return host.run('ip netns exec %s %s' % (name, cmd))


def test_every_container_pings_every_remote_container(simhosts, inventory):
    ps = pairs(inventory)
    assert ps, 'the inventory needs containers on at least two hosts'
    for h1, c1, h2, c2 in ps:
        r = ns(simhosts[h1], c1['name'], 'ping -c 2 -W 2 %s' % c2['ip'])
        assert r.rc == 0, '%s/%s -> %s/%s: %s' % (h1, c1['name'], h2, c2['name'],
                                                  r.stdout + r.stderr)


def test_underlay_carries_udp_4789(simhosts, inventory):
    h1, c1, h2, c2 = pairs(inventory)[0]
    host = simhosts[h1]
    pcap = '/tmp/ndl_ch06_capture.txt'
    host.run('rm -f %s' % pcap)
    # start the capture in the background, ping, then read what it saw
    host.run('(timeout 6 tcpdump -l -n -i eth1 -c 4 udp port %d > %s 2>/dev/null &)'
             % (PORT, pcap))
    time.sleep(1.5)
    ns(host, c1['name'], 'ping -c 3 -W 2 %s' % c2['ip'])
    seen = ''
    for dummy in range(20):
        seen = host.run('cat %s' % pcap).stdout
        if seen.count('\n') >= 2:
            break
        time.sleep(0.3)
    host.run('rm -f %s' % pcap)
    # tcpdump decodes port 4789 as VXLAN: "IP 192.168.104.2.59644 > 192.168.104.3.4789: VXLAN ..."
    assert '.%d: ' % PORT in seen, seen


def test_df_ping_at_the_inner_mtu(simhosts, inventory):
    h1, c1, h2, c2 = pairs(inventory)[0]
    host = simhosts[h1]
    mtu = json.loads(ns(host, c1['name'], 'ip -j link show eth0').stdout)[0]['mtu']
    underlay = json.loads(host.run('ip -j link show eth1').stdout)[0]['mtu']
    assert mtu == underlay - 50
    payload = mtu - 28  # IPv4 20 + ICMP 8
    r = ns(host, c1['name'], 'ping -M do -c 2 -W 2 -s %d %s' % (payload, c2['ip']))
    assert r.rc == 0, r.stdout + r.stderr
    too_big = ns(host, c1['name'], 'ping -M do -c 1 -W 1 -s %d %s' % (payload + 1, c2['ip']))
    assert too_big.rc != 0


def test_mac_derived_from_ip(simhosts, inventory):
    for h, c in containers(inventory):
        link = json.loads(ns(simhosts[h], c['name'], 'ip -j link show eth0').stdout)[0]
        assert link['address'] == '02:42:c0:a8:00:%02x' % int(c['ip'].split('.')[-1])


@pytest.mark.parametrize('what', ['fdb', 'neigh'])
def test_static_entries_only_for_remote_containers(simhosts, inventory, what):
    for h, hv in inventory['hosts'].items():
        remote = sorted(c['ip'] for h2, c in containers(inventory) if h2 != h)
        host = simhosts[h]
        if what == 'neigh':
            out = json.loads(host.run('ip -n overns -j neigh show dev vxlan1 nud permanent').stdout)
            assert sorted(e['dst'] for e in out) == remote
        else:
            out = json.loads(host.run('bridge -n overns -j fdb show dev vxlan1').stdout)
            # the bridge's own entry for the port (master br0) has no dst
            perm = [e for e in out if 'permanent' in e.get('state', '') and e.get('dst')]
            assert len(perm) == len(remote), out
