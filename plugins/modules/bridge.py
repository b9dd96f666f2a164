#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: bridge
short_description: Create or delete a Linux bridge and enslave ports to it
version_added: 0.1.0
description:
  - Creates a Linux bridge as C(ip link add NAME type bridge) does and attaches existing
    interfaces to it (C(ip link set PORT master NAME)), chapters 3, 4 and 6 of the course.
  - Every port is checked before anything is made; a missing port fails the task with
    nothing created.
  - This module never creates a namespace. Use M(nodocker.lab.netns) first.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description:
      - Name of the bridge. At most 15 characters, no C(/), C(:) or spaces.
    type: str
    required: true
  netns:
    description:
      - Named network namespace of the bridge and its ports.
      - Omitted, the task's own namespace (on a M(nodocker.lab.simhost) host, the host's).
    type: str
  ports:
    description:
      - Existing interfaces in O(netns) to attach to the bridge.
    type: list
    elements: str
    default: []
  ports_exclusive:
    description:
      - Also release every port of the bridge that is not in O(ports).
    type: bool
    default: false
  state:
    description:
      - C(present) creates the bridge and attaches O(ports), C(absent) deletes it (the
        kernel releases its ports).
    type: str
    choices: [ present, absent ]
    default: present
extends_documentation_fragment:
  - nodocker.lab.attributes
  - nodocker.lab.attributes.netlink
requirements:
  - pyroute2 >= 0.9
notes:
  - A new bridge is left administratively down, like C(ip link add) leaves it; bring it
    up and give it an address with M(nodocker.lab.link) and M(nodocker.lab.address).
seealso:
  - module: nodocker.lab.link
  - module: nodocker.lab.veth
'''

EXAMPLES = r'''
- name: Chapter 3, br0 on the host with the two veth ends of RED and BLUE
  nodocker.lab.bridge:
    name: br0
    ports: [reth1, beth1]

- name: Chapter 6, br0 in overns holding exactly the VXLAN device and one container
  nodocker.lab.bridge:
    name: br0
    netns: overns
    ports: [vxlan1, veth-red]
    ports_exclusive: true

- name: Reset
  nodocker.lab.bridge:
    name: br0
    state: absent
'''

RETURN = r'''
before:
  description: The bridge before the task (empty when it did not exist).
  returned: always
  type: dict
  sample: {}
after:
  description: The bridge after the task (empty when absent). In check mode, the prediction.
  returned: always
  type: dict
  sample: {name: br0, netns: null, ports: [beth1, reth1]}
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip link add br0 type bridge", "ip link set dev reth1 master br0"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._links import run_bridge


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            netns=dict(type='str'),
            ports=dict(type='list', elements='str', default=[]),
            ports_exclusive=dict(type='bool', default=False),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_bridge(module))


if __name__ == '__main__':
    main()
