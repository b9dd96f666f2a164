# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reliability suite: faults, isolation, bad input, load -- all on simulated hosts.

Each test module gets its own lab (``rel<pid><suffix>``) destroyed at the end.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import pytest

from tests.lib import ansible_run

ROOT = ansible_run.ROOT
PYTHON = os.path.join(ROOT, '.venv', 'bin', 'python')
HOSTS = {
    'host1': {'nodocker_underlay_address': '192.168.104.2/24',
              'ch06_containers': '[{name: c1, ip: 11.11.11.2}]'},
    'host2': {'nodocker_underlay_address': '192.168.104.3/24',
              'ch06_containers': '[{name: c2, ip: 11.11.11.3}]'},
}


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long load test of the reliability suite')


class Lab(object):
    def __init__(self, suffix, hosts):
        self.name = 'rel%d%s' % (os.getpid(), suffix)
        self.dir = tempfile.mkdtemp(prefix='ndl-rel-')
        self.hosts = hosts
        self.inventory = ansible_run.simulated_inventory(
            os.path.join(self.dir, 'inventory.yml'), self.name, hosts)

    def prefix(self, host):
        pin = '/run/nodocker-lab-simhosts/%s/%s' % (self.name, host)
        return ['nsenter', '--net=%s/net' % pin, '--mount=%s/mnt' % pin, '--uts=%s/uts' % pin,
                '--ipc=%s/ipc' % pin, '--pid=%s/pid' % pin, '--wd=/']

    def sh(self, host, cmd, check=True, timeout=300):
        argv = self.prefix(host) + (['sh', '-c', cmd] if isinstance(cmd, str) else list(cmd))
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=timeout, check=False)
        if check and p.returncode:
            raise AssertionError('%s on %s: rc=%d\n%s\n%s' % (
                ' '.join(shlex.quote(a) for a in argv[-3:]), host, p.returncode,
                p.stdout[-3000:], p.stderr[-3000:]))
        return p

    def py(self, host, code, timeout=600):
        """Run Python (venv, collection importable) inside a host; parse its last line as JSON."""
        src = ('import sys, json\nsys.path.insert(0, %r)\n' % os.path.join(ROOT, 'collections')
               + code)
        p = self.sh(host, [PYTHON, '-c', src], timeout=timeout)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def running(self):
        """True when every host of the lab is up (its pins exist and a command runs in it)."""
        for h in self.hosts:
            if not os.path.exists('/run/nodocker-lab-simhosts/%s/%s/net' % (self.name, h)):
                return False
            if self.sh(h, 'true', check=False, timeout=30).returncode:
                return False
        return True

    def ensure(self):
        """(Re)create the lab's hosts when any is missing; return True if it did."""
        if self.running():
            return False
        ansible_run.create_simhosts(self.inventory)
        return True

    def destroy(self):
        ansible_run.playbook(os.path.join(ROOT, 'playbooks', 'simhosts.yml'), self.inventory,
                             '-e', 'simhosts_state=absent', check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def playbook(self, path, *args, **kw):
        return ansible_run.playbook(path, self.inventory, *args, **kw)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path


def changed_total(stdout):
    return sum(int(x) for x in re.findall(r'changed=(\d+)', stdout.split('PLAY RECAP')[-1]))


@pytest.fixture(scope='module')
def make_lab():
    labs = []

    def make(suffix, hosts):
        lab = Lab(suffix, hosts)
        labs.append(lab)
        ansible_run.create_simhosts(lab.inventory)
        return lab
    try:
        yield make
    finally:
        for lab in labs:
            lab.destroy()
