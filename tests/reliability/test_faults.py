# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults on the chapter-6 overlay, each followed by a converge that restores it exactly."""

from __future__ import absolute_import, division, print_function

import json
import os
import signal
import subprocess
import time

import pytest

from tests.lib import ansible_run
from tests.reliability.conftest import HOSTS, ROOT, changed_total

CH06 = os.path.join(ROOT, 'playbooks', 'ch06_overlay_network.yml')


def snapshot(lab, host, container):
    """The overlay's intended state on one host, comparable across re-creations."""
    links = []
    for ns in ('overns', container):
        for l in json.loads(lab.sh(host, 'ip -j -d -n %s link show' % ns, check=False).stdout
                            or '[]'):
            links.append((ns, l['ifname'], (l.get('linkinfo') or {}).get('info_kind'),
                          l.get('mtu'), l.get('master'), l.get('address')
                          if l['ifname'] != 'br0' else None, 'UP' in l.get('flags', [])))
    fdb = sorted(lab.sh(host, 'bridge -n overns fdb show dev vxlan1 | grep -w dst',
                        check=False).stdout
                 .splitlines())
    neigh = sorted(l for l in lab.sh(host, 'ip -n overns neigh show dev vxlan1',
                                     check=False).stdout
                   .splitlines() if 'PERMANENT' in l)
    addrs = lab.sh(host, 'ip -n %s -4 -br addr show dev eth0' % container,
                   check=False).stdout.split()
    return {'links': sorted(links), 'fdb': fdb, 'neigh': neigh, 'addrs': addrs}


def ping(lab):
    return lab.sh('host1', 'ip netns exec c1 ping -c1 -W2 11.11.11.3', check=False).returncode


@pytest.fixture(scope='module')
def overlay(make_lab):
    lab = make_lab('f', HOSTS)
    lab.playbook(CH06)
    lab.intended = {'host1': snapshot(lab, 'host1', 'c1'), 'host2': snapshot(lab, 'host2', 'c2')}
    assert lab.intended['host1']['fdb'] and lab.intended['host1']['neigh']
    assert ping(lab) == 0
    yield lab
    lab.playbook(CH06, '-e', 'ch06_state=absent', check=False)


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


def test_simulated_host_recreated_then_converged(overlay):
    only2 = overlay.write('host2-only.yml', open(overlay.inventory).read().split('    host1:')[0]
                          + '    host2:' + open(overlay.inventory).read().split('    host2:')[1])
    sim = os.path.join(ROOT, 'playbooks', 'simhosts.yml')
    ansible_run.playbook(sim, only2, '-e', 'simhosts_state=absent')
    assert ping(overlay) != 0
    ansible_run.playbook(sim, only2)
    time.sleep(0.5)
    overlay.playbook(CH06)
    assert snapshot(overlay, 'host2', 'c2')['links'] == overlay.intended['host2']['links']
    assert snapshot(overlay, 'host1', 'c1') == overlay.intended['host1']
    assert ping(overlay) == 0
