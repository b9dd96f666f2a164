# -*- coding: utf-8 -*-
"""Chapter 6's proof, checked inside the simulated hosts.

Every container pings a container on every other host through the VXLAN;
a capture on the underlay shows UDP 4789; a ping with DF set at the inner
MTU passes (the veth MTU leaves room for the 50 bytes of VXLAN). The
containers of kind ``container`` (host2's c2) also ping from inside, through
their PID 1's namespaces. The role's guards (--limit, a duplicated IP) fail
before changing anything. The reset is checked by cleanup.yml.
"""

import json
import os
import time

import pytest

from tests.lib import ansible_run

PORT = 4789
PLAYBOOK = os.path.join(ansible_run.ROOT, 'playbooks', 'ch06_overlay_network.yml')


def containers(inventory):
    """[(host, container)] from the inventory."""
    out = []
    for h, hv in sorted(inventory['hosts'].items()):
        for c in hv.get('ch06_containers') or []:
            out.append((h, c))
    return out


def kind(inventory, h, c):
    return c.get('kind', inventory['hosts'][h].get('ch06_container_kind', 'netns'))


def real_containers(inventory):
    """[(host, container)] of kind container."""
    return [(h, c) for h, c in containers(inventory) if kind(inventory, h, c) == 'container']


def pid1(host, name):
    """PID 1 of a running nodocker.lab container, as the simulated host sees it."""
    f = host.file('/run/nodocker-lab/containers/%s.json' % name)
    assert f.exists, 'container %s is not running' % name
    return json.loads(f.content_string)['pid']


def inside(host, name, cmd):
    """Run cmd in the container's namespaces, as `nodocker.lab.container_exec` would."""
    return host.run('nsenter --target %d --mount --uts --ipc --net --pid -- %s'
                    % (pid1(host, name), cmd))


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


def test_scenario_has_both_kinds(inventory):
    kinds = set(kind(inventory, h, c) for h, c in containers(inventory))
    assert kinds == {'netns', 'container'}, kinds


def test_containers_run_in_their_namespace_with_their_hostname(simhosts, inventory):
    for h, c in real_containers(inventory):
        host = simhosts[h]
        pid = pid1(host, c['name'])
        # PID 1 of the container is in the named netns that the veth was cabled to
        assert host.run('ip netns identify %d' % pid).stdout.split() == [c['name']]
        r = inside(host, c['name'], 'hostname')
        assert r.rc == 0 and r.stdout.strip() == c.get('hostname', c['name']), r.stdout + r.stderr
        # its own root: the busybox layer, where ping is an applet
        r = inside(host, c['name'], 'readlink /bin/ping')
        assert r.rc == 0 and r.stdout.strip().endswith('busybox'), r.stdout + r.stderr


def test_container_pings_remote_containers_from_inside(simhosts, inventory):
    reals = real_containers(inventory)
    assert reals, 'the scenario needs a container of kind container'
    for h1, c1 in reals:
        for h2, c2 in containers(inventory):
            if h2 == h1:
                continue
            r = inside(simhosts[h1], c1['name'], 'ping -c 2 -W 2 %s' % c2['ip'])
            assert r.rc == 0, '%s/%s -> %s/%s: %s' % (h1, c1['name'], h2, c2['name'],
                                                      r.stdout + r.stderr)


def _static_fdb(host):
    """The role's FDB entries (learned ones come and go with traffic and ageing)."""
    out = json.loads(host.run('bridge -n overns -j fdb show dev vxlan1').stdout)
    return sorted((e['mac'], e['dst']) for e in out
                  if 'permanent' in e.get('state', '') and e.get('dst'))


def test_limit_to_one_host_fails_before_changing_anything(simhosts):
    before = _static_fdb(simhosts['host1'])
    assert before
    p = ansible_run.playbook(PLAYBOOK, os.environ['NODOCKER_INVENTORY'], '--limit', 'host1',
                             check=False)
    assert p.returncode != 0, p.stdout[-3000:]
    out = ' '.join(p.stdout.split())  # the callback may wrap the message
    assert 'host2 of group' in out and 'not in this play' in out, p.stdout[-3000:]
    assert _static_fdb(simhosts['host1']) == before


def test_duplicate_ip_fails_before_changing_anything(simhosts):
    dup = json.dumps({'ch06_containers': [{'name': 'ch06dup', 'ip': '11.11.11.2'}]})
    p = ansible_run.playbook(PLAYBOOK, os.environ['NODOCKER_INVENTORY'], '-e', dup, check=False)
    assert p.returncode != 0, p.stdout[-3000:]
    out = ' '.join(p.stdout.split())  # the callback may wrap the message
    assert 'Same IP 11.11.11.2: host1/ch06dup, host2/ch06dup.' in out, p.stdout[-3000:]
    for host in simhosts.values():
        assert 'ch06dup' not in host.run('ip netns list').stdout
