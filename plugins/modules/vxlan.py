#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: vxlan
short_description: Create, correct or delete a VXLAN device, optionally created in one namespace and placed in another
version_added: 0.1.0
description:
  - Manages a VXLAN device as C(ip link add NAME type vxlan id VNI dstport PORT ...) does
    (chapter 6 of the course, where C(vxlan1) is created in the host and moved into C(overns)).
  - The device is created in O(create_netns), so that its UDP socket and its underlay stay
    there, and placed in O(netns). The underlay is verified through the link's netns id
    (C(link-netnsid)), never by interface index alone, because indexes collide across namespaces.
  - An existing device whose attributes drift from the definition is corrected in place
    when the kernel allows it (O(local), O(remote), O(learning), O(mtu), O(master), up/down)
    and deleted and recreated otherwise (O(vni), O(port), O(proxy), O(l2miss), O(l3miss),
    O(group), O(dev), O(create_netns), and a O(local) or O(remote) of the other address
    family), because the kernel refuses to change those in place (or, for O(group),
    older kernels keep the old multicast membership). Both appear in RV(commands) and in
    the diff; the in-place command lists only what changes.
  - O(local), O(remote), O(group), O(dev) and O(master) left out of the task mean
    "do not care" - the device keeps the value it has, so a task that omits O(local) leaves
    a device created with one unchanged. When the device has to be recreated for another
    reason, it is made from the task's definition alone.
  - A device of another kind with the same name is never replaced; the task fails instead.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description: Name of the VXLAN device (the course uses C(vxlan1)).
    type: str
    required: true
  vni:
    description: VXLAN network identifier (24 bits). Required with O(state=present).
    type: int
  port:
    description:
      - Destination UDP port.
      - Defaults to the IANA port 4789 that the course uses. The kernel's own default (8472,
        the pre-standard Linux port) is never used silently.
    type: int
    default: 4789
  local:
    description:
      - Source IP address of the encapsulated packets (the host's underlay address).
      - When left out, an existing device keeps its own (see the description).
    type: str
  dev:
    description:
      - Underlay device, looked up in O(create_netns) (for example C(eth1)).
      - When given and O(mtu) is not, the MTU is the underlay's MTU minus 50.
    type: str
  remote:
    description:
      - A single unicast peer (point-to-point VXLAN). Mutually exclusive with O(group).
      - When left out, an existing device keeps its own.
    type: str
  group:
    description:
      - A multicast group to flood to; needs O(dev). Mutually exclusive with O(remote).
      - When left out, an existing device keeps its own; a different group recreates the device.
    type: str
  learning:
    description: Learn remote MAC addresses from received packets.
    type: bool
    default: true
  proxy:
    description: Answer ARP requests from the neighbour table (ARP proxy).
    type: bool
    default: false
  l2miss:
    description: Send a netlink miss event when a destination MAC has no FDB entry.
    type: bool
    default: false
  l3miss:
    description: Send a netlink miss event when a destination IP has no neighbour entry.
    type: bool
    default: false
  mtu:
    description:
      - MTU of the device. Default is the underlay MTU minus 50 (the VXLAN overhead) when O(dev)
        is given; without O(dev) the MTU is left as the kernel sets it (1500), which is too large
        on a 1500-byte underlay - set it.
    type: int
  master:
    description: Bridge to enslave the device to (in O(netns)), as C(ip link set vxlan1 master br0).
    type: str
  up:
    description: Bring the device up (V(true)) or keep it down (V(false)).
    type: bool
    default: true
  netns:
    description: Network namespace where the device ends up (C(overns) in the course). Default is the namespace the task runs in.
    type: str
  create_netns:
    description:
      - Network namespace where the device is created, that is where its UDP socket listens and
        where O(dev) is. Default is the namespace the task runs in (the host, as in the course).
    type: str
  state:
    description: V(present) creates or corrects the device, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - nodocker.lab.attributes
  - nodocker.lab.attributes.netlink
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: nodocker.lab.fdb
  - module: nodocker.lab.neigh
notes:
  - Never run this in a namespace whose network you do not own; the integration tests pass
    O(create_netns) and O(netns) of namespaces they create.
'''

EXAMPLES = r'''
- name: The course's vxlan1, created on the host's eth1 and moved into overns
  nodocker.lab.vxlan:
    name: vxlan1
    vni: 42
    port: 4789
    dev: eth1
    local: 192.168.104.2
    proxy: true
    learning: true
    l2miss: true
    l3miss: true
    master: br0
    netns: overns

- name: Reset
  nodocker.lab.vxlan:
    name: vxlan1
    netns: overns
    state: absent
'''

RETURN = r'''
vxlan:
  description: The device after the task (empty dict when absent).
  returned: always
  type: dict
  sample:
    name: vxlan1
    vni: 42
    port: 4789
    local: 192.168.104.2
    remote: null
    group: null
    dev: eth1
    underlay_netns_ok: true
    learning: true
    proxy: true
    l2miss: true
    l3miss: true
    mtu: 1450
    master: br0
    up: true
    mac: 6a:1c:55:0e:9f:01
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip link add vxlan1 type vxlan id 42 dev eth1 dstport 4789 learning proxy l2miss l3miss mtu 1450",
           "ip link set vxlan1 netns overns"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._vxlan import run_vxlan


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            vni=dict(type='int'),
            port=dict(type='int', default=4789),
            local=dict(type='str'),
            dev=dict(type='str'),
            remote=dict(type='str'),
            group=dict(type='str'),
            learning=dict(type='bool', default=True),
            proxy=dict(type='bool', default=False),
            l2miss=dict(type='bool', default=False),
            l3miss=dict(type='bool', default=False),
            mtu=dict(type='int'),
            master=dict(type='str'),
            up=dict(type='bool', default=True),
            netns=dict(type='str'),
            create_netns=dict(type='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        mutually_exclusive=[('remote', 'group')],
        required_if=[('state', 'present', ('vni',))],
        supports_check_mode=True,
    )
    module.exit_json(**run_vxlan(module))


if __name__ == '__main__':
    main()
