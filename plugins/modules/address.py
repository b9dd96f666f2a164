#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: address
short_description: Add or remove IP addresses on a link
version_added: 0.1.0
description:
  - Adds or removes IPv4/IPv6 addresses on an existing link, as
    C(ip addr add|del ADDRESS/PREFIX dev LINK) does (chapters 3 and 4 of the course).
  - With O(exclusive=true) the list is the whole truth for its address families; other
    addresses of those families on the link are removed (the C(overridden) state of
    Ansible resource modules).
  - Every address is validated before anything is changed. If the kernel refuses a change,
    the link is put back as it was - the addresses this task already added are removed and
    those O(exclusive) removed are added again - and the task fails.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  dev:
    description:
      - The link that carries the addresses. It must exist.
    type: str
    required: true
    aliases: [ link ]
  netns:
    description:
      - Named network namespace of the link.
      - Omitted, the task's own namespace (on a M(nodocker.lab.simhost) host, the host's).
    type: str
  addresses:
    description:
      - Addresses with prefix length, such as C(11.11.11.2/24) or C(fd00::2/64).
    type: list
    elements: str
    required: true
  state:
    description:
      - C(present) adds missing addresses, C(absent) removes the listed ones.
    type: str
    choices: [ present, absent ]
    default: present
  exclusive:
    description:
      - With O(state=present), remove the link's other addresses of the IP versions used
        in O(addresses) (all versions when O(addresses) is empty).
      - IPv6 link-local addresses (C(fe80::/64), made by the kernel) are never removed.
    type: bool
    default: false
extends_documentation_fragment:
  - nodocker.lab.attributes
  - nodocker.lab.attributes.netlink
requirements:
  - pyroute2 >= 0.9
notes:
  - Like C(ip addr add), no broadcast address is set.
seealso:
  - module: nodocker.lab.link
  - module: nodocker.lab.route
'''

EXAMPLES = r'''
- name: Chapter 3, RED's address
  nodocker.lab.address:
    dev: veth0
    netns: RED
    addresses: [11.11.11.2/24]

- name: Chapter 4, the bridge becomes the gateway, and only that
  nodocker.lab.address:
    dev: br0
    addresses: [11.11.11.1/24]
    exclusive: true
'''

RETURN = r'''
addresses:
  description: The link's addresses after the task (without IPv6 link-local ones).
  returned: always
  type: list
  elements: str
  sample: [11.11.11.2/24]
before:
  description: C(dev), C(netns) and C(addresses) before the task.
  returned: always
  type: dict
  sample: {dev: veth0, netns: RED, addresses: []}
after:
  description: The same after the task. In check mode, the prediction.
  returned: always
  type: dict
  sample: {dev: veth0, netns: RED, addresses: [11.11.11.2/24]}
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip -n RED addr add 11.11.11.2/24 dev veth0"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._address import run_address


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dev=dict(type='str', required=True, aliases=['link']),
            netns=dict(type='str'),
            addresses=dict(type='list', elements='str', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            exclusive=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_address(module))


if __name__ == '__main__':
    main()
