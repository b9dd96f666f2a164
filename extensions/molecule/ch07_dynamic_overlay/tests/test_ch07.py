# -*- coding: utf-8 -*-
"""Chapter 7's proof and the agent's fault tests, inside the simulated hosts.

No entry is written by hand: every ping below works because the agent on the
sending side answered the kernel's L3/L2 misses from the registry.
"""

import json
import os
import sys
import time

import pytest

AGENT = '/var/lib/nodocker-lab/overlay-agent/_overlay_agent.py'
PYTHON = os.path.realpath(sys.executable)  # the venv's python (has pyroute2)
LOG = '/var/log/nodocker-lab/overlay-agent.log'
PIDFILE = '/run/nodocker-lab/overlay-agent.pid'
INTERVAL = 1.0  # ch07_agent_interval in the inventory


def containers(inventory):
    out = []
    for h, hv in sorted(inventory['hosts'].items()):
        for c in hv.get('ch07_containers') or []:
            out.append((h, c))
    return out


def group_vars(inventory):
    return next(iter(inventory['hosts'].values()))


def registry_spec(inventory):
    gv = group_vars(inventory)
    if gv.get('ch07_registry') == 'etcd':
        return 'etcd:' + gv['ch07_etcd_endpoint']
    return 'dir:' + gv['ch07_registry_dir']


def underlay_ip(inventory, h):
    return inventory['hosts'][h]['nodocker_underlay_address'].split('/')[0]


def ns(host, name, cmd):
    return host.run('ip netns exec %s %s' % (name, cmd))


def ping(host, netns, ip, tries=3):
    r = None
    for dummy in range(tries):
        # the first packet may be lost while the miss is being answered
        r = ns(host, netns, 'ping -c 3 -i 0.3 -W 2 %s' % ip)
        if r.rc == 0:
            return r
    return r


def permanent_neigh(host):
    return json.loads(host.run('ip -n overns -j neigh show dev vxlan1 nud permanent').stdout or '[]')


def permanent_fdb(host):
    out = json.loads(host.run('bridge -n overns -j fdb show dev vxlan1').stdout or '[]')
    return [e for e in out if e.get('dst') and 'permanent' in e.get('state', '')]


def agent(host, *args):
    return host.run('%s %s %s' % (PYTHON, AGENT, ' '.join(args)))


def wait_for(fn, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.2)
    return fn()


def test_every_container_reaches_every_other_host(simhosts, inventory):
    cs = containers(inventory)
    for h1, c1 in cs:
        for h2, c2 in cs:
            if h1 != h2:
                r = ping(simhosts[h1], c1['name'], c2['ip'])
                assert r.rc == 0, '%s/%s -> %s: %s' % (h1, c1['name'], c2['ip'], r.stdout + r.stderr)


def test_agent_logged_misses_and_answers(simhosts, inventory):
    for h in simhosts:
        if h not in inventory['groups'].get('course', []):
            continue
        log = simhosts[h].run('cat %s' % LOG).stdout
        assert 'L3 miss' in log and 'answered' in log, log[-2000:]


def test_entries_point_at_the_owner_hosts(simhosts, inventory):
    owner = {c['ip']: underlay_ip(inventory, h) for h, c in containers(inventory)}
    for h, c in containers(inventory):
        for e in permanent_fdb(simhosts[h]):
            assert e['dst'] in owner.values() and e['dst'] != underlay_ip(inventory, h)
        for e in permanent_neigh(simhosts[h]):
            assert owner[e['dst']] != underlay_ip(inventory, h)


def test_removed_container_disappears_within_the_bound(simhosts, inventory):
    cs = containers(inventory)
    (h_last, c_last), others = cs[-1], cs[:-1]
    spec = registry_spec(inventory)
    for h, c in others:
        assert ping(simhosts[h], c['name'], c_last['ip']).rc == 0
    assert agent(simhosts[h_last], 'unregister', '--registry', spec, '--ip', c_last['ip']).rc == 0
    try:
        for h, c in others:
            gone = wait_for(lambda: all(e['dst'] != c_last['ip'] for e in permanent_neigh(simhosts[h])),
                            2 * INTERVAL + 1)
            assert gone, permanent_neigh(simhosts[h])
            mac = '02:42:c0:a8:00:%02x' % int(c_last['ip'].split('.')[-1])
            assert all(e['mac'] != mac for e in permanent_fdb(simhosts[h]))
    finally:
        mac = '02:42:c0:a8:00:%02x' % int(c_last['ip'].split('.')[-1])
        agent(simhosts[h_last], 'register', '--registry', spec, '--ip', c_last['ip'],
              '--mac', mac, '--host', underlay_ip(inventory, h_last), '--name', c_last['name'])
    for h, c in others:
        r = ping(simhosts[h], c['name'], c_last['ip'])
        assert r.rc == 0, simhosts[h].run('tail -n 30 %s' % LOG).stdout


