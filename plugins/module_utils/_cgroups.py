# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cgroups with limits, on cgroup v1 and v2, detected at run time.

Layout (``root`` defaults to ``/sys/fs/cgroup``, ``parent`` to ``nodocker-lab``):

* v1 (``ROOT/cgroup.controllers`` absent): one directory per controller,
  ``ROOT/{cpu,cpuacct,memory,pids}/PARENT/NAME``. Limits: ``cpu.cfs_quota_us``,
  ``cpu.cfs_period_us``, ``memory.limit_in_bytes``, ``memory.swappiness``,
  ``pids.max``.
* v2 (``ROOT/cgroup.controllers`` present): one directory ``ROOT/PARENT/NAME``.
  Limits: ``cpu.max`` ("QUOTA PERIOD"), ``memory.max``, ``pids.max``; the
  controllers are switched on by writing ``+cpu +memory +pids`` into the
  ``cgroup.subtree_control`` of every ancestor. v2 has no per-cgroup
  swappiness: ``swappiness: 0`` is mapped to ``memory.swap.max = 0`` (the
  cgroup never swaps, which is what the course wants from swappiness 0); any
  other value is an error on v2.

A limit whose controller or file the host does not have is an error
(``CgroupError``), never a silent skip. Values are compared after the
kernel's own normalisation (memory rounded down to whole pages, "unlimited"
shown as a huge number on v1), so a second run is unchanged.

Python API (used by the ``cgroup`` module and the container runtime):

``CgroupSpec.from_params(params)``
    Validate ``name``, ``parent``, ``root``, ``cpu_quota``, ``cpu_period``,
    ``memory``, ``swappiness``, ``pids_max`` (raises ``ValueError``). ``None``
    means "leave as it is"; ``'max'`` means "no limit".
``ensure_cgroup(spec, check_mode=False) -> dict``
    Create the cgroup and set the limits: ``changed``, ``commands``,
    ``diff`` (before/after), ``cgroup`` (facts: version, paths, limits). When
    any step fails, everything the call made is undone in reverse: the cgroup,
    parents it made, controllers it switched on in parents (v2) and limits it
    changed on a cgroup that existed. On v2, ``swappiness: 0`` needs
    ``memory.swap.max`` (swap accounting); without it the call fails.
``remove_cgroup(name, kill=False, check_mode=False, parent=..., root=...) -> dict``
    Remove it. Processes still inside: ``CgroupError`` unless ``kill``.
``add_process(name, pid, parent=..., root=...)``
    Move ``pid`` into the cgroup (every controller on v1).
``cgroup_paths(name, parent=..., root=...) -> dict``
    ``{controller: directory}``; v2 gives ``{'unified': directory}``.
