#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: 1,000 FDB + 1,000 neighbour entries in one module run vs one command each.

Everything happens on a VXLAN device inside a network namespace this script
creates (``ndl_bench_<pid>``) and deletes at the end. Variants, interleaved in
every round so that machine noise hits them alike:

* ``module``: nodocker.lab.fdb then nodocker.lab.neigh, each run as Ansible
  runs a module (a fresh interpreter, JSON arguments), 1,000 entries each;
* ``module re-check``: the same again on the finished state (nothing to do);
* ``one command per entry``: 1,000 ``bridge fdb add`` + 1,000 ``ip neigh add``;
* ``ip/bridge -batch``: the same commands fed to one ``bridge -batch`` and one
  ``ip -batch`` (the best a shell-out can do).

Prints a markdown table (median, min, max of N rounds; default 10).
Usage: bench/bench_fdb.py [ROUNDS] [ENTRIES]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')
NS = 'ndl_bench_%d' % os.getpid()


def sh(*args, **kw):
    subprocess.run(args, check=True, **kw)


def entries(n):
    fdb = [{'mac': '02:42:%02x:%02x:%02x:01' % (i >> 16 & 255, i >> 8 & 255, i & 255),
            'dst': '192.168.%d.%d' % (104 + i // 250, 2 + i % 250)} for i in range(n)]
    neigh = [{'ip': '10.%d.%d.%d' % (i >> 16 & 255, i >> 8 & 255, i & 255),
              'mac': fdb[i]['mac']} for i in range(n)]
    return fdb, neigh


def reset_device():
    subprocess.run(['ip', '-n', NS, 'link', 'del', 'vxlan1'], stderr=subprocess.DEVNULL, check=False)
    sh('ip', '-n', NS, 'link', 'add', 'vxlan1', 'mtu', '1450', 'type', 'vxlan', 'id', '42',
       'dstport', '4789', 'proxy', 'learning')
    sh('ip', '-n', NS, 'link', 'set', 'vxlan1', 'up')


def run_module(name, args):
    """Run a module the way Ansible does: new interpreter, arguments as JSON."""
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, f)
    try:
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'collections'))
        out = subprocess.run([PYTHON, os.path.join(REPO, 'plugins', 'modules', name + '.py'),
                              f.name], env=env, capture_output=True, text=True, check=False)
        res = json.loads(out.stdout)
        if res.get('failed'):
            raise RuntimeError(res['msg'])
        return res
    finally:
        os.unlink(f.name)


def variant_module(fdb, neigh):
    a = run_module('fdb', {'dev': 'vxlan1', 'netns': NS, 'entries': fdb})
    b = run_module('neigh', {'dev': 'vxlan1', 'netns': NS, 'entries': neigh})
    return a['changed'] or b['changed']


class _Module:
    """Just enough of AnsibleModule for run_fdb/run_neigh called in-process."""

    check_mode = False

    def __init__(self, params):
        self.params = params

    def fail_json(self, **kw):
        raise RuntimeError(kw.get('msg'))


def variant_in_process(fdb, neigh):
    """The modules' own work without the interpreter start and imports."""
    sys.path.insert(0, os.path.join(REPO, 'collections'))
    from ansible_collections.nodocker.lab.plugins.module_utils._fdb import run_fdb
    from ansible_collections.nodocker.lab.plugins.module_utils._neigh import run_neigh
    run_fdb(_Module({'dev': 'vxlan1', 'netns': NS, 'state': 'merged', 'entries': fdb}))
    run_neigh(_Module({'dev': 'vxlan1', 'netns': NS, 'state': 'merged', 'entries': neigh}))


def fdb_cmds(fdb):
    return ['fdb add %s dev vxlan1 self dst %s vni 42 port 4789 permanent' % (e['mac'], e['dst'])
            for e in fdb]


def neigh_cmds(neigh):
    return ['neigh add %s lladdr %s dev vxlan1 nud permanent' % (e['ip'], e['mac'])
            for e in neigh]


def variant_per_entry(fdb, neigh):
    for c in fdb_cmds(fdb):
        sh('bridge', '-n', NS, *c.split())
    for c in neigh_cmds(neigh):
        sh('ip', '-n', NS, *c.split())


def variant_batch(fdb, neigh):
    sh('bridge', '-n', NS, '-batch', '-', input='\n'.join(fdb_cmds(fdb)) + '\n', text=True)
    sh('ip', '-n', NS, '-batch', '-', input='\n'.join(neigh_cmds(neigh)) + '\n', text=True)


def timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    fdb, neigh = entries(n)
    times = {'module (one task each for fdb and neigh)': [],
             'module re-check (nothing to change)': [],
             'in-process: the modules\' work without interpreter start': [],
             'in-process re-check': [],
             'one bridge/ip command per entry': [],
             'bridge -batch + ip -batch': []}
    sh('ip', 'netns', 'add', NS)
    try:
        for dummy in range(rounds):
            keys = list(times)
            reset_device()
            times[keys[0]].append(timed(variant_module, fdb, neigh))
            times[keys[1]].append(timed(variant_module, fdb, neigh))
            reset_device()
            times[keys[2]].append(timed(variant_in_process, fdb, neigh))
            times[keys[3]].append(timed(variant_in_process, fdb, neigh))
            reset_device()
            times[keys[4]].append(timed(variant_per_entry, fdb, neigh))
            reset_device()
            times[keys[5]].append(timed(variant_batch, fdb, neigh))
    finally:
        subprocess.run(['ip', 'netns', 'del', NS], check=False)
    print('%d FDB + %d neighbour entries on a VXLAN device in a fresh netns, %d rounds '
          '(interleaved), load average %s\n' % (n, n, rounds, os.getloadavg()[0]))
    print('| variant | median (s) | min (s) | max (s) |')
    print('|---|---:|---:|---:|')
    for k, v in times.items():
        print('| %s | %.3f | %.3f | %.3f |' % (k, statistics.median(v), min(v), max(v)))


if __name__ == '__main__':
    main()
