# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local content-addressed image store fed from image archives.

Store layout (default ``/var/lib/nodocker-lab/images``)::

    layers/sha256/<diffid hex>/    one extracted layer, shared by every image
    configs/sha256/<digest hex>    image config blobs
    refs/<escaped name>.json       name -> config digest and ordered diff ids
    tmp/                           extraction in progress (renamed into place)

Imports run in two passes: the first reads the whole archive and validates
every blob digest, every layer digest (diff id) and every layer member
without writing anything; only then are new layers extracted into ``tmp/``
and renamed into place, so a hostile or broken archive leaves no trace.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile

from ansible_collections.nodocker.lab.plugins.module_utils._layers import (
    GZIP_MAGIC, WH_OPAQUE, WH_PREFIX, LayerError, extract_layer, scan_layer)
from ansible_collections.nodocker.lab.plugins.module_utils._plan import Plan, quote
from ansible_collections.nodocker.lab.plugins.module_utils._registry_client import (
    RegistryClient, RegistryError)

DEFAULT_STORE = '/var/lib/nodocker-lab/images'
_HEX64 = re.compile(r'^[0-9a-f]{64}$')
_DIGEST = re.compile(r'^sha256:[0-9a-f]{64}$')
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
GOARCH = {'x86_64': 'amd64', 'aarch64': 'arm64', 'armv7l': 'arm', 'ppc64le': 'ppc64le',
          's390x': 's390x', 'riscv64': 'riscv64'}


class ImageError(Exception):
    """An archive that cannot be imported, with the reason."""


def _hex(digest):
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ImageError('invalid digest %r (only sha256:<64 hex> is accepted)' % (digest,))
    return digest.split(':', 1)[1]


class Archive:
    """Random access to members of the outer archive (never extracted as such)."""

    def __init__(self, path):
        try:
            self.tf = tarfile.open(path, 'r:*')
            self.members = {}
            for m in self.tf.getmembers():
                n = m.name
                while n.startswith('./'):
                    n = n[2:]
                self.members[n] = m
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ImageError('cannot read image archive %s: %s' % (path, e))

    def has(self, name):
        return name in self.members

    def open(self, name):
        m = self.members.get(name)
        if m is None:
            raise ImageError('the archive has no member %r' % name)
        while m.islnk() or m.issym():  # docker save links identical layers
            target = m.linkname if m.islnk() else os.path.normpath(
                os.path.join(os.path.dirname(m.name), m.linkname))
            m = self.members.get(target)
            if m is None:
                raise ImageError('member %r links to a missing member' % name)
        if not m.isreg():
            raise ImageError('member %r is not a regular file' % name)
        return self.tf.extractfile(m)

    def read(self, name, digest=None):
        f = self.open(name)
        try:
            data = f.read()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ImageError('truncated archive reading %s: %s' % (name, e))
        if digest and hashlib.sha256(data).hexdigest() != _hex(digest):
            raise ImageError('digest mismatch for %s: expected %s, got sha256:%s'
                             % (name, digest, hashlib.sha256(data).hexdigest()))
        return data

    def close(self):
        self.tf.close()


class LayoutDir(Archive):
    """An OCI image layout directory (what a registry pull writes): the same
    interface as Archive, members are files below the directory."""

    def __init__(self, path):  # pylint: disable=super-init-not-called
        self.path = path

    def has(self, name):
        return os.path.isfile(self._path(name))

    def _path(self, name):
        norm = os.path.normpath(name)
        if norm.startswith(('/', '..')):
            raise ImageError('invalid member name %r' % name)
        return os.path.join(self.path, norm)

    def open(self, name):
        try:
            return open(self._path(name), 'rb')
        except OSError as e:
            raise ImageError('cannot read %s: %s' % (name, e))

    def close(self):
        pass


def open_archive(path):
    return LayoutDir(path) if os.path.isdir(path) else Archive(path)


def _json(data, what):
    try:
        return json.loads(data.decode('utf-8'))
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError('%s is not valid JSON: %s' % (what, e))


