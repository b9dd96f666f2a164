# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/classroom.yml on a fresh simulated host of a lab of our own:
packages already installed (unchanged), the course's user and the tools layer
made inside the host, module loading and global sysctls skipped (simulated
host), the preflight table printed with nothing missing on this machine, and a
second run changes nothing. The lab is destroyed at the end.

    .venv/bin/pytest tests/classroom/test_classroom.py -v     (as root)
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(os.path.abspath(sys.executable))
sys.path.insert(0, os.path.join(ROOT, 'collections'))  # the collection, as ansible_collections.nodocker.lab
from ansible_collections.nodocker.lab.plugins.module_utils import _simhost  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root (simulated hosts)')

INVENTORY = """\
all:
  vars:
    ansible_connection: nodocker.lab.simhost
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    nodocker_simhost_lab: %s
  children:
    course:
      hosts:
        host1:
          nodocker_underlay_address: 192.168.104.2/24
          nodocker_underlay_gateway: 192.168.104.254
"""


def playbook(inv, name, *args, as_json=False):
    env = dict(os.environ)
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    if as_json:
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.posix.json'
    p = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', inv,
                        os.path.join(ROOT, 'playbooks', name + '.yml')] + list(args),
                       cwd=ROOT, env=env, universal_newlines=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert p.returncode == 0, p.stdout[-8000:]
    return json.loads(p.stdout[p.stdout.find('{'):]) if as_json else p.stdout


def results(run, host='host1'):
    """{task name: result} (names without the role prefix)."""
    out = {}
    for play in run['plays']:
        for t in play['tasks']:
            r = t['hosts'].get(host)
            if r is not None:
                out[t['task']['name'].split(' : ', 1)[-1]] = r
    return out


def user_exists_on_machine(name):
    return subprocess.run(['getent', 'passwd', name], stdout=subprocess.DEVNULL, check=False).returncode == 0


@pytest.fixture
def lab(tmp_path):
    name = 'clr%s' % uuid.uuid4().hex[:6]
    inv = str(tmp_path / 'inventory.yml')
    with open(inv, 'w') as f:
        f.write(INVENTORY % name)
    playbook(inv, 'simhosts')
    try:
        yield name, inv
    finally:
        playbook(inv, 'simhosts', '-e', 'simhosts_state=absent')
        assert not os.path.exists(os.path.join(_simhost.PIN_ROOT, name))


def test_classroom_on_simulated_host(lab):
    name, inv = lab
    student_before = user_exists_on_machine('student')
    run = playbook(inv, 'classroom', as_json=True)
    r = results(run)

    pk = r['Install the packages the chapters use']
    assert not pk.get('failed') and not pk.get('changed'), 'packages are installed here already'
    assert r['The course\'s users']['changed'] or student_before
    assert r['The shared tools layer (busybox and its applets)']['changed']
    for skipped in ('Load the modules (modprobe)', 'Set the global sysctls',
                    'Which modules this kernel has (loaded, built in or loadable)'):
        assert r[skipped].get('skipped'), '%s must be skipped on a simulated host' % skipped

    report = r['Preflight report']['msg']
    print('\n'.join(report))
    assert report[0].split()[:4] == ['RESULT', 'CHECK', 'CHAPTERS', 'DETAILS']
    checks = {l[9:34].strip(): l.split()[0] for l in report[1:]}
    for c in ('namespaces', 'overlayfs', 'veth', 'bridge', 'vxlan', 'iptables nat',
              'user namespace (root)', 'user namespace (student)'):
        assert checks.get(c) == 'ok', report
    assert not [l for l in report if l.startswith('MISSING')], report
    assert not r['Everything the chapters need is there'].get('failed')

    # the user lives in the simulated host's own /etc, not on the machine
    if not student_before:
        assert not user_exists_on_machine('student')
    sh = _simhost.nsenter_argv(name, 'host1')
    assert subprocess.run(sh + ['getent', 'passwd', 'student'], stdout=subprocess.DEVNULL, check=False).returncode == 0
    assert subprocess.run(sh + ['test', '-x', '/var/lib/nodocker-lab/tools/bin/busybox'], check=False).returncode == 0 \
        or subprocess.run(sh + ['sh', '-c', 'ls /var/lib/nodocker-lab/tools/bin | grep -q sh'], check=False).returncode == 0

    # idempotent
    again = playbook(inv, 'classroom', as_json=True)
    assert again['stats']['host1']['changed'] == 0
