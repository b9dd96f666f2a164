#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every benchmark and write bench/REPORT.md.

    .venv/bin/python bench/run.py [--quick] [--rounds N] [--playbook-rounds N]
                                  [--only a,b,c,d,e,f] [--output PATH]

Every benchmark runs inside simulated hosts of labs named ``bench<pid>*``
(never in the machine's own network namespace) and removes them at the end.
--quick: 3 rounds everywhere, 2 s iperf3 runs, no 16-host overlay.
See bench/README.md.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib_common as C  # noqa: E402


def md_rows(times, unit, scale, ref=None, digits=1, higher_better=False):
    rows = ['| variant | median | min | max | n | ratio vs %s |' % (ref or '-'),
            '|---|---:|---:|---:|---:|---:|']
    for k, v in times.items():
        med, lo, hi, n = C.stats(v)
        r = C.ratio(v, times[ref]) if ref else ''
        f = '%%.%df %s' % (digits, unit)
        rows.append('| %s | %s | %s | %s | %d | %s |'
                    % (k, f % (med * scale), f % (lo * scale), f % (hi * scale), n, r))
    return rows


def section_a(work, rounds):
    hosts = {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}}
    with C.Lab(work, 'a', hosts) as lab:
        p = lab.run('host1', [C.PYTHON, os.path.join(HERE, 'lib_start.py'), str(rounds)],
                    timeout=3600)
        times = json.loads(p.stdout)
        p = lab.run('host1', [C.PYTHON, os.path.join(HERE, 'lib_profile_start.py'),
                              str(rounds)], timeout=3600)
        prof = json.loads(p.stdout)
        # the module's monitor: _runtime_start.py run by a fresh python -I -S
        helper = os.path.join(C.REPO, 'plugins', 'module_utils', '_runtime_start.py')
        imp = lab.run('host1', [os.path.realpath(C.PYTHON), '-I', '-S', '-X', 'importtime',
                                helper, 'nomode'], check=False).stderr
    crun = 'crun run (in unshare -m, unified unmounted)'
    lean = 'nodocker.lab lean start (cgroup + fork of the caller, no new interpreter)'
    out = ['## (a) Container start to workload exit: `busybox true`', '',
           'Same busybox rootfs, new mount/UTS/IPC/PID/net namespaces, a cgroup with '
           'cpu 40000/100000 µs, memory 200M, pids 1024 created and removed by every '
           'variant except bare unshare; each run waits for `busybox true` to end. '
           'Run inside a simulated host; %d rounds, variants interleaved in a rotating '
           'order. **crun 1.8 refuses this machine\'s hybrid cgroup layout**, so it runs as '
           "`unshare -m sh -c 'umount /sys/fs/cgroup/unified; crun run ...'`; the wrapper's "
           'own cost is measured alone on the next line.' % rounds, '']
    out += md_rows(times, 'ms', 1000, ref=crun)
    goal = C.stats(times[lean])[0] <= C.stats(times[crun])[0]
    out += ['', '**Goal (not slower than crun): %s** — nodocker lean %s vs crun %s.'
            % ('met' if goal else 'MISSED', C.fmt_stats(times[lean], 'ms', 1000, 1),
               C.fmt_stats(times[crun], 'ms', 1000, 1)), '']
    out += ['### Profile of the lean start path (same host, %d rounds)' % rounds, '']
    out += md_rows(prof, 'ms', 1000)
    out += ['', 'The Ansible module starts each container\'s monitor as a fresh interpreter '
            '(a fork of the module process would keep a private copy of its memory per '
            'container); its imports, `python -I -S -X importtime _runtime_start.py nomode` '
            '(µs; self | cumulative), slowest lines:', '', '```']
    lines = [ln for ln in imp.splitlines() if ln.startswith('import time:') and '|' in ln
             and ln.split('|')[1].strip().isdigit()]
    lines.sort(key=lambda ln: -int(ln.split('|')[1]))
    out += lines[:10] + ['```', '']
    return out, goal


