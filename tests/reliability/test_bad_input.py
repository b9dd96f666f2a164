# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input: every case is a failed task with a clear message and no change on the host.

All cases run in ONE playbook (ignore_errors), in a simulated host, with the
json stdout callback; each case names a word its error message must contain.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shlex
import subprocess

import pytest
import yaml

from tests.reliability.conftest import PYTHON, ROOT

NS = 'relbad'
OK_ROOT = '/var/lib/ndl-relbad/rootfs'
# (module, args, word the message must contain -- case-insensitive)
CASES = [
    ('netns', {'name': ['bad/name']}, 'bad/name'),
    ('netns', {'name': ['']}, 'name'),
    ('netns', {'name': ['x' * 300]}, 'name'),
    ('netns', {'name': ['ok1'], 'state': 'bogus'}, 'state'),
    ('veth', {'name': 'abcdefghijklmnopq', 'peer': 'p0', 'netns': NS}, 'abcdefghijklmnopq'),
    ('veth', {'name': 'v0', 'peer': 'p0', 'netns': NS, 'mtu': 10}, 'mtu'),
    ('veth', {'name': 'v0', 'peer': 'p0', 'netns': NS, 'mac': 'zz:zz'}, 'zz:zz'),
    ('veth', {'name': 'v0', 'peer': 'p0', 'netns': 'no-such-ns'}, 'no-such-ns'),
    ('veth', {'name': 'v0', 'netns': NS}, 'peer'),
    ('bridge', {'name': 'bad name', 'netns': NS}, 'bad name'),
    ('bridge', {'name': 'br0', 'netns': NS, 'ports': ['nosuchport']}, 'nosuchport'),
    ('link', {'name': ['lo'], 'netns': NS, 'state': 'sideways'}, 'state'),
    ('link', {'name': ['nosuchdev'], 'netns': NS, 'state': 'up'}, 'nosuchdev'),
    ('link', {'name': ['lo'], 'netns': NS, 'mtu': -1}, 'mtu'),
    ('address', {'dev': 'lo', 'netns': NS, 'addresses': ['300.1.1.1/24']}, '300.1.1.1'),
    ('address', {'dev': 'lo', 'netns': NS, 'addresses': ['10.0.0.1/99']}, '10.0.0.1/99'),
    ('address', {'dev': 'lo', 'netns': NS, 'addresses': ['not-an-ip']}, 'not-an-ip'),
    ('route', {'dest': 'nowhere', 'dev': 'lo', 'netns': NS}, 'nowhere'),
    ('route', {'dest': '10.9.0.0/16', 'gateway': '1.2.3', 'netns': NS}, '1.2.3'),
    ('route', {'dest': '10.9.0.0/16', 'dev': 'lo', 'netns': NS, 'metric': -4}, 'metric'),
    ('vxlan', {'name': 'vx0', 'netns': NS, 'vni': 99999999}, 'vni'),
    ('vxlan', {'name': 'vx0', 'netns': NS, 'vni': 42, 'port': 70000}, 'port'),
    ('vxlan', {'name': 'vx0', 'netns': NS, 'vni': 42, 'local': 'here'}, 'here'),
    ('vxlan', {'name': 'vx0', 'netns': NS}, 'vni'),
    ('vxlan', {'name': 'vx0', 'netns': NS, 'vni': 42, 'remote': '10.0.0.9',
               'group': '239.1.1.1'}, 'remote'),
    ('fdb', {'dev': 'lo', 'netns': NS, 'entries': [{'mac': 'nope', 'dst': '10.0.0.2'}]}, 'nope'),
    ('fdb', {'dev': 'lo', 'netns': NS,
             'entries': [{'mac': '02:00:00:00:00:01', 'dst': 'dst?'}]}, 'dst?'),
    ('fdb', {'dev': 'lo', 'netns': NS,
             'entries': [{'mac': '02:00:00:00:00:01', 'dst': '10.0.0.2', 'vni': -1}]}, 'vni'),
    ('neigh', {'dev': 'lo', 'netns': NS, 'entries': [{'ip': 'x.y', 'mac': '02:00:00:00:00:01'}]},
     'x.y'),
    ('neigh', {'dev': 'lo', 'netns': NS, 'entries': [{'ip': '10.0.0.5', 'mac': 'bad'}]}, 'bad'),
    ('cgroup', {'name': '../etc'}, '../etc'),
    ('cgroup', {'name': 'relbad', 'memory': 'lots'}, 'lots'),
    ('cgroup', {'name': 'relbad', 'cpu_quota': '-5'}, 'cpu_quota'),
    ('cgroup', {'name': 'relbad', 'pids_max': 'many'}, 'many'),
    ('cgroup', {'name': 'relbad', 'parent': '/etc'}, 'parent'),
    ('container', {'name': 'bad/name', 'rootfs': OK_ROOT}, 'bad/name'),
    ('container', {'name': 'relbad', 'rootfs': 'relative/dir'}, 'relative/dir'),
    ('container', {'name': 'relbad', 'rootfs': '/no/such/dir'}, '/no/such/dir'),
    ('container', {'name': 'relbad', 'rootfs': OK_ROOT, 'capabilities': ['cap_bogus']}, 'bogus'),
    ('container', {'name': 'relbad', 'rootfs': OK_ROOT,
                   'uid_map': [{'container_id': 0, 'host_id': 1000, 'size': 1}]}, 'userns'),
    ('container', {'name': 'relbad', 'rootfs': OK_ROOT, 'memory': '-1G'}, 'memory'),
    ('container', {'name': 'relbad', 'rootfs': OK_ROOT, 'netns': 'no-such-ns'}, 'no-such-ns'),
    ('container', {'name': 'relbad', 'rootfs': OK_ROOT, 'user': 'nobody-here'}, 'nobody-here'),
    ('container', {'name': 'relbad', 'rootfs': OK_ROOT, 'hostname': 'h' * 65}, 'at most 64'),
    # gets as far as the container's cgroup, monitor and PID 1 before the exec fails
    ('container', {'name': 'relbad', 'rootfs': OK_ROOT, 'command': ['/bin/nosuchcommand']},
     'command not found'),
]

