#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: container_info
short_description: Information about nodocker.lab containers
version_added: 0.1.0
description:
  - State (running, exited, created), PID 1, exit status, definition, cgroup
    limits and usage, and the addresses seen inside a container's network namespace.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description: Names of the containers. Omitted - every container on the host.
    type: list
    elements: str
extends_documentation_fragment:
  - nodocker.lab.attributes.info_module
seealso:
  - module: nodocker.lab.container
'''

EXAMPLES = r'''
- name: How is RED doing?
  nodocker.lab.container_info:
    name: RED
  register: info
'''

RETURN = r'''
containers:
  description: One entry per container, keyed by name. A missing one has C(state=absent).
  returned: always
  type: dict
  sample: {RED: {state: running, pid: 4242, cgroup: {usage: {cpu_usage_usec: 1200}}}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._runtime import (
    container_info, list_containers)


def main():
    module = AnsibleModule(
        argument_spec=dict(name=dict(type='list', elements='str')),
        supports_check_mode=True,
    )
    names = module.params['name'] or list_containers()
    module.exit_json(changed=False,
                     containers=dict((n, container_info(n)) for n in names))


if __name__ == '__main__':
    main()
