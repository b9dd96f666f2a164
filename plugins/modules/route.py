#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: route
short_description: Add, replace or delete a route in a network namespace
version_added: 0.1.0
description:
  - Manages one route as C(ip route add|replace|del) does; chapter 4 of the course gives
    RED and BLUE a default route via the bridge C(br0) (C(11.11.11.1)).
  - A route is identified by O(dest), O(metric) and O(table), as the kernel identifies
    it. An existing route with the same identity but another gateway or device is
    replaced.
  - A gateway that is not on a directly connected subnet fails the task before anything
    changes (also in check mode), quoting the kernel's answer.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  dest:
    description:
      - Destination network in CIDR form (C(10.0.0.0/8), C(fd00::/64)) or C(default).
      - Host bits must be zero (C(10.0.0.1/8) is refused).
    type: str
    required: true
  gateway:
    description:
      - Next hop (C(via)). Must be on a connected subnet.
    type: str
  dev:
    description:
      - Output device. Required when there is no O(gateway).
    type: str
  metric:
    description:
      - Route metric (priority). Omitted, the kernel's default (0 for IPv4, 1024 for IPv6).
    type: int
  table:
    description:
      - Routing table number; 254 is C(main).
    type: int
    default: 254
  netns:
    description:
      - Named network namespace of the route.
      - Omitted, the task's own namespace (on a M(nodocker.lab.simhost) host, the host's).
    type: str
  state:
    description:
      - C(present) adds or replaces the route, C(absent) deletes it (when O(gateway) or
        O(dev) are given, only a route that matches them).
    type: str
    choices: [ present, absent ]
    default: present
extends_documentation_fragment:
  - nodocker.lab.attributes
  - nodocker.lab.attributes.netlink
requirements:
  - pyroute2 >= 0.9
seealso:
  - module: nodocker.lab.address
'''

EXAMPLES = r'''
- name: Chapter 4, RED leaves through the bridge
  nodocker.lab.route:
    netns: RED
    dest: default
    gateway: 11.11.11.1

- name: A subnet reached through a device, no gateway
  nodocker.lab.route:
    netns: overns
    dest: 11.11.12.0/24
    dev: br0
'''

RETURN = r'''
before:
  description: The route with the same dest/metric/table before the task (empty if none).
  returned: always
  type: dict
  sample: {}
after:
  description: The route after the task (empty when absent). In check mode, the prediction.
  returned: always
  type: dict
  sample: {dest: default, gateway: 11.11.11.1, dev: veth0, metric: 0, table: 254, netns: RED}
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ip -n RED route add default via 11.11.11.1"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._route import run_route


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type='str', required=True),
            gateway=dict(type='str'),
            dev=dict(type='str'),
            metric=dict(type='int'),
            table=dict(type='int', default=254),
            netns=dict(type='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_route(module))


if __name__ == '__main__':
    main()
