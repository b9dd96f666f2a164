# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest-testinfra on simulated hosts.

testinfra has no backend for our connection plugin (its ansible backend would
start the `ansible` CLI for every command), so this pytest plugin provides
one: each command runs through the same `nsenter` prefix the connection
plugin uses. Load it with ``-p tests.lib.testinfra_simhost``.

Fixtures:
  ``simhosts``  -- {inventory name: testinfra Host} for every simulated host of
                   the inventory in $NODOCKER_INVENTORY (Molecule scenarios set
                   it to their inventory.yml).
  ``inventory`` -- the parsed inventory: {'hosts': {name: vars}, 'groups': {...}}.
"""

from __future__ import absolute_import, division, print_function

import os
import shlex
import sys

import pytest
import testinfra.host
import yaml
from testinfra.backend import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'collections'))  # the collection, as ansible_collections.nodocker.lab
from ansible_collections.nodocker.lab.plugins.module_utils import _simhost  # noqa: E402


class SimhostBackend(base.BaseBackend):
    NAME = 'simhost'

    def __init__(self, name, lab='lab', **kwargs):
        self.simhost = name
        self.lab = lab
        super().__init__(name, **kwargs)

    def get_pytest_id(self):
        return 'simhost://%s/%s' % (self.lab, self.simhost)

    def run(self, command, *args, **kwargs):
        command = self.get_command(command, *args)
        argv = _simhost.nsenter_argv(self.lab, self.simhost) + ['/bin/sh', '-c', command]
        result = self.run_local(' '.join(shlex.quote(a) for a in argv))
        result.command = command.encode() if isinstance(result.command, bytes) else command
        return result


def simhost(name, lab='lab'):
    """A testinfra Host for simulated host ``name`` of ``lab``."""
    return testinfra.host.Host(SimhostBackend(name, lab=lab))


def parse_inventory(path):
    """A small reader for our YAML inventories: hosts with merged vars, groups."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    hosts, groups = {}, {}

    def walk(group_name, group, inherited):
        gvars = dict(inherited)
        gvars.update(group.get('vars') or {})
        members = groups.setdefault(group_name, [])
        for h, hv in (group.get('hosts') or {}).items():
            merged = dict(hosts.get(h, {}))
            merged.update(gvars)
            merged.update(hv or {})
            hosts[h] = merged
            members.append(h)
        for child, cg in (group.get('children') or {}).items():
            walk(child, cg or {}, gvars)
            members.extend(m for m in groups[child] if m not in members)

    walk('all', data.get('all', data), {})
    return {'hosts': hosts, 'groups': groups}


@pytest.fixture(scope='session')
def inventory():
    path = os.environ.get('NODOCKER_INVENTORY')
    if not path:
        pytest.skip('NODOCKER_INVENTORY is not set')
    return parse_inventory(path)


@pytest.fixture(scope='session')
def simhosts(inventory):
    out = {}
    for name, hv in inventory['hosts'].items():
        if hv.get('ansible_connection') in ('nodocker.lab.simhost', 'simhost'):
            out[name] = simhost(hv.get('nodocker_simhost_name', name),
                                lab=hv.get('nodocker_simhost_lab', 'lab'))
    return out
