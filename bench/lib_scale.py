# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (f): scale.

* 100 containers on one simulated host: one ``nodocker.lab.container`` task
  looping over 100 names (start), memory (RSS of every process in the host,
  and the containers' cgroup memory), then the same loop with state=absent.
* N simulated hosts (16) in one chapter-6 overlay: converge and re-run time,
  peak RSS of ansible-playbook (the controller).
"""

from __future__ import absolute_import, division, print_function

import os
import resource
import time

from lib_common import REPO, Lab

PLAY = '''---
- name: {n} containers
  hosts: host1
  gather_facts: false
  tasks:
    - name: A busybox rootfs
      ansible.builtin.shell: |
        mkdir -p /var/lib/ndl-bench/rootfs/bin /var/lib/ndl-bench/rootfs/proc
        cp /usr/bin/busybox /var/lib/ndl-bench/rootfs/bin/busybox
        ln -sf busybox /var/lib/ndl-bench/rootfs/bin/sh
      args:
        creates: /var/lib/ndl-bench/rootfs/bin/busybox
      when: ndl_state == 'started'
    - name: Containers
      nodocker.lab.container:
        name: "bench{{{{ item }}}}"
        rootfs: /var/lib/ndl-bench/rootfs
        command: [busybox, sleep, "3600"]
        memory: 32M
        pids_max: "64"
        state: "{{{{ ndl_state }}}}"
      loop: "{{{{ range({n}) | list }}}}"
    - name: Remove the rootfs
      ansible.builtin.file:
        path: /var/lib/ndl-bench
        state: absent
      when: ndl_state == 'absent'
'''

MEM = r'''
rss=0; for p in /proc/[0-9]*; do r=$(awk '/^VmRSS/{print $2}' $p/status 2>/dev/null); rss=$((rss+${r:-0})); done
par=$(cat /run/nodocker-lab/cgroup-parent); cg=0; n=0
for d in /sys/fs/cgroup/memory/$par/bench*; do [ -d "$d" ] || continue; n=$((n+1)); cg=$((cg+$(cat $d/memory.usage_in_bytes))); done
echo $rss $cg $n
'''


def containers(workdir, n=100):
    pb = os.path.join(workdir, 'scale.yml')
    with open(pb, 'w') as f:
        f.write(PLAY.format(n=n))
    res = {}
    with Lab(workdir, 's', {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}}) as lab:
        try:
            rss0 = int(lab.run('host1', MEM).stdout.split()[0])
            t = time.perf_counter()
            lab.playbook(pb, '-e', 'ndl_state=started')
            res['start_s'] = time.perf_counter() - t
            rss, cg, cnt = (int(x) for x in lab.run('host1', MEM).stdout.split())
            running = int(lab.run('host1', 'ls /run/nodocker-lab/containers | wc -l').stdout)
            res.update(rss_before_kib=rss0, rss_after_kib=rss, cgroup_bytes=cg, cgroups=cnt,
                       run_files=running)
            t = time.perf_counter()
            lab.playbook(pb, '-e', 'ndl_state=absent')
            res['remove_s'] = time.perf_counter() - t
        finally:
            lab.playbook(pb, '-e', 'ndl_state=absent', check=False)
    return res


def overlay(workdir, nhosts=16):
    hosts = {}
    for i in range(nhosts):
        hosts['h%02d' % i] = {'nodocker_underlay_address': '192.168.104.%d/24' % (2 + i),
                              'ch06_containers': '[{name: c%d, ip: 11.11.11.%d}]' % (i, 2 + i)}
    res = {'hosts': nhosts}
    pb = os.path.join(REPO, 'playbooks', 'ch06_overlay_network.yml')
    t = time.perf_counter()
    with Lab(workdir, 'o', hosts) as lab:
        res['simhosts_create_s'] = time.perf_counter() - t
        try:
            t = time.perf_counter()
            lab.playbook(pb, '-f', '16')
            res['converge_s'] = time.perf_counter() - t
            res['controller_peak_rss_mib'] = \
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
            t = time.perf_counter()
            p = lab.playbook(pb, '-f', '16')
            res['rerun_s'] = time.perf_counter() - t
            res['rerun_changed'] = sum(int(x) for x in __import__('re').findall(
                r'changed=(\d+)', p.stdout.split('PLAY RECAP')[-1]))
            last = 'h%02d' % (nhosts - 1)
            ping = lab.run('h00', 'ip netns exec c0 ping -c1 -W2 11.11.11.%d' % (nhosts + 1),
                           check=False)
            res['ping_first_to_%s' % last] = ping.returncode == 0
        finally:
            lab.playbook(pb, '-f', '16', '-e', 'ch06_state=absent', check=False)
    return res
