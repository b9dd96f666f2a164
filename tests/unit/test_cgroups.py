# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup logic against fake v1 and v2 trees (plain directories and files)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _cgroups as cg


def _v2_tree(tmp_path, controllers='cpu memory pids'):
    root = tmp_path / 'cg2'
    root.mkdir()
    (root / 'cgroup.controllers').write_text(controllers + '\n')
    (root / 'cgroup.subtree_control').write_text('')
    (root / 'cgroup.procs').write_text('')
    return str(root)


def _fill_v2(d):
    """What the kernel puts into a new v2 cgroup (fake)."""
    for name, value in (('cpu.max', 'max 100000'), ('memory.max', 'max'),
                        ('memory.swap.max', 'max'), ('pids.max', 'max'),
                        ('cgroup.procs', ''), ('cgroup.subtree_control', ''),
                        ('cpu.stat', 'usage_usec 1234\nnr_throttled 2\nthrottled_usec 99'),
                        ('memory.current', '4096'), ('memory.events', 'oom 1\noom_kill 1')):
        with open(os.path.join(d, name), 'w') as f:
            f.write(value)


@pytest.fixture
def fake_mkdir(monkeypatch):
    real = cg._mkdirs

    def mkdirs(path, undo=None):
        real(path, undo)
        _fill_v2(path)
    monkeypatch.setattr(cg, '_mkdirs', mkdirs)


def test_v2_detect_and_paths(tmp_path):
    root = _v2_tree(tmp_path)
    assert cg.cgroup_version(root) == 2
    assert cg.cgroup_paths('RED', root=root) == {'unified': root + '/nodocker-lab/RED'}


def test_v2_create_enables_controllers_and_limits(tmp_path, fake_mkdir):
    root = _v2_tree(tmp_path)
    spec = cg.CgroupSpec('RED', root=root, cpu_quota=40000, cpu_period=100000,
                         memory='200M', swappiness=0, pids_max=64)
    check = cg.ensure_cgroup(spec, check_mode=True)
    assert check['changed'] and not os.path.exists(root + '/nodocker-lab')
    res = cg.ensure_cgroup(spec)
    assert res['commands'] == check['commands']
    assert 'echo +cpu > %s/cgroup.subtree_control' % root in res['commands']
    d = root + '/nodocker-lab/RED'
    assert open(d + '/cpu.max').read() == '40000 100000'
    assert open(d + '/memory.max').read() == str(200 * 1024 * 1024)
    assert open(d + '/memory.swap.max').read() == '0'
    assert open(d + '/pids.max').read() == '64'
    assert res['cgroup']['limits'] == {'cpu_quota': 40000, 'cpu_period': 100000,
                                       'memory': 209715200, 'swappiness': 0, 'pids_max': 64}
    # the fake subtree_control files do not accumulate like the kernel's: emulate it
    for ctl in (root + '/cgroup.subtree_control', root + '/nodocker-lab/cgroup.subtree_control'):
        with open(ctl, 'w') as f:
            f.write('cpu memory pids')
    again = cg.ensure_cgroup(spec)
    assert not again['changed'] and again['commands'] == []


def test_v2_swappiness_other_than_zero_is_an_error(tmp_path):
    root = _v2_tree(tmp_path)
    with pytest.raises(cg.CgroupError, match='no per-cgroup swappiness'):
        cg.ensure_cgroup(cg.CgroupSpec('RED', root=root, swappiness=60))


def test_v2_missing_controller_is_an_error(tmp_path):
    root = _v2_tree(tmp_path, controllers='memory pids')
    with pytest.raises(cg.CgroupError, match='cannot enforce cpu_quota'):
        cg.ensure_cgroup(cg.CgroupSpec('RED', root=root, cpu_quota=40000))


def test_v2_usage(tmp_path, fake_mkdir):
    root = _v2_tree(tmp_path)
    cg.ensure_cgroup(cg.CgroupSpec('RED', root=root))
    u = cg.read_usage('RED', root=root)
    assert u['cpu_usage_usec'] == 1234 and u['oom_kill'] == 1 and u['memory_current'] == 4096


def test_v2_remove_refuses_busy_then_removes(tmp_path, fake_mkdir):
    root = _v2_tree(tmp_path)
    cg.ensure_cgroup(cg.CgroupSpec('RED', root=root))
    d = root + '/nodocker-lab/RED'
    with open(d + '/cgroup.procs', 'w') as f:
        f.write('999999\n')
    with pytest.raises(cg.CgroupError, match='still has processes 999999'):
        cg.remove_cgroup('RED', root=root)
    os.unlink(d + '/cgroup.procs')
    # a fake cgroup directory holds files the kernel would not: empty it first
    for n in os.listdir(d):
        os.unlink(os.path.join(d, n))
    res = cg.remove_cgroup('RED', root=root)
    assert res['changed'] and not os.path.exists(d)


