# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (a): container start to workload exec, `busybox true`, same rootfs.

Run as a worker INSIDE a simulated host (bench/run.py does that):
    python bench/lib_start.py ROUNDS  -> prints one JSON object {variant: [seconds...]}

Each round runs every variant once, in a rotating order (interleaved). Every
variant creates a cgroup with the same limits (cpu 40000/100000, memory 200M,
pids 1024), starts `busybox true` in new mount/UTS/IPC/PID/net namespaces on
the same busybox rootfs, waits for it to end and removes the cgroup:

* nodocker lean start path: ``_cgroups.ensure_cgroup`` +
  ``_runtime_start.spawn(cfg)`` (the container module's own start path, without
  Ansible and without state files: the worker forks the monitor, which forks
  the container's PID 1) until the monitor has recorded the exit and ended +
  ``_cgroups.remove_cgroup``; timed from the worker, which has the collection
  already imported (as the module process has).
* nodocker lean start, monitor as a fresh interpreter: the same with
  ``spawn(cfg, helper=...)``: the monitor is ``python -I -S _runtime_start.py``
  (what the container module does, to keep no copy of its own memory in the
  container's processes).
* nodocker API: ``_runtime.start_container`` until the workload ended +
  ``remove_container`` (state files, definition hash, ...).
* runc run; crun run (in ``unshare -m sh -c 'umount /sys/fs/cgroup/unified;
  crun ...'``: crun 1.8 refuses the hybrid layout) and the cost of that
  wrapper alone; bare ``unshare -fpmuin --mount-proc chroot ROOTFS busybox true``
  (no cgroup).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'collections'))

from ansible_collections.nodocker.lab.plugins.module_utils import (  # noqa: E402
    _cgroups, _runtime, _runtime_start)

LIMITS = dict(cpu_quota='40000', cpu_period=100000, memory='200M', pids_max='1024')
DEVNULL = subprocess.DEVNULL


def rss_kib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def make_rootfs(base):
    root = os.path.join(base, 'rootfs')
    for d in ('bin', 'proc', 'sys', 'dev', 'tmp', 'etc'):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2('/usr/bin/busybox', os.path.join(root, 'bin', 'busybox'))
    for name in ('sh', 'true'):
        os.symlink('busybox', os.path.join(root, 'bin', name))
    return root


def make_bundle(base, runtime, root, cg_path):
    bundle = os.path.join(base, 'bundle-' + runtime)
    os.makedirs(bundle)
    subprocess.run(['runc', 'spec'], cwd=bundle, check=True)
    path = os.path.join(bundle, 'config.json')
    with open(path) as f:
        spec = json.load(f)
    spec['root'] = {'path': root, 'readonly': False}
    spec['process']['terminal'] = False
    spec['process']['args'] = ['busybox', 'true']
    spec['process']['env'] = ['PATH=/bin:/usr/bin:/sbin:/usr/sbin']
    spec['hostname'] = 'bench'
    lin = spec['linux']
    lin['cgroupsPath'] = cg_path
    lin['resources'] = {
        'devices': [{'allow': False, 'access': 'rwm'}],
        'memory': {'limit': 200 * 1024 * 1024},
        'cpu': {'quota': 40000, 'period': 100000},
        'pids': {'limit': 1024},
    }
    with open(path, 'w') as f:
        json.dump(spec, f)
    return bundle


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    base = tempfile.mkdtemp(prefix='ndl-bench-start-')
    parent = _cgroups.default_parent()
    made = []
    try:
        root = make_rootfs(base)
        rstate = os.path.join(base, 'runc-state')
        cstate = os.path.join(base, 'crun-state')
        runc_bundle = make_bundle(base, 'runc', root, '/%s/bench-runc' % parent)
        crun_bundle = make_bundle(base, 'crun', root, '/%s/bench-crun' % parent)
        defn = _runtime.build_definition(dict(
            name='bench-api', rootfs=root, command=['busybox', 'true'], **LIMITS))
        lean = _runtime.build_definition(dict(
            name='bench-lean', rootfs=root, command=['busybox', 'true'], **LIMITS))
        spec = _runtime._cgroup_spec(lean)
        paths = _cgroups.cgroup_paths('bench-lean', lean['cgroup_parent'])
        cfg = dict(lean)
        cfg.update(root=root, lowerdirs=[], upperdir=None, workdir=None, netns=None,
                   caps_keep=[_runtime.CAP_NAMES.index(c) for c in lean['capabilities']],
                   cgroup_procs=[os.path.join(d, 'cgroup.procs')
                                 for d in _cgroups._unique_dirs(paths)],
                   exit_file=os.path.join(base, 'lean-exit.json'), groups=[],
                   python=_runtime.real_interpreter())

        def v_lean():
            _cgroups.ensure_cgroup(spec)
            res = _runtime_start.spawn(cfg)
            if res['monitor']:
                os.waitpid(res['monitor'], 0)  # it records the exit, then ends
            _cgroups.remove_cgroup('bench-lean', kill=True, parent=lean['cgroup_parent'])
            if res['errors'] or not os.path.exists(cfg['exit_file']):
                raise RuntimeError('lean start failed: %r' % res)
            os.unlink(cfg['exit_file'])

        def v_helper():
            _cgroups.ensure_cgroup(spec)
            res = _runtime_start.spawn(cfg, helper=_runtime.helper_script())
            if res['monitor']:
                os.waitpid(res['monitor'], 0)
            _cgroups.remove_cgroup('bench-lean', kill=True, parent=lean['cgroup_parent'])
            if res['errors'] or not os.path.exists(cfg['exit_file']):
                raise RuntimeError('helper start failed: %r' % res)
            os.unlink(cfg['exit_file'])

        exit_json = os.path.join(_runtime.state_dir('bench-api'), 'exit.json')

        def v_api():
            _runtime.start_container(defn)
            while not os.path.exists(exit_json):
                time.sleep(0.0005)
            # remove_container() waits for the monitor to end and reaps it
            _runtime.remove_container('bench-api')

        def v_runc():
            subprocess.run(['runc', '--root', rstate, 'run', '-b', runc_bundle, 'benchrunc'],
                           check=True, stdin=DEVNULL)

        def v_crun():
            subprocess.run(['unshare', '-m', 'sh', '-c',
                            'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root %s '
                            'run -b %s benchcrun' % (cstate, crun_bundle)],
                           check=True, stdin=DEVNULL)

        def v_wrapper():
            subprocess.run(['unshare', '-m', 'sh', '-c',
                            'umount /sys/fs/cgroup/unified 2>/dev/null; exec true'],
                           check=True, stdin=DEVNULL)

        def v_unshare():
            subprocess.run(['unshare', '-fpmuin', '--mount-proc', 'chroot', root,
                            'busybox', 'true'], check=True, stdin=DEVNULL)

        variants = [
            ('nodocker.lab lean start (cgroup + fork of the caller, no new interpreter)', v_lean),  # run.py keys on this name
            ('nodocker.lab lean start, monitor a fresh python -I -S (the module\'s way)',
             v_helper),
            ('nodocker.lab start_container() + remove_container() API', v_api),
            ('runc run', v_runc),
            ('crun run (in unshare -m, unified unmounted)', v_crun),
            ("crun's wrapper alone (unshare -m sh -c 'umount ...; true')", v_wrapper),
            ('bare unshare -fpmuin --mount-proc chroot', v_unshare),
        ]
        times = dict((k, []) for k, dummy in variants)
        for _k, fn in variants:  # warm-up (page cache, helper script written)
            fn()
        for r in range(rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for k, fn in order:
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        print(json.dumps(times))
    finally:
        for args in (['runc', '--root', os.path.join(base, 'runc-state'), 'delete', '-f',
                      'benchrunc'],):
            subprocess.run(args, stdout=DEVNULL, stderr=DEVNULL, check=False)
        for name in ('bench-lean',):
            try:
                _cgroups.remove_cgroup(name, kill=True)
            except Exception:  # noqa: BLE001
                pass
        if _runtime.container_status('bench-api')['state'] != 'absent':
            _runtime.remove_container('bench-api')
        for name in ('bench-runc', 'bench-crun'):
            for d in _cgroups._unique_dirs(_cgroups.cgroup_paths('x', parent)):
                p = os.path.join(os.path.dirname(d), name)
                if os.path.isdir(p):
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass
        shutil.rmtree(base, ignore_errors=True)
        del made


if __name__ == '__main__':
    main()
