# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image layers: validate a layer tar completely, then extract it as Docker does.

A layer is untrusted input. ``scan_layer`` reads every member before a
single byte is written, keeping a model of what extraction will have made
(``new_state``), and rejects: absolute names, ``..`` components, symlinks
whose relative target climbs out of the layer, hard links to anything but a
regular file the layer wrote earlier (reached through real directories),
entries written through (or below) a symlink or non-directory made by an
earlier entry, an entry that would replace a directory of the layer by a
non-directory, whiteouts naming ``''``, ``.`` or ``..``, device nodes,
overlayfs' own ``trusted.overlay.*`` xattrs, a truncated or corrupt stream
and a digest that is not the one announced. ``extract_layer`` then writes
into a temporary directory (the caller renames it into place), and never
follows a symlink itself: it works through directory fds opened with
O_NOFOLLOW, in case the validator missed something.

Whiteouts are converted to what overlayfs understands:
``DIR/.wh.NAME`` -> a 0:0 character device ``DIR/NAME``;
``DIR/.wh..wh..opq`` -> xattr ``trusted.overlay.opaque=y`` on ``DIR``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import stat
import tarfile
import zlib

WH_PREFIX = '.wh.'
WH_OPAQUE = '.wh..wh..opq'
OVERLAY_XATTR_PREFIX = 'trusted.overlay.'
GZIP_MAGIC = b'\x1f\x8b'
ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
NAME_MAX_BYTES = 4095


class LayerError(Exception):
    """An archive or layer that must not be imported."""


class HashingReader:
    """A file object that hashes (and optionally gunzips) what is read through it."""

    def __init__(self, raw, compressed_hasher=None):
        self.raw = raw
        self.compressed_hasher = compressed_hasher
        self.diff_hasher = hashlib.sha256()
        head = raw.read(4)
        if compressed_hasher is not None:
            compressed_hasher.update(head)
        if head.startswith(ZSTD_MAGIC):
            raise LayerError('zstd-compressed layers are not supported (use gzip or plain tar)')
        self.gzip = head.startswith(GZIP_MAGIC)
        self.decomp = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gzip else None
        self.buf = b''
        self.eof = False
        self._feed(head)

    def _feed(self, data):
        if self.decomp is not None:
            try:
                data = self.decomp.decompress(data)
            except zlib.error as e:
                raise LayerError('corrupt gzip stream: %s' % e)
        self.diff_hasher.update(data)
        self.buf += data

    def read(self, n=-1):
        while not self.eof and (n < 0 or len(self.buf) < n):
            chunk = self.raw.read(1 << 16)
            if not chunk:
                self.eof = True
                if self.decomp is not None and not self.decomp.eof:
                    raise LayerError('truncated gzip stream')
                break
            if self.compressed_hasher is not None:
                self.compressed_hasher.update(chunk)
            self._feed(chunk)
        if n < 0:
            out, self.buf = self.buf, b''
        else:
            out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def drain(self):
        while self.read(1 << 16):
            pass


def clean_name(name):
    """A member name as a relative path inside the layer, or LayerError."""
    if name.startswith('/'):
        raise LayerError('member %r has an absolute path' % name)
    parts = [p for p in name.split('/') if p not in ('', '.')]
    if '..' in parts:
        raise LayerError('member %r has a ".." component' % name)
    if '\0' in name:
        raise LayerError('member %r has a NUL byte' % name)
    clean = '/'.join(parts)
    if len(clean.encode('utf-8', 'surrogateescape')) > NAME_MAX_BYTES:
        # the kernel's PATH_MAX: Docker could not extract it either
        raise LayerError('member %r has a path longer than %d bytes'
                         % (name[:64] + '...', NAME_MAX_BYTES))
    return clean


def _inside(base_parts, target):
    """Does relative symlink ``target`` from directory ``base_parts`` stay in the layer?"""
    parts = list(base_parts)
    for p in target.split('/'):
        if p in ('', '.'):
            continue
        if p == '..':
            if not parts:
                return False
            parts.pop()
        else:
            parts.append(p)
    return True


class _Node:
    """What extraction will have made at one path: the validator's model of the layer."""

    __slots__ = ('kind', 'children')

    def __init__(self, kind):
        self.kind = kind  # dir, file, symlink, fifo, whiteout
        self.children = {} if kind == 'dir' else None


def new_state():
    """The validator's state: a tree of what extraction has made so far."""
    return {'root': _Node('dir')}


_KIND_NAMES = {'dir': 'directory', 'file': 'regular file', 'symlink': 'symlink',
               'fifo': 'fifo', 'whiteout': 'whiteout'}


