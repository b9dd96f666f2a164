# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chapter 10's proof, checked inside the simulated host ``host1``.

Shared by the Molecule scenarios that build chapter 10: ch10_container
(playbooks/ch10_container.yml) and build_container (build-container.yml, the
main job). Each scenario's test module imports the ``test_*`` functions it
wants by name; pytest collects them there (this module is not a test file).

Commands run in a container through the role's `enter` script: it writes
its own PID into the container's cgroups and nsenters PID 1's namespaces,
as the course does by hand. The course's limits: cpu quota 40000 of a
100000 µs period, memory 200 MiB, swappiness 0.
"""

from __future__ import absolute_import, division, print_function

import json
import time


ENTER = '/var/lib/nodocker-lab/ch10/enter'
CPU_QUOTA, CPU_PERIOD = 40000, 100000
MEMORY = 200 * 1024 * 1024  # 209715200


def inside(host, name, cmd):
    return host.run('%s %s sh -c %s' % (ENTER, name, json.dumps(cmd)))


def cgroup_dir(host, name, controller_file):
    """The container's cgroup directory holding controller_file (v1 or v2)."""
    start = json.loads(host.file('/var/lib/nodocker-lab/containers/%s/start.json'
                                 % name).content_string)
    for procs in start['cgroup_procs']:
        d = procs.rsplit('/', 1)[0]
        if host.file('%s/%s' % (d, controller_file)).exists:
            return d
    raise AssertionError('no cgroup of %s has %s' % (name, controller_file))


def has_cgroup_file(host, name, controller_file):
    try:
        cgroup_dir(host, name, controller_file)
    except AssertionError:
        return False
    return True


def cgroup_value(host, name, controller_file):
    d = cgroup_dir(host, name, controller_file)
    return host.file('%s/%s' % (d, controller_file)).content_string.strip()


def running_pid(host, name):
    run = json.loads(host.file('/run/nodocker-lab/containers/%s.json' % name).content_string)
    assert host.file('/proc/%d' % run['pid']).exists
    return run['pid']


def test_red_pings_blue(simhosts):
    r = inside(simhosts['host1'], 'RED', 'ping -c 2 -W 2 11.11.11.3')
    assert r.rc == 0, r.stdout + r.stderr


def test_hostnames(simhosts):
    h = simhosts['host1']
    assert inside(h, 'RED', 'hostname').stdout.strip() == 'RED'
    assert inside(h, 'BLUE', 'hostname').stdout.strip() == 'BLUE'


def test_ps_shows_only_the_container(simhosts):
    h = simhosts['host1']
    r = inside(h, 'RED', 'ps -ef')
    assert r.rc == 0, r.stderr
    rows = [ln.split(None, 3) for ln in r.stdout.splitlines()[1:]]
    pids = sorted(int(row[0]) for row in rows)
    assert pids[0] == 1
    # the init, the shell, its sleep, the shell and ps of this check: nothing of the host
    assert len(pids) <= 6, r.stdout
    host_pids = int(h.run('ls /proc | grep -c "^[0-9]"').stdout)
    assert host_pids > len(pids)
    assert 'sshd' not in r.stdout and 'process_api' not in r.stdout


def test_root_is_the_overlay(simhosts):
    h = simhosts['host1']
    r = inside(h, 'RED', 'grep " / " /proc/mounts; echo red > /written-in-red')
    assert r.rc == 0 and 'overlay' in r.stdout, r.stdout + r.stderr
    assert h.file('/var/lib/nodocker-lab/containers/RED/upper/written-in-red').exists
    assert inside(h, 'BLUE', 'test ! -e /written-in-red').rc == 0
    inside(h, 'RED', 'rm /written-in-red')


def test_cpu_limit_files(simhosts):
    h = simhosts['host1']
    for name in ('RED', 'BLUE'):
        if has_cgroup_file(h, name, 'cpu.cfs_quota_us'):  # v1
            assert int(cgroup_value(h, name, 'cpu.cfs_quota_us')) == CPU_QUOTA
            assert int(cgroup_value(h, name, 'cpu.cfs_period_us')) == CPU_PERIOD
        else:  # v2: "QUOTA PERIOD"
            assert cgroup_value(h, name, 'cpu.max').split() == [str(CPU_QUOTA), str(CPU_PERIOD)]


