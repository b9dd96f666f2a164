# -*- coding: utf-8 -*-
"""Every integration target (tests/integration/targets/<name>/tasks/main.yml),
run inside a fresh simulated host, never on the machine itself.

The targets follow community.crypto's pattern: each change four times
(check mode, apply, check mode again, apply again) with asserts on
`changed`, plus bad-input cases; they clean up after themselves, and this
test also checks that the simulated host has no namespace left.
"""

import glob
import os

import pytest

from tests.lib import ansible_run
from tests.lib.testinfra_simhost import simhost

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
                 for p in glob.glob(os.path.join(HERE, 'targets', '*', 'tasks', 'main.yml')))
# NDL_ITEST_LAB lets two sessions on one machine run targets side by side
LAB = os.environ.get('NDL_ITEST_LAB', 'itest')


@pytest.fixture(scope='module')
def target_host(tmp_path_factory):
    d = tmp_path_factory.mktemp('targets')
    inv = ansible_run.simulated_inventory(str(d / 'inventory.yml'), LAB, {
        'target': {'nodocker_underlay_address': '192.168.104.2/24'}})
    with ansible_run.simulated_hosts(inv):
        yield inv, d


@pytest.mark.parametrize('target', TARGETS)
def test_target(target_host, target):
    inv, d = target_host
    pb = ansible_run.include_tasks_playbook(
        str(d / ('run-%s.yml' % target)), 'target',
        os.path.join(HERE, 'targets', target, 'tasks', 'main.yml'))
    p = ansible_run.playbook(pb, inv, check=False)
    assert p.returncode == 0, p.stdout[-20000:]
    assert 'failed=0' in p.stdout
    # the target removed everything it made inside the host
    host = simhost('target', LAB)
    assert host.run('ip netns list').stdout.strip() == ''
    links = host.run('ip -o link show').stdout
    assert sorted(l.split(':')[1].strip().split('@')[0] for l in links.splitlines()) == ['eth1', 'lo']
