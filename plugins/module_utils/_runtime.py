# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container runtime: definitions, state, start/stop/remove, exec, info.

Python API (for modules and for chapter 10 / build-container.yml):

``build_definition(params) -> dict``
    Validate the ``container`` module's options (raises ``ValueError``): name,
    rootfs or lowerdirs, command, env, cwd, user, hostname, netns, userns +
    uid_map/gid_map, cgroupns, init, capabilities, limits (cpu_quota,
    cpu_period, memory, swappiness, pids_max). The result is JSON-able and
    its ``definition_hash`` decides "same definition -> unchanged".
``container_status(name) -> dict``
    ``state`` is ``running`` (PID 1 alive and its start time unchanged),
    ``exited`` (with ``exit_code``), ``created`` or ``absent``.
``start_container(defn) -> dict``
    Start it detached; raises ``RuntimeError`` after removing everything
    it made (cgroup, process, state) when anything fails.
``stop_container(name, timeout=10)``, ``remove_container(name)``
``exec_in_container(name, command, env=None, cwd=None, user=None, timeout=None)``
    -> ``{'rc', 'stdout', 'stderr'}``; ``RuntimeError`` when the container is
    not running or the command does not exist in it.
``container_info(name) -> dict`` (state, pid, definition, cgroup limits and
    usage, addresses of its network namespace when ``ip`` is available).

