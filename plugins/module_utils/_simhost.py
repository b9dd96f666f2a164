# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simulated hosts: several "machines" on one Linux box.

A simulated host is a set of namespaces -- network, mount, UTS, IPC and PID --
kept alive by a tiny init process (PID 1 of its PID namespace) and pinned by
bind-mounting the namespace files under ``PIN_ROOT/<lab>/<host>/``. Inside
its mount namespace the host gets:

* its own ``/run/netns`` (a tmpfs), so two hosts can both have a ``RED``;
* its own ``/run/nodocker-lab``, ``/tmp``, ``/var/lib/nodocker-lab`` and
  ``/var/log/nodocker-lab`` (private directories under ``STATE_ROOT``);
* copy-on-write ``/etc`` and ``/home`` (overlayfs over the real ones), so a
  role that writes ``/etc/passwd`` or ``/etc/sysctl.conf`` changes only the
  simulated host;
* a fresh ``/proc`` (its own PID namespace) and ``/sys`` (its own network
  devices), with the machine's cgroup hierarchies bound back under
  ``/sys/fs/cgroup``.

Hosts are wired by veth pairs to a bridge in a "switch" host (the course's
Vagrant private network, 192.168.104.0/24 by default). Nothing is ever
created in the machine's root network namespace: each veth pair is created
from inside the switch with its peer placed directly into the host.

Destroying a host kills its init -- the kernel then kills every process of
the PID namespace, nested container namespaces included -- and unmounts the
pins; the network and mount namespaces (and every netns, link and mount
made inside them) go away with their last reference.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

from ansible_collections.nodocker.lab.plugins.module_utils._procs import proc_start_time

PIN_ROOT = '/run/nodocker-lab-simhosts'
STATE_ROOT = '/var/lib/nodocker-lab-simhosts'
NAMESPACES = ('net', 'mnt', 'uts', 'ipc', 'pid')
NSENTER_FLAGS = {'net': '--net', 'mnt': '--mount', 'uts': '--uts', 'ipc': '--ipc', 'pid': '--pid'}
SWITCH_BRIDGE = 'sw0'
UNDERLAY_IFNAME = 'eth1'
# Directories every simulated host gets a private copy of.
PRIVATE_DIRS = ('/tmp', '/var/lib/nodocker-lab', '/var/log/nodocker-lab')
# Directories a simulated host sees copy-on-write (overlayfs on the real ones).
OVERLAY_DIRS = ('/etc', '/home', '/root/.ssh')

# PID 1 of a simulated host: reap every orphan, exit on TERM/INT (the kernel
# then kills the rest of the PID namespace). Imports only os and signal.
INIT_CODE = r'''
import os, signal
sigs = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
while True:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    info = signal.sigtimedwait(sigs, 60)
    if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
        os._exit(0)
'''


class SimhostError(Exception):
    pass


# ---------------------------------------------------------------- paths

def pin_dir(lab, host):
    return os.path.join(PIN_ROOT, lab, host)


def state_dir(lab, host):
    return os.path.join(STATE_ROOT, lab, host)


def nsenter_argv(lab, host, namespaces=NAMESPACES):
    """The nsenter prefix that runs a command inside a simulated host."""
    d = pin_dir(lab, host)
    argv = ['nsenter']
    for ns in namespaces:
        argv.append('%s=%s' % (NSENTER_FLAGS[ns], os.path.join(d, ns)))
    argv.append('--wd=/')
    return argv


def cgroup_parent(lab, host):
    """Cgroup parent of the project inside a simulated host."""
    return 'nodocker-lab/simhosts/%s/%s' % (lab, host)


def remove_cgroups(lab, host):
    """Remove the host's cgroups (deepest first) once its processes are gone."""
    rel = cgroup_parent(lab, host)
    base = '/sys/fs/cgroup'
    roots = [base] + [os.path.join(base, d) for d in sorted(os.listdir(base))] \
        if os.path.isdir(base) else []
    for root in roots:
        top = os.path.join(root, rel)
        if not os.path.isdir(top) or os.path.islink(root):
            continue
        for dirpath in sorted((w[0] for w in os.walk(top)), key=len, reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        # and the now empty nodocker-lab/simhosts/<lab> ancestors
        parent = os.path.dirname(top)
        while parent != root and parent.startswith(root + '/'):
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)


def switch_port_name(host):
    """Name of the host's port on the switch bridge (<= 15 characters)."""
    name = 'v' + host
    if len(name) <= 15 and '/' not in name and ' ' not in name:
        return name
    return 'v' + hashlib.sha1(host.encode('utf-8')).hexdigest()[:12]


