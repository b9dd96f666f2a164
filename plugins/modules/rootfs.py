#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: rootfs
short_description: Build a minimal root filesystem from host programs (chapter 1 myroot)
version_added: 0.1.0
description:
  - Builds the directory O(path) as a root filesystem for C(chroot) or
    C(pivot_root), the way chapter 1 of the course builds C(myroot) by hand
    with C(ldd) and C(cp).
  - Each program in O(programs) is copied to the same path under O(path),
    together with its dynamic loader (C(PT_INTERP)) and every shared library
    it needs (C(DT_NEEDED)), libraries of libraries included. The ELF headers
    are read in Python; C(ldd) is not run.
  - Paths are mirrored component by component, so host symlinks on the way
    (C(/bin -> usr/bin), C(/lib64 -> usr/lib64)) become the same symlinks in
    the new root and the loader finds every library where the program looks.
  - Idempotent by content; a second run with the same list changes nothing,
    and adding a program copies only what is new. Every check is made
    before anything is written.
  - A file C(.nodocker-lab-rootfs) marks the directory as made by this module;
    O(state=absent) deletes only such a directory.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  path:
    description:
      - The new root directory. Must be new, empty, or made by this module.
    type: path
    required: true
  programs:
    description:
      - Host programs to copy, by name (searched in C(PATH)) or absolute path.
      - Scripts (C(#!)) bring their interpreter.
    type: list
    elements: str
    default: []
  busybox:
    description:
      - Also install the host's busybox (package C(busybox-static)) and a
        symlink to it for every applet it lists (C(busybox --list-full)),
        for a complete small userland. Programs copied from the host win
        over applets of the same name.
    type: bool
    default: false
  state:
    description:
      - C(present) builds or completes the tree, C(absent) deletes it.
    type: str
    choices: [ present, absent ]
    default: present
extends_documentation_fragment:
  - nodocker.lab.attributes
seealso:
  - module: nodocker.lab.overlay
  - module: nodocker.lab.image
notes:
  - O(state=absent) refuses to delete a tree with a file system mounted below it.
'''

EXAMPLES = r'''
- name: Chapter 1 myroot
  nodocker.lab.rootfs:
    path: /var/lib/nodocker-lab/ch01/myroot
    programs: [sh, ls, ps, mount, mkdir]

- name: A busybox root
  nodocker.lab.rootfs:
    path: /var/lib/nodocker-lab/ch05/tools
    busybox: true

- name: Reset
  nodocker.lab.rootfs:
    path: /var/lib/nodocker-lab/ch01/myroot
    state: absent
'''

RETURN = r'''
path:
  description: The root directory.
  returned: always
  type: str
  sample: /var/lib/nodocker-lab/ch01/myroot
files:
  description:
    - Paths (as seen inside the new root) copied or linked by this run; with
      O(state=absent), the files that were removed.
  returned: always
  type: list
  elements: str
  sample: [/bin, /usr/bin/dash, /lib/x86_64-linux-gnu/libc.so.6]
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ln -s usr/bin /var/lib/nodocker-lab/ch01/myroot/bin",
           "cp -a --parents /usr/bin/dash /var/lib/nodocker-lab/ch01/myroot/"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._rootfs import run_rootfs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            programs=dict(type='list', elements='str', default=[]),
            busybox=dict(type='bool', default=False),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_rootfs(module))


if __name__ == '__main__':
    main()
