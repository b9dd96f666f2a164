#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: container
short_description: Run a container from kernel primitives (namespaces, pivot_root, cgroups)
version_added: 0.1.0
description:
  - Starts a process tree as chapter 10 of the course does by hand, without Docker.
    It gets new mount, UTS, IPC and PID namespaces; a network namespace joined by name (or a
    new one); optionally a user namespace with uid/gid maps and a cgroup namespace;
    and the root filesystem made the root with C(pivot_root) and the old root detached;
    C(/proc), a read-only C(/sys), a minimal C(/dev) (null, zero, full, random,
    urandom, tty, pts, shm); the hostname; cgroup limits (see M(nodocker.lab.cgroup));
    a reduced capability bounding set and C(no_new_privs).
  - Detached; the container keeps running after the task. With O(init=true) a small
    init is PID 1; it forwards signals to the command and reaps orphans. The init has
    the container's bounding set and C(no_new_privs) too, and keeps only C(CAP_KILL)
    (to signal a command that runs as another user).
  - Stdout and stderr go to C(/var/lib/nodocker-lab/containers/NAME/container.log);
    the exit status is recorded in C(exit.json) beside it.
  - The same definition again is unchanged. A changed definition recreates the container
    (its overlay upper directory is discarded).
  - The container is found again after Ansible (or the machine's runtime helper)
    restarts; PID 1 is identified by PID and start time.
author:
  - nodocker.lab developers (@nodocker-lab)
options:
  name:
    description: Container name (also the default hostname and the cgroup name).
    type: str
    required: true
  state:
    description:
      - C(started) starts it (recreating it when the definition changed).
      - C(stopped) stops it (SIGTERM to PID 1, SIGKILL after O(stop_timeout)) and keeps
        its definition and upper directory.
      - C(absent) stops it and removes its cgroup, state and upper directory.
    type: str
    choices: [ started, stopped, absent ]
    default: started
  rootfs:
    description: A directory used as the root filesystem (bind-mounted). Exclusive with O(lowerdirs) and O(image).
    type: path
  lowerdirs:
    description:
      - Image layers, top first, mounted as an overlay whose upper directory is
        C(/var/lib/nodocker-lab/containers/NAME/upper). Exclusive with O(rootfs) and O(image).
    type: list
    elements: path
  image:
    description:
      - An image in the local image store (imported or pulled by M(nodocker.lab.image)),
        by the name given there; C(nginx) also finds C(docker.io/library/nginx:latest).
        Its layers become the overlay's lower directories, as with O(lowerdirs).
      - The image's configuration gives the defaults of O(command) (C(Entrypoint) +
        C(Cmd)), O(cwd) (C(WorkingDir)), O(user) (C(User)) and environment (C(Env), under
        O(env)), as C(docker run) does.
      - An image that is pulled again with new layers changes the definition, so the
        container is recreated on it. Exclusive with O(rootfs) and O(lowerdirs).
    type: str
  image_store:
    description: The image store O(image) is looked up in (the M(nodocker.lab.image) O(nodocker.lab.image#module:store)).
    type: path
    default: /var/lib/nodocker-lab/images
  command:
    description:
      - The command (argv). Looked up in the container's C(PATH).
      - With O(image), as C(docker run) does, it replaces the image's C(Cmd) and follows
        the image's C(Entrypoint) (see O(entrypoint)); it defaults to C(Cmd).
      - Without anything else to run, C(/bin/sh).
    type: list
    elements: str
  entrypoint:
    description:
      - Put before O(command). Defaults to the image's C(Entrypoint) with O(image);
        an empty list drops the image's entrypoint (C(docker run --entrypoint "")).
    type: list
    elements: str
  env:
    description: Environment variables added to C(PATH), C(HOME), C(TERM), C(HOSTNAME).
    type: dict
  cwd:
    description: Working directory inside the container. Defaults to the image's C(WorkingDir) with O(image), otherwise C(/).
    type: str
  user:
    description: C(uid[:gid]) or a name from the container's C(/etc/passwd).
    type: str
  hostname:
    description: Hostname (at most 64 characters). Defaults to O(name) with C(_) replaced by C(-).
    type: str
  netns:
    description:
      - Named network namespace to join (C(RED) means C(/run/netns/RED)), or an absolute
        path to a namespace file. It must exist. Omitted - a new, empty network namespace.
    type: str
  userns:
    description: Run in a new user namespace mapped with O(uid_map)/O(gid_map).
    type: bool
    default: false
  uid_map:
    description:
      - Entries C(container_id), C(host_id), C(size). Default maps 0..65535 to 100000..165535.
    type: list
    elements: dict
  gid_map:
    description: Like O(uid_map), for groups.
    type: list
    elements: dict
  cgroupns:
    description: Run in a new cgroup namespace (the container sees its cgroup as C(/)).
    type: bool
    default: false
  init:
    description: Run a small init as PID 1 that forwards signals and reaps orphans.
    type: bool
    default: true
  capabilities:
    description: Capabilities kept in the bounding set (names like C(net_raw)). Default is Docker's default set.
    type: list
    elements: str
  stop_timeout:
    description: Seconds between SIGTERM and SIGKILL when stopping.
    type: int
    default: 10
  cgroup_parent:
    description: Parent cgroup, C(nodocker-lab) or below it (see M(nodocker.lab.cgroup)).
    type: str
  cpu_quota:
    description: CPU microseconds per period (C(40000)), or C(max).
    type: str
  cpu_period:
    description: CPU period in microseconds.
    type: int
  memory:
    description: Memory limit (C(200M)), or C(max).
    type: str
  swappiness:
    description: Swappiness; on cgroup v2 only C(0) (mapped to C(memory.swap.max=0)).
    type: int
  pids_max:
    description: Maximum number of processes, or C(max).
    type: str
extends_documentation_fragment:
  - nodocker.lab.attributes
notes:
  - Requires root on the managed host. The container's monitor (it records the exit
    status) is a small helper run with the real Python interpreter and C(-I -S),
    importing C(ctypes) only; the container's init is a fork of it, so neither keeps a
    copy of the module process's memory.
seealso:
  - module: nodocker.lab.container_exec
  - module: nodocker.lab.container_info
  - module: nodocker.lab.cgroup
'''

EXAMPLES = r'''
- name: RED as in chapter 10
  nodocker.lab.container:
    name: RED
    lowerdirs: [/var/lib/nodocker-lab/layers/tools, /var/lib/nodocker-lab/rootfs/myroot]
    netns: RED
    command: [/bin/sh, -c, "sleep infinity"]
    cpu_quota: 40000
    cpu_period: 100000
    memory: 200M
    swappiness: 0

- name: Remove it
  nodocker.lab.container:
    name: RED
    state: absent
'''

RETURN = r'''
container:
  description: The container after the task.
  returned: always
  type: dict
  contains:
    state:
      description: C(running), C(exited), C(created) or C(absent).
      type: str
    pid:
      description: PID 1 of the container, as seen from the host.
      type: int
    exit_code:
      description: Exit status of PID 1 (128+N for signal N) when exited.
      type: int
    log_path:
      description: File holding stdout and stderr.
      type: str
    definition:
      description: The validated definition.
      type: dict
  sample: {name: RED, state: running, pid: 4242, log_path: /var/lib/nodocker-lab/containers/RED/container.log}
commands:
  description: The equivalent shell commands of what changed (empty when nothing changed).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodocker.lab.plugins.module_utils._runtime import run_container


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', choices=['started', 'stopped', 'absent'], default='started'),
            rootfs=dict(type='path'),
            lowerdirs=dict(type='list', elements='path'),
            image=dict(type='str'),
            image_store=dict(type='path', default='/var/lib/nodocker-lab/images'),
            command=dict(type='list', elements='str'),
            entrypoint=dict(type='list', elements='str'),
            env=dict(type='dict'),
            cwd=dict(type='str'),
            user=dict(type='str'),
            hostname=dict(type='str'),
            netns=dict(type='str'),
            userns=dict(type='bool', default=False),
            uid_map=dict(type='list', elements='dict'),
            gid_map=dict(type='list', elements='dict'),
            cgroupns=dict(type='bool', default=False),
            init=dict(type='bool', default=True),
            capabilities=dict(type='list', elements='str'),
            stop_timeout=dict(type='int', default=10),
            cgroup_parent=dict(type='str'),
            cpu_quota=dict(type='str'),
            cpu_period=dict(type='int'),
            memory=dict(type='str'),
            swappiness=dict(type='int'),
            pids_max=dict(type='str'),
        ),
        mutually_exclusive=[('rootfs', 'lowerdirs', 'image')],
        required_if=[('state', 'started', ('rootfs', 'lowerdirs', 'image'), True),
                     ('state', 'stopped', ('rootfs', 'lowerdirs', 'image'), True)],
        supports_check_mode=True,
    )
    module.exit_json(**run_container(module))


if __name__ == '__main__':
    main()
