# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Overlay mounts (chapter 5): read the mount table, mount, unmount.

* The mount table is read from ``/proc/self/mountinfo``: the module runs in
  the mount namespace of the task (a simulated host's own, or the machine's).
* Mounting uses the new mount API (``fsopen``/``fsconfig``/``fsmount``/
  ``move_mount``, Linux >= 5.2) with one ``lowerdir+`` per layer (Linux >=
  6.8): no option string, so no page-size limit on the number of layers.
  On older kernels it falls back to ``mount(2)`` with the layers as paths
  relative to their common parent (the trick Docker's ``l/`` short links
  serve), run from a child process that ``chdir``s there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import errno
import os

from ansible_collections.nodocker.lab.plugins.module_utils._plan import Plan, quote

# syscall numbers are the same on every architecture for these (added in 5.2)
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 428, 429, 430, 431, 432
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
PAGE_SIZE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096
BAD_PATH_CHARS = (':', ',', '\n', '\\')

_libc = None


class MountError(Exception):
    """A mount that cannot (or must not) be made."""


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _unescape(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == '\\' and i + 3 < len(field) + 1 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return ''.join(out)


def parse_mountinfo(text):
    """Lines of /proc/self/mountinfo -> list of dicts (in mount order)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(' ')
        if '-' not in fields:
            continue
        sep = fields.index('-')
        mounts.append({
            'id': int(fields[0]),
            'parent': int(fields[1]),
            'root': _unescape(fields[3]),
            'mountpoint': _unescape(fields[4]),
            'options': fields[5],
            'fstype': fields[sep + 1],
            'source': _unescape(fields[sep + 2]),
            'super_options': _unescape(fields[sep + 3]) if len(fields) > sep + 3 else '',
        })
    return mounts


def read_mounts():
    with open('/proc/self/mountinfo') as f:
        return parse_mountinfo(f.read())


def split_options(opts):
    """'a=b,c' -> {'a': 'b', 'c': True}; '\\,' inside values is kept."""
    out, cur, i = {}, [], 0
    parts = []
    while i < len(opts):
        if opts[i] == '\\' and i + 1 < len(opts):
            cur.append(opts[i:i + 2])
            i += 2
            continue
        if opts[i] == ',':
            parts.append(''.join(cur))
            cur = []
        else:
            cur.append(opts[i])
        i += 1
    parts.append(''.join(cur))
    for p in parts:
        if not p:
            continue
        k, eq, v = p.partition('=')
        if k == 'lowerdir+':  # new mount API: one entry per layer, in order
            out.setdefault(k, []).append(v)
        else:
            out[k] = v if eq else True
    return out


def split_lowerdir(value):
    """'a:b\\:c::d' -> ['a', 'b:c', 'd'] (':: ' separates data-only layers)."""
    layers, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == '\\' and i + 1 < len(value):
            cur.append(value[i + 1])
            i += 2
            continue
        if c == ':':
            if cur:
                layers.append(''.join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        layers.append(''.join(cur))
    return layers


def overlay_at(mounts, path):
    """The top-most mount at ``path`` as {'fstype','lower','upper','work'} or None."""
    found = None
    for m in mounts:
        if m['mountpoint'] == path:
            found = m
    if found is None:
        return None
    if found['fstype'] != 'overlay':
        return {'fstype': found['fstype'], 'source': found['source'],
                'lower': None, 'upper': None, 'work': None}
    opts = split_options(found['super_options'])
    return {'fstype': 'overlay', 'source': found['source'],
            'lower': opts.get('lowerdir+') or split_lowerdir(opts.get('lowerdir', '')),
            'upper': opts.get('upperdir'), 'work': opts.get('workdir')}


def mount_command(path, lower, upper, work):
    opts = 'lowerdir=' + ':'.join(lower)
    if upper:
        opts += ',upperdir=%s,workdir=%s' % (upper, work)
    return quote(('mount', '-t', 'overlay', 'overlay', '-o', opts, path))


def _check(ret, what):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))
    return ret


def _fs_log(fd):
    """Messages the kernel left on an fs context (why a mount was refused)."""
    msgs = []
    buf = ctypes.create_string_buffer(1024)
    for _i in range(32):
        n = libc().read(fd, buf, 1024)
        if n <= 0:
            break
        msgs.append(buf.raw[:n].decode('utf-8', 'replace').strip())
    return '; '.join(msgs)


def mount_overlay_fsconfig(path, lower, upper, work):
    """New mount API, one fsconfig call per layer. Raises OSError(EINVAL) if too old."""
    c = libc()
    fd = _check(c.syscall(SYS_FSOPEN, b'overlay', FSOPEN_CLOEXEC), 'fsopen(overlay)')
    try:
        def setstr(key, value):
            r = c.syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_STRING, key.encode(),
                          value.encode(), 0)
            if r < 0:
                err = ctypes.get_errno()
                raise OSError(err, 'fsconfig %s=%s: %s %s'
                              % (key, value, os.strerror(err), _fs_log(fd)))
        setstr('source', 'overlay')
        for layer in lower:
            setstr('lowerdir+', layer)
        if upper:
            setstr('upperdir', upper)
            setstr('workdir', work)
        if c.syscall(SYS_FSCONFIG, fd, FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            err = ctypes.get_errno()
            raise MountError('overlay refused by the kernel: %s %s'
                             % (os.strerror(err), _fs_log(fd)))
        mfd = _check(c.syscall(SYS_FSMOUNT, fd, FSMOUNT_CLOEXEC, 0), 'fsmount')
        try:
            _check(c.syscall(SYS_MOVE_MOUNT, mfd, b'', AT_FDCWD, path.encode(),
                             MOVE_MOUNT_F_EMPTY_PATH), 'move_mount to %s' % path)
        finally:
            os.close(mfd)
    finally:
        os.close(fd)


def mount_overlay_legacy(path, lower, upper, work):
    """mount(2) with layer paths relative to their common parent, from a child."""
    base = os.path.commonpath(lower + ([upper, work] if upper else []))
    rel = [os.path.relpath(x, base) for x in lower]
    opts = 'lowerdir=' + ':'.join(rel)
    if upper:
        opts += ',upperdir=%s,workdir=%s' % (
            os.path.relpath(upper, base), os.path.relpath(work, base))
    if len(opts) >= PAGE_SIZE:
        raise MountError('%d layers make a %d-byte option string even as relative paths; '
                         'the limit is one page (%d) and this kernel has no lowerdir+ '
                         '(Linux >= 6.8)' % (len(lower), len(opts), PAGE_SIZE))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.chdir(base)
            r = libc().mount(b'overlay', path.encode(), b'overlay', 0, opts.encode())
            os._exit(0 if r == 0 else ctypes.get_errno())
        except BaseException:
            os._exit(255)
    _pid, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status)
    if code:
        raise MountError('mount -t overlay at %s failed: %s' % (path, os.strerror(code)))


def mount_overlay(path, lower, upper, work):
    try:
        mount_overlay_fsconfig(path, lower, upper, work)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL) or 'lowerdir+' not in str(e):
            raise MountError(str(e))
        mount_overlay_legacy(path, lower, upper, work)


def umount(path):
    if libc().umount2(path.encode(), 0) != 0:
        err = ctypes.get_errno()
        raise MountError('umount %s: %s' % (path, os.strerror(err)))


def _abs(p, what):
    if not p or not p.startswith('/'):
        raise MountError('%s %r must be an absolute path' % (what, p))
    for c in BAD_PATH_CHARS:
        if c in p:
            raise MountError('%s %r must not contain %r (overlayfs uses it as a separator)'
                             % (what, p, c))
    return os.path.normpath(p)


def run_overlay(module):
    p = module.params
    plan = Plan(module.check_mode)
    made = []
    try:
        path = _abs(p['path'], 'path')
        lower = [_abs(x, 'lower') for x in p['lower'] or []]
        upper = _abs(p['upper'], 'upper') if p['upper'] else None
        work = _abs(p['work'], 'work') if p['work'] else None
        want_mounted = p['state'] == 'mounted'
        current = overlay_at(read_mounts(), os.path.realpath(path) if os.path.exists(path)
                             else path)
        before = dict(path=path, mounted=current is not None, **(current or {}))
        if not want_mounted:
            if current is not None:
                plan.do(quote(('umount', path)), umount, path)
            after = dict(path=path, mounted=False)
            return dict(changed=plan.changed, path=path, mounted=False, commands=plan.commands,
                        diff=dict(before=before, after=after))
        if not lower:
            raise MountError('state=mounted needs at least one lower directory')
        if bool(upper) != bool(work):
            raise MountError('give both upper and work, or neither (a read-only overlay)')
        if not upper and len(lower) < 2:
            raise MountError('a read-only overlay (no upper) needs at least two lower layers')
        if len(set(lower)) != len(lower):
            raise MountError('a lower layer is listed twice')
        for d in lower:
            if not os.path.isdir(d):
                raise MountError('lower layer %s is not a directory' % d)
        wanted = {'fstype': 'overlay', 'lower': [os.path.realpath(x) for x in lower],
                  'upper': os.path.realpath(upper) if upper else None,
                  'work': os.path.realpath(work) if work else None}
        if current is not None:
            same = current['fstype'] == 'overlay' and \
                [os.path.normpath(x) for x in current['lower']] == wanted['lower'] and \
                current['upper'] == wanted['upper'] and current['work'] == wanted['work']
            if same:
                return dict(changed=False, path=path, mounted=True, commands=[],
                            diff=dict(before=before, after=before))
            if not p['replace']:
                raise MountError(
                    '%s already has a different %s mount (lower=%s upper=%s); set '
                    'replace: true to unmount it and mount the wanted layers'
                    % (path, current['fstype'], current['lower'], current['upper']))
            plan.do(quote(('umount', path)), umount, path)
        for d in [x for x in (upper, work, path) if x]:
            if not os.path.isdir(d):
                if os.path.lexists(d):
                    raise MountError('%s exists and is not a directory' % d)
                plan.do(quote(('mkdir', '-p', d)), os.makedirs, d)
                made.append(d)
        plan.do(mount_command(path, wanted['lower'], wanted['upper'], wanted['work']),
                mount_overlay, path, wanted['lower'], wanted['upper'], wanted['work'])
    except (MountError, OSError) as e:
        if not module.check_mode:
            for d in reversed(made):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        module.fail_json(msg='overlay: %s' % e, commands=plan.commands)
    after = dict(path=path, mounted=True, source='overlay', **wanted)
    return dict(changed=plan.changed, path=path, mounted=True, commands=plan.commands,
                diff=dict(before=before, after=after))
