# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (d): VXLAN container-to-container TCP throughput across two simulated hosts.

Variants, interleaved each round (iperf3, one TCP stream):
* underlay: host1 eth1 -> host2 eth1 (the veth into the lab's underlay switch);
* nodocker.lab: containers c1 (host1) -> c2 (host2) on the overlay built by
  playbooks/ch06_overlay_network.yml (veth -> br0 -> vxlan1 in overns);
* hand-built: the same topology made with ip commands (netns hbo with a bridge
  and a VXLAN device, VNI 43, port 4790, unicast remote; container netns hbc),
  with the same MTU as the nodocker one.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import time

from lib_common import REPO, Lab

HOSTS = {
    'host1': {'nodocker_underlay_address': '192.168.104.2/24',
              'ch06_containers': '[{name: c1, ip: 11.11.11.2}]'},
    'host2': {'nodocker_underlay_address': '192.168.104.3/24',
              'ch06_containers': '[{name: c2, ip: 11.11.11.3}]'},
}
UNDERLAY = {'host1': '192.168.104.2', 'host2': '192.168.104.3'}
HAND = {'host1': '12.12.12.2', 'host2': '12.12.12.3'}


def hand_built(lab, host, mtu):
    other = 'host2' if host == 'host1' else 'host1'
    lab.run(host, ' && '.join([
        'ip netns add hbo', 'ip netns add hbc',
        'ip link add hvx type vxlan id 43 dstport 4790 dev eth1 local %s remote %s'
        % (UNDERLAY[host], UNDERLAY[other]),
        'ip link set hvx netns hbo',
        'ip -n hbo link set hvx mtu %d' % mtu,
        'ip -n hbo link add hbr type bridge',
        'ip -n hbo link set hvx master hbr',
        'ip -n hbo link add hv0 mtu %d type veth peer name eth0 netns hbc' % mtu,
        'ip -n hbc link set eth0 mtu %d' % mtu,
        'ip -n hbo link set hv0 master hbr',
        'ip -n hbo link set hvx up', 'ip -n hbo link set hv0 up', 'ip -n hbo link set hbr up',
        'ip -n hbc addr add %s/24 dev eth0' % HAND[host],
        'ip -n hbc link set eth0 up', 'ip -n hbc link set lo up']))


def iperf(lab, client_ns, server_ns, server_ip, seconds):
    pre_s = 'ip netns exec %s ' % server_ns if server_ns else ''
    pre_c = 'ip netns exec %s ' % client_ns if client_ns else ''
    lab.run('host2', '%siperf3 -s -1 -D -p 5299 -I /run/ndl-bench-iperf.pid' % pre_s)
    time.sleep(0.3)
    try:
        p = lab.run('host1', '%siperf3 -c %s -p 5299 -t %s -J' % (pre_c, server_ip, seconds),
                    timeout=seconds + 60)
    finally:
        lab.run('host2', 'kill $(cat /run/ndl-bench-iperf.pid) 2>/dev/null; '
                'rm -f /run/ndl-bench-iperf.pid', check=False)
    res = json.loads(p.stdout)
    return res['end']['sum_received']['bits_per_second'] / 1e9


def run(workdir, rounds, seconds):
    res = {}
    with Lab(workdir, 'n', HOSTS) as lab:
        pb = os.path.join(REPO, 'playbooks', 'ch06_overlay_network.yml')
        lab.playbook(pb)
        try:
            mtu = int(json.loads(lab.run('host1', 'ip -j -n c1 link show eth0').stdout)[0]['mtu'])
            for h in ('host1', 'host2'):
                hand_built(lab, h, mtu)
            lab.run('host1', 'ip netns exec c1 ping -c1 -W2 11.11.11.3; '
                    'ip netns exec hbc ping -c1 -W2 12.12.12.3')
            variants = [
                ('underlay veth (host1 eth1 -> host2 eth1)', (None, None, UNDERLAY['host2'])),
                ('nodocker.lab overlay (ch06 playbook)', ('c1', 'c2', '11.11.11.3')),
                ('hand-built VXLAN, same MTU', ('hbc', 'hbc', '12.12.12.3')),
            ]
            times = dict((k, []) for k, dummy in variants)
            for r in range(rounds):
                order = variants[r % 3:] + variants[:r % 3]
                for k, (c, s, ip) in order:
                    times[k].append(iperf(lab, c, s, ip, seconds))
            res = {'mtu': mtu, 'gbps': times}
        finally:
            for h in ('host1', 'host2'):
                lab.run(h, 'ip netns del hbc; ip netns del hbo', check=False)
            lab.playbook(pb, '-e', 'ch06_state=absent', check=False)
    return res
