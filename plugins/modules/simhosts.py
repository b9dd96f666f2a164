#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: simhosts
short_description: Create or destroy simulated hosts (namespaces that act as machines)
version_added: 0.1.0
description:
  - Creates a set of simulated hosts on the machine the task runs on. Each host is a
    persistent network, mount, UTS, IPC and PID namespace with its own hostname, its own
    C(/run/netns), private C(/tmp), C(/var/lib/nodocker-lab), C(/var/log/nodocker-lab)
    and copy-on-write C(/etc) and C(/home), and an underlay interface C(eth1) plugged
    into a bridge that lives in a separate "switch" host (the course's Vagrant private
    network).
  - Use the M(nodocker.lab.simhost) connection plugin to run tasks inside a host.
  - The machine's own network namespace is never modified. Every link is created inside
    the switch or a host.
  - Destroying a host kills every process inside it (its PID namespace) and releases its
    namespaces, with every namespace, link and mount made inside them.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  lab:
    description: Name of the set of hosts; several labs can exist side by side.
    type: str
    default: lab
  hosts:
    description:
      - The hosts. With O(state=absent) and no hosts, the whole lab (switch included) is destroyed.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the host (also the inventory name used by the connection plugin).
        type: str
        required: true
      hostname:
        description: Hostname inside the host (default O(hosts[].name)).
        type: str
      underlay_address:
        description: Address of C(eth1) on the switch, ADDRESS/PREFIX.
        type: str
      gateway:
        description: Default route of the host (for example an "outside" host).
        type: str
      addresses:
        description: Extra addresses put on the host's C(lo) (an "internet" address for an outside host).
        type: list
        elements: str
      mtu:
        description: MTU of the host's underlay link (default O(mtu)).
        type: int
  switch:
    description: Name of the switch host that holds the underlay bridge C(sw0).
    type: str
    default: switch
  mtu:
    description: Default MTU of the underlay links.
    type: int
    default: 1500
  exclusive:
    description: With O(state=present), destroy hosts of the lab that are not listed.
    type: bool
    default: false
  state:
    description: C(present) creates hosts (recreating one whose definition changed), C(absent) destroys them.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - nodocker.lab.attributes
seealso:
  - plugin: nodocker.lab.simhost
    plugin_type: connection
requirements:
  - pyroute2 >= 0.9
  - util-linux (unshare, nsenter), iproute2
notes:
  - Runs on the machine that hosts the simulated hosts (normally C(localhost)), as root.
'''

EXAMPLES = r'''
- name: The course's two Vagrant VMs, simulated
  nodocker.lab.simhosts:
    hosts:
      - name: host1
        underlay_address: 192.168.104.2/24
      - name: host2
        underlay_address: 192.168.104.3/24

- name: Destroy the whole lab
  nodocker.lab.simhosts:
    state: absent
'''

RETURN = r'''
hosts:
  description: Names of the lab's hosts after the task (the switch included).
  returned: always
  type: list
  elements: str
before:
  description: The lab's hosts before the task, by name.
  returned: always
  type: dict
after:
  description: The lab's hosts after the task, by name.
  returned: always
  type: dict
commands:
  description: Equivalent shell commands of what changed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._simhost import run_simhosts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type='str', default='lab'),
            hosts=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                hostname=dict(type='str'),
                underlay_address=dict(type='str'),
                gateway=dict(type='str'),
                addresses=dict(type='list', elements='str'),
                mtu=dict(type='int'),
            )),
            switch=dict(type='str', default='switch'),
            mtu=dict(type='int', default=1500),
            exclusive=dict(type='bool', default=False),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_simhosts(module))


if __name__ == '__main__':
    main()
