# -*- coding: utf-8 -*-
"""A chapter previewed with --check --diff on a fresh host: chapters 3 and 4 (the
ch04 playbook builds chapter 3 first) report what they would make and make nothing,
although their later tasks act in namespaces and on links that only earlier tasks
would create. Then applied, then checked again: nothing left to do."""

import os
import re

import pytest

from tests.lib import ansible_run
from tests.lib.testinfra_simhost import simhost

LAB = os.environ.get('NDL_CHECKMODE_LAB', 'chkmode')
PLAYBOOK = os.path.join(ansible_run.ROOT, 'playbooks', 'ch04_netns_outside.yml')
# the ch04 scenario's hosts (host1 + the "internet" host), in a lab of our own
SCENARIO_INVENTORY = os.path.join(ansible_run.ROOT, 'extensions', 'molecule', 'ch04_netns_outside',
                                  'inventory.yml')


def recap(stdout, host):
    m = re.search(r'^%s\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)'
                  % host, stdout, re.M)
    assert m, stdout[-5000:]
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, m.groups())))


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp('checkmode')
    inv = d / 'inventory.yml'
    with open(SCENARIO_INVENTORY) as f:
        inv.write_text(f.read().replace('nodocker_simhost_lab: ch04_netns_outside',
                                        'nodocker_simhost_lab: %s' % LAB))
    assert LAB in inv.read_text()
    with ansible_run.simulated_hosts(str(inv)):
        try:
            yield str(inv)
        finally:
            ansible_run.playbook(PLAYBOOK, str(inv), '-e', 'ch04_state=absent', check=False)


def test_check_on_a_fresh_host_reports_and_makes_nothing(lab):
    host = simhost('host1', LAB)
    p = ansible_run.playbook(PLAYBOOK, lab, '--check', '--diff')
    r = recap(p.stdout, 'host1')
    assert r['failed'] == 0 and r['changed'] > 5
    assert 'assumes an earlier task of the play creates it' in p.stdout
    assert host.run('ip netns list').stdout.strip() == ''
    assert 'br0' not in host.run('ip -o link show').stdout


def test_apply_then_check_has_nothing_left_to_do(lab):
    ansible_run.playbook(PLAYBOOK, lab)
    p = ansible_run.playbook(PLAYBOOK, lab, '--check', '--diff')
    assert recap(p.stdout, 'host1')['changed'] == 0, p.stdout[-8000:]
    assert 'assumes an earlier task' not in p.stdout
