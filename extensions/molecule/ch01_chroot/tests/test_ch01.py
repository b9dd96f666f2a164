# -*- coding: utf-8 -*-
"""Chapter 1's proof, checked inside the simulated host: chroot alone is not isolation."""

BASE = '/var/lib/nodocker-lab/ch01'
ROOT = BASE + '/myroot'


def run_ok(host, cmd):
    r = host.run(cmd)
    assert r.rc == 0, '%s: rc=%s %s %s' % (cmd, r.rc, r.stdout, r.stderr)
    return r.stdout


def test_myroot_holds_the_programs_and_their_loader(simhosts):
    h = simhosts['host1']
    for prog in ('sh', 'ls', 'ps', 'mount', 'mkdir'):
        assert h.file('%s/usr/bin/%s' % (ROOT, prog)).exists or \
            h.file('%s/bin/%s' % (ROOT, prog)).exists, prog
    assert h.file(ROOT + '/lib64/ld-linux-x86-64.so.2').exists
    assert h.file(ROOT + '/escape').mode & 0o111


def test_chroot_sees_only_the_tree(simhosts):
    h = simhosts['host1']
    inside = set(run_ok(h, 'chroot %s /bin/ls -a /' % ROOT).split())
    outside = set(run_ok(h, 'ls -a %s' % ROOT).split())
    assert inside == outside
    # the host's own top-level directories are not there
    assert not inside & {'etc', 'proc', 'var', 'home', 'root'}


def test_dot_dot_does_not_leave_the_chroot(simhosts):
    h = simhosts['host1']
    inside = set(run_ok(h, "chroot %s /bin/sh -c 'cd ../../../..; /bin/ls -a'" % ROOT).split())
    assert inside == set(run_ok(h, 'ls -a %s' % ROOT).split())


def test_escape_program_reaches_the_host_root(simhosts):
    h = simhosts['host1']
    # /escape re-roots at the real "/" and runs the host's ls there: it sees the
    # chapter's own directory (outside myroot) and the host's /etc
    out = run_ok(h, 'chroot %s /escape /bin/ls %s' % (ROOT, BASE)).split()
    assert 'escape.c' in out and 'myroot' in out
    hostname = run_ok(h, 'chroot %s /escape /bin/cat /etc/hostname' % ROOT).strip()
    assert hostname == run_ok(h, 'cat /etc/hostname').strip()
