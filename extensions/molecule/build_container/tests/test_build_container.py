# -*- coding: utf-8 -*-
"""The main job (build-container.yml): chapter 10's proof inside the simulated host.

Commands run in a container through the role's `enter` script: it writes
its own PID into the container's cgroups and nsenters PID 1's namespaces,
as the course does by hand.
"""

import json
import time

ENTER = '/var/lib/nodocker-lab/ch10/enter'


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


def test_cpu_is_held_near_40_percent(simhosts):
    h = simhosts['host1']
    v1 = h.file(cgroup_dir(h, 'RED', 'cpu.stat') + '/cpu.cfs_quota_us').exists
    if v1:
        d = cgroup_dir(h, 'RED', 'cpuacct.usage')
        assert int(h.file(cgroup_dir(h, 'RED', 'cpu.cfs_quota_us') + '/cpu.cfs_quota_us')
                   .content_string) == 40000
        usage = 'echo $(( $(cat %s/cpuacct.usage) / 1000 ))' % d
    else:
        d = cgroup_dir(h, 'RED', 'cpu.max')
        assert h.file(d + '/cpu.max').content_string.split() == ['40000', '100000']
        usage = "awk '/^usage_usec/ {print $2}' %s/cpu.stat" % d
    # a hog in the background; the cgroup's own accounting over ~3 s
    r = h.run(
        "%s RED timeout 6 sh -c 'while :; do :; done' >/dev/null 2>&1 & "
        "sleep 1; u0=$(%s); t0=$(date +%%s%%N); sleep 3; u1=$(%s); t1=$(date +%%s%%N); "
        "wait; echo $(( (u1 - u0) * 1000 / ((t1 - t0) / 1000) ))"
        % (ENTER, usage, usage))
    share = int(r.stdout.split()[-1]) / 1000.0
    # never above the quota; well above zero (the machine may be busy, so not exactly 40%)
    assert 0.1 < share <= 0.46, 'CPU share of the hog: %.2f' % share


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