def normalized_name(name):
    """Docker's full spelling of an image name: ``nginx`` and ``nginx:latest`` are
    ``docker.io/library/nginx:latest``, ``me/app:1`` is ``docker.io/me/app:1``; a
    first component with a dot, a colon or ``localhost`` is a registry and is kept.
    skopeo and newer ``docker save`` write the full spelling into archives, users
    type the short one."""
    if '@' in name:
        repo, sep, rest = name.partition('@')
    else:
        slash, colon = name.rfind('/'), name.rfind(':')
        if colon > slash:
            repo, sep, rest = name[:colon], ':', name[colon + 1:]
        else:
            repo, sep, rest = name, ':', 'latest'
    first, slash, more = repo.partition('/')
    if not slash:
        repo = 'docker.io/library/' + repo
    elif not ('.' in first or ':' in first or first == 'localhost'):
        repo = 'docker.io/' + repo
    elif first == 'index.docker.io':
        repo = 'docker.io/' + more
    # Docker Hub's official images live under library/: docker.io/nginx is
    # docker.io/library/nginx
    hub, _slash, path = repo.partition('/')
    if hub == 'docker.io' and '/' not in path:
        repo = 'docker.io/library/' + path
    return repo + sep + rest


def _pick(candidates, name):
    """candidates: [(names, value)]. One image by name, or the only one."""
    if name:
        want = normalized_name(name)
        for names, value in candidates:
            if name in names or want in set(normalized_name(n) for n in names):
                return value
        raise ImageError('image %r is not in the archive (it has: %s)'
                         % (name, ', '.join(sorted(n for ns, _v in candidates for n in ns))
                            or 'no tagged images'))
    if len(candidates) != 1:
        raise ImageError('the archive holds %d images: say which one with name'
                         % len(candidates))
    return candidates[0][1]


def read_docker_archive(ar, name):
    """docker save: manifest.json -> (config bytes, config digest, [(member, None)])."""
    manifest = _json(ar.read('manifest.json'), 'manifest.json')
    if not isinstance(manifest, list) or not manifest:
        raise ImageError('manifest.json must be a non-empty list')
    entry = _pick([(e.get('RepoTags') or [], e) for e in manifest], name)
    cfg_name = entry.get('Config')
    if not isinstance(cfg_name, str):
        raise ImageError('manifest.json entry has no Config')
    stem = os.path.basename(cfg_name).split('.')[0]
    expected = 'sha256:' + stem if _HEX64.match(stem) else None
    config = ar.read(cfg_name, expected)
    layers = entry.get('Layers') or []
    blob_digests = []
    for layer in layers:
        base = os.path.basename(layer)
        blob_digests.append('sha256:' + base if _HEX64.match(base) else None)
    return config, list(zip(layers, blob_digests)), cfg_name


def _platform_ok(desc):
    plat = desc.get('platform') or {}
    if not plat:
        return True
    arch = GOARCH.get(platform.machine(), platform.machine())
    return plat.get('os', 'linux') == 'linux' and plat.get('architecture') == arch


def read_oci_archive(ar, name):
    """OCI image layout: index.json -> manifest -> config + layers (all verified)."""
    index = _json(ar.read('index.json'), 'index.json')
    candidates = []
    for desc in index.get('manifests') or []:
        ann = desc.get('annotations') or {}
        names = [n for n in (ann.get('org.opencontainers.image.ref.name'),
                             ann.get('io.containerd.image.name')) if n]
        candidates.append((names, desc))
    desc = _pick(candidates, name)
    for _depth in range(4):
        if desc.get('mediaType') in (OCI_INDEX, DOCKER_LIST):
            nested = _json(ar.read('blobs/sha256/' + _hex(desc['digest']), desc['digest']),
                           'image index')
            descs = [d for d in nested.get('manifests') or [] if _platform_ok(d)]
            if not descs:
                raise ImageError('the image index has no manifest for linux/%s'
                                 % GOARCH.get(platform.machine(), platform.machine()))
            desc = descs[0]
            continue
        break
    manifest = _json(ar.read('blobs/sha256/' + _hex(desc.get('digest')), desc.get('digest')),
                     'image manifest')
    cfg = manifest.get('config') or {}
    cfg_member = 'blobs/sha256/' + _hex(cfg.get('digest'))
    config = ar.read(cfg_member, cfg.get('digest'))
    layers = []
    for ld in manifest.get('layers') or []:
        mt = ld.get('mediaType', '')
        if 'zstd' in mt or 'nondistributable' in mt or 'foreign' in mt:
            raise ImageError('layer media type %r is not supported' % mt)
        layers.append(('blobs/sha256/' + _hex(ld.get('digest')), ld.get('digest')))
    return config, layers, cfg_member


