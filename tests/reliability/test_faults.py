# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults on the chapter-6 overlay, each followed by a converge that restores it exactly."""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.lib import ansible_run
from tests.reliability.conftest import HOSTS, ROOT, changed_total

CH06 = os.path.join(ROOT, 'playbooks', 'ch06_overlay_network.yml')


FIXED_MAC = '02:42:c0:a8:00:'  # ch06_mac_prefix: the only MACs the role sets


def _mac(addr):
    """Keep a MAC only when the definition fixes it; the kernel picks the others at random."""
    return addr if addr and addr.startswith(FIXED_MAC) else None


def snapshot(lab, host, container):
    """The overlay's intended state on one host, comparable across re-creations.

    Only what the definition fixes: names, kinds, masters, MTUs, up/down, addresses,
    the containers' MACs, the permanent FDB and ARP entries.  Random MACs (bridge,
    host-side veth ends, vxlan) and peer ifindexes (``eth0@ifN``) are left out.
    """
    links = []
    for ns in ('overns', container):
        for lk in json.loads(lab.sh(host, 'ip -j -d -n %s link show' % ns, check=False).stdout
                             or '[]'):
            links.append((ns, lk['ifname'], (lk.get('linkinfo') or {}).get('info_kind'),
                          lk.get('mtu'), lk.get('master'), _mac(lk.get('address')),
                          'UP' in lk.get('flags', [])))
    fdb = sorted(lab.sh(host, 'bridge -n overns fdb show dev vxlan1 | grep -w dst',
                        check=False).stdout
                 .splitlines())
    neigh = sorted(ln for ln in lab.sh(host, 'ip -n overns neigh show dev vxlan1',
                                       check=False).stdout
                   .splitlines() if 'PERMANENT' in ln)
    addrs = [re.sub(r'@if\d+$', '', w) for w in
             lab.sh(host, 'ip -n %s -4 -br addr show dev eth0' % container,
                    check=False).stdout.split()]
    return {'links': sorted(links, key=repr), 'fdb': fdb, 'neigh': neigh, 'addrs': addrs}


def ping(lab, within=0):
    """0 when c1 reaches c2 (retrying for `within` seconds), else ping's exit status."""
    deadline = time.time() + within
    while True:
        rc = lab.sh('host1', 'ip netns exec c1 ping -c1 -W2 11.11.11.3', check=False).returncode
        if rc == 0 or time.time() >= deadline:
            return rc


def converged(lab):
    return (snapshot(lab, 'host1', 'c1') == lab.intended['host1']
            and snapshot(lab, 'host2', 'c2') == lab.intended['host2'])


@pytest.fixture(scope='module')
def overlay_lab(make_lab):
    lab = make_lab('f', HOSTS)
    lab.playbook(CH06)
    lab.intended = {'host1': snapshot(lab, 'host1', 'c1'), 'host2': snapshot(lab, 'host2', 'c2')}
    assert lab.intended['host1']['fdb'] and lab.intended['host1']['neigh']
    assert ping(lab) == 0
    yield lab
    if lab.running():
        lab.playbook(CH06, '-e', 'ch06_state=absent', check=False)


@pytest.fixture
def overlay(overlay_lab):
    """The module's lab, brought back to the converged overlay whatever an earlier test did."""
    lab = overlay_lab
    if lab.ensure() or not converged(lab):
        lab.playbook(CH06)
        assert converged(lab)
    assert ping(lab, within=60) == 0
    return lab


FAULTS = {
    'vxlan device deleted': 'ip -n overns link del vxlan1',
    'bridge and a veth deleted': 'ip -n overns link del br0; ip -n overns link del veth-c1',
    'FDB entry deleted, ARP entry changed': (
        'bridge -n overns fdb show dev vxlan1 | grep -w dst | head -1 | '
        'sed "s/^/bridge -n overns fdb del /; s/ self.*/ self/" | sh; '
        'ip -n overns neigh replace 11.11.11.3 lladdr 02:00:00:00:00:99 dev vxlan1 nud permanent'),
}


@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_out_of_band_fault_is_repaired(overlay, fault):
    overlay.sh('host1', FAULTS[fault])
    assert snapshot(overlay, 'host1', 'c1') != overlay.intended['host1']
    p = overlay.playbook(CH06)
    assert changed_total(p.stdout) > 0
    assert snapshot(overlay, 'host1', 'c1') == overlay.intended['host1']
    assert snapshot(overlay, 'host2', 'c2') == overlay.intended['host2']
    assert ping(overlay) == 0


def test_interrupted_playbook_then_completes_and_is_idempotent(overlay):
    overlay.playbook(CH06, '-e', 'ch06_state=absent')
    argv = [os.path.join(ansible_run.BIN, 'ansible-playbook'), '-i', overlay.inventory, CH06]
    proc = subprocess.Popen(argv, cwd=ROOT, env=ansible_run.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True,
                            start_new_session=True)
    seen = 0
    for line in proc.stdout:
        if line.startswith('changed:'):
            seen += 1
            if seen >= 4:  # half-way: a few things made, most not
                break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert seen >= 4, 'the playbook ended before it could be interrupted'
    assert snapshot(overlay, 'host1', 'c1') != overlay.intended['host1'] or \
        snapshot(overlay, 'host2', 'c2') != overlay.intended['host2']
    overlay.playbook(CH06)
    assert snapshot(overlay, 'host1', 'c1') == overlay.intended['host1']
    assert snapshot(overlay, 'host2', 'c2') == overlay.intended['host2']
    p = overlay.playbook(CH06)
    assert changed_total(p.stdout) == 0, p.stdout[-3000:]
    assert ping(overlay) == 0


RECREATE = '''---
- name: Destroy then re-create host2 only (the simhosts role would act on the whole lab)
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Destroy host2
      nodocker.lab.simhosts:
        lab: %(lab)s
        hosts: [{name: host2, underlay_address: "%(addr)s"}]
        state: absent
    - name: Re-create host2
      nodocker.lab.simhosts:
        lab: %(lab)s
        hosts: [{name: host2, underlay_address: "%(addr)s"}]
        state: present
'''


def test_simulated_host_recreated_then_converged(overlay):
    mac_before = overlay.sh('host2', 'cat /sys/class/net/eth1/address').stdout.strip()
    pb = overlay.write('recreate-host2.yml', RECREATE % {
        'lab': overlay.name, 'addr': HOSTS['host2']['nodocker_underlay_address']})
    ansible_run.playbook(pb, overlay.inventory)
    assert overlay.running(), 'host1 must survive the re-creation of host2'
    assert snapshot(overlay, 'host2', 'c2')['links'] == []
    assert ping(overlay) != 0
    overlay.playbook(CH06)
    assert snapshot(overlay, 'host2', 'c2') == overlay.intended['host2']
    assert snapshot(overlay, 'host1', 'c1') == overlay.intended['host1']
    # Like a rebooted VM, the re-created host2 keeps its underlay MAC (derived from the
    # lab and host names), so host1's ARP entry for it stays right and the overlay
    # answers again without waiting for that entry to age out.
    assert overlay.sh('host2', 'cat /sys/class/net/eth1/address').stdout.strip() == mac_before
    assert ping(overlay, within=10) == 0