# Everything a failed task could leave in the host: namespaces, links, addresses,
# routes, neighbours, FDB, the runtime's state, cgroups, the host's mount table and
# its processes (but this snapshot's own shell and its children: ps, awk).
SNAP = ('ip netns list | sort; ip -n %s -d link show | sed "s/^[0-9]*://"; '
        'ip -n %s addr; ip -n %s route; ip -n %s neigh; bridge -n %s fdb show; '
        'ls -R /var/lib/nodocker-lab /run/nodocker-lab 2>/dev/null | grep -v "^runtime"; '
        'find /sys/fs/cgroup/*/$(cat /run/nodocker-lab/cgroup-parent) -maxdepth 1 -type d '
        '2>/dev/null | sort; echo "-- mounts"; cat /proc/self/mountinfo; echo "-- processes"; '
        'ps -e -o pid=,ppid=,stat=,args= | awk -v me=$$ \'$1 != me && $2 != me\'' % ((NS,) * 5))


@pytest.fixture(scope='module')
def badhost(make_lab):
    lab = make_lab('b', {'host1': {'nodocker_underlay_address': '192.168.104.2/24'}})
    try:
        lab.sh('host1', 'ip netns add %s && mkdir -p %s/bin && cp /usr/bin/busybox %s/bin/'
               % (NS, OK_ROOT, OK_ROOT))
        yield lab
    finally:
        if lab.running():
            lab.sh('host1', 'ip netns del %s' % NS, check=False)
        subprocess.call(['rm', '-rf', os.path.dirname(OK_ROOT)])


def test_bad_input_fails_clearly_without_change(badhost):
    tasks = [{'name': 'case %d: %s' % (i, m), 'nodocker.lab.%s' % m: args, 'ignore_errors': True}
             for i, (m, args, _w) in enumerate(CASES)]
    pb = badhost.write('bad.yml', yaml.safe_dump(
        [{'name': 'Bad input', 'hosts': 'host1', 'gather_facts': False, 'tasks': tasks}],
        sort_keys=False))
    before = badhost.sh('host1', SNAP, check=False).stdout
    p = badhost.playbook(pb, check=False, extra_env={'ANSIBLE_STDOUT_CALLBACK': 'json'})
    out = json.loads(p.stdout[p.stdout.index('{'):])
    results = [t['hosts']['host1'] for t in out['plays'][0]['tasks']]
    assert len(results) == len(CASES)
    problems = []
    for (m, args, word), r in zip(CASES, results):
        msg = str(r.get('msg', ''))
        if not r.get('failed'):
            problems.append('%s %r did not fail: %r' % (m, args, r))
        elif word.lower() not in msg.lower():
            problems.append('%s %r: message does not mention %r: %s' % (m, args, word, msg))
        elif r.get('changed'):
            problems.append('%s %r failed but reports changed' % (m, args))
        elif 'Traceback' in msg or 'MODULE FAILURE' in msg:
            problems.append('%s %r crashed: %s' % (m, args, msg[:300]))
    after = badhost.sh('host1', SNAP, check=False).stdout
    assert before == after, 'the host changed:\n--- before\n%s\n--- after\n%s' % (before, after)
    assert not problems, '\n'.join(problems)


# The container module run by hand (no Ansible: arguments on stdin) inside a user
# namespace that maps only uid/gid 0. Root in it may make the cgroup and the
# container's processes, but the kernel refuses the default uid map (0 -> 100000,
# 65536 ids): 100000 does not exist in the parent user namespace. Validation cannot
# know that; write_id_maps() gets EPERM from the kernel.
USERNS_MODULE = ('echo %s | env PYTHONPATH=%s unshare --user --map-root-user -- '
                 '%s -m ansible_collections.nodocker.lab.plugins.modules.container')


def test_uid_map_refused_by_the_kernel_leaves_nothing(badhost):
    args = {'ANSIBLE_MODULE_ARGS': {'name': 'relbad', 'rootfs': OK_ROOT, 'userns': True,
                                    'command': ['busybox', 'sleep', '60']}}
    cmd = USERNS_MODULE % (shlex.quote(json.dumps(args)),
                           shlex.quote(os.path.join(ROOT, 'collections')), PYTHON)
    before = badhost.sh('host1', SNAP, check=False).stdout
    p = badhost.sh('host1', cmd, check=False)
    out = json.loads(p.stdout[p.stdout.index('{'):])
    after = badhost.sh('host1', SNAP, check=False).stdout
    assert out.get('failed') and not out.get('changed'), out
    assert 'cannot grant uid/gid map' in out['msg'], out
    assert 'Traceback' not in out['msg'], out
    assert before == after, 'the host changed:\n--- before\n%s\n--- after\n%s' % (before, after)