def underlay_mac(lab, host):
    """A fixed MAC for a host's eth1, derived from the lab and host names.

    A re-created host keeps its MAC, so its peers' ARP entries (and the
    switch's FDB) stay right instead of pointing at a MAC that is gone until
    they age out, as a real machine's NIC would keep its address."""
    digest = hashlib.sha1(('%s/%s' % (lab, host)).encode('utf-8')).digest()
    # 0x02: locally administered, unicast.
    return ':'.join('%02x' % b for b in bytearray(b'\x02' + digest[:5]))


# ---------------------------------------------------------------- mounts

def mountpoints():
    """Mount points of this process's mount namespace (decoded)."""
    points = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            mp = line.split()[4]
            points.append(mp.encode('latin-1').decode('unicode_escape'))
    return points


def _run(argv, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, check=False, **kw)
    if p.returncode != 0:
        raise SimhostError('%s failed (rc=%d): %s' % (
            ' '.join(shlex.quote(a) for a in argv), p.returncode, p.stderr.strip()))
    return p.stdout


def ensure_pin_root():
    """PIN_ROOT must be a private mount, or new mount namespaces would copy
    (and keep alive) every pin made later."""
    os.makedirs(PIN_ROOT, exist_ok=True)
    if PIN_ROOT not in mountpoints():
        _run(['mount', '--bind', PIN_ROOT, PIN_ROOT])
        _run(['mount', '--make-private', PIN_ROOT])


def release_pin_root():
    if os.path.isdir(PIN_ROOT) and not any(os.scandir(PIN_ROOT)):
        if PIN_ROOT in mountpoints():
            _run(['umount', PIN_ROOT])
        os.rmdir(PIN_ROOT)


# ---------------------------------------------------------------- process identity