Files: ``/var/lib/nodocker-lab/containers/NAME/`` holds ``state.json`` (the
definition), ``upper/`` and ``work/`` (overlay), ``rootfs/`` (mount point,
mounted only inside the container's own mount namespace), ``container.log``
(stdout+stderr), ``start.json`` (the start configuration: root, cgroup
files, ...) and ``exit.json`` (written by the monitor when PID 1 ends).
``/run/nodocker-lab/containers/NAME.json`` holds the PIDs and their start
times while it runs (gone after a reboot, so a stale entry is recognised).
Start and exec fork this process (``_runtime_start.spawn`` /
``exec_command``): no new interpreter is started on the way to the workload.
The module starts the monitor as a fresh minimal interpreter instead
(``start_container(fresh_interpreter=True)``, ``_runtime_start.py`` written
to ``/run/nodocker-lab/runtime/``): the module process is big and exits, and
a forked init would keep a private copy of its heap for the container's life.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

from ansible_collections.nodocker.lab.plugins.module_utils import _runtime_start
from ansible_collections.nodocker.lab.plugins.module_utils._cgroups import (
    CgroupError, CgroupSpec, LIMIT_KEYS, cgroup_exists, cgroup_paths,
    ensure_cgroup, read_limits, read_usage, remove_cgroup, _unique_dirs)
from ansible_collections.nodocker.lab.plugins.module_utils._procs import proc_start_time
from ansible_collections.nodocker.lab.plugins.module_utils._validate import check_netns_name

STATE_ROOT = '/var/lib/nodocker-lab/containers'
RUN_ROOT = '/run/nodocker-lab/containers'
HELPER_DIR = '/run/nodocker-lab/runtime'
NETNS_DIR = '/run/netns'
HOSTNAME_MAX = 64
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
CAP_NAMES = ['chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill',
             'setgid', 'setuid', 'setpcap', 'linux_immutable', 'net_bind_service',
             'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner',
             'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct',
             'sys_admin', 'sys_boot', 'sys_nice', 'sys_resource', 'sys_time',
             'sys_tty_config', 'mknod', 'lease', 'audit_write', 'audit_control',
             'setfcap', 'mac_override', 'mac_admin', 'syslog', 'wake_alarm',
             'block_suspend', 'audit_read', 'perfmon', 'bpf', 'checkpoint_restore']
# Docker's default bounding set
DEFAULT_CAPS = ['chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid',
                'setpcap', 'net_bind_service', 'net_raw', 'sys_chroot', 'mknod',
                'audit_write', 'setfcap']
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$')
_HOSTNAME_RE = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$')
ID_MAX = 2 ** 32 - 1


# ------------------------------------------------------------ definitions

def check_container_name(name):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError('container name %r is invalid: 1-63 letters, digits, . _ - '
                         '(starting with a letter or digit)' % (name,))
    return name


def check_hostname(hostname):
    if len(hostname.encode()) > HOSTNAME_MAX:
        raise ValueError('hostname %r is %d characters long; Linux allows at most %d'
                         % (hostname, len(hostname), HOSTNAME_MAX))
    if not _HOSTNAME_RE.match(hostname):
        raise ValueError('hostname %r is invalid: letters, digits, "." and "-"' % hostname)
    return hostname


def parse_id_map(entries, what):
    """[{container_id, host_id, size}] -> 'C H S\\n...' after range checks."""
    lines, ranges = [], []
    for e in entries:
        try:
            c, h, s = int(e['container_id']), int(e['host_id']), int(e.get('size', 1))
        except (KeyError, TypeError, ValueError):
            raise ValueError('%s entry %r needs integer container_id, host_id and size'
                             % (what, e))
        if c < 0 or h < 0 or s < 1 or c + s > ID_MAX or h + s > ID_MAX:
            raise ValueError('%s entry %r is out of range: ids are 0..%d' % (what, e, ID_MAX - 1))
        for (c2, h2, s2) in ranges:
            if c < c2 + s2 and c2 < c + s or h < h2 + s2 and h2 < h + s:
                raise ValueError('%s entries %r and %r overlap; the kernel refuses that'
                                 % (what, e, dict(container_id=c2, host_id=h2, size=s2)))
        ranges.append((c, h, s))
        lines.append('%d %d %d' % (c, h, s))
    if len(lines) > 340:
        raise ValueError('%s has %d entries; the kernel allows at most 340' % (what, len(lines)))
    return '\n'.join(lines) + '\n'


def _read_layer_passwd(d):
    """The text of ``etc/passwd`` in one root directory or layer, read on the host
    without following a symlink: layers come from images, and an image's
    ``etc -> /etc`` or ``etc/passwd -> /proc/kcore`` means something only inside
    the container. Returns None when this layer has no etc/passwd, '' when it
    hides one from the layers below (a whiteout, or an opaque etc)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
    try:
        etc = os.open(os.path.join(d, 'etc'), flags | os.O_DIRECTORY)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            if os.path.lexists(os.path.join(d, 'etc')) and not os.path.islink(os.path.join(d, 'etc')):
                return ''  # a whiteout (or a file) hides every lower etc
            raise ValueError('%s/etc is a symlink: the user name cannot be looked up from the '
                             'host; give uid[:gid]' % d)
        raise
    try:
        try:
            st = os.stat('passwd', dir_fd=etc, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            try:
                opaque = os.getxattr(etc, 'trusted.overlay.opaque') == b'y'
            except OSError:
                opaque = False
            return '' if opaque else None
        if stat.S_ISLNK(st.st_mode):
            raise ValueError('%s/etc/passwd is a symlink: the user name cannot be looked up '
                             'from the host; give uid[:gid]' % d)
        if stat.S_ISCHR(st.st_mode):
            return ''  # an overlayfs whiteout: deleted in this layer
        if not stat.S_ISREG(st.st_mode):
            raise ValueError('%s/etc/passwd is not a regular file' % d)
        fd = os.open('passwd', flags, dir_fd=etc)  # O_NOFOLLOW: still not a symlink
        try:
            return os.read(fd, 1 << 20).decode('utf-8', 'replace')
        finally:
            os.close(fd)
    finally:
        os.close(etc)


def _passwd_lookup(rootdirs, user):
    """'name' -> (uid, gid) from the container's /etc/passwd (the topmost layer
    that has one, as the overlay shows it)."""
    for d in rootdirs:
        text = _read_layer_passwd(d)
        if text is None:
            continue
        for line in text.splitlines():
            parts = line.strip().split(':')
            if len(parts) >= 4 and parts[0] == user and parts[2].isdigit() and parts[3].isdigit():
                return int(parts[2]), int(parts[3])
        break
    if user == 'root':
        return 0, 0
    raise ValueError('user %r is not in the container\'s /etc/passwd; give uid[:gid]' % user)


def parse_user(user, rootdirs):
    if user is None or user == '':
        return 0, 0
    text = str(user)
    name, _sep, group = text.partition(':')
    if name.isdigit():
        uid, gid = int(name), int(name)
    else:
        uid, gid = _passwd_lookup(rootdirs, name)
    if group:
        if not group.isdigit():
            raise ValueError('group in user %r must be a number (gid)' % text)
        gid = int(group)
    return uid, gid


def image_layers_and_config(name, store_root):
    """An image of the local store -> (its layer directories, top first; the
    ``config`` part of its image configuration: Entrypoint, Cmd, Env, ...)."""
    # only containers started from an image pay for the image store's imports
    from ansible_collections.nodocker.lab.plugins.module_utils._image import (
        DEFAULT_STORE, Store, layer_paths, normalized_name)
    store = Store(store_root or DEFAULT_STORE)
    ref = store.read_ref(name)
    if ref is None:
        want = normalized_name(name)
        ref = next((r for r in store.all_refs()
                    if r.get('name') and normalized_name(r['name']) == want), None)
    if ref is None:
        raise ValueError('image %r is not in the image store %s: import or pull it first '
                         'with nodocker.lab.image' % (name, store.root))
    layers = layer_paths(store, ref.get('diff_ids') or [])
    gone = [d for d in layers if not os.path.isdir(d)]
    if gone or not layers:
        raise ValueError('image %r in %s lacks layer directories %s: import it again'
                         % (name, store.root, ', '.join(gone) or '(none listed)'))
    try:
        with open(store.config_path(ref['config_digest'])) as f:
            config = json.load(f)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError('image %r in %s: its configuration cannot be read (%s)'
                         % (name, store.root, e))
    config = config.get('config') if isinstance(config, dict) else None
    config = config if isinstance(config, dict) else {}
    # the image is untrusted input: only the shapes docker run uses
    for key in ('Entrypoint', 'Cmd', 'Env'):
        value = config.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value)):
            raise ValueError('image %r: its configuration\'s %s is not a list of strings'
                             % (name, key))
    for key in ('WorkingDir', 'User'):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise ValueError('image %r: its configuration\'s %s is not a string' % (name, key))
    return layers, config


def build_definition(p):
    """Module params -> a validated, JSON-able definition (raises ValueError)."""
    name = check_container_name(p['name'])
    rootfs, lowerdirs = p.get('rootfs'), p.get('lowerdirs') or []
    image, image_config = p.get('image'), {}
    if sum(1 for given in (rootfs, lowerdirs, image) if given) != 1:
        raise ValueError('give exactly one of rootfs (a directory), lowerdirs '
                         '(overlay layers, top first) or image (from the image store)')
    if image:
        lowerdirs, image_config = image_layers_and_config(image, p.get('image_store'))
    rootdirs = [rootfs] if rootfs else list(lowerdirs)
    for d in rootdirs:
        if not os.path.isabs(d):
            raise ValueError('root filesystem %r must be an absolute path' % d)
        if not os.path.isdir(d):
            raise ValueError('root filesystem %r does not exist (or is not a directory)' % d)
    # as docker run: the command replaces the image's Cmd, the entrypoint its
    # Entrypoint (an empty entrypoint drops it)
    entrypoint = p.get('entrypoint')
    if entrypoint is None:
        entrypoint = image_config.get('Entrypoint') or []
    command = (list(entrypoint) + list(p.get('command') or image_config.get('Cmd') or [])
               or ['/bin/sh'])
    if isinstance(command, str):
        command = shlex.split(command)
    env = {'PATH': DEFAULT_PATH, 'HOME': '/', 'TERM': 'xterm'}
    # the image's Env first, the task's env over it (docker run -e does the same)
    image_env = dict(e.split('=', 1) for e in image_config.get('Env') or [] if '=' in e)
    for k, v in list(image_env.items()) + list((p.get('env') or {}).items()):
        if not k or '=' in k:
            raise ValueError('environment variable name %r is invalid' % k)
        env[str(k)] = str(v)
    # a name may hold '_', a hostname may not: the default swaps them for '-'
    hostname = check_hostname(p.get('hostname') or name.replace('_', '-'))
    env.setdefault('HOSTNAME', hostname)
    netns = p.get('netns')
    if netns:
        check_netns_name(netns, 'netns')
    uid, gid = parse_user(p.get('user') or image_config.get('User') or None, rootdirs)
    userns = bool(p.get('userns'))
    uid_map = gid_map = None
    if userns:
        uid_map = parse_id_map(p.get('uid_map') or [dict(container_id=0, host_id=100000,
                                                         size=65536)], 'uid_map')
        gid_map = parse_id_map(p.get('gid_map') or [dict(container_id=0, host_id=100000,
                                                         size=65536)], 'gid_map')
    elif p.get('uid_map') or p.get('gid_map'):
        raise ValueError('uid_map/gid_map need userns: true')
    caps = p.get('capabilities')
    caps = DEFAULT_CAPS if caps is None else [c.lower().replace('cap_', '', 1) for c in caps]
    for c in caps:
        if c not in CAP_NAMES:
            raise ValueError('unknown capability %r (known: %s)' % (c, ', '.join(CAP_NAMES)))
    limits = dict((k, p.get(k)) for k in LIMIT_KEYS if p.get(k) is not None)
    spec = CgroupSpec(name, parent=p.get('cgroup_parent'), **limits)  # validates limits
    defn = {
        'name': name, 'rootfs': rootfs, 'lowerdirs': list(lowerdirs),
        'command': [str(c) for c in command], 'env': env,
        'cwd': p.get('cwd') or image_config.get('WorkingDir') or '/',
        'uid': uid, 'gid': gid, 'hostname': hostname, 'netns': netns or None,
        'userns': userns, 'uid_map': uid_map, 'gid_map': gid_map,
        'cgroupns': bool(p.get('cgroupns')), 'init': p.get('init', True) is not False,
        'capabilities': sorted(set(caps)), 'cgroup_parent': spec.parent,
        'limits': spec.limits,
    }
    if image:
        # only then: definitions of containers made without an image stay as they were
        defn['image'] = image
    return defn


def definition_hash(defn):
    return hashlib.sha256(json.dumps(defn, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------ state

def state_dir(name):
    return os.path.join(STATE_ROOT, name)


def run_file(name):
    return os.path.join(RUN_ROOT, name + '.json')


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (IOError, OSError, ValueError):
        return None


def _save(path, data):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d, 0o700)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.rename(tmp, path)


def _alive(pid, start_time):
    return pid and start_time is not None and proc_start_time(pid) == start_time


def container_status(name):
    st = _load(os.path.join(state_dir(name), 'state.json'))
    if st is None:
        return {'name': name, 'state': 'absent'}
    out = {'name': name, 'state': 'created', 'definition': st['definition'],
           'hash': st['hash'], 'log_path': os.path.join(state_dir(name), 'container.log')}
    run = _load(run_file(name))
    if run and _alive(run['pid'], run['pid_start']):
        out.update(state='running', pid=run['pid'], started_at=run.get('started_at'))
        return out
    ex = _load(os.path.join(state_dir(name), 'exit.json'))
    if ex is not None or run:
        out['state'] = 'exited'
        out['exit_code'] = ex.get('exit_code') if ex else None
    return out


def list_containers():
    try:
        return sorted(n for n in os.listdir(STATE_ROOT)
                      if os.path.isfile(os.path.join(STATE_ROOT, n, 'state.json')))
    except OSError:
        return []


# ------------------------------------------------------------ start / stop

_INTERPRETER = []


def real_interpreter():
    """The interpreter binary itself, never a pyenv-style shim (the module's
    monitor is started with it)."""
    if not _INTERPRETER:
        _INTERPRETER.append(os.path.realpath(sys.executable))
    return _INTERPRETER[0]


def helper_script():
    """Write _runtime_start.py's source to /run once; return its path.

    A module process runs from a zip that is gone after the task: the monitor
    started as a fresh interpreter needs a file of its own.
    """
    import inspect  # only the module's path needs it
    src = inspect.getsource(_runtime_start)
    path = os.path.join(HELPER_DIR, 'start-%s.py'
                        % hashlib.sha256(src.encode()).hexdigest()[:12])
    if not os.path.exists(path):
        if not os.path.isdir(HELPER_DIR):
            os.makedirs(HELPER_DIR, 0o700)
        fd, tmp = tempfile.mkstemp(dir=HELPER_DIR)
        with os.fdopen(fd, 'w') as f:
            f.write(src)
        os.rename(tmp, path)
    return path


def netns_file(netns):
    return netns if netns.startswith('/') else os.path.join(NETNS_DIR, netns)


def equivalent_command(defn):
    """The course's way of doing the same, for `commands`."""
    args = ['unshare', '--mount', '--uts', '--ipc', '--pid', '--fork']
    if not defn['netns']:
        args.append('--net')
    if defn['userns']:
        args += ['--user', '--map-users=' + defn['uid_map'].split('\n')[0].replace(' ', ',')]
    if defn['cgroupns']:
        args.append('--cgroup')
    pre = ['nsenter', '--net=' + netns_file(defn['netns'])] if defn['netns'] else []
    root = defn['rootfs'] or os.path.join(state_dir(defn['name']), 'rootfs')
    return ' '.join(shlex.quote(a) for a in pre + args + [
        '--root=' + root, '--mount-proc', '--', 'sh', '-c',
        'hostname %s; exec %s' % (defn['hostname'], ' '.join(defn['command']))])


