# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (b): build-container.yml converge and re-run vs the Ansible floor.

The floor is a playbook with, for every host in the recap, as many
``ansible.builtin.ping`` tasks (a module run through the same connection) as
the measured run executed there (ok, which includes changed). Each round: converge (from
reset), idempotent re-run, floor of each, then the reset (not timed).
Falls back to playbooks/ch03_netns.yml when build-container.yml is missing.
"""

from __future__ import absolute_import, division, print_function

import os
import re
import time

from lib_common import REPO, Lab

RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)'
                   r'\s+skipped=(\d+)', re.M)


def recap(text):
    out = {}
    for m in RECAP.finditer(text.split('PLAY RECAP', 1)[-1]):
        out[m.group(1)] = dict(ok=int(m.group(2)), changed=int(m.group(3)),
                               failed=int(m.group(5)), skipped=int(m.group(6)))
    return out


def floor_playbook(path, rc):
    lines = ['---']
    for host, r in sorted(rc.items()):
        n = r['ok']  # Ansible's ok count includes the changed tasks
        lines += ['- name: Floor for %s' % host, '  hosts: %s' % host, '  gather_facts: false',
                  '  tasks:']
        for i in range(n):
            lines += ['    - name: No-op %d' % i, '      ansible.builtin.ping:']
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def run(workdir, rounds):
    pb = os.path.join(REPO, 'build-container.yml')
    reset = ['-e', 'ch10_state=absent']
    which = 'build-container.yml'
    if not os.path.exists(pb):
        pb, reset, which = os.path.join(REPO, 'playbooks', 'ch03_netns.yml'), \
            ['-e', 'ch03_state=absent'], 'playbooks/ch03_netns.yml (build-container.yml missing)'
    hosts = {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}}
    times = {'converge': [], 'floor (converge task count)': [], 're-run': [],
             'floor (re-run task count)': []}
    info = {'playbook': which}
    with Lab(workdir, 'p', hosts) as lab:
        try:
            for r in range(rounds):
                t = time.perf_counter()
                p = lab.playbook(pb)
                times['converge'].append(time.perf_counter() - t)
                rc1 = recap(p.stdout)
                t = time.perf_counter()
                p = lab.playbook(pb)
                times['re-run'].append(time.perf_counter() - t)
                rc2 = recap(p.stdout)
                changed = sum(v['changed'] for v in rc2.values())
                info.setdefault('re-run changed counts', []).append(changed)
                info['converge recap'], info['re-run recap'] = rc1, rc2
                f1 = floor_playbook(os.path.join(workdir, 'floor1.yml'), rc1)
                f2 = floor_playbook(os.path.join(workdir, 'floor2.yml'), rc2)
                order = [('floor (converge task count)', f1), ('floor (re-run task count)', f2)]
                for k, f in (order if r % 2 == 0 else order[::-1]):
                    t = time.perf_counter()
                    lab.playbook(f)
                    times[k].append(time.perf_counter() - t)
                lab.playbook(pb, *reset)
        finally:
            lab.playbook(pb, *reset, check=False)
    info['times'] = times
    return info
