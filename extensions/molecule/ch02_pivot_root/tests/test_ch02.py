# -*- coding: utf-8 -*-
"""Chapter 2's proof, checked inside the simulated host: after pivot_root and
`umount -l /put_old` the host's tree is gone and the chroot escape fails."""

BASE = '/var/lib/nodocker-lab/ch02'
SCRIPT = BASE + '/pivot_root.sh'


def in_new_root(host, *argv):
    """Run argv as the first process in the pivoted root (own mount namespace)."""
    return host.run('unshare --mount --fork /bin/sh %s %s' % (SCRIPT, ' '.join(argv)))


def test_new_root_is_the_tmpfs_copy(simhosts):
    h = simhosts['host1']
    r = in_new_root(h, '/bin/ls', '-a', '/')
    assert r.rc == 0, r.stderr
    names = set(r.stdout.split())
    assert {'put_old', 'proc', 'escape'} <= names
    assert not names & {'etc', 'var', 'home', 'root'}
    r = in_new_root(h, '/bin/cat', '/proc/self/mountinfo')
    root_line = [l for l in r.stdout.splitlines() if l.split()[4] == '/'][0]
    assert ' - tmpfs ' in root_line, root_line


def test_old_root_is_detached(simhosts):
    h = simhosts['host1']
    r = in_new_root(h, '/bin/ls', '-A', '/put_old')
    assert r.rc == 0 and r.stdout.strip() == '', r.stdout + r.stderr


def test_escape_no_longer_reaches_the_host(simhosts):
    h = simhosts['host1']
    # in chapter 1 this printed the host's /etc/hostname; now "/" is the tmpfs
    r = in_new_root(h, '/escape', '/bin/cat', '/etc/hostname')
    assert r.rc != 0
    r = in_new_root(h, '/escape', '/bin/ls', '-a', '/')
    assert r.rc == 0, r.stderr
    names = set(r.stdout.split())
    assert 'put_old' in names and not names & {'etc', 'var'}


def test_host_mount_table_untouched(simhosts):
    h = simhosts['host1']
    in_new_root(h, '/bin/ls', '/')
    assert BASE not in h.run('cat /proc/self/mountinfo').stdout
