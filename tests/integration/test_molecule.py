# -*- coding: utf-8 -*-
"""Every Molecule scenario (extensions/molecule/<name>): create simulated hosts,
converge, idempotence (0 changed), testinfra verify of the chapter's point,
cleanup (the chapter's reset, checked), destroy, and the leak check."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
SCENARIOS = sorted(os.path.basename(os.path.dirname(p)) for p in
                   glob.glob(os.path.join(ROOT, 'extensions', 'molecule', '*', 'molecule.yml')))


def forget_stale_snapshots(scenario):
    """A leak-check snapshot left by a killed run (config.yml keeps it in the scenario's
    ephemeral directory) would be compared by this run's first destroy."""
    for path in glob.glob(os.path.expanduser('~/.ansible/tmp/molecule.*.%s/leakcheck-before.json' % scenario)):
        os.unlink(path)


@pytest.mark.parametrize('scenario', SCENARIOS)
def test_molecule_scenario(scenario):
    forget_stale_snapshots(scenario)
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get('PATH', ''),
               ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', NO_COLOR='1', PY_COLORS='0')
    p = subprocess.run([os.path.join(BIN, 'molecule'), 'test', '-s', scenario], cwd=ROOT,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=1800, check=False)
    assert p.returncode == 0, p.stdout[-30000:]
