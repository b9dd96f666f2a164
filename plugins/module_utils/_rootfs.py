# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root filesystems made of host programs (chapter 1: ``myroot``).

What the course does by hand with ``ldd`` and ``cp``:

* read each program's ELF headers (pure Python, no ``ldd``: ``ldd`` runs the
  program's loader, which is unsafe on untrusted files) for its dynamic loader
  (``PT_INTERP``) and the libraries it needs (``DT_NEEDED``), then the
  libraries of those libraries;
* find each library the way the loader does (``RUNPATH``/``RPATH`` with
  ``$ORIGIN``, ``/etc/ld.so.conf``, the default directories) picking the one
  of the same ELF class and machine;
* copy every file to the *same path* under the new root. Each path is
  mirrored component by component: a host symlink on the way (``/bin ->
  usr/bin``, ``/lib64 -> usr/lib64``) becomes the same symlink in the new root
  and the walk continues at its target, so the new root has the host's layout
  and the loader finds the libraries at the paths the program asks for.

Everything is planned before anything is written: a missing library or a
conflicting file fails the task with nothing changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import tempfile

from ansible_collections.nodocker.lab.plugins.module_utils._plan import Plan, quote

MARKER = '.nodocker-lab-rootfs'
MARKER_TEXT = json.dumps({'made_by': 'nodocker.lab.rootfs'})  # the marker's one line
MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)

PT_DYNAMIC = 2
PT_INTERP = 3
PT_LOAD = 1
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_RPATH = 15
DT_RUNPATH = 29

DEFAULT_LIB_DIRS = ('/lib64', '/usr/lib64', '/lib', '/usr/lib')
MERGED_USR_LINKS = ('/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32')


class RootfsError(Exception):
    """Bad input or a state the module must not overwrite."""


# ---------------------------------------------------------------- ELF reading

class ElfInfo:
    """What the loader needs to know about one ELF file."""

    def __init__(self, path, elf_class, machine, interp, needed, search_paths):
        self.path = path
        self.elf_class = elf_class      # 1: 32-bit, 2: 64-bit
        self.machine = machine          # e_machine (62 = x86_64)
        self.interp = interp            # PT_INTERP or None (static)
        self.needed = needed            # DT_NEEDED names, in order
        self.search_paths = search_paths  # RUNPATH/RPATH with $ORIGIN expanded


def _cstring(data, offset):
    end = data.index(b'\0', offset)
    return data[offset:end].decode('utf-8', 'surrogateescape')