def read_image(path, name):
    """Parse and fully validate an archive. Returns a dict describing the image."""
    ar = open_archive(path)
    try:
        if ar.has('index.json') and ar.has('oci-layout'):
            fmt = 'oci'
            config, layers, cfg_member = read_oci_archive(ar, name)
        elif ar.has('manifest.json'):
            fmt = 'docker'
            config, layers, cfg_member = read_docker_archive(ar, name)
        else:
            raise ImageError('%s is neither a docker save archive (manifest.json) nor an OCI '
                             'image layout (oci-layout, index.json)' % path)
        cfg = _json(config, 'image config')
        diff_ids = (cfg.get('rootfs') or {}).get('diff_ids') or []
        if len(diff_ids) != len(layers):
            raise ImageError('the image config lists %d layers (diff_ids) but the manifest '
                             'has %d' % (len(diff_ids), len(layers)))
        for d in diff_ids:
            _hex(d)
        return dict(format=fmt, config=config, config_digest='sha256:' +
                    hashlib.sha256(config).hexdigest(), diff_ids=diff_ids, layers=layers,
                    config_member=cfg_member)
    finally:
        ar.close()


def scan_layers(path, image, skip):
    """Pass 1: verify every (not yet stored) layer's blob digest, diff id and members.

    Returns {diff id: {'gzip': bool, 'whiteouts': [clean names]}} of the
    scanned layers, for the shell commands (tar -x reading a pipe does not
    detect gzip, and does not convert whiteouts)."""
    scanned = {}
    ar = open_archive(path)
    try:
        for (member, blob_digest), diffid in zip(image['layers'], image['diff_ids']):
            if diffid in skip:
                continue
            hasher = hashlib.sha256() if blob_digest else None
            try:
                _diffid, members = scan_layer(ar.open(member), diffid, hasher)
            except LayerError as e:
                raise ImageError('layer %s: %s' % (member, e))
            if hasher is not None and 'sha256:' + hasher.hexdigest() != blob_digest:
                raise ImageError('layer %s: blob digest mismatch (expected %s, got sha256:%s)'
                                 % (member, blob_digest, hasher.hexdigest()))
            head = ar.open(member)
            scanned[diffid] = {'gzip': head.read(len(GZIP_MAGIC)) == GZIP_MAGIC,
                               'whiteouts': [n for _m, n in members
                                             if os.path.basename(n).startswith(WH_PREFIX)]}
            head.close()
    finally:
        ar.close()
    return scanned


