# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: simhost
short_description: Run tasks inside a simulated host (a set of namespaces on this machine)
version_added: 0.1.0
description:
  - Runs every task of an inventory host inside a simulated host made by
    M(nodocker.lab.simhosts). Each command enters the host's network, mount, UTS, IPC
    and PID namespaces with C(nsenter), so ordinary modules (C(command), C(copy),
    C(ansible.builtin.iptables), this collection's modules) act on that host only.
  - Supports pipelining; file transfer writes and reads files inside the host's mount
    namespace (its private C(/tmp), C(/etc), ... are the ones used).
  - The controller must be the machine that holds the simulated hosts, running as root.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  simhost_name:
    description: Name of the simulated host (default the inventory host's address, that is its name).
    type: str
    vars:
      - name: nodocker_simhost_name
  simhost_lab:
    description: Lab (set of simulated hosts) the host belongs to.
    type: str
    default: lab
    vars:
      - name: nodocker_simhost_lab
    env:
      - name: NODOCKER_SIMHOST_LAB
'''

import os
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.nodocker.lab.plugins.module_utils._simhost import (
    host_exists, nsenter_argv)

display = Display()


class Connection(ConnectionBase):
    """Enter a simulated host's namespaces for every command."""

    transport = 'nodocker.lab.simhost'
    has_pipelining = True
    default_user = 'root'

    def _host(self):
        name = self.get_option('simhost_name')
        if not name:
            name = self._play_context.remote_addr
        return self.get_option('simhost_lab'), name

    def _connect(self):
        if not self._connected:
            lab, name = self._host()
            if os.geteuid() != 0:
                raise AnsibleConnectionFailure('the simhost connection must run as root')
            if not host_exists(lab, name):
                raise AnsibleConnectionFailure(
                    'simulated host %r of lab %r does not exist or is not running; create it '
                    'with nodocker.lab.simhosts (playbooks/simhosts.yml)' % (name, lab))
            display.vvv('ENTER SIMHOST %s/%s' % (lab, name), host=name)
            self._connected = True
        return self

    def _argv(self, cmd):
        lab, name = self._host()
        shell = self._play_context.executable or '/bin/sh'
        return nsenter_argv(lab, name) + [shell, '-c', to_text(cmd)]

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        argv = self._argv(cmd)
        display.vvv('EXEC %s' % ' '.join(shlex.quote(a) for a in argv), host=self._host()[1])
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        stdout, stderr = p.communicate(in_data)
        return p.returncode, stdout, stderr

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        self._connect()
        if not os.path.exists(to_bytes(in_path, errors='surrogate_or_strict')):
            raise AnsibleError('file or module does not exist: %s' % in_path)
        display.vvv('PUT %s TO %s' % (in_path, out_path), host=self._host()[1])
        with open(to_bytes(in_path, errors='surrogate_or_strict'), 'rb') as f:
            rc, out, err = self.exec_command('cat > %s' % shlex.quote(out_path), in_data=f.read())
        if rc != 0:
            raise AnsibleError('failed to transfer %s to %s: %s' % (in_path, out_path, to_text(err)))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        self._connect()
        display.vvv('FETCH %s TO %s' % (in_path, out_path), host=self._host()[1])
        rc, out, err = self.exec_command('cat %s' % shlex.quote(in_path))
        if rc != 0:
            raise AnsibleError('failed to fetch %s: %s' % (in_path, to_text(err)))
        with open(to_bytes(out_path, errors='surrogate_or_strict'), 'wb') as f:
            f.write(out)

    def close(self):
        self._connected = False