def read_elf(path):
    """Parse ``path``'s ELF headers; None when it is not an ELF file."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:4] != b'\x7fELF':
        return None
    elf_class, elf_data = data[4], data[5]
    if elf_class not in (1, 2) or elf_data not in (1, 2):
        raise RootfsError('%s: unsupported ELF class/encoding' % path)
    end = '<' if elf_data == 1 else '>'
    try:
        machine = struct.unpack_from(end + 'H', data, 18)[0]
        if elf_class == 2:
            phoff = struct.unpack_from(end + 'Q', data, 32)[0]
            phentsize, phnum = struct.unpack_from(end + 'HH', data, 54)
            ph_fmt, dyn_fmt = end + 'IIQQQQQQ', end + 'qQ'
        else:
            phoff = struct.unpack_from(end + 'I', data, 28)[0]
            phentsize, phnum = struct.unpack_from(end + 'HH', data, 42)
            ph_fmt, dyn_fmt = end + 'IIIIIIII', end + 'iI'
        segments = []
        for i in range(phnum):
            f = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
            if elf_class == 2:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = f[:6]
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = f[:5]
            segments.append((p_type, p_offset, p_vaddr, p_filesz))
        interp = None
        dynamic = []
        for p_type, p_offset, _vaddr, p_filesz in segments:
            if p_type == PT_INTERP:
                interp = _cstring(data, p_offset)
            elif p_type == PT_DYNAMIC:
                size = struct.calcsize(dyn_fmt)
                for off in range(p_offset, p_offset + p_filesz, size):
                    tag, val = struct.unpack_from(dyn_fmt, data, off)
                    if tag == DT_NULL:
                        break
                    dynamic.append((tag, val))
        strtab = None
        for tag, val in dynamic:
            if tag == DT_STRTAB:
                # DT_STRTAB is a virtual address: find the file offset
                for p_type, p_offset, p_vaddr, p_filesz in segments:
                    if p_type == PT_LOAD and p_vaddr <= val < p_vaddr + p_filesz:
                        strtab = val - p_vaddr + p_offset
        needed, runpath, rpath = [], [], []
        if strtab is not None:
            for tag, val in dynamic:
                if tag == DT_NEEDED:
                    needed.append(_cstring(data, strtab + val))
                elif tag == DT_RUNPATH:
                    runpath.extend(_cstring(data, strtab + val).split(':'))
                elif tag == DT_RPATH:
                    rpath.extend(_cstring(data, strtab + val).split(':'))
    except (struct.error, ValueError, IndexError) as e:
        raise RootfsError('%s: truncated or corrupt ELF file (%s)' % (path, e))
    origin = os.path.dirname(os.path.realpath(path))
    # RPATH is ignored by the loader when RUNPATH is present
    search = [p.replace('$ORIGIN', origin).replace('${ORIGIN}', origin)
              for p in (runpath or rpath) if p]
    return ElfInfo(path, elf_class, machine, interp, needed, search)


def ld_so_conf_dirs(conf='/etc/ld.so.conf', _depth=0):
    """Library directories listed in ld.so.conf, following ``include`` lines."""
    dirs = []
    if _depth > 10:
        return dirs
    try:
        with open(conf) as f:
            lines = f.read().splitlines()
    except OSError:
        return dirs
    for line in lines:
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith('include '):
            pattern = line.split(None, 1)[1]
            if not pattern.startswith('/'):
                pattern = os.path.join(os.path.dirname(conf), pattern)
            for inc in sorted(glob.glob(pattern)):
                dirs.extend(ld_so_conf_dirs(inc, _depth + 1))
        else:
            dirs.append(line)
    return dirs


class LibraryResolver:
    """Find a DT_NEEDED name the way ld.so does (without its cache)."""

    def __init__(self, conf_dirs=None, default_dirs=DEFAULT_LIB_DIRS):
        self.conf_dirs = ld_so_conf_dirs() if conf_dirs is None else list(conf_dirs)
        self.default_dirs = list(default_dirs)
        self._elf_cache = {}

    def _elf(self, path):
        if path not in self._elf_cache:
            try:
                self._elf_cache[path] = read_elf(path)
            except (OSError, RootfsError):
                self._elf_cache[path] = None
        return self._elf_cache[path]

    def resolve(self, name, requester):
        if '/' in name:
            return name if os.path.isfile(name) else None
        for d in requester.search_paths + self.conf_dirs + self.default_dirs:
            cand = os.path.join(d, name)
            if not os.path.isfile(cand):
                continue
            info = self._elf(cand)
            if info is not None and info.elf_class == requester.elf_class \
                    and info.machine == requester.machine:
                return cand
        return None

    def closure(self, program):
        """Every file ``program`` needs to run: itself, loader, libraries (ordered)."""
        result, queue, seen = [], [program], set()
        while queue:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            result.append(path)
            info = read_elf(path)
            if info is None:
                interp = shebang_interpreter(path)
                if interp:
                    queue.append(interp)
                continue
            if info.interp:
                queue.append(info.interp)
            for name in info.needed:
                lib = self.resolve(name, info)
                if lib is None:
                    raise RootfsError(
                        'library %s needed by %s was not found (searched RUNPATH, '
                        '/etc/ld.so.conf and %s)' % (name, path, ', '.join(self.default_dirs)))
                queue.append(lib)
        return result


def shebang_interpreter(path):
    """'#!/bin/sh -e' -> '/bin/sh' (scripts need their interpreter too)."""
    with open(path, 'rb') as f:
        head = f.read(256)
    if head.startswith(b'#!'):
        words = head[2:].split(b'\n', 1)[0].split()
        if words and words[0].startswith(b'/'):
            return words[0].decode('utf-8', 'surrogateescape')
    return None


# ---------------------------------------------------------- mirroring paths

def mirror_entries(host_path, entries, seen, final_required=True, _depth=0):
    """Entries that recreate ``host_path`` under a new root, symlinks included.

    Appends ('dir', path, mode), ('symlink', path, target) and ('file', path,
    source) tuples (paths absolute, as seen inside the new root) to
    ``entries``. Returns the symlink-free host path reached.
    """
    if _depth > MAX_SYMLINKS:
        raise RootfsError('too many levels of symbolic links resolving %s' % host_path)
    parts = [p for p in os.path.normpath(host_path).split('/') if p]
    cur = ''
    for i, name in enumerate(parts):
        cur = cur + '/' + name
        last = i == len(parts) - 1
        try:
            st = os.lstat(cur)
        except OSError:
            if last and not final_required:
                return cur
            raise RootfsError('%s does not exist on this host' % cur)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(cur)
            if cur not in seen:
                seen.add(cur)
                entries.append(('symlink', cur, target))
            base = '/' if target.startswith('/') else os.path.dirname(cur)
            resolved = os.path.normpath(os.path.join(base, target, *parts[i + 1:]))
            return mirror_entries(resolved, entries, seen, final_required, _depth + 1)
        if stat.S_ISDIR(st.st_mode):
            if cur not in seen:
                seen.add(cur)
                entries.append(('dir', cur, stat.S_IMODE(st.st_mode)))
        elif last and stat.S_ISREG(st.st_mode):
            if cur not in seen:
                seen.add(cur)
                entries.append(('file', cur, cur))
        else:
            raise RootfsError('%s is neither a directory, a regular file nor a symlink' % cur)
    return '/' + '/'.join(parts)


def file_digest(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def same_file_content(src, dst):
    s, d = os.stat(src), os.lstat(dst)
    if not stat.S_ISREG(d.st_mode) or s.st_size != d.st_size \
            or stat.S_IMODE(s.st_mode) != stat.S_IMODE(d.st_mode):
        return False
    return file_digest(src) == file_digest(dst)


def busybox_applets(busybox):
    """Applet paths ('bin/ls', 'usr/bin/awk', ...) as busybox itself lists them."""
    try:
        out = subprocess.run([busybox, '--list-full'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, check=True).stdout
        return [line.strip() for line in out.decode().splitlines() if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        out = subprocess.run([busybox, '--list'], stdout=subprocess.PIPE, check=True).stdout
        return ['bin/' + n.strip() for n in out.decode().splitlines() if n.strip()]


# ----------------------------------------------------------------- the plan

class RootfsBuilder:
    """Compare the wanted tree with what ``root`` holds and apply the difference."""

    def __init__(self, root, plan):
        self.root = root
        self.plan = plan
        self.changed_files = []

    def inside(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def check_entry(self, entry):
        """'ok', 'create' or 'replace' for one entry; RootfsError on a conflict."""
        kind, path = entry[0], entry[1]
        dst = self.inside(path)
        try:
            st = os.lstat(dst)
        except OSError:
            return 'create'
        if kind == 'dir':
            if stat.S_ISDIR(st.st_mode):
                return 'ok'
            raise RootfsError('%s exists in the new root but is not a directory (the host '
                              'has a directory there)' % path)
        if stat.S_ISDIR(st.st_mode):
            raise RootfsError('%s is a directory in the new root; the host has a %s there'
                              % (path, kind))
        if kind == 'symlink':
            if stat.S_ISLNK(st.st_mode) and os.readlink(dst) == entry[2]:
                return 'ok'
            return 'replace'
        if kind == 'file':
            if stat.S_ISLNK(st.st_mode):
                return 'replace'
            return 'ok' if same_file_content(entry[2], dst) else 'replace'
        return 'ok'

    def apply(self, entries):
        actions = [(e, self.check_entry(e)) for e in entries]  # all checks first
        for entry, action in actions:
            if action == 'ok':
                continue
            kind, path = entry[0], entry[1]
            dst = self.inside(path)
            if kind == 'dir':
                self.plan.do(quote(('mkdir', '-m', '%o' % entry[2], dst)), make_dir, dst, entry[2])
            elif kind == 'symlink':
                flag = '-sfn' if action == 'replace' else '-s'
                self.plan.do(quote(('ln', flag, entry[2], dst)), make_symlink, entry[2], dst)
                self.changed_files.append(path)
            else:
                self.plan.do(quote(('cp', '-a', '--parents', entry[2], self.root + '/')),
                             copy_file, entry[2], dst)
                self.changed_files.append(path)


def make_dir(dst, mode):
    os.mkdir(dst)
    os.chmod(dst, mode)


def make_symlink(target, dst):
    tmp = dst + '.ndl-tmp'
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, dst)


def copy_file(src, dst):
    """Copy content, mode and times, atomically (no half-written library)."""
    fd, tmp = tempfile.mkstemp(prefix='.ndl-', dir=os.path.dirname(dst))
    os.close(fd)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def check_root_path(path):
    if not path or not path.startswith('/'):
        raise RootfsError('path %r must be an absolute path' % (path,))
    norm = os.path.normpath(path)
    if os.path.realpath(norm) == '/' or norm in ('/', '/usr', '/etc', '/bin', '/lib', '/var',
                                                 '/home', '/root', '/tmp', '/run'):
        raise RootfsError('path %r is a system directory; give a directory of its own' % path)
    return norm


def marker_path(root):
    return os.path.join(root, MARKER)


def is_managed(root):
    return os.path.isfile(marker_path(root))


def plan_entries(programs, busybox, find_program, resolver=None):
    """All entries for the programs (and busybox), or RootfsError."""
    resolver = resolver or LibraryResolver()
    entries, seen = [], set()
    # merged-/usr hosts (/bin -> usr/bin, ...): keep those links so that the
    # course's /bin/sh works whichever PATH directory a program was found in
    for top in MERGED_USR_LINKS:
        if os.path.islink(top) and os.path.isdir(top):
            mirror_entries(top, entries, seen)
    for prog in programs:
        host = prog if prog.startswith('/') else find_program(prog)
        if not host or not os.path.exists(host):
            raise RootfsError('program %r was not found on this host%s'
                              % (prog, '' if prog.startswith('/') else ' (searched PATH)'))
        # the name the program is called by: mirror it (symlinks included) ...
        real = mirror_entries(host, entries, seen)
        # ... then its loader and libraries, each under its own path
        for needed in resolver.closure(real)[1:]:
            mirror_entries(needed, entries, seen)
    if busybox:
        bb = find_program('busybox')
        if not bb:
            raise RootfsError('busybox: true needs busybox on the host '
                              '(apt-get install busybox-static)')
        real_bb = mirror_entries(bb, entries, seen)
        for needed in resolver.closure(real_bb)[1:]:
            mirror_entries(needed, entries, seen)
        taken = set(e[1] for e in entries)
        for applet in busybox_applets(real_bb):
            parent, name = os.path.split('/' + applet.lstrip('/'))
            real_parent = mirror_entries(parent, entries, seen, final_required=False) \
                if parent != '/' else ''
            link = real_parent + '/' + name
            if link in taken or link == real_bb:
                continue  # a real program copied from the host wins over an applet
            taken.add(link)
            seen.add(link)
            # absolute target: right in any chroot/pivot_root, wherever the link is
            entries.append(('symlink', link, real_bb))
        # directories that do not exist on the host still need creating
        entries = _order_dirs(entries)
    return entries


def _order_dirs(entries):
    """Add missing parent 'dir' entries (mode 0755) before the entries needing them."""
    have = set(e[1] for e in entries if e[0] in ('dir', 'symlink'))
    out = []
    for e in entries:
        parent = os.path.dirname(e[1])
        missing = []
        while parent not in ('/', '') and parent not in have:
            missing.append(parent)
            have.add(parent)
            parent = os.path.dirname(parent)
        out.extend(('dir', d, 0o755) for d in reversed(missing))
        out.append(e)
    return out


def tree_files(root):
    """Every non-directory path in ``root`` (inside-root form), for diffs."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = '/' + os.path.relpath(dirpath, root).lstrip('.')
        for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            if n != MARKER:
                files.append(os.path.normpath(os.path.join(rel, n)))
    return sorted(files)


