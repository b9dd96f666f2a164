#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: cgroup
short_description: A cgroup with CPU, memory and pids limits (cgroup v1 and v2)
version_added: 0.1.0
description:
  - Creates a control group under the project's parent C(nodocker-lab) and sets
    its limits, as chapter 10 of the course does by hand with
    C(mkdir /sys/fs/cgroup/cpu/RED) and C(echo 40000 > .../cpu.cfs_quota_us).
  - Works on cgroup v1 (one directory per controller,
    C(/sys/fs/cgroup/{cpu,cpuacct,memory,pids}/nodocker-lab/NAME)) and on cgroup v2
    (one directory C(/sys/fs/cgroup/nodocker-lab/NAME) with C(cpu.max), C(memory.max),
    C(pids.max); the controllers are enabled through C(cgroup.subtree_control) of
    every ancestor). The version is detected at run time.
  - A limit the host cannot enforce (controller missing, file missing) fails the
    task; it is never skipped silently.
  - Only the limits given are managed; a limit left out keeps its current value.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description: Name of the cgroup (the last path component).
    type: str
    required: true
  parent:
    description:
      - Path of the parent cgroup, relative to each hierarchy's root. Must be
        C(nodocker-lab) or below it.
      - Defaults to the environment variable C(NODOCKER_LAB_CGROUP_PARENT) on the
        managed host, else C(nodocker-lab).
    type: str
  root:
    description:
      - Where the cgroup filesystems are mounted. Only tests change this.
    type: path
    default: /sys/fs/cgroup
  state:
    description:
      - C(present) creates the cgroup and sets the limits; C(absent) removes it.
    type: str
    choices: [ present, absent ]
    default: present
  kill:
    description:
      - With O(state=absent), kill the processes still in the cgroup first.
        Without it, a cgroup that still has processes fails the task.
    type: bool
    default: false
  cpu_quota:
    description:
      - Microseconds of CPU time the cgroup may use per O(cpu_period)
        (C(40000) of C(100000) = 40% of one CPU). C(max) or C(-1) for no limit.
      - v1 C(cpu.cfs_quota_us); v2 first field of C(cpu.max).
    type: str
  cpu_period:
    description:
      - Length of the CPU accounting period in microseconds, 1000 to 1000000.
      - v1 C(cpu.cfs_period_us); v2 second field of C(cpu.max).
    type: int
  memory:
    description:
      - Memory limit. A number of bytes or a size with a binary unit
        (C(200M) = C(200MiB) = 209715200 bytes; K, M, G, T), or C(max).
        Rounded down to whole pages, as the kernel does.
      - v1 C(memory.limit_in_bytes); v2 C(memory.max).
    type: str
  swappiness:
    description:
      - 0 to 100. v1 C(memory.swappiness).
      - cgroup v2 has no per-cgroup swappiness. There, C(0) is mapped to
        C(memory.swap.max = 0) (the cgroup never swaps) and any other value
        fails the task.
    type: int
  pids_max:
    description: Maximum number of processes and threads, or C(max).
    type: str
extends_documentation_fragment:
  - nodocker.lab.attributes
notes:
  - Does not move processes; the M(nodocker.lab.container) module puts its
    containers into cgroups made with the same code.
seealso:
  - module: nodocker.lab.container
'''

EXAMPLES = r'''
- name: The course's RED cgroup (chapter 10)
  nodocker.lab.cgroup:
    name: RED
    cpu_quota: 40000
    cpu_period: 100000
    memory: 200M
    swappiness: 0

- name: Remove it, killing what is left inside
  nodocker.lab.cgroup:
    name: RED
    state: absent
    kill: true
'''

RETURN = r'''
cgroup:
  description: The cgroup after the task.
  returned: always
  type: dict
  contains:
    name:
      description: Name.
      type: str
    version:
      description: 1 or 2.
      type: int
    exists:
      description: Whether it exists.
      type: bool
    paths:
      description: Directory per controller (v1) or C(unified) (v2).
      type: dict
    limits:
      description: C(cpu_quota), C(cpu_period), C(memory) (bytes), C(swappiness), C(pids_max); C(max) for no limit.
      type: dict
  sample:
    name: RED
    version: 1
    exists: true
    paths: {cpu: /sys/fs/cgroup/cpu/nodocker-lab/RED}
    limits: {cpu_quota: 40000, cpu_period: 100000, memory: 209715200, swappiness: 0, pids_max: max}
usage:
  description: What the cgroup has used (C(cpu_usage_usec), C(memory_current), C(oom_kill), ...).
  returned: when the cgroup exists after the task
  type: dict
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["mkdir -p /sys/fs/cgroup/cpu/nodocker-lab/RED", "echo 40000 > /sys/fs/cgroup/cpu/nodocker-lab/RED/cpu.cfs_quota_us"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._cgroups import (
    CgroupError, CgroupSpec, ensure_cgroup, read_usage, remove_cgroup)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            parent=dict(type='str'),
            root=dict(type='path', default='/sys/fs/cgroup'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            kill=dict(type='bool', default=False),
            cpu_quota=dict(type='str'),
            cpu_period=dict(type='int'),
            memory=dict(type='str'),
            swappiness=dict(type='int'),
            pids_max=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        spec = CgroupSpec.from_params(p)
    except ValueError as e:
        module.fail_json(msg=str(e))
    try:
        if p['state'] == 'absent':
            result = remove_cgroup(spec.name, kill=p['kill'], check_mode=module.check_mode,
                                   parent=spec.parent, root=spec.root)
        else:
            result = ensure_cgroup(spec, check_mode=module.check_mode)
            if not module.check_mode:
                result['usage'] = read_usage(spec.name, spec.parent, spec.root)
    except CgroupError as e:
        module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