def test_v1_paths_and_writes(tmp_path):
    root = str(tmp_path)
    for c in ('cpu', 'cpuacct', 'memory', 'pids'):
        os.makedirs(os.path.join(root, c))
        open(os.path.join(root, c, 'cgroup.procs'), 'w').close()
    open(os.path.join(root, 'memory', 'memory.swappiness'), 'w').close()
    assert cg.cgroup_version(root) == 1
    paths = cg.cgroup_paths('RED', root=root)
    assert paths['memory'] == root + '/memory/nodocker-lab/RED'
    writes = cg._desired_writes(1, paths, {'cpu_quota': 'max', 'memory': 'max'},
                                {'cpu_quota': 40000, 'memory': 1 << 20})
    assert (paths['cpu'] + '/cpu.cfs_quota_us', -1) in writes
    assert (paths['memory'] + '/memory.limit_in_bytes', -1) in writes


def test_v1_joined_cpu_cpuacct_is_one_directory_and_layout_is_cached(tmp_path, monkeypatch):
    """cpu and cpuacct as symlinks to one cpu,cpuacct mount (as systemd sets it up):
    one directory in _unique_dirs, and no realpath() per call once the layout is known."""
    root = str(tmp_path)
    for c in ('cpu,cpuacct', 'memory', 'pids'):
        os.makedirs(os.path.join(root, c))
        open(os.path.join(root, c, 'cgroup.procs'), 'w').close()
    os.symlink('cpu,cpuacct', os.path.join(root, 'cpu'))
    os.symlink('cpu,cpuacct', os.path.join(root, 'cpuacct'))
    paths = cg.cgroup_paths('RED', root=root)
    assert paths['cpu'] == root + '/cpu/nodocker-lab/RED'
    assert paths['cpuacct'] == root + '/cpu,cpuacct/nodocker-lab/RED'
    assert cg._unique_dirs(paths) == [paths['cpu'], paths['memory'], paths['pids']]
    calls = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, 'realpath', lambda p: calls.append(p) or real(p))
    for dummy in range(3):
        assert len(cg._unique_dirs(cg.cgroup_paths('BLUE', root=root))) == 3
    assert calls == []


@pytest.mark.parametrize('kwargs,match', [
    (dict(memory='lots'), 'not a size'), (dict(memory='100'), 'below 1MiB'),
    (dict(cpu_quota='forty'), 'whole number'), (dict(cpu_period=5), 'too small'),
    (dict(cpu_period=2000000), 'out of range'), (dict(swappiness=101), 'out of range'),
    (dict(pids_max=0), 'too small'), (dict(parent='system.slice'), 'nodocker-lab'),
])
def test_spec_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cg.CgroupSpec('RED', **kwargs)


def test_name_rejects_path():
    with pytest.raises(ValueError):
        cg.CgroupSpec('../etc')


# ---------------------------------------------------------------- a failed create

@pytest.fixture
def cgroupfs(monkeypatch):
    """The fake tree behaves like cgroupfs where the rollback needs it.

    rmdir removes a cgroup with its control files (a plain directory with
    files would refuse), but never one with a child cgroup; a write to
    cgroup.subtree_control adds or removes controllers (``+cpu``/``-cpu``)
    instead of replacing the file; a path in ``refuse`` fails like the kernel
    refusing the value.
    """
    real_rmdir, real_write = os.rmdir, cg.write_file
    refuse = set()
    log = []

    def rmdir(path):
        if any(os.path.isdir(os.path.join(path, n)) for n in os.listdir(path)):
            raise OSError(39, 'Directory not empty', path)
        for n in os.listdir(path):
            os.unlink(os.path.join(path, n))
        real_rmdir(path)

    def write(path, value):
        log.append((path, str(value)))
        if path in refuse:
            raise cg.CgroupError('writing %r to %s failed: Device or resource busy'
                                 % (str(value), path))
        if os.path.basename(path) == 'cgroup.subtree_control':
            if not os.path.isdir(os.path.dirname(path)):
                raise cg.CgroupError('no such cgroup: %s' % path)
            cur = set((cg._read_opt(path) or '').split())
            for tok in str(value).split():
                (cur.add if tok[0] == '+' else cur.discard)(tok[1:])
            with open(path, 'w') as f:
                f.write(' '.join(sorted(cur)))
            return
        real_write(path, value)
    monkeypatch.setattr(cg.os, 'rmdir', rmdir)
    monkeypatch.setattr(cg, 'write_file', write)
    return refuse, log


def _v1_tree(tmp_path):
    root = str(tmp_path / 'cg1')
    for c in ('cpu', 'cpuacct', 'memory', 'pids'):
        os.makedirs(os.path.join(root, c))
        open(os.path.join(root, c, 'cgroup.procs'), 'w').close()
    open(os.path.join(root, 'memory', 'memory.swappiness'), 'w').close()
    return root