def run_rootfs(module):
    p = module.params
    plan = Plan(module.check_mode)
    try:
        root = check_root_path(p['path'])
        exists = os.path.lexists(root)
        if exists and not os.path.isdir(root) or os.path.islink(root):
            raise RootfsError('%s exists and is not a directory' % root)
        managed = exists and is_managed(root)
        if p['state'] == 'absent':
            if not exists:
                return dict(changed=False, path=root, files=[], commands=[],
                            diff=dict(before={'path': root, 'state': 'absent'},
                                      after={'path': root, 'state': 'absent'}))
            if not managed:
                raise RootfsError('%s was not made by nodocker.lab.rootfs (no %s marker); '
                                  'refusing to delete it' % (root, MARKER))
            before = tree_files(root)
            plan.do(quote(('rm', '-rf', '--one-file-system', root)), remove_tree, root)
            return dict(changed=True, path=root, files=before, commands=plan.commands,
                        diff=dict(before={'path': root, 'state': 'present', 'files': before},
                                  after={'path': root, 'state': 'absent'}))
        if exists and not managed and os.listdir(root):
            raise RootfsError('%s already exists, is not empty and was not made by '
                              'nodocker.lab.rootfs; give an empty or new directory' % root)
        entries = plan_entries(p['programs'] or [], p['busybox'],
                               module.get_bin_path)
        before = tree_files(root) if exists else []
        made_root = False
        if not exists:
            plan.do(quote(('mkdir', '-p', root)), os.makedirs, root)
            made_root = True
        if not managed:
            plan.do(quote(('echo', MARKER_TEXT)) + ' > ' + quote((marker_path(root),)),
                    write_marker, root, p)
        builder = RootfsBuilder(root, plan)
        if module.check_mode and not exists:
            builder.check_entry = lambda e: 'create'
        try:
            builder.apply(entries)
        except Exception:
            if made_root and not module.check_mode:
                remove_tree(root)  # nothing half-made
            raise
    except (RootfsError, OSError, subprocess.CalledProcessError) as e:
        module.fail_json(msg='rootfs: %s' % e, commands=plan.commands)
    after = before if not plan.changed else sorted(set(before) | set(builder.changed_files))
    return dict(changed=plan.changed, path=root, files=builder.changed_files,
                commands=plan.commands,
                diff=dict(before={'path': root, 'state': 'present' if exists else 'absent',
                                  'files': before},
                          after={'path': root, 'state': 'present', 'files': after}))


def write_marker(root, params):
    with open(marker_path(root), 'w') as f:
        f.write(MARKER_TEXT + '\n')


def remove_tree(root):
    """rm -rf, refusing to cross into anything mounted below (a bound /proc...)."""
    dev = os.lstat(root).st_dev
    for dirpath, dirnames, _files in os.walk(root):
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full) and os.lstat(full).st_dev != dev:
                raise RootfsError('%s is a mount point; unmount it before removing %s'
                                  % (full, root))
    shutil.rmtree(root)
