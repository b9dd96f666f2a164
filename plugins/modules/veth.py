#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: veth
short_description: Create or delete a veth pair whose ends live in network namespaces
version_added: 0.1.0
description:
  - Creates a virtual ethernet pair, as C(ip link add NAME type veth peer name PEER netns NS)
    does (chapter 3 of the course). Both ends are created directly in their namespaces in
    one netlink request, so no end ever appears in the task's own namespace.
  - An existing pair is recognised through namespace ids (C(IFLA_LINK_NETNSID)) and the
    ifindex each end records for the other, never by ifindex alone (ifindexes are per
    namespace and collide).
  - A drifted MTU or MAC address of an existing pair is corrected.
  - This module never creates a namespace. Use M(nodocker.lab.netns) first.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description:
      - Name of the first end, in O(netns). At most 15 characters, no C(/), C(:) or spaces.
    type: str
    required: true
  peer:
    description:
      - Name of the other end, in O(peer_netns). Required when O(state=present).
      - With O(state=absent), when given, the existing pair must have this peer, so that a
        typo does not delete another pair.
    type: str
  netns:
    description:
      - Named network namespace (as in C(ip netns list)) where O(name) lives.
      - Omitted, the task's own namespace (on a M(nodocker.lab.simhost) host, the host's).
    type: str
  peer_netns:
    description:
      - Named network namespace where O(peer) lives. Defaults to O(netns).
      - To put one end in the task's own namespace (the course's C(reth1) on the host's
        bridge), omit O(netns) and make that end O(name).
    type: str
  mtu:
    description:
      - MTU of both ends (the kernel default is 1500). For a VXLAN overlay use the
        underlay MTU minus 50 (the course uses 1450).
    type: int
  mac:
    description:
      - MAC address of O(name), such as C(02:42:c0:a8:00:02). Unicast only.
      - Omitted, the kernel picks a random one and it is left alone.
    type: str
  peer_mac:
    description:
      - MAC address of O(peer).
    type: str
  state:
    description:
      - C(present) creates the pair (or corrects its MTU/MAC), C(absent) deletes it;
        deleting one end deletes both.
    type: str
    choices: [ present, absent ]
    default: present
extends_documentation_fragment:
  - nodocker.lab.attributes
  - nodocker.lab.attributes.netlink
requirements:
  - pyroute2 >= 0.9
notes:
  - Fails without changing anything when a namespace is missing, when O(name) exists but
    is not a veth, when it is a veth paired with something other than O(peer) in
    O(peer_netns), or when O(peer) is already the name of another link.
  - The ends are left administratively down, like C(ip link add) leaves them; bring them
    up with M(nodocker.lab.link).
seealso:
  - module: nodocker.lab.netns
  - module: nodocker.lab.link
  - module: nodocker.lab.address
'''

EXAMPLES = r'''
- name: Chapter 3, a cable between RED and BLUE
  nodocker.lab.veth:
    name: veth0
    netns: RED
    peer: veth1
    peer_netns: BLUE

- name: Chapter 6, a container's cable to the overlay bridge namespace
  nodocker.lab.veth:
    name: veth0
    netns: RED
    peer: veth-red
    peer_netns: overns
    mtu: 1450
    mac: "02:42:c0:a8:00:02"

- name: Chapter 3 with a bridge, reth1 stays in the host, reth0 goes to RED
  nodocker.lab.veth:
    name: reth1
    peer: reth0
    peer_netns: RED

- name: Reset
  nodocker.lab.veth:
    name: veth0
    netns: RED
    state: absent
'''

RETURN = r'''
before:
  description: The pair before the task (empty when it did not exist).
  returned: always
  type: dict
  sample: {}
after:
  description: The pair after the task (empty when absent). In check mode, the prediction.
  returned: always
  type: dict
  sample:
    name: veth0
    netns: RED
    mtu: 1500
    mac: "02:42:c0:a8:00:02"
    peer: veth1
    peer_netns: BLUE
    peer_mtu: 1500
    peer_mac: "6e:0c:3a:11:02:9d"
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip -n RED link add veth0 type veth peer name veth1 netns BLUE"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._links import run_veth


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            peer=dict(type='str'),
            netns=dict(type='str'),
            peer_netns=dict(type='str'),
            mtu=dict(type='int'),
            mac=dict(type='str'),
            peer_mac=dict(type='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        required_if=[('state', 'present', ['peer'])],
        supports_check_mode=True,
    )
    module.exit_json(**run_veth(module))


if __name__ == '__main__':
    main()