def _tree(root):
    """Every directory and file below root with its content (for before/after)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        out[dirpath] = None
        for n in files:
            with open(os.path.join(dirpath, n)) as f:
                out[os.path.join(dirpath, n)] = f.read()
    return out


def test_v1_failed_create_removes_the_parents_it_made(tmp_path, cgroupfs):
    refuse, _log = cgroupfs
    root = _v1_tree(tmp_path)
    before = _tree(root)
    spec = cg.CgroupSpec('RED', root=root, parent='nodocker-lab/deep', memory='64M',
                         cpu_quota=40000, pids_max=16)
    refuse.add(root + '/pids/nodocker-lab/deep/RED/pids.max')
    with pytest.raises(cg.CgroupError, match='pids.max'):
        cg.ensure_cgroup(spec)
    assert _tree(root) == before


def test_v1_failed_create_keeps_parents_it_did_not_make(tmp_path, cgroupfs):
    refuse, _log = cgroupfs
    root = _v1_tree(tmp_path)
    for c in ('cpu', 'memory', 'pids'):
        os.makedirs(os.path.join(root, c, 'nodocker-lab', 'BLUE'))
    before = _tree(root)
    refuse.add(root + '/memory/nodocker-lab/RED/memory.limit_in_bytes')
    with pytest.raises(cg.CgroupError):
        cg.ensure_cgroup(cg.CgroupSpec('RED', root=root, memory='64M'))
    assert _tree(root) == before


def test_v1_failed_change_restores_the_limits_it_wrote(tmp_path, cgroupfs):
    """An existing cgroup: the limits written before the refused one go back."""
    refuse, _log = cgroupfs
    root = _v1_tree(tmp_path)
    spec = cg.CgroupSpec('RED', root=root, cpu_quota=40000, memory='64M', pids_max=16)
    cg.ensure_cgroup(spec)
    with open(root + '/cpu/nodocker-lab/RED/cpu.cfs_period_us', 'w') as f:
        f.write('100000')  # the kernel's file (the fake has only what was written)
    before = _tree(root)
    refuse.add(root + '/memory/nodocker-lab/RED/memory.limit_in_bytes')
    with pytest.raises(cg.CgroupError):
        cg.ensure_cgroup(cg.CgroupSpec('RED', root=root, cpu_quota=20000, cpu_period=50000,
                                       memory='32M', pids_max=8))
    assert _tree(root) == before


@pytest.mark.parametrize('already', ['', 'cpu'])
def test_v2_failed_create_undoes_subtree_control_and_parents(
        tmp_path, fake_mkdir, cgroupfs, already):
    refuse, log = cgroupfs
    root = _v2_tree(tmp_path)
    with open(root + '/cgroup.subtree_control', 'w') as f:
        f.write(already)
    before = _tree(root)
    refuse.add(root + '/nodocker-lab/deep/RED/pids.max')
    spec = cg.CgroupSpec('RED', root=root, parent='nodocker-lab/deep', memory='64M',
                         pids_max=16)
    with pytest.raises(cg.CgroupError, match='pids.max'):
        cg.ensure_cgroup(spec)
    assert _tree(root) == before
    # undone in reverse: the deepest parent's controllers first, the root's last
    undos = [(p, v) for p, v in log if v.startswith('-')]
    assert undos[0][0] == root + '/nodocker-lab/deep/cgroup.subtree_control'
    assert undos[-1][0] == root + '/cgroup.subtree_control'
    assert (root + '/cgroup.subtree_control', '-cpu') not in undos or not already


def test_v2_failed_controller_switch_undoes_the_earlier_ones(tmp_path, fake_mkdir, cgroupfs):
    refuse, _log = cgroupfs
    root = _v2_tree(tmp_path)
    before = _tree(root)
    # the kernel refuses +pids in the project parent (e.g. a threaded subtree)
    os.makedirs(root + '/nodocker-lab')
    refuse.add(root + '/nodocker-lab/cgroup.subtree_control')
    before = _tree(root)
    with pytest.raises(cg.CgroupError):
        cg.ensure_cgroup(cg.CgroupSpec('RED', root=root, pids_max=16))
    assert _tree(root) == before  # +cpu +memory +pids on the root undone, parent kept


def test_v2_swappiness_needs_memory_swap_max(tmp_path, monkeypatch, cgroupfs):
    """No swap accounting (no memory.swap.max): swappiness 0 is refused, nothing left."""
    root = _v2_tree(tmp_path)
    real = cg._mkdirs

    def mkdirs_no_swap(path, undo=None):
        real(path, undo)
        _fill_v2(path)
        os.unlink(os.path.join(path, 'memory.swap.max'))
    monkeypatch.setattr(cg, '_mkdirs', mkdirs_no_swap)
    before = _tree(root)
    spec = cg.CgroupSpec('RED', root=root, memory='64M', swappiness=0)
    with pytest.raises(cg.CgroupError, match='memory.swap.max'):
        cg.ensure_cgroup(spec)
    assert _tree(root) == before
    # once a parent with the memory controller shows the kernel's answer, the
    # refusal comes before anything is made, in check mode too
    os.makedirs(root + '/nodocker-lab')
    with open(root + '/nodocker-lab/cgroup.controllers', 'w') as f:
        f.write('cpu memory pids')
    before = _tree(root)
    for check in (True, False):
        with pytest.raises(cg.CgroupError, match='no memory.swap.max'):
            cg.ensure_cgroup(spec, check_mode=check)
    assert _tree(root) == before
    with open(root + '/nodocker-lab/memory.swap.max', 'w') as f:
        f.write('max')
    assert cg.ensure_cgroup(spec, check_mode=True)['changed']