def _parent_node(state, parts, member):
    """The directory node that will hold ``parts[-1]``, creating the parents that
    extraction creates (as directories). Refuses a path through anything that
    is not a real directory of this layer: a symlink would take the write (or
    a hard link, or metadata) outside the layer; below a file it would fail
    half-way."""
    node = state['root']
    for i, p in enumerate(parts[:-1]):
        child = node.children.get(p)
        if child is None:
            child = node.children[p] = _Node('dir')
        elif child.kind == 'symlink':
            raise LayerError('member %r would be written through the symlink %r planted by '
                             'an earlier entry' % (member, '/'.join(parts[:i + 1])))
        elif child.kind != 'dir':
            raise LayerError('member %r would be written below %r, which is a %s of this '
                             'layer, not a directory'
                             % (member, '/'.join(parts[:i + 1]), _KIND_NAMES[child.kind]))
        node = child
    return node


def _hardlink_target(state, m):
    """The hard link's target must be a regular file this layer wrote earlier,
    reached through real directories only (os.link resolves the path)."""
    try:
        target = clean_name(m.linkname)
    except LayerError:
        raise LayerError('hard link %r -> %r leads outside the layer' % (m.name, m.linkname))
    if not target:
        raise LayerError('hard link %r has an empty target' % m.name)
    tparts = target.split('/')
    node = state['root']
    for i, p in enumerate(tparts[:-1]):
        node = node.children.get(p)
        if node is not None and node.kind == 'symlink':
            raise LayerError('hard link %r -> %r would resolve through the symlink %r planted '
                             'by an earlier entry' % (m.name, m.linkname,
                                                      '/'.join(tparts[:i + 1])))
        if node is None or node.kind != 'dir':
            node = None
            break
    node = node.children.get(tparts[-1]) if node is not None else None
    if node is None or node.kind != 'file':
        raise LayerError('hard link %r -> %r does not point to an earlier regular file of '
                         'this layer%s' % (m.name, m.linkname, '' if node is None else
                                           ' (it is a %s)' % _KIND_NAMES[node.kind]))


def whiteout_target(base):
    """``NAME`` of a whiteout ``.wh.NAME`` (None for ``.wh..wh.*`` metadata), or LayerError."""
    if base == WH_OPAQUE or base.startswith(WH_PREFIX + WH_PREFIX):
        return None
    target = base[len(WH_PREFIX):]
    if target in ('', '.', '..'):
        # .wh... would remove the directory holding it (rmtree(<dir>/..))
        raise LayerError('whiteout %r names %r: a whiteout must name an entry of its '
                         'directory (.wh.NAME), not the directory itself or its parent'
                         % (base, target))
    return target


def validate_member(m, state):
    """Check one member against everything seen before it; return its clean name.

    ``state`` (from new_state()) models what extraction will have made, so
    what is checked is what extraction will do: later entries replace earlier
    ones of the same name (a directory over a directory merges), a whiteout
    removes its target and everything below it."""
    name = clean_name(m.name)
    if not name:
        if m.isdir():
            return ''
        raise LayerError('member %r has an empty path' % m.name)
    parts = name.split('/')
    parent = _parent_node(state, parts, m.name)
    if m.ischr() or m.isblk():
        raise LayerError('member %r is a device node (%s %d:%d); layers may not carry '
                         'devices' % (m.name, 'char' if m.ischr() else 'block',
                                      m.devmajor, m.devminor))
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
        raise LayerError('member %r has an unsupported type %r' % (m.name, m.type))
    for key in (m.pax_headers or {}):
        if key.startswith('SCHILY.xattr.' + OVERLAY_XATTR_PREFIX):
            raise LayerError('member %r sets the overlayfs xattr %r' % (m.name, key[13:]))
        if key.startswith('SCHILY.xattr.') and ('\0' in key or '.' not in key[13:]):
            raise LayerError('member %r has a malformed xattr name %r' % (m.name, key[13:]))
    # metadata the kernel cannot take would fail half-way through extraction
    for what, value in (('uid', m.uid), ('gid', m.gid)):
        if not 0 <= value <= 0xfffffffe:
            raise LayerError('member %r has %s %r, outside 0..4294967294' % (m.name, what, value))
    if not -(1 << 62) <= m.mtime <= (1 << 62):
        raise LayerError('member %r has an impossible modification time %r' % (m.name, m.mtime))
    base = parts[-1]
    if base.startswith(WH_PREFIX):
        target = whiteout_target(base)
        if target is not None:  # extraction removes it (and all below) for a 0:0 device
            parent.children[target] = _Node('whiteout')
        return name
    existing = parent.children.get(base)
    if m.isdir():
        if existing is None or existing.kind != 'dir':
            parent.children[base] = _Node('dir')
        return name
    if existing is not None and existing.kind == 'dir':
        # extraction would remove the directory and everything below it; its
        # metadata, applied last, and hard links into it would then follow
        # whatever replaced it. Docker's own layers never do this.
        raise LayerError('member %r (a %s) would replace the directory %r written earlier in '
                         'this layer, and everything below it' % (
                             m.name, 'symlink' if m.issym() else 'hard link' if m.islnk()
                             else 'fifo' if m.isfifo() else 'regular file', name))
    if m.issym():
        if not m.linkname:
            raise LayerError('symlink %r has an empty target' % m.name)
        # absolute targets resolve inside the container's root: harmless;
        # relative ones must not climb above the layer
        if not m.linkname.startswith('/') and not _inside(parts[:-1], m.linkname):
            raise LayerError('symlink %r -> %r leads outside the layer' % (m.name, m.linkname))
        parent.children[base] = _Node('symlink')
    elif m.islnk():
        parent.children.pop(base, None)  # extraction removes it before linking
        _hardlink_target(state, m)
        parent.children[base] = _Node('file')
    else:
        parent.children[base] = _Node('file' if m.isreg() else 'fifo')
    return name


