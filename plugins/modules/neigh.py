#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: neigh
short_description: Manage a list of permanent neighbour (ARP) entries on a device in one task
version_added: 0.1.0
description:
  - Manages permanent neighbour entries, as C(ip neigh add IP lladdr MAC dev vxlan1 nud permanent)
    does (chapter 6 of the course); with the VXLAN device's C(proxy) flag, the kernel answers
    ARP requests for remote containers from these entries.
  - Takes the whole list at once over one netlink socket and one dump; never one subprocess
    per entry.
  - States follow Ansible network resource modules - V(merged), V(deleted), V(overridden).
    V(present) and V(absent) are aliases of V(merged) and V(deleted), in the spelling of other
    Ansible modules; V(overridden) is the exclusive mode (exactly the listed entries).
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  dev:
    description: The device the entries belong to (C(vxlan1) in the course).
    type: str
    required: true
  netns:
    description: Network namespace of the device (C(overns) in the course). Default is the namespace the task runs in.
    type: str
  entries:
    description: The entries.
    type: list
    elements: dict
    default: []
    suboptions:
      ip:
        description: IPv4 or IPv6 address of the neighbour (a remote container).
        type: str
        required: true
      mac:
        description: Its MAC address. Required except with O(state=deleted) (or V(absent)).
        type: str
  state:
    description:
      - V(merged) adds the listed entries and updates those with another MAC or a non-permanent state.
      - V(deleted) removes the listed entries (when O(entries[].mac) is given, only if it matches).
      - V(overridden) leaves exactly the listed permanent entries on the device; dynamic entries
        the kernel resolved itself are left alone.
      - V(present) is V(merged), V(absent) is V(deleted).
    type: str
    choices: [merged, deleted, overridden, present, absent]
    default: merged
extends_documentation_fragment:
  - nodocker.lab.attributes
  - nodocker.lab.attributes.netlink
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: nodocker.lab.fdb
  - module: nodocker.lab.vxlan
'''

EXAMPLES = r'''
- name: The course's ARP entry for the container on host 2
  nodocker.lab.neigh:
    dev: vxlan1
    netns: overns
    entries:
      - {ip: 11.11.11.3, mac: "02:42:c0:a8:00:03"}

- name: Reset the device's permanent entries
  nodocker.lab.neigh:
    dev: vxlan1
    netns: overns
    state: overridden
    entries: []
'''

RETURN = r'''
before:
  description: Permanent entries of the device before the task.
  returned: always
  type: list
  elements: dict
  sample: []
after:
  description: Permanent entries of the device after the task (predicted in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{ip: 11.11.11.3, mac: "02:42:c0:a8:00:03"}]
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip -n overns neigh add 11.11.11.3 lladdr 02:42:c0:a8:00:03 dev vxlan1 nud permanent"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._neigh import run_neigh


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dev=dict(type='str', required=True),
            netns=dict(type='str'),
            entries=dict(type='list', elements='dict', default=[], options=dict(
                ip=dict(type='str', required=True),
                mac=dict(type='str'),
            )),
            state=dict(type='str', choices=['merged', 'deleted', 'overridden', 'present',
                                            'absent'],
                       default='merged'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_neigh(module))


if __name__ == '__main__':
    main()
