# -*- coding: utf-8 -*-
"""Chapter 9's proof, checked inside the simulated host."""

USER = 'student'
USERNS = "runuser -u %s -- unshare --user --map-root-user /bin/sh -c '%s'"


def as_root_in_userns(host, cmd):
    return host.run(USERNS % (USER, cmd))


def test_the_user_is_unprivileged(simhosts):
    h = simhosts['host1']
    u = h.user(USER)
    assert u.exists and u.uid != 0
    assert h.run('runuser -u %s -- id -u' % USER).stdout.strip() == str(u.uid)


def test_id_says_root_inside(simhosts):
    r = as_root_in_userns(simhosts['host1'], 'id -u; id -un')
    assert r.rc == 0, r.stderr
    assert r.stdout.split() == ['0', 'root']


def test_uid_map_and_setgroups(simhosts):
    h = simhosts['host1']
    uid, gid = h.user(USER).uid, h.user(USER).gid
    r = as_root_in_userns(h, 'cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups')
    lines = [ln.split() for ln in r.stdout.splitlines()]
    assert lines[0] == ['0', str(uid), '1'], r.stdout
    assert lines[1] == ['0', str(gid), '1'], r.stdout
    assert lines[2] == ['deny'], r.stdout


def test_file_made_inside_belongs_to_the_user_outside(simhosts):
    h = simhosts['host1']
    f = h.file('/home/%s/made-as-root-in-userns' % USER)
    assert f.exists
    assert f.uid == h.user(USER).uid and f.uid != 0
    # inside, the same file looks like root's
    r = as_root_in_userns(h, 'stat -c %%u /home/%s/made-as-root-in-userns' % USER)
    assert r.stdout.strip() == '0'


def test_root_owned_host_file_stays_unwritable(simhosts):
    h = simhosts['host1']
    before = h.file('/etc/hostname').content_string
    r = as_root_in_userns(h, 'echo owned >> /etc/hostname')
    assert r.rc != 0 and 'Permission denied' in r.stderr, r.stdout + r.stderr
    assert h.file('/etc/hostname').content_string == before