def scan_layer(fileobj, expected_diffid=None, compressed_hasher=None):
    """Validate a whole layer stream; return (diffid, [(member, clean name)]).

    Writes nothing. Raises LayerError on any problem.
    """
    reader = HashingReader(fileobj, compressed_hasher)
    state = new_state()
    members = []
    try:
        with tarfile.open(fileobj=reader, mode='r|') as tf:
            for m in tf:
                members.append((m, validate_member(m, state)))
        reader.drain()
    except tarfile.TarError as e:
        raise LayerError('corrupt or truncated layer tar: %s' % e)
    except EOFError as e:
        raise LayerError('truncated layer tar: %s' % e)
    diffid = 'sha256:' + reader.diff_hasher.hexdigest()
    if expected_diffid and diffid != expected_diffid:
        raise LayerError('layer digest mismatch: the image config says %s, the content is %s'
                         % (expected_diffid, diffid))
    return diffid, members


# Extraction works through directory file descriptors: every directory on the
# way to an entry is opened with O_NOFOLLOW|O_DIRECTORY relative to the one
# before it, and the entry is made and given its metadata relative to (or
# through) a descriptor, so a symlink anywhere in the layer - planted by the
# layer, or left by a validator bug - is never followed out of it.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _xattrs(m):
    for key, value in (m.pax_headers or {}).items():
        if key.startswith('SCHILY.xattr.'):
            yield key[13:], value.encode('utf-8', 'surrogateescape')


def _meta_fd(fd, m):
    """Owner, mode, xattrs and times on the open file ``fd`` (not a path)."""
    os.chown(fd, m.uid, m.gid)  # before chmod and xattrs: chown clears setuid bits and caps
    os.chmod(fd, stat.S_IMODE(m.mode))
    for key, value in _xattrs(m):
        os.setxattr(fd, key, value)
    os.utime(fd, (m.mtime, m.mtime))


def _meta_symlink(dir_fd, name, m):
    """Owner, xattrs and times of the symlink itself (it has no mode)."""
    os.chown(name, m.uid, m.gid, dir_fd=dir_fd, follow_symlinks=False)
    # setxattr has no dir_fd: the directory through its /proc fd link, the
    # link itself not followed (lsetxattr)
    path = '/proc/self/fd/%d/%s' % (dir_fd, name)
    for key, value in _xattrs(m):
        try:
            os.setxattr(path, key, value, follow_symlinks=False)
        except PermissionError:
            pass  # Linux allows no user.* xattrs on symlinks; Docker ignores EPERM too
    os.utime(name, (m.mtime, m.mtime), dir_fd=dir_fd, follow_symlinks=False)


