# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image layers: validate a layer tar completely, then extract it as Docker does.

A layer is untrusted input. ``validate_layer`` reads every member before a
single byte is written and rejects: absolute names, ``..`` components,
symlinks whose relative target climbs out of the layer, hard links to
anything but an earlier regular file of the same layer, entries written
through a symlink planted by an earlier entry, device nodes, overlayfs'
own ``trusted.overlay.*`` xattrs, a truncated or corrupt stream and a
digest that is not the one announced. ``extract_layer`` then writes into a
temporary directory and the caller renames it into place.

Whiteouts are converted to what overlayfs understands:
``DIR/.wh.NAME`` -> a 0:0 character device ``DIR/NAME``;
``DIR/.wh..wh..opq`` -> xattr ``trusted.overlay.opaque=y`` on ``DIR``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
    return '/'.join(parts)


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


def validate_member(m, state):
    """Check one member against everything seen before it; return its clean name."""
    name = clean_name(m.name)
    if not name:
        if m.isdir():
            return ''
        raise LayerError('member %r has an empty path' % m.name)
    parts = name.split('/')
    # nothing may be written through a symlink made by an earlier entry
    for i in range(1, len(parts)):
        if '/'.join(parts[:i]) in state['symlinks']:
            raise LayerError('member %r would be written through the symlink %r planted '
                             'by an earlier entry' % (m.name, '/'.join(parts[:i])))
    if m.ischr() or m.isblk():
        raise LayerError('member %r is a device node (%s %d:%d); layers may not carry '
                         'devices' % (m.name, 'char' if m.ischr() else 'block',
                                      m.devmajor, m.devminor))
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
        raise LayerError('member %r has an unsupported type %r' % (m.name, m.type))
    for key in (m.pax_headers or {}):
        if key.startswith('SCHILY.xattr.' + OVERLAY_XATTR_PREFIX):
            raise LayerError('member %r sets the overlayfs xattr %r' % (m.name, key[13:]))
    if m.issym():
        if not m.linkname:
            raise LayerError('symlink %r has an empty target' % m.name)
        # absolute targets resolve inside the container's root: harmless;
        # relative ones must not climb above the layer
        if not m.linkname.startswith('/') and not _inside(parts[:-1], m.linkname):
            raise LayerError('symlink %r -> %r leads outside the layer' % (m.name, m.linkname))
        state['symlinks'].add(name)
    else:
        state['symlinks'].discard(name)
    if m.islnk():
        try:
            target = clean_name(m.linkname)
        except LayerError:
            raise LayerError('hard link %r -> %r leads outside the layer' % (m.name, m.linkname))
        if target not in state['files']:
            raise LayerError('hard link %r -> %r does not point to an earlier regular file of '
                             'this layer' % (m.name, m.linkname))
        state['files'].add(name)
    elif m.isreg():
        state['files'].add(name)
    else:
        state['files'].discard(name)
    return name


def scan_layer(fileobj, expected_diffid=None, compressed_hasher=None):
    """Validate a whole layer stream; return (diffid, [(member, clean name)]).

    Writes nothing. Raises LayerError on any problem.
    """
    reader = HashingReader(fileobj, compressed_hasher)
    state = {'symlinks': set(), 'files': set()}
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


def _apply_meta(path, m, is_link=False):
    os.lchown(path, m.uid, m.gid)
    if not is_link:
        os.chmod(path, stat.S_IMODE(m.mode))
    for key, value in (m.pax_headers or {}).items():
        if key.startswith('SCHILY.xattr.'):
            os.setxattr(path, key[13:], value.encode('utf-8', 'surrogateescape'),
                        follow_symlinks=False)
    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)


def _make_parents(dest, rel):
    cur = dest
    for p in rel.split('/')[:-1]:
        cur = os.path.join(cur, p)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):  # validated already; defence in depth
            raise LayerError('refusing to write below non-directory %s' % cur)


def _remove(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil
        shutil.rmtree(path)
    else:
        os.unlink(path)


def extract_layer(fileobj, dest, expected_diffid):
    """Extract a layer (already validated by scan_layer) into the new dir ``dest``."""
    reader = HashingReader(fileobj)
    dirs = []
    try:
        with tarfile.open(fileobj=reader, mode='r|') as tf:
            state = {'symlinks': set(), 'files': set()}
            for m in tf:
                rel = validate_member(m, state)
                if not rel:
                    continue
                base = os.path.basename(rel)
                _make_parents(dest, rel)
                path = os.path.join(dest, rel)
                if base == WH_OPAQUE:
                    parent = os.path.dirname(path)
                    os.setxattr(parent, OVERLAY_XATTR_PREFIX + 'opaque', b'y')
                    continue
                if base.startswith(WH_PREFIX):
                    if base.startswith(WH_PREFIX + WH_PREFIX):
                        continue  # aufs metadata (.wh..wh.plnk ...): no meaning here
                    target = os.path.join(os.path.dirname(path), base[len(WH_PREFIX):])
                    _remove(target)
                    os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
                    continue
                if m.isdir():
                    if not os.path.isdir(path) or os.path.islink(path):
                        _remove(path)
                        os.mkdir(path, 0o700)
                    dirs.append((path, m))
                    continue
                _remove(path)
                if m.isreg():
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o600)
                    with os.fdopen(fd, 'wb') as out:
                        src = tf.extractfile(m)
                        for chunk in iter(lambda: src.read(1 << 20), b''):
                            out.write(chunk)
                    _apply_meta(path, m)
                elif m.issym():
                    os.symlink(m.linkname, path)
                    _apply_meta(path, m, is_link=True)
                elif m.islnk():
                    os.link(os.path.join(dest, clean_name(m.linkname)), path,
                            follow_symlinks=False)
                elif m.isfifo():
                    os.mkfifo(path)
                    _apply_meta(path, m)
        reader.drain()
    except (tarfile.TarError, EOFError) as e:
        raise LayerError('corrupt or truncated layer tar: %s' % e)
    # directory modes and times last: writing children would change them
    for path, m in reversed(dirs):
        _apply_meta(path, m)
    diffid = 'sha256:' + reader.diff_hasher.hexdigest()
    if diffid != expected_diffid:
        raise LayerError('layer digest mismatch on extraction: %s != %s'
                         % (diffid, expected_diffid))
    return diffid
