#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (e): dynamic overlay miss latency with 1,000 registered endpoints.

Run inside a simulated host (bench/run.py does). For each variant the script
builds chapter 7's data path in namespaces of its own (``ndlE<pid><v>``: the
overlay namespace with ``br0`` and ``vxlan1 proxy l2miss l3miss nolearning``,
and a container namespace whose ``veth0`` is a port of ``br0``), registers
1,000 endpoints that live on another host (192.168.104.3) and starts a
responder listening on the overlay namespace:

* ``agent, directory registry``: ``_overlay_agent.py run`` with ``dir:``;
* ``agent, etcd registry``: the same agent with ``etcd:`` (an etcd 3.4
  started inside this simulated host, on its loopback);
* ``floor: minimal responder``: the least a responder can do (pyroute2, one
  dict lookup, ``neigh replace`` + ``fdb replace``, no registry, no log).

One miss: the container sends one UDP datagram to an endpoint IP it has never
resolved; its ARP request reaches ``vxlan1``, which has no neighbour entry and
raises an L3 miss. Timed from just before ``sendto`` until both the permanent
neighbour entry (IP -> MAC) and the FDB entry (MAC -> the owner host) are on
``vxlan1`` (netlink notifications on the overlay namespace): from then on
the container is reachable (the proxy answers its next ARP). Each round takes
a fresh endpoint in every variant, in a rotating order. The kernel's share
(datagram to miss notification) is reported apart.

Prints JSON: {variant: {"total": [s...], "kernel": [s...], "timeouts": n}}.
Usage: bench/bench_overlay.py [ROUNDS] [ENDPOINTS]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')
AGENT = os.path.join(REPO, 'plugins', 'module_utils', '_overlay_agent.py')
SELF_IP, PEER_IP = '192.168.104.2', '192.168.104.3'
CLONE_NEWNET = 0x40000000
ETCD_PORT = 23790
VARIANTS = ('agent, directory registry', 'agent, etcd registry', 'floor: minimal responder')
NUD_PERMANENT = 0x80
AF_BRIDGE = 7


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def endpoint(i):
    """The i-th registered endpoint: 11.11.100.1 ... (on host PEER_IP)."""
    n = 100 * 256 + 1 + i
    return ('11.11.%d.%d' % (n >> 8, n & 255),
            '02:42:0b:0b:%02x:%02x' % (n >> 8 & 255, n & 255))


def build(tag, vni):
    ov, ct = 'ndlE%d%so' % (os.getpid(), tag), 'ndlE%d%sc' % (os.getpid(), tag)
    sh('ip', 'netns', 'add', ov)
    sh('ip', 'netns', 'add', ct)
    sh('ip', '-n', ov, 'link', 'add', 'br0', 'type', 'bridge')
    sh('ip', '-n', ov, 'link', 'add', 'vxlan1', 'mtu', '1450', 'type', 'vxlan', 'id', str(vni),
       'dstport', '4789', 'proxy', 'l2miss', 'l3miss', 'nolearning')
    sh('ip', '-n', ov, 'link', 'set', 'vxlan1', 'master', 'br0', 'up')
    sh('ip', '-n', ov, 'link', 'add', 'veth-c', 'mtu', '1450', 'type', 'veth', 'peer',
       'name', 'veth0', 'netns', ct)
    sh('ip', '-n', ov, 'link', 'set', 'veth-c', 'master', 'br0', 'up')
    sh('ip', '-n', ov, 'link', 'set', 'br0', 'up')
    sh('ip', '-n', ct, 'addr', 'add', '11.11.11.2/16', 'dev', 'veth0')
    sh('ip', '-n', ct, 'link', 'set', 'veth0', 'up')
    sh('ip', '-n', ct, 'link', 'set', 'lo', 'up')
    return ov, ct


