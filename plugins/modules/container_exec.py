#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: container_exec
short_description: Run a command inside a running nodocker.lab container
version_added: 0.1.0
description:
  - Joins the container's cgroup and the namespaces of its PID 1 (mount, UTS, IPC,
    network, PID, and its cgroup and user namespaces when it has them), enters its
    root, applies its capability bounding set, C(no_new_privs) and user, and runs the
    command, like C(nsenter --all --target PID) or C(docker exec).
  - Fails when the container is not running, when the command does not exist in the
    container, or when the command exits with a non-zero status (like M(ansible.builtin.command)).
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description: Container name.
    type: str
    required: true
  command:
    description: A shell command line, run with C(/bin/sh -c) inside the container.
    type: str
  argv:
    description: The command as a list (no shell). Takes precedence over O(command).
    type: list
    elements: str
  env:
    description: Extra environment variables.
    type: dict
  cwd:
    description: Working directory; defaults to the container's.
    type: str
  user:
    description: C(uid[:gid]) or a name from the container's C(/etc/passwd); defaults to the container's.
    type: str
  timeout:
    description: Seconds before the command is killed.
    type: int
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: partial
    details: In check mode the container and command are checked but nothing is run; the task reports skipped.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: none
    details: Like M(ansible.builtin.command), it always reports changed; use C(changed_when).
seealso:
  - module: nodocker.lab.container
'''

EXAMPLES = r'''
- name: ps inside RED
  nodocker.lab.container_exec:
    name: RED
    command: ps -ef
  register: ps
  changed_when: false
'''

RETURN = r'''
commands:
  description: The equivalent shell command (C(nsenter) into the container's PID 1 namespaces).
  returned: always
  type: list
  elements: str
  sample: ["nsenter --all --target 4242 /bin/sh -c hostname"]
rc:
  description: Exit status of the command.
  returned: always
  type: int
stdout:
  description: Standard output (without trailing newlines, as M(ansible.builtin.command) returns it).
  returned: always
  type: str
stderr:
  description: Standard error (without trailing newlines).
  returned: always
  type: str
stdout_lines:
  description: RV(stdout) split into lines.
  returned: always
  type: list
  elements: str
stderr_lines:
  description: RV(stderr) split into lines.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._runtime import run_container_exec


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            command=dict(type='str'),
            argv=dict(type='list', elements='str'),
            env=dict(type='dict'),
            cwd=dict(type='str'),
            user=dict(type='str'),
            timeout=dict(type='int'),
        ),
        required_one_of=[('command', 'argv')],
        supports_check_mode=True,
    )
    module.exit_json(**run_container_exec(module))


if __name__ == '__main__':
    main()
