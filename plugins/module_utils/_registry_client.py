# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small OCI distribution (registry API v2) client: what ``docker pull`` does.

Standard library only (``urllib``). Steps, as in the distribution spec:

1. ``GET /v2/<name>/manifests/<tag or digest>`` accepting OCI and Docker
   manifests and manifest lists / OCI indexes;
2. on ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``
   get a token from the realm (with the user's credentials as HTTP basic auth
   when given, anonymously otherwise) and retry with
   ``Authorization: Bearer <token>``; a ``Basic`` challenge is answered with
   the credentials directly;
3. a manifest list / index is resolved to the manifest for this machine's
   platform (linux/amd64 on x86_64);
4. the config and the layer blobs are fetched from ``/v2/<name>/blobs/<digest>``.

Every manifest fetched by digest, the config and every blob are checked
against their sha256 digest; a tag's manifest is checked against the
registry's ``Docker-Content-Digest`` header when it sends one.

HTTPS is verified against the system's CA store, or only against the CA
certificates of ``ca_path`` (a private registry's CA), or not at all with
``validate_certs=False``; the same context serves the token server.

Blobs are written as an OCI image layout *directory* (``blobs/sha256/<hex>``)
that ``_image`` then imports exactly like an archive.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os
import platform
import re
import ssl

from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPRedirectHandler, HTTPSHandler, Request, build_opener

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
GOARCH = {'x86_64': 'amd64', 'aarch64': 'arm64', 'armv7l': 'arm', 'ppc64le': 'ppc64le',
          's390x': 's390x', 'riscv64': 'riscv64'}
DOCKER_HUB = 'registry-1.docker.io'
_DIGEST = re.compile(r'^sha256:[0-9a-f]{64}$')
_TAG = re.compile(r'^[\w][\w.-]{0,127}$')
_NAME = re.compile(r'^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$')
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
CHUNK = 1 << 20


class RegistryError(Exception):
    """A pull that cannot be done, with the reason."""


def local_arch():
    return GOARCH.get(platform.machine(), platform.machine())


class Reference:
    """``[scheme://][registry/]name[:tag][@sha256:...]`` parsed Docker's way.

    Without a registry part (a first component with no ``.`` or ``:`` and not
    ``localhost``) the registry is Docker Hub and a one-part name gets
    ``library/``. Without a scheme the registry is reached over HTTPS.
    """

    def __init__(self, text):
        self.text = text
        rest = text.strip()
        self.scheme = 'https'
        m = re.match(r'^(https?)://', rest)
        if m:
            self.scheme, rest = m.group(1), rest[m.end():]
        self.digest = None
        if '@' in rest:
            rest, self.digest = rest.rsplit('@', 1)
            if not _DIGEST.match(self.digest):
                raise RegistryError('%r: the digest must be sha256:<64 hex digits>' % text)
        first, _sep, remainder = rest.partition('/')
        if remainder and ('.' in first or ':' in first or first == 'localhost'):
            self.registry, rest = first, remainder
        else:
            self.registry = DOCKER_HUB
            if '/' not in rest:
                rest = 'library/' + rest
        self.tag = None
        last = rest.rsplit('/', 1)[-1]
        if ':' in last:
            rest, self.tag = rest.rsplit(':', 1)
            if not _TAG.match(self.tag):
                raise RegistryError('%r: invalid tag %r' % (text, self.tag))
        if not self.tag and not self.digest:
            self.tag = 'latest'
        if not rest or not _NAME.match(rest):
            raise RegistryError('%r: invalid repository name %r (lower case letters, digits, '
                                'separators . _ - and /)' % (text, rest))
        self.name = rest

    @property
    def base_url(self):
        return '%s://%s/v2/%s' % (self.scheme, self.registry, self.name)

    @property
    def manifest_ref(self):
        return self.digest or self.tag

    def __str__(self):
        out = '%s/%s' % (self.registry, self.name)
        if self.tag:
            out += ':' + self.tag
        if self.digest:
            out += '@' + self.digest
        return out


class _NoAuthOnRedirect(HTTPRedirectHandler):
    """Blob downloads are often redirected to a storage server: never send the
    registry's token to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.headers.pop('Authorization', None)
            new.unredirected_hdrs.pop('Authorization', None)
        return new


def parse_challenge(header):
    """``Bearer realm="…",service="…"`` -> ('bearer', {'realm': …, 'service': …})."""
    if not header:
        return None, {}
    scheme, _sep, params = header.strip().partition(' ')
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(params))


def sha256_digest(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def tls_context(validate_certs=True, ca_path=None):
    """The TLS context for the registry and its token server.

    As ansible.builtin.uri / get_url do: ``ca_path`` (a PEM file of CA
    certificates) replaces the system's CA store, so a private registry can
    be trusted without adding its CA machine-wide, and only that CA is then
    trusted. ``validate_certs=False`` checks nothing (``ca_path`` is not even
    read), the way ``curl -k`` does.
    """
    if not validate_certs:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_path is None:
        return ssl.create_default_context()
    # checked before any request so a wrong path is a clear error, not a
    # certificate failure that points at the registry
    if not os.path.isfile(ca_path):
        raise RegistryError('ca_path %s is not a file (a PEM file of CA certificates)' % ca_path)
    try:
        return ssl.create_default_context(cafile=ca_path)
    except (ssl.SSLError, OSError, ValueError) as e:
        raise RegistryError('ca_path %s: cannot load CA certificates from it (%s); it must '
                            'hold PEM certificates (-----BEGIN CERTIFICATE-----)' % (ca_path, e))


def _cert_error(exc):
    """The certificate verification failure inside a urllib error, if that is what it is."""
    reason = getattr(exc, 'reason', exc)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return reason
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc
    return None


class RegistryClient:
    def __init__(self, ref, username=None, password=None, validate_certs=True, timeout=60,
                 ca_path=None):
        self.ref = ref if isinstance(ref, Reference) else Reference(ref)
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ca_path = ca_path if validate_certs else None
        self.validate_certs = validate_certs
        ctx = tls_context(validate_certs, ca_path)
        self.opener = build_opener(HTTPSHandler(context=ctx), _NoAuthOnRedirect())
        self.auth = None  # the Authorization header value once we have one

    def _untrusted(self, url, err):
        """What to do about a certificate that does not verify: say which CAs were tried."""
        detail = getattr(err, 'verify_message', None) or str(err)
        trusted = ('the CA certificates in ca_path %s' % self.ca_path if self.ca_path
                   else "the system's CA certificates")
        return ('TLS certificate verification failed for %s: %s (trusted: %s); give the CA '
                'that signed the registry\'s certificate with ca_path, or validate_certs=false '
                'to not check it' % (url, detail, trusted))

    # -- HTTP with the registry's auth dance ---------------------------------
    def _basic(self):
        raw = ('%s:%s' % (self.username or '', self.password or '')).encode('utf-8')
        return 'Basic ' + base64.b64encode(raw).decode('ascii')

    def _token(self, params):
        realm = params.get('realm')
        if not realm:
            raise RegistryError('the registry asked for a Bearer token without a realm')
        query = {k: v for k, v in params.items() if k in ('service', 'scope')}
        if 'scope' not in query:
            query['scope'] = 'repository:%s:pull' % self.ref.name
        url = realm + ('&' if '?' in realm else '?') + urlencode(query)
        req = Request(url)
        if self.username is not None:
            req.add_header('Authorization', self._basic())
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                body = json.loads(resp.read().decode('utf-8'))
        except HTTPError as e:
            raise RegistryError('token server %s refused the token (HTTP %d%s)'
                                % (realm, e.code, ', check the credentials'
                                   if e.code in (401, 403) else ''))
        except (URLError, OSError, ValueError) as e:
            if _cert_error(e):
                raise RegistryError(self._untrusted(realm, _cert_error(e)))
            raise RegistryError('cannot get a token from %s: %s' % (realm, e))
        token = body.get('token') or body.get('access_token')
        if not token:
            raise RegistryError('token server %s answered without a token' % realm)
        return 'Bearer ' + token

    def open(self, url, accept=None):
        """GET url, authenticating once if the registry answers 401."""
        for attempt in (1, 2):
            req = Request(url)
            if accept:
                req.add_header('Accept', ', '.join(accept))
            if self.auth:
                req.add_header('Authorization', self.auth)
            try:
                return self.opener.open(req, timeout=self.timeout)
            except HTTPError as e:
                if e.code == 401 and attempt == 1:
                    scheme, params = parse_challenge(e.headers.get('WWW-Authenticate'))
                    e.close()
                    if scheme == 'bearer':
                        self.auth = self._token(params)
                        continue
                    if scheme == 'basic' and self.username is not None:
                        self.auth = self._basic()
                        continue
                    raise RegistryError('%s needs authentication (%s) and no usable '
                                        'credentials were given' % (url, scheme or 'no challenge'))
                detail = ''
                try:
                    errors = json.loads(e.read().decode('utf-8')).get('errors') or []
                    detail = '; '.join('%s: %s' % (x.get('code'), x.get('message'))
                                       for x in errors)
                except (ValueError, AttributeError, OSError):
                    pass
                raise RegistryError('GET %s: HTTP %d %s%s' % (url, e.code, e.reason,
                                                              (' (%s)' % detail) if detail else ''))
            except (URLError, OSError) as e:
                if _cert_error(e):
                    raise RegistryError(self._untrusted(url, _cert_error(e)))
                raise RegistryError('cannot reach %s: %s' % (url, getattr(e, 'reason', e)))
        raise RegistryError('GET %s: still unauthorized after authenticating' % url)

    # -- manifests and blobs -------------------------------------------------
    def _manifest(self, reference, expected_digest=None):
        url = '%s/manifests/%s' % (self.ref.base_url, reference)
        with self.open(url, MANIFEST_TYPES) as resp:
            data = resp.read()
            header_digest = resp.headers.get('Docker-Content-Digest')
            media_type = (resp.headers.get('Content-Type') or '').split(';')[0].strip()
        actual = sha256_digest(data)
        for want in (expected_digest, header_digest):
            if want and _DIGEST.match(want) and want != actual:
                raise RegistryError('manifest %s: digest mismatch (expected %s, got %s)'
                                    % (reference, want, actual))
        try:
            doc = json.loads(data.decode('utf-8'))
        except (ValueError, UnicodeDecodeError) as e:
            raise RegistryError('manifest %s is not valid JSON: %s' % (reference, e))
        return doc.get('mediaType') or media_type, doc, data, actual

    def resolve(self):
        """The image manifest for this platform: (manifest dict, its digest)."""
        mt, doc, _data, digest = self._manifest(self.ref.manifest_ref, self.ref.digest)
        if mt in (OCI_INDEX, DOCKER_LIST) or ('manifests' in doc and 'layers' not in doc):
            arch = local_arch()
            picks = [d for d in doc.get('manifests') or []
                     if (d.get('platform') or {}).get('os') == 'linux'
                     and (d.get('platform') or {}).get('architecture') == arch]
            if not picks:
                have = ', '.join('%s/%s' % ((d.get('platform') or {}).get('os'),
                                            (d.get('platform') or {}).get('architecture'))
                                 for d in doc.get('manifests') or [])
                raise RegistryError('%s has no image for linux/%s (it has: %s)'
                                    % (self.ref, arch, have or 'nothing'))
            mt, doc, _data, digest = self._manifest(picks[0]['digest'], picks[0]['digest'])
        if 'layers' not in doc or 'config' not in doc:
            raise RegistryError('%s: unsupported manifest (media type %r); schema 1 manifests '
                                'are not supported' % (self.ref, mt))
        return doc, digest

    def blob_bytes(self, digest):
        """A small blob (the config), verified."""
        with self.open('%s/blobs/%s' % (self.ref.base_url, digest)) as resp:
            data = resp.read()
        if sha256_digest(data) != digest:
            raise RegistryError('blob %s: digest mismatch (got %s)' % (digest, sha256_digest(data)))
        return data

    def blob_to_file(self, digest, path):
        """Stream a blob to path, verifying its digest; remove it on mismatch."""
        h = hashlib.sha256()
        try:
            with self.open('%s/blobs/%s' % (self.ref.base_url, digest)) as resp, \
                    open(path, 'wb') as out:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    out.write(chunk)
        except (OSError, ValueError) as e:
            _unlink(path)
            raise RegistryError('downloading blob %s: %s' % (digest, e))
        except RegistryError:
            _unlink(path)
            raise
        if 'sha256:' + h.hexdigest() != digest:
            _unlink(path)
            raise RegistryError('blob %s: digest mismatch (got sha256:%s)' % (digest, h.hexdigest()))


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
