# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Analysis appended to REPORT.md by run.py (written after looking at the numbers)."""

NOTES = u'''
## Why goals were missed, and the proposed fixes (plugins/ is not edited by the benchmark)

### Container start (a): the Python interpreter and its imports, not the kernel work
The profile above (same host, same run) splits the lean start path:
`ensure_cgroup` + `remove_cgroup` cost about 15 ms together, `python -S -c pass`
about 30–50 ms on this loaded machine, and the helper's imports
(`ctypes, json, signal, warnings`) more than double the interpreter's start:
`-X importtime` shows `json` (→ `re` → `enum` → `functools` → `collections`) and
`signal` (→ `enum`) as the heaviest chains, then `ctypes` (→ `struct`, `_ctypes`).
The namespace/mount/pivot_root work itself is of the order of the bare
`unshare` line. Proposed fixes in `plugins/module_utils/_runtime_start.py`
and `_runtime.py`, in order of gain:
1. Do not import `json` in the helper: pass the configuration with `marshal`
   (built in, no import chain; `_runtime.py` writes it with `marshal.dump`) and
   write `exit.json` by string formatting (it has four numeric fields).
2. Use the built-in `_signal` module instead of `signal` (same functions and
   numbers, no `enum`), and drop the eager `import warnings` by calling
   `os.execve` with an absolute path resolved by hand (`execvpe` is what pulls
   `warnings`).
3. Run the helper with a CPython built with `--enable-optimizations` and
   without `--enable-shared`: this venv's pyenv 3.11.7 has neither PGO/LTO
   nor a static libpython (`sysconfig CONFIG_ARGS`: `--enable-shared`
   only), both known to slow interpreter start-up, which is on the timed path.
4. `_cgroups`: `cgroup_paths()`/`_unique_dirs()` call `os.path.realpath` about 60
   times per ensure+remove (cProfile); cache the controller mount map once per
   process.
Even with all of these a CPython start (≈10–15 ms unloaded) stays on the
path, so matching crun (≈25 ms unloaded) is realistic, beating it is not,
unless the start helper becomes a small static C program (as `unshare` is).

### Scale (f): two Python processes per container
Each running container keeps a monitor and an init that are both full
Python interpreters (RSS ≈ 9–11 MiB each), so 100 containers cost about
2 GiB of RSS on the host, while the containers' own cgroups hold a few MiB.
Proposed fix: make the in-container init optional by default for single-process
workloads (`init: false` already exists) or exec a tiny init, and let the monitor
`execv` into a minimal waiter after start-up (or drop `json`/`ctypes` imports
there too, see above), which roughly halves the per-container memory.

### Shared machine
Other sessions ran tests on this 2-vCPU VM during the whole run (load average
shown above): runc measured ≈ 50 ms on an idle machine and ≈ 90–130 ms here.
Compare the ratios, not the absolute times.
'''