def _cgroup_spec(defn):
    return CgroupSpec(defn['name'], parent=defn['cgroup_parent'], **defn['limits'])


def check_startable(defn):
    if defn['netns'] and not os.path.exists(netns_file(defn['netns'])):
        raise RuntimeError('network namespace %r does not exist (%s); create it first '
                           'with nodocker.lab.netns' % (defn['netns'], netns_file(defn['netns'])))
    for d in ([defn['rootfs']] if defn['rootfs'] else defn['lowerdirs']):
        if not os.path.isdir(d):
            raise RuntimeError('root filesystem %r does not exist' % d)


def start_container(defn, cgroup_commands=None, fresh_interpreter=False):
    """Start detached. On any failure, remove what this call made and raise.

    The container's monitor and PID 1 are forks of this process (no
    interpreter start on the way to the workload). fresh_interpreter=True
    starts the monitor as a minimal ``python -I -S`` instead (about one
    interpreter start-up slower): for a caller that is big and about to exit
    -- the module -- whose memory the container's init would otherwise keep.
    """
    name = defn['name']
    check_startable(defn)
    sdir = state_dir(name)
    made_state = not os.path.isdir(sdir)
    p1 = monitor = None
    try:
        for sub in ('upper', 'work', 'rootfs') if defn['lowerdirs'] else ():
            os.makedirs(os.path.join(sdir, sub), exist_ok=True)
        os.makedirs(sdir, exist_ok=True)
        cg = ensure_cgroup(_cgroup_spec(defn))
        if cgroup_commands is not None:
            cgroup_commands.extend(cg['commands'])
        paths = cgroup_paths(name, defn['cgroup_parent'])
        exit_file = os.path.join(sdir, 'exit.json')
        if os.path.exists(exit_file):
            os.unlink(exit_file)
        cfg = dict(defn)
        cfg.update(
            root=defn['rootfs'] or os.path.join(sdir, 'rootfs'),
            lowerdirs=defn['lowerdirs'],
            upperdir=os.path.join(sdir, 'upper'), workdir=os.path.join(sdir, 'work'),
            netns=netns_file(defn['netns']) if defn['netns'] else None,
            caps_keep=[CAP_NAMES.index(c) for c in defn['capabilities']],
            cgroup_procs=[os.path.join(d, 'cgroup.procs') for d in _unique_dirs(paths)],
            exit_file=exit_file, groups=[], python=real_interpreter())
        # start.json: the course's `enter` script reads cgroup_procs from it
        _save(os.path.join(sdir, 'start.json'), cfg)
        _save(os.path.join(sdir, 'state.json'),
              {'definition': defn, 'hash': definition_hash(defn), 'created_at': time.time()})
        res = _runtime_start.spawn(cfg, os.path.join(sdir, 'container.log'),
                                   helper=helper_script() if fresh_interpreter else None)
        if res['monitor']:
            monitor = (res['monitor'], proc_start_time(res['monitor']))
        p1 = res['pid']
        if res['errors'] or not p1:
            raise RuntimeError('container %s failed to start: %s'
                               % (name, '; '.join(res['errors']) or 'no PID reported'))
        mon_pid, mon_start = monitor or (None, None)
        run = {'pid': p1, 'pid_start': proc_start_time(p1), 'monitor_pid': mon_pid,
               'monitor_start': mon_start, 'started_at': time.time()}
        # a workload that already ended (e.g. `echo hi`) started fine: state exited
        _save(run_file(name), run)
        return container_status(name)
    except (RuntimeError, CgroupError, OSError, ValueError) as e:
        _undo_start(name, defn, p1, monitor, made_state)
        if isinstance(e, RuntimeError):
            raise
        raise RuntimeError('container %s failed to start: %s' % (name, e))


