#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: netns
short_description: Create or delete named network namespaces (ip netns)
version_added: 0.1.0
description:
  - Creates or deletes network namespaces pinned under C(/run/netns), as
    C(ip netns add NAME) and C(ip netns del NAME) do (chapter 3 of the course).
  - Names are matched exactly (C(RED) does not match C(RED2)).
  - Runs in the host the task runs on; on a simulated host (connection
    M(nodocker.lab.simhost)) the namespaces are that host's own.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description:
      - Names of the namespaces. A single name or a list.
    type: list
    elements: str
    required: true
    aliases: [ names ]
  state:
    description:
      - C(present) creates missing namespaces, C(absent) deletes existing ones.
      - Deleting a namespace removes its pin; processes still inside keep it
        alive until they exit, as with C(ip netns del).
    type: str
    choices: [ present, absent ]
    default: present
extends_documentation_fragment:
  - nodocker.lab.attributes
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: nodocker.lab.veth
  - module: nodocker.lab.link
notes:
  - C(community.general.ip_netns) matches names by substring and shells out
    to C(ip); this module does neither.
'''

EXAMPLES = r'''
- name: The course's two namespaces
  nodocker.lab.netns:
    name: [RED, BLUE]

- name: Reset chapter 3
  nodocker.lab.netns:
    name: [RED, BLUE]
    state: absent
'''

RETURN = r'''
namespaces:
  description: All named network namespaces after the task, sorted.
  returned: always
  type: list
  elements: str
  sample: [BLUE, RED]
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip netns add RED"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._netns import run_netns


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='list', elements='str', required=True, aliases=['names']),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_netns(module))


if __name__ == '__main__':
    main()
