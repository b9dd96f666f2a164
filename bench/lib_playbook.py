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

import json
import os
import re
import subprocess
import time

from lib_common import PYTHON, REPO, Lab

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


# Modules the converge and re-run of build-container.yml execute (the template
# action runs stat, then copy or file); the floor runs ansible.builtin.ping only.
PLAYBOOK_MODULES = ['nodocker.lab.simhosts', 'nodocker.lab.rootfs', 'nodocker.lab.netns',
                    'nodocker.lab.veth', 'nodocker.lab.address', 'nodocker.lab.link',
                    'nodocker.lab.container', 'ansible.builtin.stat', 'ansible.builtin.file']

_BUILD = r"""
import json, sys, time
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar
init_plugin_loader([sys.argv[1]])
templar = Templar(loader=DataLoader())
out = {}
for name in ['ansible.builtin.ping'] + sys.argv[2:]:
    ctx = module_loader.find_plugin_with_context(name)
    t = time.perf_counter()
    module_common.modify_module(module_name=ctx.resolved_fqcn, module_path=ctx.plugin_resolved_path,
                                module_args={}, templar=templar,
                                task_vars={'ansible_python_interpreter': sys.executable})
    out[name] = time.perf_counter() - t
print(json.dumps(out))
"""


def ansiballz_build_times(rounds=3):
    """Seconds the controller spends building each module's AnsiballZ payload.

    ansible-playbook does it once per distinct module per run (an in-memory
    cache), mostly compiling every module_utils file the module pulls in
    (ansible.module_utils.basic's ~55 files, each time). A fresh interpreter
    per round; the first module built also pays for the warm-up (imports): ping
    is built first, so the warm-up lands on the floor's side.
    """
    runs = []
    for dummy in range(rounds):
        p = subprocess.run([PYTHON, '-c', _BUILD, os.path.join(REPO, 'collections')]
                           + PLAYBOOK_MODULES, stdout=subprocess.PIPE, universal_newlines=True,
                           check=True)
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return dict((k, [r[k] for r in runs]) for k in runs[0])


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
    try:
        info['ansiballz'] = ansiballz_build_times()
    except Exception as e:  # noqa: BLE001 - the profile is extra, not the measure
        info['ansiballz_error'] = str(e)
    return info
