# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Vagrantfile: `vagrant validate` for both providers and N = 1..4, and
the inventory its ansible provisioner generates equals what the playbooks
expect (group `course`, host vars as in inventory/simulated.yml minus the
simulated-host connection; inventory/vagrant.yml is the N=2 example).

Needs Debian's `vagrant` (and `vagrant-libvirt` for the libvirt provider)
and `ruby` (a dependency of vagrant). Nothing here starts a VM or needs a box.

    .venv/bin/pytest tests/classroom/test_vagrant.py -v
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.lib.testinfra_simhost import parse_inventory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VAGRANTFILE = os.path.join(ROOT, 'Vagrantfile')
PROVIDERS = ('virtualbox', 'libvirt')
COUNTS = (1, 2, 3, 4)
# host vars that only simulated hosts have (how to reach them, their router)
SIMHOST_ONLY = ('ansible_connection', 'ansible_python_interpreter', 'nodocker_simhost_lab',
                'nodocker_simhost_name', 'nodocker_underlay_gateway', 'nodocker_extra_addresses')

needs_vagrant = pytest.mark.skipif(not shutil.which('vagrant'), reason='apt-get install vagrant')
needs_ruby = pytest.mark.skipif(not shutil.which('ruby'), reason='apt-get install ruby')

# A stand-in for Vagrant that records what the Vagrantfile configures, so the
# provisioner's settings (groups, host_vars, limit, which machine) can be read
# without VMs: every call and assignment is logged with its path.
RECORDER = r'''
require "json"
class Rec
  def initialize(path, log); @path = path; @log = log; end
  def method_missing(name, *args, **kw, &blk)
    n = name.to_s
    if n.end_with?("=")
      @log << { "path" => @path, "set" => n.chomp("="), "value" => args[0] }
      return args[0]
    end
    child = Rec.new(@path + [n] + args.map(&:to_s), @log)
    blk.call(child) if blk
    child
  end
  def respond_to_missing?(*) = true
end
module Vagrant
  def self.configure(_version)
    $log = []
    yield Rec.new([], $log)
  end
end
load ARGV[0]
puts JSON.dump({ "log" => $log, "table" => NodockerLab.table })
'''


# VirtualBox is not installed here (nor needed to check a configuration): a
# stand-in VBoxManage that only reports a supported version lets Vagrant's
# virtualbox provider declare itself usable, so `vagrant validate` checks the
# virtualbox settings. A real VBoxManage on PATH is used when there is one.
FAKE_VBOXMANAGE = '''#!/bin/sh
case "$1" in --version|-v) echo 7.0.14r161095 ;; *) exit 0 ;; esac
'''


def vagrant_env(tmp_path, **extra):
    env = dict(os.environ)
    if not shutil.which('VBoxManage'):
        fake = tmp_path / 'fakebin'
        fake.mkdir(exist_ok=True)
        (fake / 'VBoxManage').write_text(FAKE_VBOXMANAGE)
        (fake / 'VBoxManage').chmod(0o755)
        env['PATH'] = str(fake) + os.pathsep + env.get('PATH', '')
    env['VAGRANT_DOTFILE_PATH'] = str(tmp_path / 'dotvagrant')  # no .vagrant/ in the checkout
    env['VAGRANT_CHECKPOINT_DISABLE'] = '1'
    env.update({k: str(v) for k, v in extra.items()})
    return env