def section_b(work, rounds):
    import lib_playbook
    info = lib_playbook.run(work, rounds)
    t = info['times']
    conv = C.stats(t['converge'])[0] / C.stats(t['floor (converge task count)'])[0]
    rer = C.stats(t['re-run'])[0] / C.stats(t['floor (re-run task count)'])[0]
    out = ['## (b) Playbook converge and re-run vs the Ansible floor', '',
           'Playbook: `%s` on one simulated host (its simhosts play included). Floor: '
           'a playbook with as many `ansible.builtin.ping` tasks per host as the run '
           'executed (recap `ok`). %d rounds: converge from reset, re-run, both floors '
           '(alternating order), reset (untimed).' % (info['playbook'], rounds), '',
           'Recap of the converge: `%s`; of the re-run: `%s`; changed on re-runs: %s.'
           % (info.get('converge recap'), info.get('re-run recap'),
              info.get('re-run changed counts')), '']
    out += md_rows(t, 's', 1, digits=2)
    out += ['', '- converge / floor = **%.2f×** (goal ≤ 1.5×: %s)' % (conv, 'met' if conv <= 1.5
                                                                      else 'MISSED'),
            '- re-run / floor = **%.2f×** (goal ≤ 1.2×: %s)' % (rer, 'met' if rer <= 1.2
                                                                else 'MISSED'), '']
    if info.get('ansiballz'):
        ab = info['ansiballz']
        ping = C.stats(ab['ansible.builtin.ping'])[0]
        rest = sum(C.stats(v)[0] for k, v in ab.items() if k != 'ansible.builtin.ping')
        out += ['### Profile: the controller builds one AnsiballZ payload per distinct module', '',
                'ansible-playbook builds each distinct module\'s payload once per run, mostly '
                'by compiling every module_utils file it imports (ansible.module_utils.basic\'s '
                'own ~55 files each time). The floor builds one (ping); the measured run builds '
                'one per module below. Medians of 3 fresh interpreters (ping, built first, '
                'includes the warm-up):', '']
        out += md_rows(ab, 'ms', 1000)
        out += ['', '- %d distinct modules besides ping: **%.2f s** of controller time per run '
                '(ping: %.2f s), paid by every converge and re-run and not by the floor.'
                % (len(ab) - 1, rest, ping), '']
    elif info.get('ansiballz_error'):
        out += ['AnsiballZ build profile failed: %s' % info['ansiballz_error'], '']
    return out, conv <= 1.5 and rer <= 1.2


def section_c(work, rounds):
    hosts = {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}}
    with C.Lab(work, 'c', hosts) as lab:
        p = lab.run('host1', [C.PYTHON, os.path.join(HERE, 'bench_fdb.py'), str(rounds)],
                    timeout=3600)
    table = p.stdout.strip().splitlines()
    out = ['## (c) 1,000 FDB + 1,000 neighbour entries', '',
           '`bench/bench_fdb.py %d` run inside a simulated host (its namespace is made in '
           'the host\'s own `ip netns`).' % rounds, ''] + table
    goal = True
    for ln in table:
        cells = [c.strip() for c in ln.split('|')]
        if len(cells) > 3 and cells[1].startswith('module ('):
            goal &= float(cells[2]) <= 2.0
        if len(cells) > 3 and cells[1].startswith('module re-check'):
            goal &= float(cells[2]) <= 1.0
    out += ['', '**Goals (≤ 2 s set, ≤ 1 s re-check): %s**' % ('met' if goal else 'MISSED'), '']
    return out, goal


def section_d(work, rounds, seconds):
    import lib_net
    res = lib_net.run(work, rounds, seconds)
    g = res['gbps']
    nd, hb = 'nodocker.lab overlay (ch06 playbook)', 'hand-built VXLAN, same MTU'
    r = C.stats(g[nd])[0] / C.stats(g[hb])[0]
    out = ['## (d) VXLAN container-to-container TCP throughput (iperf3)', '',
           'Two simulated hosts on the lab\'s underlay switch (veth MTU 1500), one TCP '
           'stream, %d s per run, %d rounds interleaved; overlay MTU %d.'
           % (seconds, rounds, res['mtu']), '',
           '| variant | median | min | max | n | ratio vs hand-built |',
           '|---|---:|---:|---:|---:|---:|']
    for k, v in g.items():
        med, lo, hi, n = C.stats(v)
        out.append('| %s | %.2f Gbit/s | %.2f | %.2f | %d | %s |'
                   % (k, med, lo, hi, n, C.ratio(v, g[hb])))
    verdict = 'met' if r >= 0.95 else 'MISSED'
    out += ['', '**Goal (≥ 95%% of hand-built): %s** (%.0f%%)' % (verdict, r * 100), '']
    return out, r >= 0.95