def _undo_start(name, defn, p1, monitor, made_state):
    """Nothing half-made: kill what started, drop the cgroup and new state."""
    if p1:
        try:
            os.kill(p1, signal.SIGKILL)
        except OSError:
            pass
    try:
        remove_cgroup(name, kill=True, parent=defn['cgroup_parent'])
    except CgroupError:
        pass
    if monitor is not None:
        # remove_cgroup killed it (it is in the cgroup) unless it failed before
        _wait_pid_gone(monitor[0], monitor[1], time.time() + 5)
        if _alive(*monitor):
            os.kill(monitor[0], signal.SIGKILL)
        _runtime_start.reap_monitors()
    if os.path.exists(run_file(name)):
        os.unlink(run_file(name))
    if made_state:
        shutil.rmtree(state_dir(name), ignore_errors=True)
        tidy_runtime_dirs()


def _wait_pid_gone(pid, start_time, deadline):
    """Until pid (with that start time) has ended, or deadline."""
    if not _alive(pid, start_time):
        return
    poller = select.poll()
    try:
        fd = os.pidfd_open(pid)  # readable when the process ends: no polling
        poller.register(fd, select.POLLIN)
    except (AttributeError, OSError):
        fd = None
    try:
        while _alive(pid, start_time):
            left = deadline - time.time()
            if left <= 0:
                return
            if fd is not None:
                poller.poll(min(left, 0.5) * 1000)
            else:
                time.sleep(min(left, 0.02))
    finally:
        if fd is not None:
            os.close(fd)


