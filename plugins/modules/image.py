#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: image
short_description: Import container images into a local content-addressed layer store
version_added: 0.1.0
description:
  - Imports an image from a C(docker save) archive or an OCI image-layout
    archive (C(oci-layout), C(index.json), C(blobs/)) into O(store), the
    course's C(docker export | tar -x) done the way Docker stores images.
  - Each layer is extracted once under C(layers/sha256/<diff id>/) and shared
    by every image using it. Layers are applied as Docker does - a
    C(.wh.NAME) entry becomes an overlayfs whiteout (a 0:0 character device
    C(NAME)), C(.wh..wh..opq) makes its directory opaque
    (C(trusted.overlay.opaque=y)); modes, owners, symlinks, hard links and
    xattrs are kept.
  - Every digest is verified (blobs, configs, layer diff ids) and every layer
    member is checked before anything is written. Absolute paths, C(..),
    relative symlinks or hard links leading outside the layer, entries written
    through an earlier symlink, device nodes, C(trusted.overlay.*) xattrs,
    digest mismatches and truncated archives are rejected and nothing is
    written.
  - Returns the image's layer directories top first, ready for the O(nodocker.lab.overlay#module:lower) option.
author:
  - nodocker.lab developers
options:
  src:
    description: The archive on the managed host (plain or gzip tar). Required with O(state=present).
    type: path
  name:
    description:
      - Which image of the archive (a C(RepoTags) entry or the
        C(org.opencontainers.image.ref.name) annotation) and the name it gets
        in the store. Optional when the archive holds one image (the store
        then names it by its config digest). Required with O(state=absent).
    type: str
  store:
    description: The image store directory.
    type: path
    default: /var/lib/nodocker-lab/images
  state:
    description:
      - C(present) imports; C(absent) forgets the name and deletes the layers
        no other stored image uses (refused while they are mounted).
    type: str
    choices: [ present, absent ]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
seealso:
  - module: nodocker.lab.overlay
notes:
  - Absolute symlink targets are kept; they resolve inside the container's root.
  - zstd-compressed layers are not supported.
'''

EXAMPLES = r'''
- name: Import an image saved with docker save
  nodocker.lab.image:
    src: /tmp/nginx.tar
    name: nginx:latest
  register: img

- name: A container root on it
  nodocker.lab.overlay:
    path: /var/lib/nodocker-lab/ch05/c1/merged
    lower: "{{ img.layers }}"
    upper: /var/lib/nodocker-lab/ch05/c1/upper
    work: /var/lib/nodocker-lab/ch05/c1/work
'''

RETURN = r'''
name:
  description: The image's name in the store.
  returned: always
  type: str
layers:
  description: Layer directories, top layer first (for overlay's lower).
  returned: always
  type: list
  elements: str
new_layers:
  description: Layer directories extracted by this run.
  returned: always
  type: list
  elements: str
diff_ids:
  description: Layer digests of the uncompressed layers, bottom first (as in the image config).
  returned: success and state=present
  type: list
  elements: str
config_digest:
  description: Digest of the image config (the image id).
  returned: success and state=present
  type: str
config:
  description: The image config's C(config) part (Entrypoint, Cmd, Env, WorkingDir...).
  returned: success and state=present
  type: dict
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._image import DEFAULT_STORE, run_image


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path'),
            name=dict(type='str'),
            store=dict(type='path', default=DEFAULT_STORE),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run_image(module))


if __name__ == '__main__':
    main()