def test_killed_agent_is_restarted_and_answers_without_duplicates(simhosts, inventory):
    (h1, c1), (h2, c2) = containers(inventory)[:2]
    host = simhosts[h1]
    sup = host.run('cat %s' % PIDFILE).stdout.strip()
    if not sup:
        pytest.skip('agent supervised by systemd here')
    old = host.run('pgrep -P %s' % sup).stdout.split()
    assert old, 'no agent under the supervisor'
    host.run('kill -9 %s' % old[0])
    assert wait_for(lambda: host.run('pgrep -P %s' % sup).stdout.split() not in ([], old), 15)
    # forget the answers so the restarted agent must answer again
    host.run('ip -n overns neigh flush dev vxlan1 nud permanent')
    assert ping(host, c1['name'], c2['ip']).rc == 0
    ips = [e['dst'] for e in permanent_neigh(host)]
    assert len(ips) == len(set(ips))
    macs = [e['mac'] for e in permanent_fdb(host)]
    assert len(macs) == len(set(macs))
    assert 'supervisor: agent exited' in host.run('cat %s' % LOG).stdout


def test_malformed_record_is_logged_and_skipped(simhosts, inventory):
    gv = group_vars(inventory)
    if gv.get('ch07_registry') == 'etcd':
        endpoint = gv['ch07_etcd_endpoint']
        (h1, c1), (h2, c2) = containers(inventory)[:2]
        put = ('%s -c "import base64,json,urllib.request as u;'
               'b=lambda s: base64.b64encode(s.encode()).decode();'
               'u.urlopen(u.Request(\'%s/v3/kv/%%s\', json.dumps(%%s).encode()))"')
        key = '/nodocker-lab/overlay/42/11.11.11.250'
        cmd_put = put % (PYTHON, endpoint) % ('put', "{'key': b('%s'), 'value': b('{broken')}" % key)
        cmd_del = put % (PYTHON, endpoint) % ('deleterange', "{'key': b('%s')}" % key)
    else:
        path = os.path.join(gv['ch07_registry_dir'], '11.11.11.250.json')
        cmd_put = "sh -c 'echo {broken > %s'" % path
        cmd_del = 'rm -f %s' % path
    (h1, c1), (h2, c2) = containers(inventory)[:2]
    host = simhosts[h1]
    assert host.run(cmd_put).rc == 0
    try:
        assert wait_for(lambda: 'malformed registry record skipped' in host.run('cat %s' % LOG).stdout
                        and '11.11.11.250' in host.run('cat %s' % LOG).stdout, 2 * INTERVAL + 2)
        host.run('ip -n overns neigh flush dev vxlan1 nud permanent')
        assert ping(host, c1['name'], c2['ip']).rc == 0
    finally:
        host.run(cmd_del)


def test_container_attached_later_is_reachable(simhosts, inventory):
    """A container attached by hand on one host, registered: reachable from the others."""
    cs = containers(inventory)
    (h_new, dummy), (h1, c1) = cs[-1], cs[0]
    host = simhosts[h_new]
    ip, name = '11.11.11.77', 'late77'
    mac = '02:42:c0:a8:00:4d'
    spec = registry_spec(inventory)
    mtu = json.loads(host.run('ip -n overns -j link show vxlan1').stdout)[0]['mtu']
    script = ('ip netns add {n} && ip -n overns link add v{n} type veth peer name eth0 netns {n} '
              '&& ip -n {n} link set eth0 address {m} mtu {mtu} && ip -n overns link set v{n} mtu {mtu} '
              '&& ip -n overns link set v{n} master br0 up && ip -n {n} addr add {ip}/24 dev eth0 '
              '&& ip -n {n} link set eth0 up && ip -n {n} link set lo up').format(
                  n=name, m=mac, ip=ip, mtu=mtu)
    assert host.run(script).rc == 0
    try:
        assert agent(host, 'register', '--registry', spec, '--ip', ip, '--mac', mac,
                     '--host', underlay_ip(inventory, h_new), '--name', name).stdout.strip() == 'changed'
        r = ping(simhosts[h1], c1['name'], ip)
        assert r.rc == 0, r.stdout + r.stderr
    finally:
        agent(host, 'unregister', '--registry', spec, '--ip', ip)
        host.run('ip netns del %s' % name)