def test_memory_limit_and_swappiness_files(simhosts):
    h = simhosts['host1']
    for name in ('RED', 'BLUE'):
        if has_cgroup_file(h, name, 'memory.limit_in_bytes'):  # v1
            assert int(cgroup_value(h, name, 'memory.limit_in_bytes')) == MEMORY
            assert int(cgroup_value(h, name, 'memory.swappiness')) == 0
        else:
            # v2 has no per-cgroup swappiness: swappiness 0 is memory.swap.max = 0
            # (the cgroup never swaps)
            assert int(cgroup_value(h, name, 'memory.max')) == MEMORY
            assert cgroup_value(h, name, 'memory.swap.max') == '0'


def cpu_share_of_a_hog(h):
    """A CPU hog in RED for ~3 s, measured by RED's cgroup's own CPU accounting
    (v1 cpuacct.usage in ns, v2 cpu.stat usage_usec) against wall-clock time
    taken in the same shell: (the share of one core the hog got, how many
    periods the quota throttled it in that time)."""
    if has_cgroup_file(h, 'RED', 'cpuacct.usage'):
        usage = 'echo $(( $(cat %s/cpuacct.usage) / 1000 ))' % cgroup_dir(h, 'RED', 'cpuacct.usage')
    else:
        usage = "awk '/^usage_usec/ {print $2}' %s/cpu.stat" % cgroup_dir(h, 'RED', 'cpu.stat')
    throttled = "awk '/^nr_throttled/ {print $2}' %s/cpu.stat" % cgroup_dir(h, 'RED', 'cpu.stat')
    r = h.run(
        "%s RED timeout 6 sh -c 'while :; do :; done' >/dev/null 2>&1 & "
        "sleep 1; u0=$(%s); n0=$(%s); t0=$(date +%%s%%N); sleep 3; "
        "u1=$(%s); n1=$(%s); t1=$(date +%%s%%N); "
        "wait; echo $(( (u1 - u0) * 1000 / ((t1 - t0) / 1000) )) $(( n1 - n0 ))"
        % (ENTER, usage, throttled, usage, throttled))
    assert r.rc == 0, r.stdout + r.stderr
    share, periods = r.stdout.split()[-2:]
    return int(share) / 1000.0, int(periods)


def test_cpu_is_held_near_40_percent(simhosts):
    h = simhosts['host1']
    # The quota caps the hog at 0.40 of a core (0.50 leaves room for a period
    # straddling the window's edges); on a core with time to spare it gets all
    # of that, so it is measured (at most 4 times) until it gets 0.30 or more.
    # The cap must hold in every sample.
    samples = []
    for _attempt in range(4):
        share, periods = cpu_share_of_a_hog(h)
        samples.append((share, periods))
        assert share <= 0.50, 'CPU share of the hog above the quota: %r' % samples
        if share >= 0.30:
            return
    # A busy machine (CI lanes side by side, a load of 4+ on 2 cores) can starve the
    # hog below 0.30: then the rest of the machine held it, not necessarily the
    # quota. The cgroup's own counter must still show that the quota throttled it.
    assert any(periods > 0 for _share, periods in samples), (
        'the hog got only %r (share of a core, throttled periods) and was never '
        'throttled: the CPU quota did not act' % samples)


def test_memory_hog_is_oom_killed_and_init_survives(simhosts):
    h = simhosts['host1']
    pid = running_pid(h, 'RED')
    try:
        events = cgroup_dir(h, 'RED', 'memory.oom_control') + '/memory.oom_control'  # v1
    except AssertionError:
        events = cgroup_dir(h, 'RED', 'memory.events') + '/memory.events'  # v2

    def oom_kills():
        text = h.file(events).content_string
        return int(dict(ln.split() for ln in text.splitlines()).get('oom_kill', 0))

    before = oom_kills()
    r = inside(h, 'RED', 'dd if=/dev/zero of=/dev/null bs=300M count=1')
    assert r.rc != 0, 'a 300 MiB buffer fit in a 200 MiB container'
    time.sleep(0.2)
    assert oom_kills() > before
    assert running_pid(h, 'RED') == pid
    assert inside(h, 'RED', 'true').rc == 0
