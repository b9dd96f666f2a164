# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the lean start path spends its time (run inside a simulated host).

    python bench/lib_profile_start.py ROUNDS -> JSON {step: [seconds...]}

The start path forks the caller (no interpreter start): the steps are the
cgroup work, spawn() until the workload has exec'd (report pipe at
end-of-file), from there until the monitor has recorded the exit, and one
os.fork() of this (collection-importing) process for scale. The module's
way starts the monitor as `python -I -S _runtime_start.py` instead: that
interpreter's start-up (imports included, usage error exit) is listed too.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib_start as L  # noqa: E402
from ansible_collections.nodocker.lab.plugins.module_utils import (  # noqa: E402
    _cgroups, _runtime, _runtime_start)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    base = tempfile.mkdtemp(prefix='ndl-bench-prof-')
    steps = {}

    def add(key, seconds):
        steps.setdefault(key, []).append(seconds)
    try:
        root = L.make_rootfs(base)
        lean = _runtime.build_definition(dict(name='bench-prof', rootfs=root,
                                              command=['busybox', 'true'], **L.LIMITS))
        spec = _runtime._cgroup_spec(lean)
        paths = _cgroups.cgroup_paths('bench-prof', lean['cgroup_parent'])
        cfg = dict(lean)
        cfg.update(root=root, lowerdirs=[], upperdir=None, workdir=None, netns=None,
                   caps_keep=[_runtime.CAP_NAMES.index(c) for c in lean['capabilities']],
                   cgroup_procs=[os.path.join(d, 'cgroup.procs')
                                 for d in _cgroups._unique_dirs(paths)],
                   exit_file=os.path.join(base, 'exit.json'), groups=[],
                   python=_runtime.real_interpreter())
        interp = _runtime.real_interpreter()
        fork_key = ('os.fork() + _exit + waitpid of this worker (RSS %d MiB)'
                    % (L.rss_kib() // 1024))
        helper = [interp, '-I', '-S', _runtime.helper_script(), 'nomode']
        for dummy in range(rounds):
            t0 = time.perf_counter()
            _cgroups.ensure_cgroup(spec)
            t1 = time.perf_counter()
            res = _runtime_start.spawn(cfg)
            t2 = time.perf_counter()
            os.waitpid(res['monitor'], 0)
            t3 = time.perf_counter()
            _cgroups.remove_cgroup('bench-prof', kill=True, parent=lean['cgroup_parent'])
            t4 = time.perf_counter()
            if res['errors'] or not os.path.exists(cfg['exit_file']):
                raise RuntimeError('start failed: %r' % res)
            os.unlink(cfg['exit_file'])
            add('_cgroups.ensure_cgroup (mkdir + 4 limits, v1)', t1 - t0)
            add('spawn(): fork monitor .. workload exec\'d (report EOF)', t2 - t1)
            add('workload exec\'d .. monitor recorded the exit and ended', t3 - t2)
            add('_cgroups.remove_cgroup', t4 - t3)
            t = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            add(fork_key, time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(helper, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
            add('python -I -S _runtime_start.py (the module\'s monitor: start-up + imports)',
                time.perf_counter() - t)
        print(json.dumps(steps))
    finally:
        try:
            _cgroups.remove_cgroup('bench-prof', kill=True)
        except Exception:  # noqa: BLE001
            pass
        _runtime.tidy_runtime_dirs()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    main()