def _wait_gone(run, timeout):
    deadline = time.time() + timeout
    for pid_key, start_key in (('pid', 'pid_start'), ('monitor_pid', 'monitor_start')):
        _wait_pid_gone(run.get(pid_key), run.get(start_key), deadline)
    _runtime_start.reap_monitors()  # this process's own, if it started them


def stop_container(name, timeout=10):
    """SIGTERM to PID 1 (the init forwards it), SIGKILL after timeout; drop the cgroup."""
    run = _load(run_file(name)) or {}
    st = _load(os.path.join(state_dir(name), 'state.json'))
    if _alive(run.get('pid'), run.get('pid_start')):
        os.kill(run['pid'], signal.SIGTERM)
        _wait_gone({'pid': run['pid'], 'pid_start': run['pid_start']}, timeout)
        if _alive(run['pid'], run['pid_start']):
            os.kill(run['pid'], signal.SIGKILL)
    _wait_gone(run, 5)  # the monitor records exit.json, then ends
    if st:
        remove_cgroup(name, kill=True, parent=st['definition']['cgroup_parent'])
    if os.path.exists(run_file(name)):
        os.unlink(run_file(name))


def remove_container(name, timeout=10):
    stop_container(name, timeout)
    sdir = state_dir(name)
    rootfs = os.path.join(sdir, 'rootfs')
    if os.path.ismount(rootfs):
        raise RuntimeError('%s is still mounted on the host; refusing to delete it' % rootfs)
    shutil.rmtree(sdir, ignore_errors=True)
    tidy_runtime_dirs()


