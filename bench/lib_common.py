# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared helpers of the benchmarks: statistics, simulated labs, machine description.

Every benchmark works inside simulated hosts of a lab whose name is unique
to this run (``bench<pid><letter>``) and destroys it at the end; nothing is
made in the machine's own network namespace.
"""

from __future__ import absolute_import, division, print_function

import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tests.lib import ansible_run  # noqa: E402

PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')
BIN = os.path.join(REPO, '.venv', 'bin')


def stats(values):
    """(median, min, max, n) of a list of numbers."""
    return statistics.median(values), min(values), max(values), len(values)


def fmt_stats(values, unit='s', scale=1.0, digits=3):
    med, lo, hi, n = stats(values)
    f = '%%.%df' % digits
    return '%s %s (min %s, max %s, n=%d)' % (f % (med * scale), unit, f % (lo * scale),
                                             f % (hi * scale), n)


def ratio(a, b):
    """median(a) / median(b) as a string."""
    mb = statistics.median(b)
    return '%.2f×' % (statistics.median(a) / mb) if mb else 'n/a'


def timed(fn, *args, **kw):
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def sh(*args, **kw):
    kw.setdefault('check', True)
    return subprocess.run(args, check=kw.pop('check', False), **kw)


def out(*args):
    try:
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return 'unavailable (%s)' % e


class Lab(object):
    """A set of simulated hosts (a unique lab), created on enter, destroyed on exit."""

    def __init__(self, workdir, suffix, hosts):
        self.name = 'bench%d%s' % (os.getpid(), suffix)
        self.hosts = hosts
        self.inventory = os.path.join(workdir, 'inv-%s.yml' % self.name)
        ansible_run.simulated_inventory(self.inventory, self.name, hosts)

    def __enter__(self):
        try:
            ansible_run.create_simhosts(self.inventory)
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc):
        self.destroy()

    def destroy(self):
        ansible_run.playbook(os.path.join(REPO, 'playbooks', 'simhosts.yml'), self.inventory,
                             '-e', 'simhosts_state=absent', check=False)

    def prefix(self, host):
        pin = '/run/nodocker-lab-simhosts/%s/%s' % (self.name, host)
        return ['nsenter', '--net=%s/net' % pin, '--mount=%s/mnt' % pin, '--uts=%s/uts' % pin,
                '--ipc=%s/ipc' % pin, '--pid=%s/pid' % pin, '--wd=/']

    def run(self, host, cmd, check=True, timeout=600, **kw):
        """Run cmd (list, or a string for sh -c) inside a host; CompletedProcess."""
        if isinstance(cmd, str):
            cmd = ['sh', '-c', cmd]
        p = subprocess.run(self.prefix(host) + list(cmd), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout,
                           check=kw.pop('check', False), **kw)
        if check and p.returncode:
            raise RuntimeError('in %s: %s failed (rc=%d): %s %s' % (
                host, ' '.join(shlex.quote(c) for c in cmd), p.returncode, p.stdout[-2000:],
                p.stderr[-2000:]))
        return p

    def playbook(self, path, *args, **kw):
        return ansible_run.playbook(path, self.inventory, *args, **kw)


def machine_description():
    cpu = 'unknown'
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem = 'unknown'
    try:
        for line in open('/proc/meminfo'):
            if line.startswith('MemTotal'):
                mem = '%.1f GiB' % (int(line.split()[1]) / 1048576.0)
    except OSError:
        pass
    if os.path.exists('/sys/fs/cgroup/cgroup.controllers'):
        cg = 'cgroup v2 (unified)'
    elif os.path.isdir('/sys/fs/cgroup/unified'):
        cg = 'cgroup v1 hybrid (v1 controllers; cgroup2 at /sys/fs/cgroup/unified)'
    else:
        cg = 'cgroup v1'
    try:
        import pyroute2
        pyr = pyroute2.__version__
    except Exception:  # noqa: BLE001
        pyr = 'unavailable'
    load = open('/proc/loadavg').read().split()[:3]
    return [
        ('CPU', '%s, %d cores' % (cpu, os.cpu_count() or 0)),
        ('Memory', mem),
        ('Kernel', platform.release()),
        ('OS', out('sh', '-c', '. /etc/os-release; echo $PRETTY_NAME')),
        ('Cgroups', cg),
        ('Load average at start (1/5/15 min)', ' '.join(load)),
        ('Python', '%s (%s)' % (platform.python_version(), os.path.realpath(sys.executable))),
        ('pyroute2', pyr),
        ('ansible-core', out(os.path.join(BIN, 'ansible'), '--version').splitlines()[0]),
        ('runc', out('runc', '--version').splitlines()[0]),
        ('crun', out('crun', '--version').splitlines()[0]),
        ('iperf3', out('iperf3', '--version').splitlines()[0]),
        ('busybox', out('busybox').splitlines()[0]),
    ]
