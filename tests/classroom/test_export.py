# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Equivalence of scripts/export-chapter's bash scripts with the roles.

For each chapter: export the script (on its own scratch simulated host), then
on two fresh simulated hosts of a lab of our own, run the script's `up` on A
and the chapter playbook on B; what each changed (normalized dump minus the
fresh host's dump) must be the same. Then `down` on A and the reset on B must
each give back the fresh host's dump. The lab is destroyed at the end.

Run as root:  .venv/bin/pytest tests/classroom/test_export.py -v
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shlex
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(os.path.abspath(sys.executable))
sys.path.insert(0, os.path.join(ROOT, 'collections'))  # the collection, as ansible_collections.nodocker.lab
from ansible_collections.nodocker.lab.plugins.module_utils import _simhost  # noqa: E402

DUMPER = os.path.join(ROOT, 'tests', 'classroom', 'statedump.py')

CHAPTERS = [
    # (playbook, reset variable)
    ('ch01_chroot', 'ch01_state'),
    ('ch02_pivot_root', 'ch02_state'),
    ('ch03_netns', 'ch03_state'),
    ('ch04_netns_outside', 'ch04_state'),
    ('ch05_overlayfs', 'ch05_state'),
]

INVENTORY = """\
all:
  vars:
    ansible_connection: nodocker.lab.simhost
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    nodocker_simhost_lab: %s
  children:
    course:
      hosts:
        hosta:
          nodocker_underlay_address: 192.168.104.2/24
          nodocker_underlay_gateway: 192.168.104.254
        hostb:
          nodocker_underlay_address: 192.168.104.3/24
          nodocker_underlay_gateway: 192.168.104.254
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root (simulated hosts)')


def env():
    e = dict(os.environ)
    e['PATH'] = BIN + os.pathsep + e.get('PATH', '')
    return e


def sh(argv, **kw):
    p = subprocess.run(argv, cwd=ROOT, env=env(), universal_newlines=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw, check=False)
    assert p.returncode == 0, '%s failed (rc=%d):\n%s' % (
        ' '.join(shlex.quote(a) for a in argv), p.returncode, p.stdout[-8000:])
    return p.stdout


def playbook(inv, name, *args):
    return sh([os.path.join(BIN, 'ansible-playbook'), '-i', inv,
               os.path.join(ROOT, 'playbooks', name + '.yml')] + list(args))


def in_host(lab, host, argv, **kw):
    return sh(_simhost.nsenter_argv(lab, host) + argv, **kw)


def run_script(lab, host, text, fn):
    """Run the script's up or down inside host (fed on stdin: /tmp is private there)."""
    return in_host(lab, host, ['/bin/bash', '-s', fn], input=text)


def dump(lab, host):
    return json.loads(in_host(lab, host, [sys.executable, '-S', DUMPER]))


def flatten(d):
    """A dump as a set of 'where section: item' strings."""
    out = set()

    def walk(where, nd):
        for section, value in nd.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    out.add('%s %s: %s=%s' % (where, section, k, v))
            else:
                for item in value:
                    out.add('%s %s: %s' % (where, section, item))

    walk('host', d['host'])
    out.update('netns: %s' % n for n in d['netns'])
    for n, nd in d['inside'].items():
        walk('netns %s' % n, nd)
    out.update('mount: %s' % m for m in d['mounts'])
    out.update('file: %s' % f for f in d['files'])
    return out


def delta(before, after):
    b, a = flatten(before), flatten(after)
    return {'added': sorted(a - b), 'removed': sorted(b - a)}


def explain(by_script, by_role):
    """Only what differs, readable in a failure."""
    lines = []
    for kind in ('added', 'removed'):
        s, r = set(by_script[kind]), set(by_role[kind])
        lines += ['%s by the script only: %s' % (kind, x) for x in sorted(s - r)]
        lines += ['%s by the role only: %s' % (kind, x) for x in sorted(r - s)]
    return '\n'.join(lines)


@pytest.fixture(scope='module')
def scripts(tmp_path_factory):
    """Exported scripts, made once per chapter on demand."""
    made = {}
    d = tmp_path_factory.mktemp('scripts')

    def get(chapter):
        if chapter not in made:
            out = str(d / (chapter + '.sh'))
            sh([sys.executable, os.path.join(ROOT, 'scripts', 'export-chapter'),
                os.path.join(ROOT, 'playbooks', chapter + '.yml'), '-o', out])
            made[chapter] = out
        return made[chapter]
    return get


@pytest.fixture
def lab(tmp_path):
    name = 'cls%s' % uuid.uuid4().hex[:6]
    inv = str(tmp_path / 'inventory.yml')
    with open(inv, 'w') as f:
        f.write(INVENTORY % name)
    playbook(inv, 'simhosts')
    try:
        yield name, inv
    finally:
        playbook(inv, 'simhosts', '-e', 'simhosts_state=absent')
        assert not os.path.exists(os.path.join(_simhost.PIN_ROOT, name))


@pytest.mark.parametrize('chapter,reset_var', CHAPTERS, ids=[c[0] for c in CHAPTERS])
def test_exported_script_equals_role(chapter, reset_var, scripts, lab):
    script = scripts(chapter)
    with open(script) as f:
        text = f.read()
    assert 'set -eu' in text and '\nup() {' in text and '\ndown() {' in text
    assert 'no command line known' not in text
    name, inv = lab
    fresh_a, fresh_b = dump(name, 'hosta'), dump(name, 'hostb')

    run_script(name, 'hosta', text, 'up')
    playbook(inv, chapter, '--limit', 'hostb')
    built_a, built_b = dump(name, 'hosta'), dump(name, 'hostb')
    by_script, by_role = delta(fresh_a, built_a), delta(fresh_b, built_b)
    assert by_role['added'], 'the role changed nothing?'
    assert by_script == by_role, explain(by_script, by_role)

    run_script(name, 'hosta', text, 'down')
    playbook(inv, chapter, '--limit', 'hostb', '-e', '%s=absent' % reset_var)
    assert delta(fresh_a, dump(name, 'hosta')) == {'added': [], 'removed': []}
    assert delta(fresh_b, dump(name, 'hostb')) == {'added': [], 'removed': []}
