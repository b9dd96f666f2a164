# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Analysis appended to REPORT.md by run.py (written after looking at the numbers)."""

NOTES = u'''
## Analysis: what was profiled and fixed, what is left

### Container start (a): what was fixed, and what is left
Before: the start path spawned a fresh `python -S` whose imports (`json` → `re` →
`enum`, `signal` → `enum`, `ctypes`, `warnings` for `os.execvpe`) dominated:
188 ms vs crun 53 ms (3.6×). Now `_runtime_start.spawn()` runs in the caller's
own process and starts no interpreter: the monitor is an `os.fork()` of the
caller, PID 1 a fork of the monitor (which did `unshare(CLONE_NEWPID)` for its
children; a setup child sits in between only with `userns`), the workload a
fork of PID 1 (or PID 1 itself with `init: false`). Each kernel step is still
a named function (`enter_new_namespaces`, `mount_root`, `mount_proc`,
`mount_minimal_dev`, `enter_root`, `drop_privileges`, `execvpe`, ...).
The largest single cost left after that was the cgroup join: a write to a v1
`cgroup.procs` waits for an RCU grace period (5–15 ms on this loaded host).
The caller now moves the monitor into the cgroup right after the fork and the
monitor moves PID 1 while PID 1 unshares and mounts (PID 1 waits for a token
before the workload), so the grace period overlaps that work. `_cgroups`
caches each root's layout (no `realpath()` per call; ensure + remove ≈ 4 ms).
In the profile above, `spawn()` until the workload's `execve` is three forks
of an 18 MiB Python process (fork + exit + wait ≈ 2–10 ms each under this
load: scheduling and copy-on-write faults), the namespaces and mounts
(≈ 2–4 ms) and `pivot_root` + detaching the old root. The crun line includes
its wrapper (`unshare -m sh -c 'umount …'`, shown alone): crun by itself is
≈ 10 ms faster than its line, so against crun alone we are about even, not
ahead. Results swing by ±30 % between runs on this shared VM (runs of this
change: 0.65×, 0.81×, 0.95× with 30 rounds, 1.01×, 1.23×, 1.26×, 1.35× of
crun, the later ones before the cgroup overlap was complete).
The module itself takes another way (the "module's way" line): its monitor is
a fresh `python -I -S _runtime_start.py` (posix_spawn, configuration
marshalled on stdin; imports `ctypes`, `_signal` instead of `signal`, no
`json`), one interpreter start-up slower than the fork (≈ 30–60 ms here),
which is small next to an Ansible task (≈ 1 s per loop item). The reason is
memory: measured through Ansible, a forked init keeps a private copy of the
module process's heap for the container's whole life (PSS ≈ 15 MiB per
container, 2.5× the old design).

### Playbook (b): the re-run is at the goal's edge, and the rest is Ansible's
What was fixed: every network-module task imported the whole of pyroute2
(its package `__init__` loads ~300 modules: conntrack, IPDB, NDB, nftables...)
-- about 0.1 s per task here, 2-3 s on a software-emulated VM. Now the modules
import only `pyroute2.iproute` / `pyroute2.netns` (`_pyroute2.light()`), read
state through a small raw rtnetlink socket, and load pyroute2's `IPRoute`
only when something has to change; a re-run with nothing to do imports
neither pyroute2's IPRoute nor asyncio (our imports on top of
`ansible.module_utils.basic`: about 16 ms). The converge went from 1.64× to
about 1.0× the floor.
What is left (section (b)'s payload table shows it): `ansible-playbook` builds
one AnsiballZ payload per distinct module per run, compiling about 60
module_utils files each time (0.15-0.45 s per module on this machine). The
floor playbook builds one (`ping`); `build-container.yml` builds nine
(`rootfs`, `netns`, `veth`, `address`, `link`, `container`, and `stat` +
`file` for the `template` task of the enter script, plus the simulated
hosts' `simhosts`): ≈ 1.7 s per run that no module change can remove. The
re-run ratio (≈ 1.2×) is mostly that. Ways to go further, not taken: fewer
distinct modules in chapter 10 (e.g. `veth` also addressing and raising its
ends), which would fold the course's separate `ip addr` / `ip link set up`
steps into one task, against the role's one-concept-per-task reading.

### Scale (f): memory per running container
Measured with 20 `busybox sleep` containers started by the module, old and new
code in the same simulated host one after the other: per container the RSS
sum grows by 21.8 MiB before and 21.2 MiB after; PSS (what the host really
spends: the monitor and its forked init share most pages, and the sum of RSS
counts them twice) by 6.4 MiB before and 6.0 MiB after (monitor 11.0 MiB RSS /
3.0 MiB PSS, init 8.9 / 2.9 MiB). So 100 containers cost ≈ 600 MiB, not the
2 GiB that the RSS sum suggests; starting 20 took 20.4 s instead of 25.4 s.
Tried and dropped: a monitor that execs a lean `python -c` waiter once PID 1
has run for a second cut the RSS sum by ≈ 4 MiB per container but raised PSS
by ≈ 2 MiB (the init's pages stopped being shared). What is left: two small
interpreters per container (monitor and init). A static C init (as
`docker --init` bind-mounts tini) would bring the init to ≈ 0.1 MiB; the
monitor could then be a single host-wide process (a subreaper for every
container) instead of one per container.

### Shared machine
Other sessions ran tests on this 2-vCPU VM during the whole run (load average
shown above): runc measured ≈ 50 ms on an idle machine and ≈ 90–130 ms here.
Compare the ratios, not the absolute times.
'''
