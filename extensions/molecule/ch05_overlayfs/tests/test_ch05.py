# -*- coding: utf-8 -*-
"""Chapter 5's proof, checked inside the simulated host: layers stacked by
overlayfs, a container's changes only in its own upper directory (a delete as
a 0:0 character device whiteout), lower layers shared; the same for two
containers on an imported image's layers, whose own whiteout hides a file of
its lower layer."""

import json

BASE = '/var/lib/nodocker-lab/ch05'
C = BASE + '/containers'
PROBE = 'ndl-ch05-probe'


def run_ok(host, cmd):
    r = host.run(cmd)
    assert r.rc == 0, '%s: rc=%s %s %s' % (cmd, r.rc, r.stdout, r.stderr)
    return r.stdout


def overlay_options(host, path):
    """The overlay's options; 'lower' = lower layers top first, whichever way
    they were given (one 'lowerdir+' per layer with the new mount API, or a
    ':'-separated 'lowerdir' with mount(2))."""
    mounts = json.loads(run_ok(host, 'findmnt -J -n -o FSTYPE,OPTIONS --mountpoint %s' % path))
    fs = mounts['filesystems'][0]
    assert fs['fstype'] == 'overlay'
    opts, lower = {}, []
    for o in fs['options'].split(','):
        key, _sep, value = o.partition('=')
        if key == 'lowerdir+':
            lower.append(value)
        elif key == 'lowerdir':
            lower.extend(value.split(':'))
        else:
            opts[key] = value
    opts['lower'] = lower
    return opts


def is_whiteout(host, path):
    # %F file type, %t:%T device major:minor (hex)
    return run_ok(host, "stat -c '%%F %%t:%%T' %s" % path).strip() == 'character special file 0:0'


def test_files_of_every_layer_are_visible(simhosts):
    h = simhosts['host1']
    for c in ('c1', 'c2'):
        assert h.file('%s/%s/merged/bin/busybox' % (C, c)).exists       # tools layer
        assert h.file('%s/%s/merged/usr/bin/dash' % (C, c)).exists      # myroot layer
    r = h.run("unshare --mount --fork chroot %s/c1/merged /bin/busybox echo inside" % C)
    assert r.rc == 0 and r.stdout.strip() == 'inside', r.stderr


def test_two_containers_share_the_same_lowers(simhosts):
    h = simhosts['host1']
    o1, o2 = overlay_options(h, C + '/c1/merged'), overlay_options(h, C + '/c2/merged')
    assert o1['lower'] == o2['lower'] == [BASE + '/tools', BASE + '/myroot']
    assert o1['upperdir'] == C + '/c1/upper' and o2['upperdir'] == C + '/c2/upper'


def test_a_write_lands_only_in_the_containers_upper(simhosts):
    h = simhosts['host1']
    run_ok(h, 'echo hi > %s/c1/merged/%s' % (C, PROBE))
    try:
        assert h.file('%s/c1/upper/%s' % (C, PROBE)).content_string == 'hi\n'
        assert not h.file('%s/c2/merged/%s' % (C, PROBE)).exists
        assert not h.file('%s/tools/%s' % (BASE, PROBE)).exists
    finally:
        run_ok(h, 'rm -f %s/c1/merged/%s' % (C, PROBE))


def test_a_delete_is_a_whiteout_in_the_upper(simhosts):
    h = simhosts['host1']
    victim = 'usr/bin/mkdir'
    # tolerate a second verify run: the delete may already be there
    if h.file('%s/c1/merged/%s' % (C, victim)).exists:
        run_ok(h, 'rm %s/c1/merged/%s' % (C, victim))
    assert not h.file('%s/c1/merged/%s' % (C, victim)).exists
    assert is_whiteout(h, '%s/c1/upper/%s' % (C, victim))
    assert h.file('%s/myroot/%s' % (BASE, victim)).exists                # lower untouched
    assert h.file('%s/c2/merged/%s' % (C, victim)).exists                # c2 still sees it


def test_imported_image_shows_its_files_and_hides_its_deletion(simhosts):
    h = simhosts['host1']
    for c in ('img1', 'img2'):
        merged = '%s/%s/merged' % (C, c)
        assert h.file(merged + '/etc/motd').content_string == "hello from the image's top layer\n"
        assert h.file(merged + '/usr/bin/dash').exists
        assert not h.file(merged + '/usr/bin/ls').exists
    lowers = overlay_options(h, C + '/img1/merged')['lower']
    assert len(lowers) == 2 and all(l.startswith(BASE + '/images/layers/sha256/') for l in lowers)
    assert is_whiteout(h, lowers[0] + '/usr/bin/ls')          # the image's own whiteout
    assert h.file(lowers[1] + '/usr/bin/ls').exists          # still in the layer below


def test_two_image_containers_share_the_image_layers(simhosts):
    h = simhosts['host1']
    o1, o2 = overlay_options(h, C + '/img1/merged'), overlay_options(h, C + '/img2/merged')
    # the same layer directories of the image store: shared, not copied
    assert o1['lower'] == o2['lower'], (o1, o2)
    assert o1['upperdir'] == C + '/img1/upper' and o2['upperdir'] == C + '/img2/upper'


def test_a_write_and_a_delete_in_img1_land_only_in_its_upper(simhosts):
    h = simhosts['host1']
    lowers = overlay_options(h, C + '/img1/merged')['lower']
    victim = 'usr/bin/mkdir'                                  # from the image's first layer
    run_ok(h, 'echo hi > %s/img1/merged/%s' % (C, PROBE))
    try:
        # tolerate a second verify run: the delete may already be there
        if h.file('%s/img1/merged/%s' % (C, victim)).exists:
            run_ok(h, 'rm %s/img1/merged/%s' % (C, victim))
        assert h.file('%s/img1/upper/%s' % (C, PROBE)).content_string == 'hi\n'
        assert not h.file('%s/img1/merged/%s' % (C, victim)).exists
        assert is_whiteout(h, '%s/img1/upper/%s' % (C, victim))
        # the image's layers are untouched ...
        assert h.file('%s/%s' % (lowers[1], victim)).exists
        assert not any(h.file('%s/%s' % (layer, PROBE)).exists for layer in lowers)
        # ... and img2, on the same layers, sees neither change
        assert not h.file('%s/img2/merged/%s' % (C, PROBE)).exists
        assert h.file('%s/img2/merged/%s' % (C, victim)).exists
        assert not h.file('%s/img2/upper/%s' % (C, victim)).exists
    finally:
        run_ok(h, 'rm -f %s/img1/merged/%s' % (C, PROBE))