def pct(values, q):
    """The q-th percentile (nearest rank) of a list."""
    import math
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(math.ceil(q / 100.0 * len(v))) - 1))]


def section_e(work, rounds, endpoints=1000):
    hosts = {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}}
    with C.Lab(work, 'e', hosts) as lab:
        p = lab.run('host1', [C.PYTHON, os.path.join(HERE, 'bench_overlay.py'), str(rounds),
                              str(endpoints)], timeout=3600)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    info = res.pop('info', {})
    floor = 'floor: minimal responder'
    out = ['## (e) Dynamic overlay: first packet to answered miss, %d registered endpoints'
           % endpoints, '',
           '`bench/bench_overlay.py %d %d` inside a simulated host: per variant, chapter 7\'s '
           'data path in namespaces of its own (`br0`, `vxlan1 proxy l2miss l3miss`, a '
           'container namespace on `br0`) and a responder; %d endpoints registered on another '
           'host. One miss = the container sends one UDP datagram to an endpoint it never '
           'resolved; timed until both the permanent neighbour and the FDB entry are on '
           '`vxlan1` (netlink notifications): the container is then reachable. A fresh '
           'endpoint per round, variants interleaved in a rotating order. "kernel" = datagram '
           'to the miss notification (not the responder\'s work).'
           % (rounds, endpoints, endpoints), '',
           '| variant | p50 | p99 | min | max | n | timeouts | kernel p50 | ratio (p50) vs floor |',
           '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    goal = True
    for k, v in res.items():
        t = v['total']
        if not t:
            out.append('| %s | - | - | - | - | 0 | %d | - | - |' % (k, v['timeouts']))
            goal = False
            continue
        p50, p99 = pct(t, 50), pct(t, 99)
        kern = '%.2f ms' % (pct(v['kernel'], 50) * 1000) if v['kernel'] else '-'
        out.append('| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %d | %d | %s | %s |'
                   % (k, p50 * 1000, p99 * 1000, min(t) * 1000, max(t) * 1000, len(t),
                      v['timeouts'], kern, '%.2f×' % (p50 / pct(res[floor]['total'], 50))
                      if res[floor]['total'] else 'n/a'))
        if k != floor:
            goal &= p50 <= 0.005 and p99 <= 0.020 and not v['timeouts']
    out += [''] + ['- %s: %.1f s' % kv for kv in sorted(info.items())]
    out += ['', '**Goal (both agents: p50 ≤ 5 ms, p99 ≤ 20 ms, no timeout): %s**'
            % ('met' if goal else 'MISSED'), '']
    return out, goal


def section_f(work, quick):
    import lib_scale
    out = ['## (f) Scale', '']
    c = lib_scale.containers(work, 100)
    out += ['### 100 containers on one simulated host', '',
            'One `nodocker.lab.container` task looping over 100 containers '
            '(`busybox sleep 3600`, memory 32M, pids 64), then the same loop with '
            '`state: absent`.', '',
            '| measure | value |', '|---|---:|',
            '| start 100 (one looped task) | %.1f s (%.2f s per container) |'
            % (c['start_s'], c['start_s'] / 100),
            '| remove 100 | %.1f s (%.2f s per container) |'
            % (c['remove_s'], c['remove_s'] / 100),
            '| RSS of every process in the host, before / with 100 running | %.1f / %.1f MiB |'
            % (c['rss_before_kib'] / 1024.0, c['rss_after_kib'] / 1024.0),
            '| per container (RSS delta / 100: monitor + init + workload) | %.2f MiB |'
            % ((c['rss_after_kib'] - c['rss_before_kib']) / 1024.0 / 100),
            '| cgroup memory of the %d container cgroups | %.1f MiB |'
            % (c['cgroups'], c['cgroup_bytes'] / 1048576.0),
            '| run files while running | %d |' % c['run_files'], '']
    if quick:
        out += ['16-host overlay: skipped (--quick).', '']
        return out, None
    o = lib_scale.overlay(work, 16)
    out += ['### %d simulated hosts in one chapter-6 overlay' % o['hosts'], '',
            '| measure | value |', '|---|---:|',
            '| create the simulated hosts | %.1f s |' % o['simhosts_create_s'],
            '| ch06 converge (-f 16) | %.1f s |' % o['converge_s'],
            '| ch06 re-run | %.1f s (changed=%d) |' % (o['rerun_s'], o['rerun_changed']),
            '| peak RSS of one ansible-playbook process | %.0f MiB |'
            % o['controller_peak_rss_mib'],
            '| first container pings the last one | %s |'
            % list(v for k, v in o.items() if k.startswith('ping'))[0], '']
    return out, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--rounds', type=int)
    ap.add_argument('--playbook-rounds', type=int)
    ap.add_argument('--only', default='a,b,c,d,e,f')
    ap.add_argument('--output', default=os.path.join(HERE, 'REPORT.md'))
    a = ap.parse_args()
    rounds = a.rounds or (3 if a.quick else 10)
    pb_rounds = a.playbook_rounds or (3 if a.quick else 10)
    seconds = 2 if a.quick else 3
    only = set(a.only.split(','))
    work = tempfile.mkdtemp(prefix='ndl-bench-')
    started = time.time()
    desc = C.machine_description()
    sections, goals = [], {}
    plan = [('a', lambda: section_a(work, rounds)), ('b', lambda: section_b(work, pb_rounds)),
            ('c', lambda: section_c(work, rounds)), ('d', lambda: section_d(work, rounds, seconds)),
            ('e', lambda: section_e(work, 20 if a.quick else max(100, rounds))),
            ('f', lambda: section_f(work, a.quick))]
    try:
        for key, fn in plan:
            if key not in only:
                continue
            t = time.time()
            print('== section %s' % key, flush=True)
            try:
                lines, goal = fn()
            except Exception:  # noqa: BLE001 - a failed section is reported, not fatal
                lines = ['## (%s) FAILED' % key, '', '```', traceback.format_exc()[-3000:], '```',
                         '']
                goal = False
            lines.append('_Section time: %.0f s._' % (time.time() - t))
            lines.append('')
            sections.append(lines)
            goals[key] = goal
            print('\n'.join(lines), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    head = ['# nodocker.lab benchmarks', '',
            'Generated by `bench/run.py%s` on %s in %.0f min. Every figure is the median '
            'of the rounds with min and max, against a peer measured in the same run, '
            'interleaved.' % (' --quick' if a.quick else '',
                              datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
                              (time.time() - started) / 60), '',
            '> **The machine may be loaded**: it is a shared 2-vCPU VM on which other jobs '
            '(other sessions\' tests and builds) ran at the same time as this benchmark. '
            'Absolute times are inflated and noisy; the ratios between interleaved variants '
            'are the meaningful figures.', '',
            '## Machine', '', '| | |', '|---|---|']
    head += ['| %s | %s |' % kv for kv in desc]
    head += ['', '## Goals', '', '| benchmark | goal | result |', '|---|---|---|']
    names = {'a': ('container start', 'not slower than crun'),
             'b': ('playbook vs Ansible floor', 'converge ≤ 1.5×, re-run ≤ 1.2×'),
             'c': ('1,000 FDB + 1,000 neigh', 'set ≤ 2 s, re-check ≤ 1 s'),
             'd': ('VXLAN throughput', '≥ 95% of hand-built'),
             'e': ('overlay miss latency', 'p50 ≤ 5 ms, p99 ≤ 20 ms'),
             'f': ('scale', '(measured, no goal)')}
    for k in sorted(goals):
        g = goals[k]
        head.append('| %s | %s | %s |' % (names[k][0], names[k][1],
                                          'n/a' if g is None else ('met' if g else '**missed**')))
    head.append('')
    body = head + [ln for s in sections for ln in s]
    try:
        import lib_notes  # analysis written after looking at a run's numbers
        body += lib_notes.NOTES.strip('\n').splitlines()
    except ImportError:
        pass
    with open(a.output, 'w') as f:
        f.write('\n'.join(body) + '\n')
    print('wrote %s' % a.output)


if __name__ == '__main__':
    main()