def tidy_runtime_dirs():
    """After the last container is gone, leave nothing of the runtime behind.

    The cached start helper and the empty state directories would otherwise
    stay on the host after the course's reset (a leak check flags them).
    """
    if list_containers():
        return
    shutil.rmtree(HELPER_DIR, ignore_errors=True)
    for d in (RUN_ROOT, STATE_ROOT):
        try:
            os.rmdir(d)
        except OSError:
            pass  # missing, or not empty (something else lives there)


# ------------------------------------------------------------ exec / info

def exec_in_container(name, command, env=None, cwd=None, user=None, timeout=None):
    status = container_status(name)
    if status['state'] != 'running':
        raise RuntimeError('container %s is not running (state: %s)' % (name, status['state']))
    defn = status['definition']
    if isinstance(command, str):
        command = ['/bin/sh', '-c', command]
    rootdirs = [defn['rootfs']] if defn['rootfs'] else defn['lowerdirs']
    uid, gid = parse_user(user, rootdirs) if user is not None else (defn['uid'], defn['gid'])
    full_env = dict(defn['env'])
    full_env.update(dict((str(k), str(v)) for k, v in (env or {}).items()))
    namespaces = ['ipc', 'uts', 'net', 'pid', 'mnt']
    if defn['cgroupns']:
        namespaces.append('cgroup')
    if defn['userns']:
        namespaces.append('user')
    paths = cgroup_paths(name, defn['cgroup_parent'])
    cfg = {'pid': status['pid'], 'namespaces': namespaces, 'command': [str(c) for c in command],
           'env': full_env, 'cwd': cwd or defn['cwd'], 'uid': uid, 'gid': gid, 'groups': [],
           'caps_keep': [CAP_NAMES.index(c) for c in defn['capabilities']],
           'cgroup_procs': [os.path.join(d, 'cgroup.procs') for d in _unique_dirs(paths)]}
    r = _runtime_start.exec_command(cfg, timeout)
    if r['timed_out']:
        raise RuntimeError('command %s timed out after %ss' % (command, timeout))
    if r['errors']:
        raise RuntimeError('; '.join(r['errors']))
    return {'rc': r['rc'], 'stdout': r['stdout'].decode(errors='replace'),
            'stderr': r['stderr'].decode(errors='replace')}


