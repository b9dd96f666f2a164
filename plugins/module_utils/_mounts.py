# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Overlay mounts (chapter 5): read the mount table, mount, unmount.

* The mount table is read from ``/proc/self/mountinfo``: the module runs in
  the mount namespace of the task (a simulated host's own, or the machine's).
* Mounting uses the new mount API (``fsopen``/``fsconfig``/``fsmount``/
  ``move_mount``, Linux >= 5.2) with one ``lowerdir+`` per layer (Linux >=
  6.8): no option string, so no page-size limit on the number of layers.
* Older kernels refuse ``lowerdir+`` at different steps: 6.5-6.7 at its
  ``fsconfig``; before 6.5 overlayfs has no fs_context of its own, the VFS's
  legacy one queues any key into an option string and overlayfs refuses it
  only at ``FSCONFIG_CMD_CREATE``. So any failure of the new API is followed
  by a probe for ``lowerdir+`` (``has_lowerdir_plus``), and without it the
  mount falls back to ``mount(2)`` with one option string (at most a page):
  absolute layer paths when they fit (the mount table then shows them as
  they are), else paths relative to the layers' common parent (the trick
  Docker's ``l/`` short links serve), from a child process that ``chdir``s
  there. The mount table shows relative paths as given, so the comparison
  with the wanted layers resolves them against that same parent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import os

from ansible_collections.nodocker.lab.plugins.module_utils._plan import Plan, quote

# syscall numbers are the same on every architecture for these (added in 5.2)
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 428, 429, 430, 431, 432
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
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


def layer_base(lower, upper, work):
    """The deepest directory holding every layer (the legacy mount's cwd)."""
    return os.path.commonpath(list(lower) + ([upper, work] if upper else []))


def _option_string(lower, upper, work):
    opts = 'lowerdir=' + ':'.join(lower)
    if upper:
        opts += ',upperdir=%s,workdir=%s' % (upper, work)
    return opts


def legacy_options(lower, upper, work):
    """(cwd, option string) for mount(2): absolute paths when they fit in a page
    (cwd None), else paths relative to the layers' common parent; (None, None)
    when even those do not fit. mount(2) copies one page, NUL included."""
    opts = _option_string(lower, upper, work)
    if len(opts) < PAGE_SIZE:
        return None, opts
    base = layer_base(lower, upper, work)
    rel = _option_string([os.path.relpath(x, base) for x in lower],
                         os.path.relpath(upper, base) if upper else None,
                         os.path.relpath(work, base) if upper else None)
    if len(rel) < PAGE_SIZE:
        return base, rel
    return None, None


def mount_command(path, lower, upper, work):
    """A shell equivalent of the mount: the option string mount(2) gets (run
    from the layers' parent when it needs relative paths); with too many
    layers even for that, one lowerdir+ per layer (Linux >= 6.8, util-linux
    >= 2.39, whose mount(8) then uses fsconfig like this module)."""
    base, opts = legacy_options(lower, upper, work)
    if opts is None:
        opts = ','.join('lowerdir+=' + x for x in lower)
        if upper:
            opts += ',upperdir=%s,workdir=%s' % (upper, work)
    cmd = quote(('mount', '-t', 'overlay', 'overlay', '-o', opts, path))
    return quote(('cd', base)) + ' && ' + cmd if base else cmd


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
    """New mount API, one fsconfig call per layer. Raises OSError or MountError;
    on kernels without lowerdir+ it always fails (see the module docstring)."""
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


def has_lowerdir_plus():
    """Does this kernel's overlayfs take lowerdir+ (Linux >= 6.8)? Asked of a
    throw-away fs context, nothing is mounted. Before 6.5 the VFS's legacy
    context accepts any key (overlayfs sees them only at CMD_CREATE), so an
    unknown key being accepted means no; 6.5-6.7 refuse lowerdir+ itself;
    no fsopen at all (Linux < 5.2, or a seccomp filter) means no too."""
    c = libc()
    fd = c.syscall(SYS_FSOPEN, b'overlay', FSOPEN_CLOEXEC)
    if fd < 0:
        return False
    try:
        if c.syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_FLAG, b'nodocker-lab-probe', None, 0) == 0:
            return False
        return c.syscall(SYS_FSCONFIG, fd, FSCONFIG_SET_STRING, b'lowerdir+', b'/', 0) == 0
    finally:
        os.close(fd)


def mount_overlay_legacy(path, lower, upper, work):
    """mount(2) with one option string: absolute paths, or relative ones from a
    child that chdirs to the layers' parent when only those fit in a page."""
    base, opts = legacy_options(lower, upper, work)
    if opts is None:
        raise MountError('%d layers make an option string longer than a page (%d bytes) '
                         'even as paths relative to %s, and this kernel has no lowerdir+ '
                         '(Linux >= 6.8) to give them one by one'
                         % (len(lower), PAGE_SIZE, layer_base(lower, upper, work)))
    if base is None:
        if libc().mount(b'overlay', path.encode(), b'overlay', 0, opts.encode()) != 0:
            code = ctypes.get_errno()
            raise MountError('mount -t overlay at %s failed: %s' % (path, os.strerror(code)))
        return
    # relative paths resolve against the cwd: a child changes it, not the module
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.chdir(base)
            r = libc().mount(b'overlay', path.encode(), b'overlay', 0, opts.encode())
            os._exit(0 if r == 0 else ctypes.get_errno())
        except BaseException:
            os._exit(255)
    _pid, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255
    if code:
        raise MountError('mount -t overlay at %s (from %s) failed: %s'
                         % (path, base, os.strerror(code) if code != 255 else 'child died'))


def mount_overlay(path, lower, upper, work):
    try:
        mount_overlay_fsconfig(path, lower, upper, work)
        return
    except (OSError, MountError) as e:
        first = e
    # A kernel with lowerdir+ refused these layers for a real reason: report it.
    if has_lowerdir_plus():
        raise MountError(str(first))
    try:
        mount_overlay_legacy(path, lower, upper, work)
    except MountError as e:
        raise MountError('%s (this kernel has no lowerdir+, Linux >= 6.8, so the layers went '
                         'to mount(2) as one option string; dmesg has overlayfs\'s reason)' % e)


def umount(path):
    if libc().umount2(path.encode(), 0) != 0:
        err = ctypes.get_errno()
        raise MountError('umount %s: %s' % (path, os.strerror(err)))


def same_overlay(current, wanted):
    """Is the mount found (``overlay_at``) the wanted one? A legacy mount made
    with relative paths (too many layers for absolute ones, mount_overlay_legacy)
    shows them relative in the mount table: they were resolved from the wanted
    layers' common parent, so they are resolved against it here too."""
    if current['fstype'] != 'overlay':
        return False
    base = layer_base(wanted['lower'], wanted['upper'], wanted['work'])

    def resolve(p):
        return os.path.normpath(os.path.join(base, p)) if p else p
    return [resolve(x) for x in current['lower']] == wanted['lower'] and \
        resolve(current['upper']) == wanted['upper'] and \
        resolve(current['work']) == wanted['work']


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
            same = same_overlay(current, wanted)
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
