# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container faults, isolation and load, in one simulated host."""

from __future__ import absolute_import, division, print_function

import pytest

from tests.reliability.conftest import changed_total

import os
import subprocess

# The rootfs lives on the machine's disk (visible from the simulated host), in a
# directory of its own per lab: never shared with another run, whose containers
# could be executing its busybox ("Text file busy").  Copy to a temporary name and
# rename, so re-running the setup never writes over a running executable.
MKROOT = ('mkdir -p %(r)s/bin %(r)s/proc %(r)s/tmp && '
          '{ cmp -s /usr/bin/busybox %(r)s/bin/busybox || '
          '{ cp /usr/bin/busybox %(r)s/bin/.busybox.new && '
          'mv -f %(r)s/bin/.busybox.new %(r)s/bin/busybox; }; } && '
          'ln -sf busybox %(r)s/bin/sh && chmod 755 %(d)s %(r)s')

PLAY = '''---
- name: One container
  hosts: host1
  gather_facts: false
  tasks:
    - name: Converge relc
      nodocker.lab.container:
        name: relc
        rootfs: %(rootfs)s
        command: [busybox, sleep, "3600"]
        pids_max: "32"
        state: "{{ st | default('started') }}"
    - name: Info
      nodocker.lab.container_info:
        name: relc
      register: info
    - name: Show the state
      ansible.builtin.debug:
        msg: "STATE={{ info.containers['relc'].state | default('?') }}"
'''

# Python run inside the host: the runtime's API (no Ansible) for the isolation checks
API = '''
from ansible_collections.nodocker.lab.plugins.module_utils import _runtime as R, _cgroups as G
'''


@pytest.fixture(scope='module')
def host(make_lab):
    lab = make_lab('c', {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}})
    lab.rootdir = '/var/lib/ndl-%s' % lab.name
    lab.rootfs = lab.rootdir + '/rootfs'
    try:
        lab.sh('host1', MKROOT % {'r': lab.rootfs, 'd': lab.rootdir})
        yield lab
    finally:
        if lab.running():
            lab.py('host1', API + '''
for n in R.list_containers():
    R.remove_container(n)
print(json.dumps(R.list_containers()))''')
        lab.destroy()  # kills anything still running from the rootfs
        subprocess.call(['rm', '-rf', lab.rootdir])


def test_killed_workload_reported_stopped_then_restarted(host):
    pb = host.write('one.yml', PLAY % {'rootfs': host.rootfs})
    p = host.playbook(pb)
    assert 'STATE=running' in p.stdout
    pid = host.py('host1', API + 'print(json.dumps(R.container_status("relc")["pid"]))')
    host.sh('host1', 'kill -9 %d' % pid)
    st = host.py('host1', API + '''
import time
for _ in range(100):
    s = R.container_status("relc")
    if s["state"] != "running":
        break
    time.sleep(0.05)
print(json.dumps(s["state"]))''')
    assert st == 'exited'
    p = host.playbook(pb)
    assert changed_total(p.stdout) >= 1 and 'STATE=running' in p.stdout
    p = host.playbook(pb)
    assert changed_total(p.stdout) == 0
    host.playbook(pb, '-e', 'st=absent')


ISOLATION = API + r'''
import os, subprocess, time
root = %(root)r
res = {}
def start(name, **kw):
    d = R.build_definition(dict(name=name, rootfs=root, command=['busybox', 'sleep', '3600'], **kw))
    R.start_container(d)
def ex(name, cmd, timeout=60):
    return R.exec_in_container(name, cmd, timeout=timeout)
try:
    start('iso', pids_max='32', memory='32M')
    r = ex('iso', ['busybox', 'sh', '-c', 'ls /proc | grep -c "^[0-9]"'])
    res['procs_visible'] = int(r['stdout'].strip())
    r = ex('iso', ['busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'])
    res['pid1'] = r['stdout']
    res['escape'] = ex('iso', ['/tmp/escape'])
    r = ex('iso', ['busybox', 'sh', '-c',
                   'for i in $(busybox seq 200); do busybox sleep 30 & done 2>/dev/null; '
                   'busybox sleep 1; cat /sys/fs/cgroup/pids/pids.current 2>/dev/null; '
                   'ls /proc | grep -c "^[0-9]"'], timeout=120)
    res['forkbomb'] = r
    res['pids_current'] = G.read_usage('iso').get('pids_current')
    res['after_fork_state'] = R.container_status('iso')['state']
    ex('iso', ['busybox', 'sh', '-c', 'busybox pkill sleep; true'])
    r = ex('iso', ['busybox', 'sh', '-c', 'busybox dd if=/dev/zero of=/dev/null bs=64M count=1'])
    res['hog_rc'] = r['rc']
    res['oom_kill'] = G.read_usage('iso').get('oom_kill')
    res['after_hog_state'] = R.container_status('iso')['state']
    R.remove_container('iso')
    start('isou', userns=True)
    r = ex('isou', ['busybox', 'sh', '-c', 'id -u; echo x >> /bin/busybox; echo rc=$?; '
                    'touch /hostfile; echo rc=$?'])
    res['userns'] = r
    R.remove_container('isou')
finally:
    for n in R.list_containers():
        R.remove_container(n)
print(json.dumps(res))
'''