``cgroup_procs(name, ...) -> list``, ``read_limits(name, ...) -> dict``,
``read_usage(name, ...) -> dict``
    ``cpu_usage_usec``, ``memory_current``, ``memory_peak``, ``oom_kill``,
    ``pids_current``, ``nr_throttled``, ``throttled_usec`` (None when the
    host does not count it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import shlex
import signal
import time

from ansible_collections.nodocker.lab.plugins.module_utils._plan import Plan
from ansible_collections.nodocker.lab.plugins.module_utils._sizes import (
    UNLIMITED, parse_limit, parse_size)

DEFAULT_ROOT = '/sys/fs/cgroup'
PROJECT_PARENT = 'nodocker-lab'
# A simulated host shares the machine's cgroup tree; its connection may set
# this so that two hosts' "RED" cgroups do not collide.
PARENT_ENV = 'NODOCKER_LAB_CGROUP_PARENT'
SIMHOST_PARENT_FILE = '/run/nodocker-lab/cgroup-parent'
V1_CONTROLLERS = ('cpu', 'cpuacct', 'memory', 'pids')
V2_CONTROLLERS = ('cpu', 'memory', 'pids')
PAGE_SIZE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096
V1_UNLIMITED_FLOOR = 2 ** 62  # v1 shows "no limit" as 9223372036854771712
LIMIT_KEYS = ('cpu_quota', 'cpu_period', 'memory', 'swappiness', 'pids_max')
# which controller enforces each limit
LIMIT_CONTROLLER = {'cpu_quota': 'cpu', 'cpu_period': 'cpu', 'memory': 'memory',
                    'swappiness': 'memory', 'pids_max': 'pids'}
_NAME_RE = re.compile(r'^[A-Za-z0-9_.@+-]+$')


class CgroupError(Exception):
    """The kernel or the host cannot do what was asked."""


def default_parent():
    env = os.environ.get(PARENT_ENV)
    if env:
        return env
    # A simulated host writes its own parent here (its /run/nodocker-lab is private)
    try:
        with open(SIMHOST_PARENT_FILE) as f:
            return f.read().strip() or PROJECT_PARENT
    except (IOError, OSError):
        return PROJECT_PARENT


def check_name(name, what='cgroup name'):
    if not isinstance(name, str) or not name or name in ('.', '..') \
            or not _NAME_RE.match(name) or len(name) > 200:
        raise ValueError('%s %r is invalid: use letters, digits and . _ - @ +' % (what, name))
    return name


def check_parent(parent):
    parts = (parent or '').strip('/').split('/')
    if parts[0] != PROJECT_PARENT:
        raise ValueError('cgroup parent %r must be %r or below it (the project keeps '
                         'all its cgroups there)' % (parent, PROJECT_PARENT))
    for p in parts:
        check_name(p, 'cgroup parent component')
    return '/'.join(parts)


class CgroupSpec:
    """A validated cgroup definition. Limits set to None are not managed."""

    def __init__(self, name, parent=None, root=DEFAULT_ROOT, **limits):
        self.name = check_name(name)
        self.parent = check_parent(parent or default_parent())
        self.root = root or DEFAULT_ROOT
        unknown = set(limits) - set(LIMIT_KEYS)
        if unknown:
            raise ValueError('unknown cgroup limits: %s' % ', '.join(sorted(unknown)))
        self.limits = normalize_limits(limits)

    @classmethod
    def from_params(cls, params):
        return cls(params['name'], parent=params.get('parent'),
                   root=params.get('root'),
                   **dict((k, params.get(k)) for k in LIMIT_KEYS))


def normalize_limits(limits):
    """Raw user values -> canonical ints/'max'; raises ValueError."""
    out = {}
    v = limits.get('cpu_quota')
    if v is not None:
        v = parse_limit(v, 'cpu_quota (microseconds)', minimum=1000)
        out['cpu_quota'] = v
    v = limits.get('cpu_period')
    if v is not None:
        v = parse_limit(v, 'cpu_period (microseconds)', minimum=1000)
        if v == UNLIMITED or v > 1000000:
            raise ValueError('cpu_period %r is out of range: the kernel accepts '
                             '1000..1000000 microseconds' % (limits.get('cpu_period'),))
        out['cpu_period'] = v
    v = limits.get('memory')
    if v is not None:
        v = parse_size(v, 'memory')
        if v != UNLIMITED:
            if v < 1024 * 1024:
                raise ValueError('memory %r is %d bytes: below 1MiB nothing can run; '
                                 'write e.g. 200M' % (limits.get('memory'), v))
            v = v // PAGE_SIZE * PAGE_SIZE  # the kernel rounds down to pages
        out['memory'] = v
    v = limits.get('swappiness')
    if v is not None:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
            raise ValueError('swappiness %r is out of range: use 0..100' % (v,))
        out['swappiness'] = v
    v = limits.get('pids_max')
    if v is not None:
        out['pids_max'] = parse_limit(v, 'pids_max', minimum=1)
    return out


# ---------------------------------------------------------------- layout

# The layout of a cgroup root (version, controllers, where each v1 controller
# is really mounted) does not change under a running process: looked up once
# per root and process instead of a dozen stat()/realpath() calls per operation.
_LAYOUTS = {}
_MOUNT_REAL = {}  # v1 controller directory (as reached from a root) -> real path


def _layout(root):
    """(version, [(controller, directory)]) of ROOT; directories are unique per mount."""
    lay = _LAYOUTS.get(root)
    if lay is not None:
        return lay
    if os.path.exists(os.path.join(root, 'cgroup.controllers')):
        ctrls = read_file(os.path.join(root, 'cgroup.controllers')).split()
        _MOUNT_REAL[root] = os.path.realpath(root)
        lay = (2, [(c, root) for c in ctrls])
    else:
        found, seen = [], set()
        for c in V1_CONTROLLERS:
            d = os.path.join(root, c)
            if not os.path.exists(os.path.join(d, 'cgroup.procs')):
                continue
            # cpu and cpuacct are often one mount (cpu,cpuacct): one directory
            real = os.path.realpath(d)
            _MOUNT_REAL[d] = _MOUNT_REAL[real] = real
            found.append((c, real if real in seen else d))
            seen.add(real)
        if not found:
            raise CgroupError('no cgroup filesystem found at %s (neither cgroup.controllers '
                              'for v2 nor %s/{cpu,memory,pids} for v1)' % (root, root))
        lay = (1, found)
    _LAYOUTS[root] = lay
    return lay


def cgroup_version(root=DEFAULT_ROOT):
    """2 when ROOT is a cgroup2 mount, 1 when it holds v1 controller mounts."""
    return _layout(root)[0]


def available_controllers(root=DEFAULT_ROOT):
    return [c for c, _d in _layout(root)[1]]


def cgroup_paths(name, parent=None, root=DEFAULT_ROOT):
    """{controller: directory} (v1) or {'unified': directory} (v2)."""
    rel = check_parent(parent or default_parent()) + '/' + check_name(name)
    version, ctrls = _layout(root)
    if version == 2:
        return {'unified': os.path.join(root, rel)}
    return dict((c, os.path.join(d, rel)) for c, d in ctrls)


def _canonical(path):
    """realpath(path) for a directory below a known v1 controller mount."""
    head = path
    while head not in ('/', ''):
        head = os.path.dirname(head)
        real = _MOUNT_REAL.get(head)
        if real is not None:
            return real + path[len(head):]
    return os.path.realpath(path)


def _unique_dirs(paths):
    out, seen = [], set()
    for p in paths.values():
        key = _canonical(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# ---------------------------------------------------------------- files

def read_file(path):
    with open(path) as f:
        return f.read().strip()


def write_file(path, value):
    try:
        with open(path, 'w') as f:
            f.write(str(value))
    except OSError as e:
        raise CgroupError('writing %r to %s failed: %s' % (str(value), path, os.strerror(e.errno)))


def _read_opt(path):
    try:
        return read_file(path)
    except (IOError, OSError):
        return None


def _kv(text):
    out = {}
    for line in (text or '').splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip('-').isdigit():
            out[parts[0]] = int(parts[1])
    return out


def echo_cmd(value, path):
    return 'echo %s > %s' % (shlex.quote(str(value)), shlex.quote(path))


# ---------------------------------------------------------------- reading

def read_limits(name, parent=None, root=DEFAULT_ROOT):
    """Current limits as canonical values; None for a limit not available."""
    paths = cgroup_paths(name, parent, root)
    lim = dict.fromkeys(LIMIT_KEYS)
    if 'unified' in paths:
        d = paths['unified']
        cpu_max = _read_opt(os.path.join(d, 'cpu.max'))
        if cpu_max:
            q, per = cpu_max.split()
            lim['cpu_quota'] = UNLIMITED if q == 'max' else int(q)
            lim['cpu_period'] = int(per)
        mem = _read_opt(os.path.join(d, 'memory.max'))
        if mem:
            lim['memory'] = UNLIMITED if mem == 'max' else int(mem)
        swap = _read_opt(os.path.join(d, 'memory.swap.max'))
        if swap is not None:
            lim['swappiness'] = 0 if swap == '0' else None
        pids = _read_opt(os.path.join(d, 'pids.max'))
        if pids:
            lim['pids_max'] = UNLIMITED if pids == 'max' else int(pids)
        return lim
    if 'cpu' in paths:
        q = _read_opt(os.path.join(paths['cpu'], 'cpu.cfs_quota_us'))
        per = _read_opt(os.path.join(paths['cpu'], 'cpu.cfs_period_us'))
        if q is not None:
            lim['cpu_quota'] = UNLIMITED if int(q) < 0 else int(q)
        if per is not None:
            lim['cpu_period'] = int(per)
    if 'memory' in paths:
        mem = _read_opt(os.path.join(paths['memory'], 'memory.limit_in_bytes'))
        if mem is not None:
            lim['memory'] = UNLIMITED if int(mem) >= V1_UNLIMITED_FLOOR else int(mem)
        sw = _read_opt(os.path.join(paths['memory'], 'memory.swappiness'))
        if sw is not None:
            lim['swappiness'] = int(sw)
    if 'pids' in paths:
        pids = _read_opt(os.path.join(paths['pids'], 'pids.max'))
        if pids is not None:
            lim['pids_max'] = UNLIMITED if pids == 'max' else int(pids)
    return lim


def cgroup_exists(name, parent=None, root=DEFAULT_ROOT):
    return any(os.path.isdir(p) for p in cgroup_paths(name, parent, root).values())


def cgroup_procs(name, parent=None, root=DEFAULT_ROOT):
    """PIDs in the cgroup and all its descendants (sorted, unique)."""
    pids = set()
    for d in _unique_dirs(cgroup_paths(name, parent, root)):
        for dirpath, _dirs, files in os.walk(d):
            if 'cgroup.procs' in files:
                text = _read_opt(os.path.join(dirpath, 'cgroup.procs')) or ''
                pids.update(int(x) for x in text.split())
    return sorted(pids)


def read_usage(name, parent=None, root=DEFAULT_ROOT):
    """What the cgroup has used, from the kernel's own accounting."""
    paths = cgroup_paths(name, parent, root)
    u = dict(cpu_usage_usec=None, memory_current=None, memory_peak=None,
             oom_kill=None, pids_current=None, nr_throttled=None, throttled_usec=None)
    if 'unified' in paths:
        d = paths['unified']
        stat = _kv(_read_opt(os.path.join(d, 'cpu.stat')))
        u['cpu_usage_usec'] = stat.get('usage_usec')
        u['nr_throttled'] = stat.get('nr_throttled')
        u['throttled_usec'] = stat.get('throttled_usec')
        for key, fname in (('memory_current', 'memory.current'),
                           ('memory_peak', 'memory.peak'), ('pids_current', 'pids.current')):
            v = _read_opt(os.path.join(d, fname))
            u[key] = int(v) if v and v.isdigit() else None
        u['oom_kill'] = _kv(_read_opt(os.path.join(d, 'memory.events'))).get('oom_kill')
        return u
    if 'cpuacct' in paths:
        v = _read_opt(os.path.join(paths['cpuacct'], 'cpuacct.usage'))
        u['cpu_usage_usec'] = int(v) // 1000 if v else None
    if 'cpu' in paths:
        stat = _kv(_read_opt(os.path.join(paths['cpu'], 'cpu.stat')))
        u['nr_throttled'] = stat.get('nr_throttled')
        if 'throttled_time' in stat:
            u['throttled_usec'] = stat['throttled_time'] // 1000
    if 'memory' in paths:
        d = paths['memory']
        for key, fname in (('memory_current', 'memory.usage_in_bytes'),
                           ('memory_peak', 'memory.max_usage_in_bytes')):
            v = _read_opt(os.path.join(d, fname))
            u[key] = int(v) if v and v.isdigit() else None
        u['oom_kill'] = _kv(_read_opt(os.path.join(d, 'memory.oom_control'))).get('oom_kill')
    if 'pids' in paths:
        v = _read_opt(os.path.join(paths['pids'], 'pids.current'))
        u['pids_current'] = int(v) if v and v.isdigit() else None
    return u


def cgroup_facts(name, parent=None, root=DEFAULT_ROOT):
    exists = cgroup_exists(name, parent, root)
    return {
        'name': name,
        'parent': check_parent(parent or default_parent()),
        'version': cgroup_version(root),
        'exists': exists,
        'paths': cgroup_paths(name, parent, root),
        'limits': read_limits(name, parent, root) if exists else None,
    }


# ---------------------------------------------------------------- changing

def _required_controllers(limits):
    return sorted(set(LIMIT_CONTROLLER[k] for k in limits))


def check_enforceable(spec):
    """CgroupError when the host lacks a controller or file a limit needs."""
    root = spec.root
    version = cgroup_version(root)
    avail = available_controllers(root)
    for c in _required_controllers(spec.limits):
        if c not in avail:
            raise CgroupError('this host cannot enforce %s: the %s controller is not '
                              'available in %s (cgroup v%d; available: %s)'
                              % (', '.join(k for k in spec.limits if LIMIT_CONTROLLER[k] == c),
                                 c, root, version, ' '.join(avail) or 'none'))
    if version == 2 and 'swappiness' in spec.limits:
        if spec.limits['swappiness'] != 0:
            raise CgroupError('swappiness %d cannot be enforced on cgroup v2: v2 has no '
                              'per-cgroup swappiness; only swappiness 0 is supported '
                              '(mapped to memory.swap.max = 0)' % spec.limits['swappiness'])
        # swappiness 0 is memory.swap.max = 0: only a kernel that accounts swap
        # per cgroup has that file (any non-root cgroup with memory on shows it)
        probe = _v2_swap_dir(spec)
        if probe is not None and not os.path.exists(os.path.join(probe, 'memory.swap.max')):
            raise _no_swap_max(probe)
    if version == 1 and 'swappiness' in spec.limits:
        if not os.path.exists(os.path.join(root, 'memory', 'memory.swappiness')):
            raise CgroupError('this host cannot enforce swappiness: %s/memory has no '
                              'memory.swappiness' % root)


def _desired_writes(version, paths, want, have):
    """[(file, value)] that bring `have` to `want` (only differing limits)."""
    writes = []
    if version == 2:
        d = paths['unified']
        if ('cpu_quota' in want or 'cpu_period' in want):
            q = want.get('cpu_quota', have.get('cpu_quota') or UNLIMITED)
            per = want.get('cpu_period', have.get('cpu_period') or 100000)
            if (q, per) != (have.get('cpu_quota'), have.get('cpu_period')):
                writes.append((os.path.join(d, 'cpu.max'), '%s %d' % (q, per)))
        if 'memory' in want and want['memory'] != have.get('memory'):
            writes.append((os.path.join(d, 'memory.max'), want['memory']))
        if 'swappiness' in want and have.get('swappiness') != 0:
            writes.append((os.path.join(d, 'memory.swap.max'), 0))
        if 'pids_max' in want and want['pids_max'] != have.get('pids_max'):
            writes.append((os.path.join(d, 'pids.max'), want['pids_max']))
        return writes
    if 'cpu_period' in want and want['cpu_period'] != have.get('cpu_period'):
        writes.append((os.path.join(paths['cpu'], 'cpu.cfs_period_us'), want['cpu_period']))
    if 'cpu_quota' in want and want['cpu_quota'] != have.get('cpu_quota'):
        q = -1 if want['cpu_quota'] == UNLIMITED else want['cpu_quota']
        writes.append((os.path.join(paths['cpu'], 'cpu.cfs_quota_us'), q))
    if 'memory' in want and want['memory'] != have.get('memory'):
        m = -1 if want['memory'] == UNLIMITED else want['memory']
        writes.append((os.path.join(paths['memory'], 'memory.limit_in_bytes'), m))
    if 'swappiness' in want and want['swappiness'] != have.get('swappiness'):
        writes.append((os.path.join(paths['memory'], 'memory.swappiness'), want['swappiness']))
    if 'pids_max' in want and want['pids_max'] != have.get('pids_max'):
        writes.append((os.path.join(paths['pids'], 'pids.max'), want['pids_max']))
    return writes


class _Undo:
    """What a create did, undone in reverse when it fails (nothing half-made).

    Each step is recorded only after it succeeded; undoing is best effort (a
    step another process now depends on -- a parent that got a second child,
    a controller a sibling uses -- stays, which is what it should do).
    """

    def __init__(self):
        self.steps = []

    def add(self, fn, *args):
        self.steps.append((fn, args))

    def run(self):
        for fn, args in reversed(self.steps):
            try:
                fn(*args)
            except (OSError, CgroupError):
                pass
        self.steps = []


def _enable_v2_controllers(spec, plan, undo=None):
    """+cpu +memory +pids in cgroup.subtree_control of ROOT and each ancestor.

    Every controller switched on and every directory made is recorded in
    undo (``-cpu`` written back, ``rmdir``)."""
    avail = available_controllers(spec.root)
    wanted = [c for c in V2_CONTROLLERS if c in avail]
    d = spec.root
    for part in spec.parent.split('/') + [None]:
        ctl = os.path.join(d, 'cgroup.subtree_control')
        enabled = (_read_opt(ctl) or '').split() if os.path.isdir(d) else []
        for c in wanted:
            if c not in enabled:
                plan.do(echo_cmd('+' + c, ctl), write_file, ctl, '+' + c)
                if undo is not None and not plan.check_mode:
                    undo.add(write_file, ctl, '-' + c)
        if part is None:
            break
        d = os.path.join(d, part)
        if not os.path.isdir(d):
            plan.do('mkdir %s' % shlex.quote(d), _mkdir_one, d)
            if undo is not None and not plan.check_mode:
                undo.add(os.rmdir, d)


def _mkdir_one(path):
    try:
        os.mkdir(path)
    except OSError as e:
        raise CgroupError('mkdir %s failed: %s' % (path, os.strerror(e.errno)))


def _mkdirs(path, undo=None):
    """mkdir -p path, one level at a time; each directory it made goes into undo.

    (os.makedirs would not say which parents it made: a failed create must
    remove those too.)"""
    missing = []
    p = path
    while p and p != '/' and not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except OSError as e:
            if e.errno == errno.EEXIST:
                continue  # made meanwhile by someone else: not ours to remove
            raise CgroupError('mkdir %s failed: %s' % (d, os.strerror(e.errno)))
        if undo is not None:
            undo.add(os.rmdir, d)


def _write_undoable(path, value, undo):
    """write_file; undo writes the file's old content back (an existing cgroup)."""
    old = _read_opt(path)
    write_file(path, value)
    if old is not None:
        undo.add(write_file, path, old)


def _v2_swap_dir(spec):
    """The deepest existing non-root cgroup on the way to the new one whose
    memory controller is on (its memory.swap.max tells whether this kernel
    accounts swap per cgroup); None when there is none yet."""
    d = spec.root
    found = None
    for part in spec.parent.split('/') + [spec.name]:
        d = os.path.join(d, part)
        if not os.path.isdir(d):
            break
        if 'memory' in (_read_opt(os.path.join(d, 'cgroup.controllers')) or '').split():
            found = d
    return found


def _no_swap_max(d):
    return CgroupError('this host cannot enforce swappiness 0 on cgroup v2: %s has no '
                       'memory.swap.max (the kernel does not account swap per cgroup: '
                       'CONFIG_MEMCG_SWAP off or booted with swapaccount=0)' % d)


def ensure_cgroup(spec, check_mode=False):
    """Create the cgroup and set its limits. See the module docstring.

    A failure leaves nothing this call made: directories (the cgroup and any
    parent), controllers switched on in parents' cgroup.subtree_control and
    limits written to a cgroup that already existed are undone in reverse.
    """
    check_enforceable(spec)
    version = cgroup_version(spec.root)
    paths = cgroup_paths(spec.name, spec.parent, spec.root)
    existed = cgroup_exists(spec.name, spec.parent, spec.root)
    before = read_limits(spec.name, spec.parent, spec.root) if existed else None
    plan = Plan(check_mode)
    undo = _Undo()
    try:
        if version == 2:
            _enable_v2_controllers(spec, plan, undo)
        for d in _unique_dirs(paths):
            if not os.path.isdir(d):
                plan.do('mkdir -p %s' % shlex.quote(d), _mkdirs, d, undo)
        if check_mode and not existed:
            have = dict.fromkeys(LIMIT_KEYS)
            have.update({'cpu_quota': UNLIMITED, 'cpu_period': 100000, 'memory': UNLIMITED,
                         'pids_max': UNLIMITED, 'swappiness': 60 if version == 1 else None})
        else:
            have = read_limits(spec.name, spec.parent, spec.root)
        if version == 2 and 'swappiness' in spec.limits and not check_mode \
                and not os.path.exists(os.path.join(paths['unified'], 'memory.swap.max')):
            raise _no_swap_max(paths['unified'])
        for path, value in _desired_writes(version, paths, spec.limits, have):
            if existed:
                plan.do(echo_cmd(value, path), _write_undoable, path, value, undo)
            else:  # the whole cgroup goes on failure: no need to remember old values
                plan.do(echo_cmd(value, path), write_file, path, value)
    except (CgroupError, OSError):
        undo.run()
        raise
    if check_mode:
        after = dict(have)
        after.update(spec.limits)
    else:
        after = read_limits(spec.name, spec.parent, spec.root)
    facts = {'name': spec.name, 'parent': spec.parent, 'version': version,
             'exists': True, 'paths': paths, 'limits': after}
    return dict(
        changed=bool(plan.commands),
        commands=plan.commands,
        cgroup=facts,
        diff=dict(before={'exists': existed, 'limits': before},
                  after={'exists': True, 'limits': after}),
    )


def add_process(name, pid, parent=None, root=DEFAULT_ROOT):
    """Move pid (and its threads) into the cgroup, in every controller."""
    for d in _unique_dirs(cgroup_paths(name, parent, root)):
        write_file(os.path.join(d, 'cgroup.procs'), int(pid))


def kill_processes(name, parent=None, root=DEFAULT_ROOT, timeout=10.0):
    """SIGKILL everything in the cgroup and wait until it is empty."""
    paths = cgroup_paths(name, parent, root)
    kill_file = os.path.join(paths.get('unified', ''), 'cgroup.kill')
    if 'unified' in paths and os.path.exists(kill_file):
        write_file(kill_file, 1)
    deadline = time.time() + timeout
    while True:
        pids = cgroup_procs(name, parent, root)
        if not pids:
            return
        if time.time() > deadline:
            raise CgroupError('processes %s in cgroup %s did not die within %ss'
                              % (pids, name, timeout))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def _rmdir_tree(d):
    """rmdir d and its child cgroups (made e.g. inside a cgroup namespace), deepest first."""
    for dirpath, dirs, _files in os.walk(d, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise CgroupError('rmdir %s failed: %s' % (dirpath, os.strerror(e.errno)))


def remove_cgroup(name, kill=False, check_mode=False, parent=None, root=DEFAULT_ROOT):
    """Remove the cgroup; fail when it still has processes unless kill."""
    parent = check_parent(parent or default_parent())
    paths = cgroup_paths(name, parent, root)
    existed = cgroup_exists(name, parent, root)
    before = read_limits(name, parent, root) if existed else None
    plan = Plan(check_mode)
    if existed:
        pids = cgroup_procs(name, parent, root)
        if pids and not kill:
            raise CgroupError('cgroup %s still has processes %s: stop them first or '
                              'set kill: true' % (name, ' '.join(map(str, pids))))
        if pids:
            plan.do('kill -9 %s' % ' '.join(map(str, pids)),
                    kill_processes, name, parent, root)
        for d in _unique_dirs(paths):
            if os.path.isdir(d):
                plan.do('rmdir %s' % shlex.quote(d), _rmdir_tree, d)
        if not check_mode:
            _remove_empty_parents(paths, parent)
    return dict(
        changed=bool(plan.commands),
        commands=plan.commands,
        cgroup={'name': name, 'parent': parent, 'version': cgroup_version(root),
                'exists': existed and check_mode, 'paths': paths,
                'limits': before if check_mode else None},
        diff=dict(before={'exists': existed, 'limits': before},
                  after={'exists': False, 'limits': None}),
    )


def _remove_empty_parents(paths, parent):
    """Leave no empty project parent behind (another cgroup in it keeps it)."""
    depth = len(parent.split('/'))
    for d in paths.values():
        p = os.path.dirname(d)
        for dummy in range(depth):
            try:
                os.rmdir(p)
            except OSError:
                break
            p = os.path.dirname(p)
