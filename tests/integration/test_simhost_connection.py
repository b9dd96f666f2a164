# -*- coding: utf-8 -*-
"""The nodocker.lab.simhost connection plugin on its own: commands, file transfer both
ways (binary-safe), with and without pipelining, each host's private /tmp, and the
message for a host that does not exist."""

import hashlib
import os
import textwrap

import pytest

from tests.lib import ansible_run

LAB = os.environ.get('NDL_CONN_LAB', 'conntest')

PLAY = textwrap.dedent('''\
    - name: Connection plugin round trip
      hosts: h1
      gather_facts: false
      tasks:
        - name: Commands run inside the simulated host
          ansible.builtin.command: hostname
          register: name
          changed_when: false
        - name: A binary file goes in
          ansible.builtin.copy:
            src: "{{ payload }}"
            dest: /tmp/ndl-conn.bin
            mode: "0600"
        - name: And comes back
          ansible.builtin.fetch:
            src: /tmp/ndl-conn.bin
            dest: "{{ back }}"
            flat: true
        - name: The other host does not see the file (each host has its own /tmp)
          ansible.builtin.stat:
            path: /tmp/ndl-conn.bin
          delegate_to: h2
          register: other
        - name: Report
          ansible.builtin.debug:
            msg: "hostname={{ name.stdout }} other_sees={{ other.stat.exists }}"
        - name: Remove the file
          ansible.builtin.file:
            path: /tmp/ndl-conn.bin
            state: absent
    ''')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp('conn')
    inv = ansible_run.simulated_inventory(str(d / 'inventory.yml'), LAB, {
        'h1': {'nodocker_underlay_address': '192.168.104.2/24'},
        'h2': {'nodocker_underlay_address': '192.168.104.3/24'}})
    with ansible_run.simulated_hosts(inv):
        yield inv, d


@pytest.mark.parametrize('pipelining', ['true', 'false'])
def test_commands_and_files_go_through_the_host(lab, pipelining):
    inv, d = lab
    payload = d / ('payload-%s.bin' % pipelining)
    data = os.urandom(200000) + b'\0\n\xff end'
    payload.write_bytes(data)
    back = d / ('back-%s.bin' % pipelining)
    pb = d / 'conn.yml'
    pb.write_text(PLAY)
    p = ansible_run.playbook(str(pb), inv, '-e', 'payload=%s back=%s' % (payload, back),
                             extra_env={'ANSIBLE_PIPELINING': pipelining})
    assert 'hostname=h1 other_sees=False' in p.stdout
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_missing_host_is_a_clear_connection_error(lab, tmp_path):
    inv = ansible_run.simulated_inventory(str(tmp_path / 'inventory.yml'), LAB, {'nohost': {}})
    pb = tmp_path / 'ping.yml'
    pb.write_text('- name: Ping\n  hosts: nohost\n  gather_facts: false\n'
                  '  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n')
    p = ansible_run.playbook(str(pb), inv, check=False)
    assert p.returncode != 0
    assert "simulated host 'nohost' of lab '%s' does not exist" % LAB in p.stdout