def _walk(root_fd, parts, create, why):
    """A new fd of the directory ``parts`` below ``root_fd``, every component
    opened without following symlinks (and made, 0755, if ``create``)."""
    fd = os.dup(root_fd)
    try:
        for i, p in enumerate(parts):
            try:
                try:
                    nfd = os.open(p, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(p, 0o755, dir_fd=fd)
                    nfd = os.open(p, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise LayerError('refusing %s: %r is not a directory of this layer (%s)'
                                     % (why, '/'.join(parts[:i + 1]), os.strerror(e.errno)))
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _lstat_at(dir_fd, name):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _rmtree_at(dir_fd, name):
    """Remove the directory ``name`` in ``dir_fd`` and all below it, by fds."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            st = os.stat(child, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                _rmtree_at(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _remove(dir_fd, name, rel, dirs):
    """Remove whatever is at ``name`` (a directory with everything below it)
    and forget the directory metadata recorded for what was removed."""
    st = _lstat_at(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        _rmtree_at(dir_fd, name)
        below = rel + '/'
        for d in [d for d in dirs if d == rel or d.startswith(below)]:
            del dirs[d]
    else:
        os.unlink(name, dir_fd=dir_fd)


def _extract_member(tf, m, rel, root_fd, dirs):
    parts = rel.split('/')
    base = parts[-1]
    pfd = _walk(root_fd, parts[:-1], True, 'to write %r' % m.name)
    try:
        if base.startswith(WH_PREFIX):
            if base == WH_OPAQUE:
                os.setxattr(pfd, OVERLAY_XATTR_PREFIX + 'opaque', b'y')
                return
            target = whiteout_target(base)
            if target is None:
                return  # aufs metadata (.wh..wh.plnk ...): no meaning here
            _remove(pfd, target, '/'.join(parts[:-1] + [target]), dirs)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
            return
        if m.isdir():
            st = _lstat_at(pfd, base)
            if st is None or not stat.S_ISDIR(st.st_mode):
                _remove(pfd, base, rel, dirs)
                os.mkdir(base, 0o700, dir_fd=pfd)
            dirs[rel] = m  # the last entry of a directory gives its metadata
            return
        _remove(pfd, base, rel, dirs)
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=pfd)
            with os.fdopen(fd, 'wb') as out:
                src = tf.extractfile(m)
                for chunk in iter(lambda: src.read(1 << 20), b''):
                    out.write(chunk)
                out.flush()
                _meta_fd(out.fileno(), m)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            _meta_symlink(pfd, base, m)
        elif m.islnk():
            tparts = clean_name(m.linkname).split('/')
            tfd = _walk(root_fd, tparts[:-1], False, 'to hard link %r' % m.name)
            try:
                st = _lstat_at(tfd, tparts[-1])
                if st is None or not stat.S_ISREG(st.st_mode):
                    raise LayerError('refusing to hard link %r to %r: not a regular file of '
                                     'this layer' % (m.name, m.linkname))
                os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd,
                        follow_symlinks=False)
            finally:
                os.close(tfd)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
            # O_NONBLOCK: opening a fifo for reading does not wait for a writer
            fd = os.open(base, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=pfd)
            try:
                _meta_fd(fd, m)
            finally:
                os.close(fd)
        else:  # validated already; defence in depth
            raise LayerError('member %r has an unsupported type %r' % (m.name, m.type))
    finally:
        os.close(pfd)


def extract_layer(fileobj, dest, expected_diffid):
    """Extract a layer (already validated by scan_layer) into the new dir ``dest``."""
    reader = HashingReader(fileobj)
    dirs = {}  # clean name -> the member giving a directory's metadata
    root_fd = os.open(dest, _DIR_FLAGS)
    try:
        try:
            with tarfile.open(fileobj=reader, mode='r|') as tf:
                state = new_state()
                for m in tf:
                    rel = validate_member(m, state)
                    if rel:
                        _extract_member(tf, m, rel, root_fd, dirs)
            reader.drain()
        except (tarfile.TarError, EOFError) as e:
            raise LayerError('corrupt or truncated layer tar: %s' % e)
        except (ValueError, OverflowError) as e:
            # anything the validator let through that the kernel still refuses
            raise LayerError('a member of the layer cannot be written: %s' % e)
        except RecursionError:
            raise LayerError('the layer nests directories too deeply')
        # directory modes and times last (writing children would change them),
        # deepest first, each only if it is still a real directory of the layer,
        # set through an fd opened without following symlinks
        for rel in sorted(dirs, key=lambda d: d.count('/'), reverse=True):
            fd = _walk(root_fd, rel.split('/'), False,
                       'to set the metadata of directory %r' % rel)
            try:
                _meta_fd(fd, dirs[rel])
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    diffid = 'sha256:' + reader.diff_hasher.hexdigest()
    if diffid != expected_diffid:
        raise LayerError('layer digest mismatch on extraction: %s != %s'
                         % (diffid, expected_diffid))
    return diffid