def socket_in(netns, *args):
    """A socket created inside a named namespace (setns there and back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open('/proc/self/ns/net', os.O_RDONLY)
    target = os.open('/run/netns/' + netns, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), 'setns %s' % netns)
        try:
            return socket.socket(*args)
        finally:
            if libc.setns(home, CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), 'setns back')
    finally:
        os.close(home)
        os.close(target)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError('timed out waiting for %s' % what)


def start_etcd(workdir):
    data = os.path.join(workdir, 'etcd')
    url = 'http://127.0.0.1:%d' % ETCD_PORT
    log = open(os.path.join(workdir, 'etcd.log'), 'wb')
    p = subprocess.Popen(['etcd', '--name', 'bench', '--data-dir', data,
                          '--listen-client-urls', url, '--advertise-client-urls', url,
                          '--listen-peer-urls', 'http://127.0.0.1:%d' % (ETCD_PORT + 1),
                          '--initial-advertise-peer-urls', 'http://127.0.0.1:%d' % (ETCD_PORT + 1),
                          '--initial-cluster', 'bench=http://127.0.0.1:%d' % (ETCD_PORT + 1)],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(('127.0.0.1', ETCD_PORT), 0.5).close()
            return True
        except OSError:
            return p.poll() is not None  # died: stop waiting, checked below
    wait_for(up, 30, 'etcd')
    if p.poll() is not None:
        raise RuntimeError('etcd exited: %s' % open(log.name).read()[-2000:])
    return p, url


def floor_responder(netns, records_file):
    """The minimal responder (run as a child process): answer L3 misses from a dict."""
    from pyroute2 import IPRoute
    with open(records_file) as f:
        records = json.load(f)
    events = IPRoute(netns=netns, flags=0)
    req = IPRoute(netns=netns, flags=0)
    idx = req.link_lookup(ifname='vxlan1')[0]
    events.bind(groups=0x4)
    print('listening', flush=True)
    while True:
        for msg in events.get():
            if msg.get('event') != 'RTM_GETNEIGH' or msg.get('ifindex') != idx:
                continue
            rec = records.get(msg.get('NDA_DST'))
            if rec is None:
                continue
            req.neigh('replace', ifindex=idx, dst=rec['ip'], lladdr=rec['mac'],
                      family=socket.AF_INET, state=NUD_PERMANENT)
            req.fdb('replace', ifindex=idx, lladdr=rec['mac'], dst=rec['host'],
                    state=NUD_PERMANENT | 0x40, flags=0x02)


def start_responder(variant, ov, registry, workdir, tag):
    log_path = os.path.join(workdir, 'responder-%s.log' % tag)
    log = open(log_path, 'wb')
    if variant.startswith('floor'):
        argv = [PYTHON, os.path.abspath(__file__), 'floor', ov, registry]
    else:
        argv = [PYTHON, AGENT, 'run', '--netns', ov, '--dev', 'vxlan1', '--registry', registry,
                '--self-ip', SELF_IP, '--vni', '42', '--interval', '2', '--log', log_path]
    p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def ready():
        if p.poll() is not None:
            raise RuntimeError('%s exited: %s' % (variant, open(log_path).read()[-2000:]))
        text = open(log_path).read()
        return 'listening' in text
    wait_for(ready, 60, variant)
    return p


RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
NDA_DST, NDA_LLADDR = 1, 2
RTMGRP_NEIGH = 0x4


def neigh_events(netns):
    """A raw rtnetlink socket in ``netns`` subscribed to neighbour notifications.

    Deliberately not pyroute2: a plain socket, parsed here, timestamps each
    notification when it is read, with no library buffering in between.
    """
    s = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((0, RTMGRP_NEIGH))
    return s


def parse_neigh(data):
    """(type, family, state, dst, lladdr) for each neighbour message in a datagram."""
    out, off = [], 0
    while off + 16 <= len(data):
        length, mtype = struct.unpack_from('=IH', data, off)
        if length < 16:
            break
        if mtype in (RTM_NEWNEIGH, RTM_GETNEIGH):
            family, _ifindex, state = struct.unpack_from('=B3xiH', data, off + 16)
            dst = lladdr = None
            a = off + 16 + 12
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from('=HH', data, a)
                if alen < 4:
                    break
                val = data[a + 4:a + alen]
                if atype == NDA_DST:
                    dst = socket.inet_ntop(socket.AF_INET if len(val) == 4 else socket.AF_INET6,
                                           val)
                elif atype == NDA_LLADDR and len(val) == 6:
                    lladdr = ':'.join('%02x' % b for b in bytearray(val))
                a += (alen + 3) & ~3
            out.append((mtype, family, state, dst, lladdr))
        off += (length + 3) & ~3
    return out


def drain(sock):
    while select.select([sock], [], [], 0.2)[0]:
        sock.recv(1 << 20)


def one_miss(udp, events, ip, mac, timeout=2.0):
    """Send one datagram to ip; seconds until neigh + fdb are on vxlan1 (None: timeout)."""
    got_neigh = got_fdb = False
    t_miss = None
    t0 = time.perf_counter()
    udp.sendto(b'x', (ip, 9))
    deadline = t0 + timeout
    while not (got_neigh and got_fdb):
        left = deadline - time.perf_counter()
        if left <= 0 or not select.select([events], [], [], left)[0]:
            return None, None
        data = events.recv(1 << 20)
        now = time.perf_counter()
        for mtype, family, state, dst, lladdr in parse_neigh(data):
            if mtype == RTM_GETNEIGH and dst == ip and t_miss is None:
                t_miss = now
            if mtype != RTM_NEWNEIGH or not state & NUD_PERMANENT:
                continue
            if family == AF_BRIDGE and lladdr == mac and dst == PEER_IP:
                got_fdb = True
            elif family == socket.AF_INET and dst == ip and lladdr == mac:
                got_neigh = True
    return time.perf_counter() - t0, (t_miss - t0) if t_miss else None


def main():
    if len(sys.argv) > 1 and sys.argv[1] == 'floor':
        return floor_responder(sys.argv[2], sys.argv[3])
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    from plugins.module_utils._registry import make_record, open_registry
    workdir = tempfile.mkdtemp(prefix='ndl-bench-e-')
    procs, namespaces, stacks, info = [], [], {}, {}
    etcd = None
    try:
        sh('ip', 'link', 'set', 'lo', 'up')
        records = [make_record(*endpoint(i), host=PEER_IP, name='e%d' % i, vni=42)
                   for i in range(n)]
        t = time.perf_counter()
        dir_spec = 'dir:' + os.path.join(workdir, 'registry')
        reg = open_registry(dir_spec, vni=42)
        for r in records:
            reg.put(r)
        info['register %d (directory)' % n] = time.perf_counter() - t
        etcd, url = start_etcd(workdir)
        procs.append(etcd)
        t = time.perf_counter()
        etcd_spec = 'etcd:' + url
        reg = open_registry(etcd_spec, vni=42)
        for r in records:
            reg.put(r)
        info['register %d (etcd)' % n] = time.perf_counter() - t
        floor_file = os.path.join(workdir, 'floor.json')
        with open(floor_file, 'w') as f:
            json.dump(dict((r['ip'], r) for r in records), f)
        specs = {VARIANTS[0]: dir_spec, VARIANTS[1]: etcd_spec, VARIANTS[2]: floor_file}
        for i, v in enumerate(VARIANTS):
            ov, ct = build(str(i), 42)
            namespaces += [ov, ct]
            procs.append(start_responder(v, ov, specs[v], workdir, str(i)))
            events = neigh_events(ov)
            udp = socket_in(ct, socket.AF_INET, socket.SOCK_DGRAM)
            stacks[v] = (udp, events)
        time.sleep(0.5)
        for v in VARIANTS:  # drain what the responders' start-up produced
            drain(stacks[v][1])
        res = dict((v, {'total': [], 'kernel': [], 'timeouts': 0}) for v in VARIANTS)
        order = list(VARIANTS)
        for r in range(min(rounds, n)):
            ip, mac = endpoint(r)
            for v in order:
                total, kernel = one_miss(stacks[v][0], stacks[v][1], ip, mac)
                if total is None:
                    res[v]['timeouts'] += 1
                else:
                    res[v]['total'].append(total)
                    if kernel is not None:
                        res[v]['kernel'].append(kernel)
            order = order[1:] + order[:1]
            time.sleep(0.02)
        res['info'] = info
        print(json.dumps(res))
    finally:
        for udp, events in stacks.values():
            udp.close()
            events.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for ns in namespaces:
            subprocess.run(['ip', 'netns', 'del', ns], check=False)
        if not os.environ.get("NDL_BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