def container_info(name):
    status = container_status(name)
    if status['state'] == 'absent':
        return status
    defn = status['definition']
    parent = defn['cgroup_parent']
    if cgroup_exists(name, parent):
        status['cgroup'] = {'paths': cgroup_paths(name, parent),
                            'limits': read_limits(name, parent),
                            'usage': read_usage(name, parent)}
    if status['state'] == 'running':
        status['addresses'] = _addresses(status['pid'])
    return status


def _addresses(pid):
    """IPv4/IPv6 addresses seen from the container's network namespace."""
    try:
        out = subprocess.run(['nsenter', '--net=/proc/%d/ns/net' % pid, 'ip', '-j', 'addr'],
                             capture_output=True, timeout=10, check=True).stdout
        links = json.loads(out or b'[]')
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return dict((ln['ifname'], ['%s/%s' % (a['local'], a['prefixlen'])
                                for a in ln.get('addr_info', [])])
                for ln in links if ln.get('ifname') != 'lo')


# ------------------------------------------------------------ the module

def _public(status):
    """What the module returns about a container (no internal hash)."""
    out = dict(status)
    out.pop('hash', None)
    return out


def run_container(module):
    p = module.params
    name = p['name']
    try:
        check_container_name(name)
        defn = build_definition(p) if p['state'] != 'absent' else None
    except ValueError as e:
        module.fail_json(msg=str(e))
    before = container_status(name)
    want_hash = definition_hash(defn) if defn else None
    same = before['state'] != 'absent' and before.get('hash') == want_hash
    commands, cg_commands = [], []
    check = module.check_mode
    try:
        if defn:
            check_startable(defn)
        if p['state'] == 'absent':
            if before['state'] != 'absent':
                commands.append('nodocker-lab rm %s  # kill PID 1, rmdir cgroup, rm -r %s'
                                % (name, state_dir(name)))
                if not check:
                    remove_container(name, p['stop_timeout'])
        elif p['state'] == 'stopped':
            if before['state'] != 'absent' and not same:
                commands.append('nodocker-lab rm %s  # definition changed' % name)
                if not check:
                    remove_container(name, p['stop_timeout'])
            if before['state'] == 'running' and same:
                commands.append('kill -TERM %d' % before['pid'])
                if not check:
                    stop_container(name, p['stop_timeout'])
            elif not same:
                commands.append('mkdir -p %s  # definition recorded, not started'
                                % state_dir(name))
                if not check:
                    os.makedirs(state_dir(name), exist_ok=True)
                    _save(os.path.join(state_dir(name), 'state.json'),
                          {'definition': defn, 'hash': want_hash, 'created_at': time.time()})
        else:  # started
            if before['state'] != 'absent' and not same:
                commands.append('nodocker-lab rm %s  # definition changed: recreate' % name)
                if not check:
                    remove_container(name, p['stop_timeout'])
            if not (same and before['state'] == 'running'):
                if before['state'] in ('exited', 'created') and same and not check:
                    stop_container(name, p['stop_timeout'])  # clear stale run state
                commands.append(equivalent_command(defn))
                if not check:
                    # the module process ends right after: the container must
                    # not keep a copy of it (see start_container)
                    start_container(defn, cg_commands, fresh_interpreter=True)
    except (RuntimeError, CgroupError, OSError) as e:
        module.fail_json(msg=str(e), commands=commands)
    after = container_status(name) if not check else _predicted(before, defn, p['state'])
    result = dict(changed=bool(commands), commands=cg_commands + commands if commands else [],
                  container=_public(after),
                  diff=dict(before=_diffable(before), after=_diffable(after)))
    return result