class Store:
    def __init__(self, root):
        self.root = root
        self.created = []  # directories ensure_dirs made in this run

    def layer_dir(self, diffid):
        return os.path.join(self.root, 'layers', 'sha256', _hex(diffid))

    def ref_path(self, name):
        safe = re.sub(r'[^A-Za-z0-9_.-]', lambda m: '%%%02x' % ord(m.group()), name)
        return os.path.join(self.root, 'refs', safe + '.json')

    def config_path(self, digest):
        return os.path.join(self.root, 'configs', 'sha256', _hex(digest))

    def read_ref(self, name):
        try:
            with open(self.ref_path(name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def all_refs(self):
        d = os.path.join(self.root, 'refs')
        out = []
        for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            try:
                with open(os.path.join(d, n)) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                pass
        return out

    SUBDIRS = ('layers/sha256', 'configs/sha256', 'refs', 'tmp')

    def missing_dirs(self):
        return [os.path.join(self.root, sub) for sub in self.SUBDIRS
                if not os.path.isdir(os.path.join(self.root, sub))]

    def ensure_dirs(self):
        for sub in self.SUBDIRS:
            path = os.path.join(self.root, sub)
            todo = []
            while not os.path.isdir(path):
                todo.append(path)
                path = os.path.dirname(path)
            for d in reversed(todo):
                try:
                    os.mkdir(d)
                except FileExistsError:
                    if not os.path.isdir(d):
                        raise
                    continue
                # remembered, so that a failed run can take back what it made
                self.created.append(d)

    def remove_created_dirs(self):
        """After a failure: remove the directories this run made, if still empty
        (a failed pull or import leaves no empty store behind)."""
        for d in reversed(self.created):
            try:
                os.rmdir(d)
            except OSError:
                pass
        self.created = []

    def add_layer(self, archive_path, member, diffid):
        tmp = tempfile.mkdtemp(prefix='layer-', dir=os.path.join(self.root, 'tmp'))
        try:
            os.chmod(tmp, 0o755)
            ar = open_archive(archive_path)
            try:
                extract_layer(ar.open(member), tmp, diffid)
            finally:
                ar.close()
            os.rename(tmp, self.layer_dir(diffid))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def write_atomic(self, path, data):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.tmp-')
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


def layer_paths(store, diff_ids):
    """Layer directories top first, as overlay's lowerdir wants them."""
    return [store.layer_dir(d) for d in reversed(diff_ids)]


def layers_in_use(store, diff_ids):
    """Layer dirs of ``diff_ids`` that appear in a mounted overlay here."""
    try:
        with open('/proc/self/mountinfo') as f:
            table = f.read()
    except OSError:
        return []
    return [store.layer_dir(d) for d in diff_ids if store.layer_dir(d) in table]


def whiteout_commands(layer, names):
    """What extract_layer does to whiteout entries, as shell commands on the
    directory plain ``tar -x`` made (where they are ordinary empty files)."""
    out = []
    for name in names:
        entry = os.path.join(layer, name)
        parent, base = os.path.split(entry)
        if base == WH_OPAQUE:
            out.append(quote(('rm', '-f', '--', entry)) + ' && ' +
                       quote(('setfattr', '-n', 'trusted.overlay.opaque', '-v', 'y', parent)))
        elif base.startswith(WH_PREFIX + WH_PREFIX):
            out.append(quote(('rm', '-f', '--', entry)))  # aufs metadata
        else:
            target = os.path.join(parent, base[len(WH_PREFIX):])
            out.append(quote(('rm', '-rf', '--', entry, target)) + ' && ' +
                       quote(('mknod', '-m', '600', target, 'c', '0', '0')))
    return out


def _import(plan, store, src, image, ref_name, fetch_command, scanned=None):
    """Extract the image's new layers from src (archive or layout directory),
    store its config and name it. ``fetch_command(member)`` is the shell
    command that produces the layer's tar stream (member ``config``: the
    config blob), ``scanned`` what scan_layers found in each new layer, both
    for ``commands``."""
    scanned = scanned or {}
    existing = store.read_ref(ref_name)
    stored = set(d for d in image['diff_ids'] if os.path.isdir(store.layer_dir(d)))
    new = []
    for diffid in image['diff_ids']:
        if diffid not in stored and diffid not in new:
            new.append(diffid)
    ref = dict(name=ref_name, config_digest=image['config_digest'],
               diff_ids=image['diff_ids'], format=image['format'])
    ref_text = json.dumps(ref, indent=1)
    need_config = not os.path.isfile(store.config_path(image['config_digest']))
    dirs = store.missing_dirs()
    if dirs and (new or need_config or existing != ref):
        plan.do(quote(['mkdir', '-p'] + dirs), store.ensure_dirs)
    done = []
    for (member, _blob), diffid in zip(image['layers'], image['diff_ids']):
        if diffid not in new or diffid in done:
            continue
        done.append(diffid)
        layer = store.layer_dir(diffid)
        info = scanned.get(diffid) or {}
        plan.do(quote(('mkdir', '-m', '755', layer)) + ' && ' + fetch_command(member) + ' | ' +
                quote(['tar', '--numeric-owner', '--no-overwrite-dir', '--xattrs',
                       '--xattrs-include=*'] + (['-z'] if info.get('gzip') else []) +
                      ['-x', '-C', layer]),
                lambda m=member, d=diffid: (store.ensure_dirs(), store.add_layer(src, m, d)))
        for cmd in whiteout_commands(layer, info.get('whiteouts') or []):
            plan.do(cmd)  # done by add_layer above
    if need_config:
        plan.do(fetch_command('config') + ' > ' + quote((store.config_path(image['config_digest']),)),
                lambda: (store.ensure_dirs(),
                         store.write_atomic(store.config_path(image['config_digest']),
                                            image['config'])))
    if existing != ref:
        plan.do(quote(('printf', '%s', ref_text)) + ' > ' + quote((store.ref_path(ref_name),)),
                lambda: (store.ensure_dirs(),
                         store.write_atomic(store.ref_path(ref_name), ref_text.encode())))
    cfg = json.loads(image['config'].decode())
    before = dict(name=ref_name, config_digest=existing and existing.get('config_digest'),
                  diff_ids=existing and existing.get('diff_ids'))
    return dict(changed=plan.changed, name=ref_name, config_digest=image['config_digest'],
                diff_ids=image['diff_ids'], layers=layer_paths(store, image['diff_ids']),
                new_layers=[store.layer_dir(d) for d in new],
                config=cfg.get('config') or {}, commands=plan.commands,
                diff=dict(before=before, after=dict(name=ref_name,
                                                    config_digest=image['config_digest'],
                                                    diff_ids=image['diff_ids'])))


def _layer_entries(manifest):
    layers = []
    for ld in manifest.get('layers') or []:
        mt = ld.get('mediaType', '')
        if 'zstd' in mt or 'nondistributable' in mt or 'foreign' in mt:
            raise ImageError('layer media type %r is not supported' % mt)
        layers.append(('blobs/sha256/' + _hex(ld.get('digest')), ld.get('digest')))
    return layers


def pull_image(plan, store, params):
    """Pull from a registry: manifest and config always (cheap, and they say
    whether anything changes), layer blobs only for layers not yet stored and
    never in check mode. Blobs go to a layout directory under the store's
    tmp/, are verified like an archive's, then imported; the directory is
    removed whatever happens."""
    client = RegistryClient(params['pull'], username=params['registry_username'],
                            password=params['registry_password'],
                            validate_certs=params['validate_certs'],
                            ca_path=params.get('ca_path'),
                            timeout=params['timeout'])
    manifest, manifest_digest = client.resolve()
    cfg_digest = (manifest.get('config') or {}).get('digest')
    _hex(cfg_digest)
    config = client.blob_bytes(cfg_digest)
    layers = _layer_entries(manifest)
    diff_ids = (_json(config, 'image config').get('rootfs') or {}).get('diff_ids') or []
    if len(diff_ids) != len(layers):
        raise ImageError('the image config lists %d layers (diff_ids) but the manifest has %d'
                         % (len(diff_ids), len(layers)))
    for d in diff_ids:
        _hex(d)
    image = dict(format='registry', config=config, config_digest=cfg_digest,
                 diff_ids=diff_ids, layers=layers)
    ref_name = params['name'] or str(client.ref)
    stored = set(d for d in diff_ids if os.path.isdir(store.layer_dir(d)))
    missing = dict((member, blob) for (member, blob), d in zip(layers, diff_ids)
                   if d not in stored)
    auth = ' -H "Authorization: $TOKEN"' if client.auth else ''
    # curl trusts what the pull trusted
    if client.ref.scheme == 'https' and not client.validate_certs:
        auth = ' -k' + auth
    elif client.ref.scheme == 'https' and client.ca_path:
        auth = ' --cacert %s%s' % (quote((client.ca_path,)), auth)

    def fetch_command(member):
        digest = cfg_digest if member == 'config' else missing.get(member, '')
        return 'curl -fsSL%s %s/blobs/%s' % (auth, client.ref.base_url, digest)

    tmpdir = None
    try:
        if missing and not plan.check_mode:
            store.ensure_dirs()
            tmpdir = tempfile.mkdtemp(prefix='pull-', dir=os.path.join(store.root, 'tmp'))
            os.makedirs(os.path.join(tmpdir, 'blobs', 'sha256'))
            for member, blob in missing.items():
                client.blob_to_file(blob, os.path.join(tmpdir, member))
            scanned = scan_layers(tmpdir, image, stored)  # verified before anything is extracted
        else:  # check mode: no layer downloaded; the media type says gzip, whiteouts unknown
            scanned = dict((d, {'gzip': 'gzip' in (ld.get('mediaType') or '')})
                           for ld, d in zip(manifest.get('layers') or [], diff_ids))
        result = _import(plan, store, tmpdir, image, ref_name, fetch_command, scanned)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    result['manifest_digest'] = manifest_digest
    result['reference'] = str(client.ref)
    return result


def run_image(module):
    p = module.params
    plan = Plan(module.check_mode)
    store = Store(os.path.normpath(p['store']))
    name = p['name']
    try:
        if not p['store'].startswith('/'):
            raise ImageError('store must be an absolute path')
        existing = store.read_ref(name) if name else None
        before = dict(name=name, config_digest=existing and existing.get('config_digest'),
                      diff_ids=existing and existing.get('diff_ids'))
        if p['state'] == 'absent':
            if not name:
                raise ImageError('state=absent needs name')
            if existing is None:
                return dict(changed=False, name=name, layers=[], new_layers=[], commands=[],
                            diff=dict(before=before, after=before))
            others = set(d for r in store.all_refs() if r.get('name') != name
                         for d in r.get('diff_ids') or [])
            unused = [d for d in existing['diff_ids'] if d not in others]
            busy = layers_in_use(store, unused)
            if busy:
                raise ImageError('layers of %s are lower layers of a mounted overlay: %s; '
                                 'unmount it first' % (name, ', '.join(busy)))
            plan.do(quote(('rm', store.ref_path(name))), os.unlink, store.ref_path(name))
            for d in dict.fromkeys(unused):
                plan.do(quote(('rm', '-rf', store.layer_dir(d))), shutil.rmtree,
                        store.layer_dir(d))
            after = dict(name=name, config_digest=None, diff_ids=None)
            return dict(changed=True, name=name, layers=[], new_layers=[],
                        commands=plan.commands, diff=dict(before=before, after=after))
        if p.get('pull'):
            return pull_image(plan, store, p)
        src = p['src']
        if not src:
            raise ImageError('state=present needs src (a docker save or OCI archive) or pull '
                             '(a registry reference)')
        if not os.path.isfile(src):
            raise ImageError('src %s is not a file' % src)
        image = read_image(src, name)
        stored = set(d for d in image['diff_ids'] if os.path.isdir(store.layer_dir(d)))
        scanned = scan_layers(src, image, stored)  # pass 1: everything verified, nothing written
        return _import(plan, store, src, image, name or image['config_digest'],
                       lambda member: quote(('tar', '-xOf', src, image['config_member']
                                             if member == 'config' else member)),
                       scanned)
    except (ImageError, LayerError, RegistryError, OSError) as e:
        store.remove_created_dirs()
        module.fail_json(msg='image: %s' % e, commands=plan.commands)
    except BaseException:
        store.remove_created_dirs()
        raise
