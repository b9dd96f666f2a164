#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: overlay
short_description: Mount or unmount an overlay filesystem from N layers (chapter 5)
version_added: 0.1.0
description:
  - Mounts an overlay filesystem at O(path) from the layers O(lower) (the
    first is the top one, as in C(lowerdir=)), an O(upper) directory taking
    the container's writes and a O(work) directory, as
    C(mount -t overlay overlay -o lowerdir=...,upperdir=...,workdir=... PATH).
  - Acts in the mount namespace the task runs in (a simulated host's own one
    with connection C(nodocker.lab.simhost)), reading C(/proc/self/mountinfo).
  - Idempotent. An overlay with the same layers already at O(path) is left
    alone; a different mount there is reported and replaced only with
    O(replace=true).
  - Any number of layers (up to the kernel's 500); layers are passed one by
    one with the new mount API (C(fsconfig lowerdir+), Linux >= 6.8), so the
    one-page limit of the C(-o) option string does not apply. Older kernels
    get relative layer paths from their common parent.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  path:
    description: The mount point (the merged view). Created when missing.
    type: path
    required: true
  lower:
    description:
      - Lower layers, top first. Directories, for example the RV(nodocker.lab.image#module:layers)
        of an imported image (which are listed top first too), or a rootfs.
      - Required with O(state=mounted).
    type: list
    elements: path
    default: []
  upper:
    description:
      - Directory for the writes (created when missing). Without O(upper) and
        O(work) the overlay is read-only and needs two lower layers or more.
    type: path
  work:
    description:
      - Overlayfs work directory, on the same file system as O(upper)
        (created when missing).
    type: path
  replace:
    description:
      - When a different mount is at O(path), unmount it and mount the wanted
        one. Without it the task fails and leaves the existing mount alone.
    type: bool
    default: false
  state:
    description: C(mounted) or C(unmounted).
    type: str
    choices: [ mounted, unmounted ]
    default: mounted
extends_documentation_fragment:
  - nodocker.lab.attributes
seealso:
  - module: nodocker.lab.image
  - module: nodocker.lab.rootfs
notes:
  - Paths must not contain C(:), C(,), a backslash or a newline (separators in
    overlayfs options and the mount table).
'''

EXAMPLES = r'''
- name: The course's chapter 5 container root
  nodocker.lab.overlay:
    path: /var/lib/nodocker-lab/ch05/containers/c1/merged
    lower:
      - /var/lib/nodocker-lab/ch05/tools
      - /var/lib/nodocker-lab/ch05/myroot
    upper: /var/lib/nodocker-lab/ch05/containers/c1/upper
    work: /var/lib/nodocker-lab/ch05/containers/c1/work

- name: Unmount it
  nodocker.lab.overlay:
    path: /var/lib/nodocker-lab/ch05/containers/c1/merged
    state: unmounted
'''

RETURN = r'''
path:
  description: The mount point.
  returned: always
  type: str
mounted:
  description: Whether an overlay is mounted at O(path) after the task.
  returned: always
  type: bool
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["mount -t overlay overlay -o lowerdir=/l1:/l2,upperdir=/u,workdir=/w /m"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._mounts import run_overlay


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            lower=dict(type='list', elements='path', default=[]),
            upper=dict(type='path'),
            work=dict(type='path'),
            replace=dict(type='bool', default=False),
            state=dict(type='str', choices=['mounted', 'unmounted'], default='mounted'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_overlay(module))


if __name__ == '__main__':
    main()
