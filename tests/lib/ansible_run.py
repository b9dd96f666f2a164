# -*- coding: utf-8 -*-
"""Run ansible-playbook from tests, with this checkout's collection and venv."""

import contextlib
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def env(**extra):
    e = dict(os.environ)
    e['PATH'] = BIN + os.pathsep + e.get('PATH', '')
    e['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
    e['ANSIBLE_COLLECTIONS_PATH'] = os.path.join(ROOT, 'collections')
    e['ANSIBLE_FORCE_COLOR'] = '0'
    e['ANSIBLE_NOCOLOR'] = '1'
    e.update(extra)
    return e


def playbook(path, inventory, *args, check=True, timeout=1800, extra_env=None):
    """Run a playbook; return the CompletedProcess (stdout+stderr merged)."""
    argv = [os.path.join(BIN, 'ansible-playbook'), '-i', inventory, path] + list(args)
    p = subprocess.run(argv, cwd=ROOT, env=env(**(extra_env or {})), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout,
                       check=False)
    if check and p.returncode != 0:
        raise AssertionError('ansible-playbook %s failed (rc=%d):\n%s'
                             % (' '.join(argv[1:]), p.returncode, p.stdout[-20000:]))
    return p


def simulated_inventory(path, lab, hosts):
    """Write an inventory of simulated hosts: hosts = {name: {var: value}}."""
    lines = ['all:', '  vars:', '    ansible_connection: nodocker.lab.simhost',
             '    ansible_python_interpreter: "{{ ansible_playbook_python }}"',
             '    nodocker_simhost_lab: %s' % lab, '  hosts:']
    for name, hv in hosts.items():
        lines.append('    %s:' % name)
        for k, v in (hv or {}).items():
            lines.append('      %s: %s' % (k, v))
        if not hv:
            lines[-1] += ' {}'
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def create_simhosts(inventory):
    return playbook(os.path.join(ROOT, 'playbooks', 'simhosts.yml'), inventory)


def destroy_simhosts(inventory):
    return playbook(os.path.join(ROOT, 'playbooks', 'simhosts.yml'), inventory,
                    '-e', 'simhosts_state=absent')


@contextlib.contextmanager
def simulated_hosts(inventory):
    """The inventory's simulated hosts, made on entry and destroyed on exit."""
    create_simhosts(inventory)
    try:
        yield inventory
    finally:
        destroy_simhosts(inventory)


def include_tasks_playbook(path, hosts, tasks_file):
    with open(path, 'w') as f:
        f.write(textwrap.dedent('''\
            - name: Integration target {target}
              hosts: {hosts}
              gather_facts: false
              tasks:
                - name: Run the target
                  ansible.builtin.include_tasks: {tasks}
            ''').format(target=os.path.basename(os.path.dirname(os.path.dirname(tasks_file))),
                        hosts=hosts, tasks=tasks_file))
    return path
