#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: image
short_description: Import or pull container images into a local content-addressed layer store
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
  - Or pulls it from an OCI distribution registry (O(pull)), the course's
    C(docker create nginx) done without Docker - registry API v2 over HTTP(S),
    the registry's Bearer token auth when it answers 401, a manifest list or
    OCI index resolved to linux and this machine's architecture (amd64 on
    x86_64), every manifest, config and blob checked against its digest. Only
    layers not yet in the store are downloaded; check mode reads the manifest
    and config but downloads no layer.
  - Returns the image's layer directories top first, ready for the O(nodocker.lab.overlay#module:lower) option.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  src:
    description:
      - The archive on the managed host (plain or gzip tar).
      - One of O(src) or O(pull) is required with O(state=present).
    type: path
  pull:
    description:
      - A registry reference to pull, C([http[s]://][REGISTRY/]NAME[:TAG][@sha256:DIGEST]),
        for example C(192.168.104.2:5000/nodocker/web:1),
        C(http://192.168.104.2:5000/nodocker/web@sha256:...) or C(nginx) (Docker Hub,
        C(library/nginx:latest)).
      - Without a scheme the registry is reached over HTTPS (see
        O(validate_certs) and O(ca_path)); C(http://) is for a registry without
        TLS (a lab registry).
      - The image is stored as O(name), or as the normalised reference
        (C(REGISTRY/NAME:TAG)) when O(name) is not given.
    type: str
  registry_username:
    description:
      - User name sent to the registry's token server (HTTP basic auth) or to
        a registry that asks for basic auth. Without it tokens are requested anonymously.
    type: str
  registry_password:
    description: Password for O(registry_username).
    type: str
  validate_certs:
    description:
      - Check the registry's and token server's TLS certificates (HTTPS only),
        that they are signed by a trusted CA and issued for the host name or IP
        address in O(pull). The CAs trusted are the system's, or those of O(ca_path).
      - V(false) checks nothing (as C(curl -k)); use it only on a lab network.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file on the managed host with the CA certificates to trust for
        the registry and its token server, for a registry whose certificate
        is signed by a private CA (the file Docker expects as
        C(/etc/docker/certs.d/REGISTRY/ca.crt)).
      - As for M(ansible.builtin.uri), these CAs are used B(instead of) the
        system's CA store. To trust both, put the system bundle
        (C(/etc/ssl/certs/ca-certificates.crt) on Debian) and the private CA
        in one file.
      - A path that is not a readable file of PEM certificates fails the task
        before any request. Ignored with O(validate_certs=false).
    type: path
  timeout:
    description: Seconds to wait for each registry request.
    type: int
    default: 60
  name:
    description:
      - Which image of the archive (a C(RepoTags) entry or the
        C(org.opencontainers.image.ref.name) annotation) and the name it gets
        in the store. Optional when the archive holds one image (the store
        then names it by its config digest). Required with O(state=absent).
      - With O(pull), the name the pulled image gets in the store.
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
extends_documentation_fragment:
  - nodocker.lab.attributes
seealso:
  - module: nodocker.lab.overlay
notes:
  - Absolute symlink targets are kept; they resolve inside the container's root.
  - zstd-compressed layers and schema 1 manifests are not supported.
  - Only the Python standard library is used (no Docker, skopeo or curl on the managed host).
'''

EXAMPLES = r'''
- name: Pull an image from a lab registry without TLS
  nodocker.lab.image:
    pull: http://192.168.104.2:5000/nodocker/web:1
    name: web:1
  register: web

- name: Pull over HTTPS from a registry whose certificate is signed by a private CA
  nodocker.lab.image:
    pull: registry.lab.example:5443/nodocker/web:1
    name: web:1
    ca_path: /etc/nodocker-lab/registry-ca.pem

- name: Pull from a lab registry with a self-signed certificate, unchecked
  nodocker.lab.image:
    pull: 192.168.104.2:5443/nodocker/web:1
    name: web:1
    validate_certs: false

- name: Pull by digest with credentials for the registry's token server
  nodocker.lab.image:
    pull: registry.example.com/team/app@sha256:2f1a0a3c0b6f3d1b7b3c1e4e1f1c5e7a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f
    registry_username: ci
    registry_password: "{{ vault_registry_password }}"

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
manifest_digest:
  description: Digest of the pulled image manifest (for a manifest list, the platform's manifest).
  returned: success and O(pull) given
  type: str
reference:
  description: The pulled reference, normalised (C(REGISTRY/NAME:TAG) or C(REGISTRY/NAME@DIGEST)).
  returned: success and O(pull) given
  type: str
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
            pull=dict(type='str'),
            registry_username=dict(type='str'),
            registry_password=dict(type='str', no_log=True),
            validate_certs=dict(type='bool', default=True),
            ca_path=dict(type='path'),
            timeout=dict(type='int', default=60),
            name=dict(type='str'),
            store=dict(type='path', default=DEFAULT_STORE),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        mutually_exclusive=[('src', 'pull')],
        supports_check_mode=True,
    )
    module.exit_json(**run_image(module))


if __name__ == '__main__':
    main()
