#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: link
short_description: Set the state, MTU, MAC address or master of existing links
version_added: 0.1.0
description:
  - Changes existing network interfaces as C(ip link set dev NAME up|down|mtu|address|master)
    does, or deletes them (C(ip link del)).
  - Several links in the same namespace can be handled in one task (one task with a list
    is much faster than a loop).
  - A link that does not exist fails the task (except with O(state=absent)); this module
    does not create links. Use M(nodocker.lab.veth) or M(nodocker.lab.bridge) for that.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description:
      - Names of the links, a single name or a list.
    type: list
    elements: str
    required: true
  netns:
    description:
      - Named network namespace of the links.
      - Omitted, the task's own namespace (on a M(nodocker.lab.simhost) host, the host's).
    type: str
  state:
    description:
      - C(up) or C(down) sets the administrative state; C(absent) deletes the links
        (deleting one end of a veth pair deletes both).
      - Omitted, the administrative state is left as it is.
    type: str
    choices: [ up, down, absent ]
  mtu:
    description:
      - MTU to set.
    type: int
  mac:
    description:
      - MAC address to set (only when O(name) is a single link).
    type: str
  master:
    description:
      - Name of the bridge to attach the links to, or the empty string to release them
        from any bridge (C(nomaster)). Omitted, left as it is.
    type: str
extends_documentation_fragment:
  - nodocker.lab.attributes
  - nodocker.lab.attributes.netlink
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: nodocker.lab.veth
  - module: nodocker.lab.bridge
  - module: nodocker.lab.address
'''

EXAMPLES = r'''
- name: Chapter 3, bring both ends of the cable up
  nodocker.lab.link:
    name: [veth0, lo]
    netns: RED
    state: up

- name: Attach a veth end to br0 and bring it up
  nodocker.lab.link:
    name: reth1
    master: br0
    state: up

- name: Release it from the bridge
  nodocker.lab.link:
    name: reth1
    master: ""
'''

RETURN = r'''
before:
  description: For each link, C(state), C(mtu), C(mac) and C(master) before the task
    (empty for a link that did not exist).
  returned: always
  type: dict
  sample: {veth0: {state: down, mtu: 1500, mac: "02:42:c0:a8:00:02", master: null}}
after:
  description: The same after the task (empty for a deleted link). In check mode, the prediction.
  returned: always
  type: dict
  sample: {veth0: {state: up, mtu: 1500, mac: "02:42:c0:a8:00:02", master: null}}
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip -n RED link set dev veth0 up"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._links import run_link


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='list', elements='str', required=True),
            netns=dict(type='str'),
            state=dict(type='str', choices=['up', 'down', 'absent']),
            mtu=dict(type='int'),
            mac=dict(type='str'),
            master=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_link(module))


if __name__ == '__main__':
    main()
