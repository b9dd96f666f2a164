# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container faults, isolation and load, in one simulated host."""

from __future__ import absolute_import, division, print_function

import pytest

from tests.reliability.conftest import changed_total

ROOTFS = '/var/lib/ndl-rel/rootfs'
MKROOT = ('mkdir -p %(r)s/bin %(r)s/proc %(r)s/tmp && cp /usr/bin/busybox %(r)s/bin/ && '
          'ln -sf busybox %(r)s/bin/sh && chmod 755 /var/lib/ndl-rel %(r)s' % {'r': ROOTFS})

PLAY = '''---
- name: One container
  hosts: host1
  gather_facts: false
  tasks:
    - name: Converge relc
      nodocker.lab.container:
        name: relc
        rootfs: %s
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
''' % ROOTFS

# Python run inside the host: the runtime's API (no Ansible) for the isolation checks
API = '''
from ansible_collections.nodocker.lab.plugins.module_utils import _runtime as R, _cgroups as G
'''


@pytest.fixture(scope='module')
def host(make_lab):
    lab = make_lab('c', {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}})
    lab.sh('host1', MKROOT)
    lab.sh('host1', 'printf "int main(){return 0;}" >/dev/null')
    yield lab
    lab.py('host1', API + '''
for n in R.list_containers():
    R.remove_container(n)
print(json.dumps(R.list_containers()))''')
    lab.sh('host1', 'rm -rf /var/lib/ndl-rel', check=False)


def test_killed_workload_reported_stopped_then_restarted(host):
    pb = host.write('one.yml', PLAY)
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
    src = host.write('escape.c', ESCAPE_C)
    host.sh('host1', 'gcc -static -O2 -o %s/tmp/escape %s' % (ROOTFS, src))
    res = host.py('host1', ISOLATION % {'root': ROOTFS}, timeout=600)
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


@pytest.mark.slow
def test_load_100_containers_three_times_no_leak(host):
    res = host.py('host1', API + r'''
import os
root = %r
counts = []
for rnd in range(3):
    names = ['load%%d' %% i for i in range(100)]
    for n in names:
        R.start_container(R.build_definition(dict(name=n, rootfs=root,
            command=['busybox', 'sleep', '3600'], pids_max='16', memory='16M')))
    counts.append(sum(R.container_status(n)['state'] == 'running' for n in names))
    for n in names:
        R.remove_container(n)
par = G.default_parent()
left = [d for c in ('memory', 'pids', 'cpu') for d in
        (os.listdir('/sys/fs/cgroup/%%s/%%s' %% (c, par)) if os.path.isdir('/sys/fs/cgroup/%%s/%%s' %% (c, par)) else [])
        if d.startswith('load')]
print(json.dumps({'running': counts, 'containers': R.list_containers(), 'cgroups': left,
                  'state_dir': os.path.exists(R.STATE_ROOT)}))
''' % ROOTFS, timeout=1800)
    assert res['running'] == [100, 100, 100], res
    assert res['containers'] == [] and res['cgroups'] == [], res
    procs = host.sh('host1', 'ps -eo args | grep -c "[b]usybox sleep"', check=False).stdout
    assert procs.strip() == '0'