def load_config(lab, host):
    try:
        with open(os.path.join(state_dir(lab, host), 'simhost.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def init_alive(config):
    return bool(config) and proc_start_time(config['init_pid']) == config['init_start']


def host_exists(lab, host):
    """True when the host's pins exist and its init runs."""
    d = pin_dir(lab, host)
    return all(os.path.exists(os.path.join(d, ns)) for ns in NAMESPACES) \
        and init_alive(load_config(lab, host))


def list_labs():
    try:
        return sorted(os.listdir(STATE_ROOT))
    except OSError:
        return []


def list_hosts(lab):
    try:
        return sorted(h for h in os.listdir(os.path.join(STATE_ROOT, lab))
                      if os.path.exists(os.path.join(STATE_ROOT, lab, h, 'simhost.json')))
    except OSError:
        return []


# ---------------------------------------------------------------- create

def _setup_script(lab, host, hostname):
    """Shell run as PID 1 of the new namespaces before it becomes the init."""
    sd = state_dir(lab, host)
    q = shlex.quote
    lines = [
        'set -e',
        # Drop the pins of every other host from this mount namespace, or this
        # host would keep their namespaces alive after they are destroyed.
        'umount -l %s' % q(PIN_ROOT),
        # Likewise every other namespace pin this mount namespace inherited
        # (the machine's own `ip netns` names, container pins...).
        'findmnt -rn -t nsfs -o TARGET | while read -r t; do umount -l "$t" 2>/dev/null || true; done',
        'if mountpoint -q /run/netns; then umount -l /run/netns; fi',
        'mkdir -p /run/netns /run/nodocker-lab',
        'mount -t tmpfs -o mode=0755 netns /run/netns',
        'mount -t tmpfs -o mode=0755 nodocker-lab /run/nodocker-lab',
    ]
    for d in PRIVATE_DIRS:
        src = os.path.join(sd, 'private', d.strip('/').replace('/', '_'))
        lines += ['mkdir -p %s' % q(d), 'mount --bind %s %s' % (q(src), q(d))]
    for d in OVERLAY_DIRS:
        base = os.path.join(sd, 'cow', d.strip('/').replace('/', '_'))
        lines += [
            'if [ -d %s ]; then mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s; fi'
            % (q(d), q(d), q(base + '/upper'), q(base + '/work'), q(d)),
        ]
    lines += [
        # /sys as seen from this network namespace (so /sys/class/net lists the
        # host's own devices), with the machine's cgroup hierarchies kept.
        'mkdir -p /run/nodocker-lab/.cgroup',
        'mount --rbind /sys/fs/cgroup /run/nodocker-lab/.cgroup',
        'mount -t sysfs sysfs /sys',
        'mount --move /run/nodocker-lab/.cgroup /sys/fs/cgroup',
        'rmdir /run/nodocker-lab/.cgroup 2>/dev/null || true',
        # cgroups are shared with the machine: give this host its own parent
        'echo %s > /run/nodocker-lab/cgroup-parent' % q(cgroup_parent(lab, host)),
        'hostname %s' % q(hostname),
        'ip link set lo up',
        'touch %s' % q(os.path.join(sd, 'ready')),
        'exec %s -S -c %s' % (q(os.path.realpath(sys.executable)), q(INIT_CODE)),
    ]
    return '\n'.join(lines) + '\n'


def _prepare_dirs(lab, host):
    sd = state_dir(lab, host)
    for d in PRIVATE_DIRS:
        p = os.path.join(sd, 'private', d.strip('/').replace('/', '_'))
        os.makedirs(p, exist_ok=True)
        if d == '/tmp':
            os.chmod(p, 0o1777)
    for d in OVERLAY_DIRS:
        base = os.path.join(sd, 'cow', d.strip('/').replace('/', '_'))
        os.makedirs(base + '/upper', exist_ok=True)
        os.makedirs(base + '/work', exist_ok=True)
    pd = pin_dir(lab, host)
    os.makedirs(pd, exist_ok=True)
    for ns in NAMESPACES:
        open(os.path.join(pd, ns), 'a').close()


def _children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def start_host(lab, host, hostname=None, timeout=20):
    """Create the namespaces of one host and start its init. Returns its config."""
    ensure_pin_root()
    _prepare_dirs(lab, host)
    sd = state_dir(lab, host)
    pd = pin_dir(lab, host)
    ready = os.path.join(sd, 'ready')
    if os.path.exists(ready):
        os.unlink(ready)
    argv = ['unshare', '--fork', '--mount-proc', '--propagation', 'private']
    for ns in NAMESPACES:
        argv.append('%s=%s' % (NSENTER_FLAGS[ns], os.path.join(pd, ns)))
    argv += ['--', '/bin/sh', '-c', _setup_script(lab, host, hostname or host)]
    log = open(os.path.join(sd, 'init.log'), 'ab')
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, close_fds=True)
    log.close()
    deadline = time.time() + timeout
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            try:
                with open(os.path.join(sd, 'init.log')) as f:
                    tail = f.read()[-2000:]
            except OSError:
                tail = ''
            _kill(proc.pid)
            unpin_host(lab, host)
            raise SimhostError('simulated host %s/%s did not start: %s' % (lab, host, tail))
        time.sleep(0.01)
    kids = _children(proc.pid)
    if len(kids) != 1:
        raise SimhostError('simulated host %s/%s: cannot find its init process' % (lab, host))
    init_pid = kids[0]
    config = {'lab': lab, 'name': host, 'hostname': hostname or host,
              'init_pid': init_pid, 'init_start': proc_start_time(init_pid),
              'unshare_pid': proc.pid}
    return config


def save_config(lab, host, config):
    path = os.path.join(state_dir(lab, host), 'simhost.json')
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(config, f, indent=1, sort_keys=True)
    os.rename(tmp, path)


# ---------------------------------------------------------------- destroy

def _kill(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except OSError as e:
        if e.errno != errno.ESRCH:
            raise


def unpin_host(lab, host):
    pd = pin_dir(lab, host)
    mps = set(mountpoints())
    for ns in NAMESPACES:
        p = os.path.join(pd, ns)
        if p in mps:
            _run(['umount', p])
        if os.path.exists(p):
            os.unlink(p)
    if os.path.isdir(pd):
        os.rmdir(pd)
    lab_pins = os.path.join(PIN_ROOT, lab)
    if os.path.isdir(lab_pins) and not os.listdir(lab_pins):
        os.rmdir(lab_pins)


def stop_host(lab, host, timeout=10):
    """Kill the host's init (and with it every process inside), drop the pins
    and the host's private directories."""
    config = load_config(lab, host)
    if init_alive(config):
        _kill(config['init_pid'])
        deadline = time.time() + timeout
        while init_alive(config) and time.time() < deadline:
            time.sleep(0.01)
    if config and proc_start_time(config.get('unshare_pid', 0) or 0) is not None:
        # unshare exits once its child (the init) is gone; give it a moment
        deadline = time.time() + timeout
        while proc_start_time(config['unshare_pid']) is not None and time.time() < deadline:
            time.sleep(0.01)
    unpin_host(lab, host)
    remove_cgroups(lab, host)
    sd = state_dir(lab, host)
    if os.path.isdir(sd):
        # never delete through a mount point that is still there
        for mp in mountpoints():
            if mp == sd or mp.startswith(sd + '/'):
                raise SimhostError('refusing to remove %s: %s is still mounted' % (sd, mp))
        shutil.rmtree(sd)
    lab_dir = os.path.join(STATE_ROOT, lab)
    if os.path.isdir(lab_dir) and not os.listdir(lab_dir):
        os.rmdir(lab_dir)
    if os.path.isdir(STATE_ROOT) and not os.listdir(STATE_ROOT):
        os.rmdir(STATE_ROOT)
    if os.path.isdir(PIN_ROOT):
        for lab_name in os.listdir(PIN_ROOT):
            p = os.path.join(PIN_ROOT, lab_name)
            if os.path.isdir(p) and not os.listdir(p):
                os.rmdir(p)
    release_pin_root()


# ---------------------------------------------------------------- underlay

def net_path(lab, host):
    return os.path.join(pin_dir(lab, host), 'net')


def setup_switch(lab, switch):
    """The switch host's bridge (the course's Vagrant private network)."""
    from pyroute2 import IPRoute
    with IPRoute(netns=net_path(lab, switch), flags=0) as ipr:
        if not ipr.link_lookup(ifname=SWITCH_BRIDGE):
            ipr.link('add', ifname=SWITCH_BRIDGE, kind='bridge')
        idx = ipr.link_lookup(ifname=SWITCH_BRIDGE)[0]
        ipr.link('set', index=idx, state='up')


def wire_host(lab, host, switch, address=None, mtu=1500, gateway=None, addresses=()):
    """Connect a host's eth1 to the switch, give it its underlay address,
    optional extra addresses (on lo) and a default route."""
    from pyroute2 import IPRoute
    port = switch_port_name(host)
    host_net = net_path(lab, host)
    with IPRoute(netns=net_path(lab, switch), flags=0) as sw:
        if not sw.link_lookup(ifname=port):
            fd = os.open(host_net, os.O_RDONLY)
            try:
                sw.link('add', ifname=port, kind='veth',
                        peer={'ifname': UNDERLAY_IFNAME, 'net_ns_fd': fd})
            finally:
                os.close(fd)
        pidx = sw.link_lookup(ifname=port)[0]
        bridge = sw.link_lookup(ifname=SWITCH_BRIDGE)[0]
        sw.link('set', index=pidx, master=bridge, mtu=mtu, state='up')
    with IPRoute(netns=host_net, flags=0) as ipr:
        idx = ipr.link_lookup(ifname=UNDERLAY_IFNAME)[0]
        ipr.link('set', index=idx, address=underlay_mac(lab, host), mtu=mtu, state='up')
        if address:
            ip, prefix = address.split('/')
            have = [a.get('IFA_ADDRESS') for a in ipr.get_addr(index=idx)]
            if ip not in have:
                ipr.addr('add', index=idx, address=ip, prefixlen=int(prefix))
        lo = ipr.link_lookup(ifname='lo')[0]
        for extra in addresses or ():
            ip, prefix = extra.split('/')
            have = [a.get('IFA_ADDRESS') for a in ipr.get_addr(index=lo)]
            if ip not in have:
                ipr.addr('add', index=lo, address=ip, prefixlen=int(prefix))
        if gateway:
            ipr.route('replace', dst='0.0.0.0/0', gateway=gateway)


def describe_host(lab, host):
    """What a host looks like now (for before/after)."""
    config = load_config(lab, host)
    if not config or not host_exists(lab, host):
        return None
    keys = ('name', 'hostname', 'kind', 'underlay_address', 'gateway', 'addresses', 'mtu', 'switch')
    return dict((k, config.get(k)) for k in keys)


# ---------------------------------------------------------------- the module's logic

def _want_host(h, switch, mtu):
    return {
        'name': h['name'],
        'hostname': h.get('hostname') or h['name'],
        'kind': 'host',
        'underlay_address': h.get('underlay_address'),
        'gateway': h.get('gateway'),
        'addresses': list(h.get('addresses') or []),
        'mtu': h.get('mtu') or mtu,
        'switch': switch,
    }


def _create_commands(lab, want):
    q = shlex.quote
    pd = pin_dir(lab, want['name'])
    cmds = ['unshare --fork --mount-proc --propagation private %s -- <setup; hostname %s; exec init>'
            % (' '.join('%s=%s/%s' % (NSENTER_FLAGS[ns], pd, ns) for ns in NAMESPACES),
               q(want['hostname']))]
    if want['kind'] == 'switch':
        cmds.append('nsenter --net=%s/net ip link add %s type bridge' % (pd, SWITCH_BRIDGE))
    else:
        sw = pin_dir(lab, want['switch'])
        cmds.append('nsenter --net=%s/net ip link add %s type veth peer name %s netns <%s>'
                    % (sw, switch_port_name(want['name']), UNDERLAY_IFNAME, want['name']))
        if want['underlay_address']:
            cmds.append('nsenter --net=%s/net ip addr add %s dev %s'
                        % (pd, want['underlay_address'], UNDERLAY_IFNAME))
        if want['gateway']:
            cmds.append('nsenter --net=%s/net ip route replace default via %s' % (pd, want['gateway']))
    return cmds


def _destroy_commands(lab, name):
    return ['kill -KILL <init of %s/%s>' % (lab, name),
            'umount %s/{%s}' % (pin_dir(lab, name), ','.join(NAMESPACES))]


def _create(lab, want):
    config = start_host(lab, want['name'], want['hostname'])
    try:
        if want['kind'] == 'switch':
            setup_switch(lab, want['name'])
        else:
            wire_host(lab, want['name'], want['switch'], want['underlay_address'],
                      want['mtu'], want['gateway'], want['addresses'])
    except Exception:
        save_config(lab, want['name'], config)
        stop_host(lab, want['name'])
        raise
    config.update(want)
    save_config(lab, want['name'], config)


def check_host_params(h):
    from ansible_collections.nodocker.lab.plugins.module_utils._validate import (
        parse_interface, parse_ip, check_mtu)
    name = h.get('name')
    if not name or '/' in name or name.startswith('.') or len(name) > 64:
        raise ValueError('simulated host name %r is invalid' % (name,))
    hostname = h.get('hostname') or name
    if len(hostname) > 64:
        raise ValueError('hostname %r is longer than 64 characters' % hostname)
    if h.get('underlay_address'):
        parse_interface(h['underlay_address'], 'underlay_address of %s' % name)
    if h.get('gateway'):
        parse_ip(h['gateway'], 'gateway of %s' % name)
    for a in h.get('addresses') or []:
        parse_interface(a, 'address of %s' % name)
    check_mtu(h.get('mtu'))


def run_simhosts(module):
    p = module.params
    lab, switch, state = p['lab'], p['switch'], p['state']
    try:
        for h in p['hosts'] or []:
            check_host_params(h)
    except ValueError as e:
        module.fail_json(msg=str(e))
    names = [h['name'] for h in p['hosts'] or []]
    if len(set(names)) != len(names):
        module.fail_json(msg='simulated host names must be unique: %s' % names)
    if switch in names:
        module.fail_json(msg='%r is the name of the switch; pick another host name' % switch)

    existing = list_hosts(lab)
    before = {h: describe_host(lab, h) for h in existing}
    commands = []
    try:
        if state == 'present':
            want_switch = {'name': switch, 'hostname': switch, 'kind': 'switch',
                           'underlay_address': None, 'gateway': None, 'addresses': [],
                           'mtu': p['mtu'], 'switch': None}
            wants = [want_switch] + [_want_host(h, switch, p['mtu']) for h in p['hosts'] or []]
            if p['exclusive']:
                for name in existing:
                    if name not in [w['name'] for w in wants]:
                        commands += _destroy_commands(lab, name)
                        if not module.check_mode:
                            stop_host(lab, name)
            for want in wants:
                have = describe_host(lab, want['name'])
                if have == want:
                    continue
                if have is not None or os.path.exists(os.path.join(state_dir(lab, want['name']), 'simhost.json')):
                    commands += _destroy_commands(lab, want['name'])
                    if not module.check_mode:
                        stop_host(lab, want['name'])
                commands += _create_commands(lab, want)
                if not module.check_mode:
                    _create(lab, want)
        else:
            targets = names if names else [h for h in existing if h != switch] + \
                ([switch] if switch in existing else [])
            if not names:
                # the whole lab: hosts first, the switch last
                pass
            for name in targets:
                if name in existing:
                    commands += _destroy_commands(lab, name)
                    if not module.check_mode:
                        stop_host(lab, name)
    except SimhostError as e:
        module.fail_json(msg=str(e), commands=commands)

    after = {h: describe_host(lab, h) for h in list_hosts(lab)}
    return dict(changed=bool(commands), commands=commands, lab=lab,
                hosts=sorted(after), before=before, after=after,
                diff=dict(before=json.dumps(before, indent=1, sort_keys=True) + '\n',
                          after=json.dumps(after, indent=1, sort_keys=True) + '\n'))
