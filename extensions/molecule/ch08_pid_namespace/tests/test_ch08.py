# -*- coding: utf-8 -*-
"""Chapter 8's proof, checked inside the simulated host.

The role's namespace (its shell is PID 1) shows what ps sees and NSpid; the
destructive proofs (a PID 1 that never reaps, killing PID 1) use throwaway
namespaces of their own, so the role's one stays for the student.
"""

import time


def role_pid1(host):
    """PID 1 of the role's namespace, as the host numbers it (unshare's child)."""
    unshare = host.file('/run/nodocker-lab/ch08/unshare.pid').content_string.strip()
    children = host.file('/proc/%s/task/%s/children' % (unshare, unshare)).content_string.split()
    assert len(children) == 1, children
    return int(children[0])


def inside(host, cmd):
    return host.run('nsenter --target %d --pid --mount -- /bin/sh -c %s'
                    % (role_pid1(host), host.backend.quote('%s', cmd)))


def test_ps_inside_sees_only_the_namespace(simhosts):
    h = simhosts['host1']
    r = inside(h, 'ps -eo pid=,args=')
    assert r.rc == 0, r.stderr
    rows = [ln.split(None, 1) for ln in r.stdout.splitlines()]
    pids = sorted(int(row[0]) for row in rows)
    assert pids[0] == 1
    assert rows[[int(x[0]) for x in rows].index(1)][1].startswith('/bin/sh -c while')
    # the shell, its sleep, and this check's sh and ps: nothing of the host
    assert len(pids) <= 5, r.stdout
    assert len(h.run('ps -e -o pid=').stdout.split()) > len(pids)


def test_nspid_shows_another_pid_outside(simhosts):
    h = simhosts['host1']
    pid = role_pid1(h)
    status = h.file('/proc/%d/status' % pid).content_string
    nspid = [ln.split()[1:] for ln in status.splitlines() if ln.startswith('NSpid:')][0]
    assert nspid[-1] == '1' and int(nspid[-2]) == pid and pid != 1, nspid


def test_orphan_is_reparented_to_pid1_and_reaped(simhosts):
    h = simhosts['host1']
    # the subshell exits at once: its `sleep` child is an orphan
    r = inside(h, '(sleep 0.5 &); ps -o pid=,ppid=,args=; sleep 1.5; ps -o stat=,args=')
    lines = r.stdout.splitlines()
    orphan = [ln.split() for ln in lines if ln.strip().endswith('sleep 0.5')]
    assert orphan and orphan[0][1] == '1', r.stdout   # re-parented to PID 1
    assert not [ln for ln in lines if ln.startswith('Z')], r.stdout  # and reaped by it


def test_orphan_becomes_a_zombie_without_an_init(simhosts):
    h = simhosts['host1']
    # PID 1 is `sleep`, which never calls wait(): the orphan stays a zombie
    r = h.run("unshare --fork --pid --mount-proc --kill-child /bin/sh -c "
              "'(sh -c \"sleep 0.3\" &); exec sleep 3' & "
              "sleep 1.5; "
              "for p in $(ps -eo pid=,args= | awk '$2 == \"sleep\" && $3 == \"3\" {print $1}'); do "
              "  ps -o stat= --ppid $p; done; wait")
    assert 'Z' in r.stdout.split(), r.stdout + r.stderr


def test_sigterm_without_handler_is_ignored_by_pid1(simhosts):
    h = simhosts['host1']
    pid = role_pid1(h)
    inside(h, 'kill -TERM 1')
    time.sleep(0.5)
    assert h.file('/proc/%d' % pid).exists
    assert role_pid1(h) == pid


def test_killing_pid1_kills_the_namespace(simhosts):
    h = simhosts['host1']
    h.run("setsid unshare --fork --pid --mount-proc /bin/sh -c "
          "'sleep 100 & sleep 100 & sleep 100' </dev/null >/dev/null 2>&1 & "
          "echo $! > /tmp/ch08-throwaway.pid")
    try:
        time.sleep(1)
        unshare = h.file('/tmp/ch08-throwaway.pid').content_string.strip()
        pid1 = h.file('/proc/%s/task/%s/children' % (unshare, unshare)).content_string.split()[0]
        kids = h.file('/proc/%s/task/%s/children' % (pid1, pid1)).content_string.split()
        assert len(kids) == 3, kids
        h.run('kill -KILL %s' % pid1)
        time.sleep(0.5)
        assert [k for k in kids if h.file('/proc/%s' % k).exists] == []
    finally:
        h.run('rm -f /tmp/ch08-throwaway.pid')
