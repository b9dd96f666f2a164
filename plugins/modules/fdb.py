#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: fdb
short_description: Manage a list of forwarding database (FDB) entries of a VXLAN device in one task
version_added: 0.1.0
description:
  - Manages the permanent C(self) FDB entries of a VXLAN device, as
    C(bridge fdb add MAC dev vxlan1 self dst IP vni 42 port 4789) does (chapter 6 of the course);
    each entry tells the VXLAN device which remote host (underlay IP) owns an inner MAC address.
  - Takes the whole list at once and uses one netlink socket and one dump, so a task with
    1,000 entries takes well under a second of kernel work; never one subprocess per entry.
  - States follow Ansible network resource modules - V(merged), V(deleted), V(overridden).
    V(present) and V(absent) are aliases of V(merged) and V(deleted), in the spelling of other
    Ansible modules; V(overridden) is the exclusive mode (exactly the listed entries).
  - The flood MAC C(00:00:00:00:00:00), and any MAC listed more than once, keep a set of
    destinations (C(bridge fdb append)) - used to flood broadcast and unknown traffic to
    several remote hosts.
  - The kernel omits C(vni) and C(port) from an entry when they equal the device's own;
    entries are compared with that in mind, and RV(before)/RV(after) always show both.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  dev:
    description: The VXLAN device (C(vxlan1) in the course).
    type: str
    required: true
  netns:
    description: Network namespace of the device (C(overns) in the course). Default is the namespace the task runs in.
    type: str
  entries:
    description:
      - The entries. An empty list with O(state=overridden) removes every permanent entry
        the module manages.
    type: list
    elements: dict
    default: []
    suboptions:
      mac:
        description: Inner MAC address (C(00:00:00:00:00:00) for flooding).
        type: str
        required: true
      dst:
        description: Underlay IP address of the remote host that owns O(entries[].mac).
        type: str
        required: true
      vni:
        description: VNI to use towards that host. Default is the device's VNI.
        type: int
      port:
        description: UDP port to use towards that host. Default is the device's port.
        type: int
  state:
    description:
      - V(merged) adds the listed entries and updates those whose destination differs.
      - V(deleted) removes the listed entries (matching MAC and destination).
      - V(overridden) leaves exactly the listed permanent entries on the device. Entries the
        kernel learned, and the default destination set by the device's own C(remote)/C(group),
        are left alone.
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
  - module: nodocker.lab.vxlan
  - module: nodocker.lab.neigh
notes:
  - Changes are made one netlink request at a time; if the kernel refuses one midway,
    the task fails and RV(commands) lists what was attempted (the last one failed).
'''

EXAMPLES = r'''
- name: The course's FDB entry for the container on host 2
  nodocker.lab.fdb:
    dev: vxlan1
    netns: overns
    entries:
      - mac: "02:42:c0:a8:00:03"
        dst: 192.168.104.3
        vni: 42
        port: 4789

- name: Flood broadcasts to two remote hosts, and exactly these entries
  nodocker.lab.fdb:
    dev: vxlan1
    netns: overns
    state: overridden
    entries:
      - {mac: "00:00:00:00:00:00", dst: 192.168.104.3}
      - {mac: "00:00:00:00:00:00", dst: 192.168.104.4}
      - {mac: "02:42:c0:a8:00:03", dst: 192.168.104.3}
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
  sample: [{mac: "02:42:c0:a8:00:03", dst: 192.168.104.3, vni: 42, port: 4789}]
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["bridge -n overns fdb add 02:42:c0:a8:00:03 dev vxlan1 self dst 192.168.104.3 vni 42 port 4789 permanent"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._fdb import run_fdb


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dev=dict(type='str', required=True),
            netns=dict(type='str'),
            entries=dict(type='list', elements='dict', default=[], options=dict(
                mac=dict(type='str', required=True),
                dst=dict(type='str', required=True),
                vni=dict(type='int'),
                port=dict(type='int'),
            )),
            state=dict(type='str', choices=['merged', 'deleted', 'overridden', 'present',
                                            'absent'],
                       default='merged'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_fdb(module))


if __name__ == '__main__':
    main()
