# -*- coding: utf-8 -*-
"""Chapter 7's proof and the agent's fault tests, inside the simulated hosts.

No entry is written by hand: every ping below works because the agent on the
sending side answered the kernel's L3/L2 misses from the registry.

One file for both scenarios: ``ch07_dynamic_overlay_etcd/tests/test_ch07.py``
is a symbolic link to this one; the registry backend comes from the
scenario's inventory.
"""

import json
import os
import sys
import time

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


def mac_of(ip):
    """The role's MAC for a container IP (ch07_mac_prefix + last byte)."""
    return '02:42:c0:a8:00:%02x' % int(ip.split('.')[-1])


def log_size(host):
    return int(host.run('stat -c %%s %s' % LOG).stdout.strip() or 0)


def log_since(host, offset):
    """What the agent (and its supervisor) logged after ``offset`` bytes."""
    return host.run('tail -c +%d %s' % (offset + 1, LOG)).stdout


def supervised_agent(host):
    """(supervisor pid, [agent pids]) of the process supervisor."""
    sup = host.run('cat %s' % PIDFILE).stdout.strip()
    return sup, (host.run('pgrep -P %s' % sup).stdout.split() if sup else [])


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


def test_simulated_hosts_run_the_process_supervisor_and_a_listening_agent(simhosts, inventory):
    """A simulated host has no systemd of its own: never a unit, always the pidfile
    supervisor (whatever the real machine's PID 1 is); the role's readiness check
    passes on each host right after converge."""
    for h in inventory['groups']['course']:
        host = simhosts[h]
        sup, agents = supervised_agent(host)
        assert sup and len(agents) == 1, (sup, agents)
        unit = host.run('test -e /etc/systemd/system/nodocker-overlay-agent.service')
        assert unit.rc != 0, 'a systemd unit was installed on simulated host %s' % h
        r = agent(host, 'ready', '--log', LOG, '--timeout', '10')
        assert r.rc == 0 and r.stdout.strip() == 'listening: agent %s' % agents[0], r.stdout


def test_l2_miss_is_answered_with_the_fdb_entry_to_the_owner_host(simhosts, inventory):
    """Neighbour entry present, FDB entry gone: the next frame to that MAC makes
    the VXLAN device raise an L2 miss (no L3 miss: the IP is known), and only the
    agent's answer can bring the FDB entry back."""
    (h1, c1), (h2, c2) = containers(inventory)[:2]
    host = simhosts[h1]
    mac2, owner = mac_of(c2['ip']), underlay_ip(inventory, h2)
    assert ping(host, c1['name'], c2['ip']).rc == 0  # both entries answered (L3 miss)
    assert [e['lladdr'] for e in permanent_neigh(host) if e['dst'] == c2['ip']] == [mac2]
    start = log_size(host)
    r = host.run('bridge -n overns fdb del %s dev vxlan1 dst %s self' % (mac2, owner))
    assert r.rc == 0, r.stderr
    assert all(e['mac'] != mac2 for e in permanent_fdb(host))
    assert [e['lladdr'] for e in permanent_neigh(host) if e['dst'] == c2['ip']] == [mac2]
    r = ping(host, c1['name'], c2['ip'])
    new = log_since(host, start)
    assert r.rc == 0, r.stdout + r.stderr + new
    assert 'L2 miss %s: answered fdb %s dst %s' % (mac2, mac2, owner) in new, new
    assert [e['dst'] for e in permanent_fdb(host) if e['mac'] == mac2] == [owner]


def test_unshared_registry_directory_is_reported(simhosts, inventory):
    """What the role's check-records step sees when the directory registry is not
    shared: each simulated host's /var/lib/nodocker-lab is private, so a registry
    there holds only that host's records, like a local directory on real hosts."""
    private = '/var/lib/nodocker-lab/ch07-unshared-registry'
    cs = containers(inventory)
    try:
        for h, c in cs:
            records = json.dumps([{'name': c['name'], 'ip': c['ip'], 'mac': mac_of(c['ip'])}])
            r = agent(simhosts[h], 'sync-host', '--registry', 'dir:' + private, '--host',
                      underlay_ip(inventory, h), '--containers', "'%s'" % records)
            assert r.rc == 0, r.stderr
        h1, others = cs[0][0], cs[1:]
        expect = json.dumps([{'inventory_host': h, 'ip': c['ip'], 'host': underlay_ip(inventory, h)}
                             for h, c in others])
        r = agent(simhosts[h1], 'check-records', '--registry', 'dir:' + private,
                  '--expect', "'%s'" % expect, '--timeout', '1')
        assert r.rc == 1, r.stdout
        assert 'not shared' in r.stdout, r.stdout
        for h, c in others:
            assert '%s (%s on %s)' % (h, c['ip'], underlay_ip(inventory, h)) in r.stdout, r.stdout
        # the scenario's own registry is seen by every host
        r = agent(simhosts[h1], 'check-records', '--registry', registry_spec(inventory),
                  '--expect', "'%s'" % expect, '--timeout', '10')
        assert r.rc == 0, r.stdout
    finally:
        for h in simhosts:
            simhosts[h].run('rm -rf %s' % private)


def test_killed_agent_is_restarted_and_answers_without_duplicates(simhosts, inventory):
    (h1, c1), (h2, c2) = containers(inventory)[:2]
    host = simhosts[h1]
    sup, old = supervised_agent(host)
    assert sup, 'no process supervisor (simulated hosts never use systemd)'
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
    # the same agent process must survive the record: a crash restarted by the
    # supervisor would also log the line and answer the ping
    assert wait_for(lambda: len(supervised_agent(host)[1]) == 1, 15), supervised_agent(host)
    before = supervised_agent(host)
    start = log_size(host)
    assert host.run(cmd_put).rc == 0
    try:
        assert wait_for(lambda: 'malformed registry record skipped' in log_since(host, start)
                        and '11.11.11.250' in log_since(host, start), 2 * INTERVAL + 2)
        host.run('ip -n overns neigh flush dev vxlan1 nud permanent')
        assert ping(host, c1['name'], c2['ip']).rc == 0
        assert supervised_agent(host) == before
        assert 'supervisor: agent exited' not in log_since(host, start)
        assert 'Traceback' not in log_since(host, start)
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