def recorded(n):
    env = dict(os.environ, NODOCKER_HOSTS=str(n))
    out = subprocess.run(['ruby', '-e', RECORDER, VAGRANTFILE], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    return json.loads(out)


def generated_inventory(groups, host_vars, machines):
    """The inventory Vagrant's ansible provisioner writes, as {'hosts', 'groups'}
    (every machine is listed with its host_vars; then the [group] sections)."""
    hosts = {m: dict(host_vars.get(m, {})) for m in machines}
    out_groups = {'all': list(machines)}
    for g, members in groups.items():
        if g.endswith(':vars') or g.endswith(':children'):
            continue
        out_groups[g] = list(members)
        for m in members:
            hosts[m].update(groups.get(g + ':vars', {}))
    return {'hosts': hosts, 'groups': out_groups}


def expected_inventory(n):
    hosts = {'host%d' % i: {'nodocker_underlay_address': '192.168.104.%d/24' % (i + 1)}
             for i in range(1, n + 1)}
    return {'hosts': hosts, 'groups': {'all': sorted(hosts), 'course': sorted(hosts)}}


def course_part(inv, drop):
    """The course group of a parsed inventory, without the vars in drop."""
    hosts = {h: {k: v for k, v in inv['hosts'][h].items() if k not in drop}
             for h in inv['groups']['course']}
    return {'hosts': hosts, 'groups': {'all': sorted(hosts), 'course': sorted(hosts)}}


def libvirt_plugin_present(tmp_path):
    p = subprocess.run(['vagrant', 'plugin', 'list'], env=vagrant_env(tmp_path), cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return 'vagrant-libvirt' in p.stdout


@needs_vagrant
@pytest.mark.parametrize('provider', PROVIDERS)
@pytest.mark.parametrize('n', COUNTS)
def test_vagrant_validate(provider, n, tmp_path):
    if provider == 'libvirt' and not libvirt_plugin_present(tmp_path):
        pytest.skip('apt-get install vagrant-libvirt (the libvirt provider plugin)')
    p = subprocess.run(['vagrant', 'validate'], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       env=vagrant_env(tmp_path, NODOCKER_HOSTS=n,
                                       VAGRANT_DEFAULT_PROVIDER=provider), check=False)
    assert p.returncode == 0, p.stdout
    assert 'validated successfully' in p.stdout


@needs_vagrant
@pytest.mark.parametrize('bad', ['0', '10', 'two'])
def test_vagrant_rejects_bad_host_count(bad, tmp_path):
    p = subprocess.run(['vagrant', 'validate'], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       env=vagrant_env(tmp_path, NODOCKER_HOSTS=bad), check=False)
    assert p.returncode != 0
    assert 'NODOCKER_HOSTS must be a number from 1 to' in p.stdout


@needs_ruby
@pytest.mark.parametrize('n', COUNTS)
def test_generated_inventory(n):
    rec = recorded(n)
    log = rec['log']
    machines = [e['path'][2] for e in log
                if e['path'][:2] == ['vm', 'define'] and e['path'][3:] == ['vm'] and e['set'] == 'hostname']
    assert machines == ['host%d' % i for i in range(1, n + 1)]
    # private network addresses .2, .3, ...
    table = rec['table']
    assert [h['ip'] for h in table['hosts']] == ['192.168.104.%d' % (i + 1) for i in range(1, n + 1)]

    prov = [e for e in log if 'provision' in e['path']]
    assert prov, 'no ansible provisioner'
    assert {tuple(e['path'][:6]) for e in prov} == {('vm', 'define', 'host%d' % n, 'vm', 'provision', 'ansible')}, \
        'the provisioner must run once, from the last machine'
    settings = {e['set']: e['value'] for e in prov}
    assert settings['limit'] == 'all'
    assert settings['become'] is True
    assert settings['playbook'] == os.path.join(ROOT, 'playbooks', 'classroom.yml')
    assert settings['config_file'] == os.path.join(ROOT, 'ansible.cfg')

    got = generated_inventory(settings['groups'], settings['host_vars'], machines)
    got['groups'] = {g: sorted(m) for g, m in got['groups'].items()}
    assert got == expected_inventory(n)
    assert table['inventory'] == {'all': {'children': {'course': {'hosts': expected_inventory(n)['hosts']}}}}

    # no Docker anywhere: no docker provider, provisioner or box setting
    assert not [e for e in log if re.search(r'(?<![a-z])docker', json.dumps(e).lower())]


@needs_ruby
def test_inventories_agree():
    """Vagrant (N=2), inventory/vagrant.yml and inventory/simulated.yml describe
    the same course hosts."""
    rec = recorded(2)
    settings = {e['set']: e['value'] for e in rec['log'] if 'provision' in e['path']}
    vagrant = generated_inventory(settings['groups'], settings['host_vars'], ['host1', 'host2'])
    vagrant['groups'] = {g: sorted(m) for g, m in vagrant['groups'].items()}
    simulated = course_part(parse_inventory(os.path.join(ROOT, 'inventory', 'simulated.yml')), SIMHOST_ONLY)
    static = parse_inventory(os.path.join(ROOT, 'inventory', 'vagrant.yml'))
    static = course_part(static, [k for h in static['hosts'].values() for k in h if k.startswith('ansible_')])
    assert vagrant == simulated == static


@needs_ruby
def test_playbook_selection():
    env = dict(os.environ, NODOCKER_PLAYBOOK='ch03_netns')
    out = subprocess.run(['ruby', '-e', 'load ARGV[0]; puts NodockerLab.playbook', VAGRANTFILE],
                         env=env, cwd=ROOT, stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout.strip()
    assert out == 'playbooks/ch03_netns.yml'