ESCAPE_C = r'''
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir(".out", 0755);
    if (chroot(".out") != 0) { printf("chroot-failed\n"); }
    for (int i = 0; i < 64; i++) chdir("..");
    chroot(".");
    if (access("/etc/os-release", F_OK) == 0 || access("/usr/bin/apt", F_OK) == 0)
        printf("ESCAPED\n");
    else
        printf("contained\n");
    return 0;
}
'''


def test_isolation(host):
    # compiled on the machine: the host's /tmp (where host.write puts files) is private
    src = host.write('escape.c', ESCAPE_C)
    subprocess.check_call(['gcc', '-static', '-O2', '-o',
                           os.path.join(host.rootfs, 'tmp', 'escape'), src])
    res = host.py('host1', ISOLATION % {'root': host.rootfs}, timeout=600)
    # host processes are invisible: PID 1 (init), the workload, the exec'd shell (+ls)
    assert res['procs_visible'] <= 5, res
    # the chroot escape does not reach the host's root (pivot_root + detached old root)
    assert 'ESCAPED' not in res['escape']['stdout'], res['escape']
    # the fork bomb is held by pids.max=32 and the container survives it
    assert res['pids_current'] is None or res['pids_current'] <= 32, res
    assert res['after_fork_state'] == 'running', res
    # the memory hog is OOM-killed (SIGKILL), the container's init lives on
    assert res['hog_rc'] in (137, -9), res
    assert res['after_hog_state'] == 'running', res
    # mapped root cannot write files owned by the host's root
    out = res['userns']['stdout'].split()
    assert out[0] == '0' and out[1] != 'rc=0' and out[2] != 'rc=0', res['userns']


LOAD_START = API + r'''
names = ['load%%d' %% i for i in range(100)]
for n in names:
    R.start_container(R.build_definition(dict(name=n, rootfs=%r,
        command=['busybox', 'sleep', '3600'], pids_max='16', memory='16M')))
print(json.dumps(sum(R.container_status(n)['state'] == 'running' for n in names)))
'''

# A separate process from the one that started them, as with the Ansible module: the
# starting process is the parent of each container's monitor, and a monitor it has not
# reaped stays a zombie that stop_container() waits 5 s for (see the report).
LOAD_REMOVE = API + r'''
import os
for n in ['load%d' % i for i in range(100)]:
    R.remove_container(n)
par = G.default_parent()
left = [d for c in ('memory', 'pids', 'cpu') for d in
        (os.listdir('/sys/fs/cgroup/%s/%s' % (c, par))
         if os.path.isdir('/sys/fs/cgroup/%s/%s' % (c, par)) else [])
        if d.startswith('load')]
print(json.dumps({'containers': R.list_containers(), 'cgroups': left,
                  'state_dir': os.path.exists(R.STATE_ROOT)}))
'''


@pytest.mark.slow
def test_load_100_containers_three_times_no_leak(host):
    for rnd in range(3):
        running = host.py('host1', LOAD_START % host.rootfs, timeout=600)
        assert running == 100, 'round %d: %d of 100 running' % (rnd, running)
        res = host.py('host1', LOAD_REMOVE, timeout=600)
        assert res['containers'] == [] and res['cgroups'] == [], (rnd, res)
        assert not res['state_dir'], (rnd, res)
        procs = host.sh('host1', 'ps -eo args | grep -c "^[b]usybox sleep"', check=False).stdout
        assert procs.strip() == '0', (rnd, procs)
