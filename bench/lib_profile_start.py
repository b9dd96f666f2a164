# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the lean start path spends its time (run inside a simulated host).

    python bench/lib_profile_start.py ROUNDS -> JSON {step: [seconds...]}
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
from ansible_collections.nodocker.lab.plugins.module_utils import _cgroups, _runtime  # noqa: E402


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    base = tempfile.mkdtemp(prefix='ndl-bench-prof-')
    steps = {}
    try:
        root = L.make_rootfs(base)
        lean = _runtime.build_definition(dict(name='bench-prof', rootfs=root,
                                              command=['busybox', 'true'], **L.LIMITS))
        spec = _runtime._cgroup_spec(lean)
        interp = _runtime.real_interpreter()
        helper = _runtime.helper_script()
        cmds = {
            'python -S -c pass': [interp, '-S', '-c', 'pass'],
            'python -S importing the helper\'s modules (ctypes, json, signal, warnings)':
                [interp, '-S', '-c', 'import ctypes, json, signal, warnings'],
            'python -S helper with an unknown mode (start-up + imports + exit)':
                [interp, '-S', helper, 'nomode', os.devnull, '2'],
        }
        for dummy in range(rounds):
            t0 = time.perf_counter()
            _cgroups.ensure_cgroup(spec)
            t1 = time.perf_counter()
            _cgroups.remove_cgroup('bench-prof', kill=True, parent=lean['cgroup_parent'])
            t2 = time.perf_counter()
            steps.setdefault('_cgroups.ensure_cgroup (mkdir + 4 limits, v1)', []).append(t1 - t0)
            steps.setdefault('_cgroups.remove_cgroup', []).append(t2 - t1)
            t = time.perf_counter()
            _runtime.helper_script()
            steps.setdefault('_runtime.helper_script() (inspect.getsource + hash)', []).append(
                time.perf_counter() - t)
            for k, c in cmds.items():
                t = time.perf_counter()
                subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                steps.setdefault(k, []).append(time.perf_counter() - t)
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