def _predicted(before, defn, state):
    if state == 'absent':
        return {'name': before['name'], 'state': 'absent'}
    out = {'name': defn['name'], 'definition': defn,
           'state': 'running' if state == 'started' else
           ('exited' if before['state'] == 'running' else before['state'])}
    if out['state'] == 'absent':
        out['state'] = 'created'
    if state == 'started' and before.get('hash') == definition_hash(defn) \
            and before['state'] == 'running':
        out['pid'] = before['pid']
    return out


def _diffable(status):
    return {'state': status['state'], 'definition': status.get('definition')}


def run_container_exec(module):
    p = module.params
    try:
        check_container_name(p['name'])
        if not p['command'] and not p['argv']:
            raise ValueError('give command (a shell string) or argv (a list)')
    except ValueError as e:
        module.fail_json(msg=str(e))
    command = p['argv'] or ['/bin/sh', '-c', p['command']]
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg='exec is not run in check mode',
                         rc=0, stdout='', stderr='', commands=[])
    try:
        r = exec_in_container(p['name'], command, env=p['env'], cwd=p['cwd'],
                              user=p['user'], timeout=p['timeout'])
    except (RuntimeError, ValueError, OSError) as e:
        module.fail_json(msg=str(e), rc=None)
    # like ansible.builtin.command: no trailing newline (`stdout == 'ok'` holds)
    r['stdout'], r['stderr'] = r['stdout'].rstrip('\r\n'), r['stderr'].rstrip('\r\n')
    r.update(changed=True, cmd=command,
             stdout_lines=r['stdout'].splitlines(), stderr_lines=r['stderr'].splitlines(),
             commands=['nsenter --all --target %s %s'
                       % (container_status(p['name']).get('pid', '?'),
                          ' '.join(shlex.quote(c) for c in command))])
    if r['rc'] != 0:
        module.fail_json(msg='command exited with status %d' % r['rc'], **r)
    return r
