# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's registry: which container (IP, MAC) lives on which host.

Chapter 7's agents answer kernel misses from this registry; every host writes
a record when it attaches a container and removes it when it detaches one.
A record is a small JSON object::

    {"ip": "11.11.11.3", "mac": "02:42:c0:a8:00:03", "host": "192.168.104.3",
     "name": "c2", "vni": 42}

Two backends, same interface (``put``, ``delete``, ``records``). A read
that fails raises: it never answers an empty set in place of records it could
not see (readers keep their last good view).

* ``DirectoryRegistry``: one file per container in a directory every host
  sees (the course's Vagrant shared folder; NFS on real hosts). Writes are
  atomic (temporary file + rename), so a reader never sees half a record.
  Across real hosts it works only if the directory really is shared: a
  directory local to each host holds that host's records only.
* ``EtcdRegistry``: etcd v3 (the store flannel uses) through its HTTP/JSON
  gateway (``/v3/kv/put``, ``/v3/kv/range``, ``/v3/kv/deleterange``) with the
  standard library only; keys ``PREFIX/<vni>/<ip>``.

Pure Python (no pyroute2), so the registry's logic is unit-tested without a
kernel and the agent can import it from a plain file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import ipaddress
import json
import os
import re
import tempfile
import threading

_MAC_RE = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')


class MalformedRecord(ValueError):
    """A registry record that cannot be used (logged and skipped by readers)."""


def make_record(ip, mac, host, name=None, vni=None):
    """A validated record dict; raises MalformedRecord."""
    return check_record({'ip': ip, 'mac': mac, 'host': host, 'name': name, 'vni': vni})


def check_record(rec):
    """Validate and normalise a record read from anywhere; raises MalformedRecord."""
    if not isinstance(rec, dict):
        raise MalformedRecord('record is not a JSON object: %r' % (rec,))
    try:
        ip = str(ipaddress.ip_address(rec.get('ip')))
        host = str(ipaddress.ip_address(rec.get('host')))
    except (ValueError, TypeError):
        raise MalformedRecord('record needs valid "ip" and "host" addresses: %r' % (rec,))
    mac = rec.get('mac')
    if not isinstance(mac, str) or not _MAC_RE.match(mac.lower()):
        raise MalformedRecord('record for %s has an invalid "mac": %r' % (ip, mac))
    vni = rec.get('vni')
    if vni is not None and (not isinstance(vni, int) or not 0 <= vni <= 0xFFFFFF):
        raise MalformedRecord('record for %s has an invalid "vni": %r' % (ip, vni))
    name = rec.get('name')
    if name is not None and not isinstance(name, str):
        raise MalformedRecord('record for %s has an invalid "name": %r' % (ip, name))
    return {'ip': ip, 'mac': mac.lower(), 'host': host, 'name': name, 'vni': vni}


def parse_record(raw, origin):
    """bytes/str -> record; raises MalformedRecord naming ``origin``."""
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise MalformedRecord('%s: not JSON (%s)' % (origin, e))
    try:
        return check_record(data)
    except MalformedRecord as e:
        raise MalformedRecord('%s: %s' % (origin, e))


class DirectoryRegistry:
    """One ``<ip>.json`` file per container in a shared directory."""

    kind = 'dir'

    def __init__(self, path, vni=None):
        self.path = path
        self.vni = vni
        self._cache = {}  # file name -> ((inode, mtime_ns, size), record or MalformedRecord)

    def _file(self, ip):
        ip = str(ipaddress.ip_address(ip))
        return os.path.join(self.path, ip + '.json')

    def get(self, ip):
        try:
            with open(self._file(ip), 'rb') as f:
                return parse_record(f.read(), self._file(ip))
        except (IOError, OSError):
            return None

    def put(self, record):
        """Write a record; returns True when it changed anything."""
        record = check_record(record)
        try:
            if self.get(record['ip']) == record:
                return False
        except MalformedRecord:
            pass  # overwrite a broken record of our own IP
        if not os.path.isdir(self.path):
            os.makedirs(self.path, 0o755)
        fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=self.path)
        try:
            with os.fdopen(fd, 'w') as f:
                json.dump(record, f, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.rename(tmp, self._file(record['ip']))
        except Exception:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return True

    def delete(self, ip):
        try:
            os.unlink(self._file(ip))
            return True
        except OSError:
            return False

    def records(self, errors=None):
        """Valid records ({ip: record}); malformed ones go to ``errors`` (list).

        Raises OSError when the directory cannot be listed (FileNotFoundError
        when it does not exist). A file is parsed again only when it is new or changed (inode, mtime,
        size): writers replace records by rename, so an unchanged key means an
        unchanged record. The agent re-reads every few seconds; with 1,000
        records a full parse is tens of milliseconds of CPU, a stat pass a few.
        """
        out = {}
        try:
            with os.scandir(self.path) as it:
                entries = sorted((e for e in it if not e.name.startswith('.')
                                  and e.name.endswith('.json')), key=lambda e: e.name)
        except OSError:
            # A directory that cannot be listed (missing, share gone, no
            # permission) is a failed read, never "no records": an agent that
            # took it for empty would delete every entry it manages.
            self._cache = {}
            raise
        cache, new_cache = getattr(self, '_cache', {}), {}
        for e in entries:
            try:
                st = e.stat()
            except OSError:
                continue  # removed while listing
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
            hit = cache.get(e.name)
            if hit is not None and hit[0] == sig:
                rec = hit[1]
            else:
                try:
                    with open(e.path, 'rb') as f:
                        rec = parse_record(f.read(), e.path)
                except (IOError, OSError):
                    continue  # removed while listing
                except MalformedRecord as err:
                    rec = err
            new_cache[e.name] = (sig, rec)
            if isinstance(rec, MalformedRecord):
                if errors is not None:
                    errors.append(str(rec))
                continue
            if self.vni is not None and rec['vni'] is not None and rec['vni'] != self.vni:
                continue
            out[rec['ip']] = dict(rec)
        self._cache = new_cache
        return out


class EtcdRegistry:
    """etcd v3 through the HTTP/JSON gateway (etcd >= 3.4: ``/v3/...``)."""

    kind = 'etcd'

    def __init__(self, endpoint, prefix='/nodocker-lab/overlay', vni=None, timeout=3.0):
        self.endpoint = endpoint.rstrip('/')
        self.prefix = prefix.rstrip('/') + '/%s/' % (vni if vni is not None else 'any')
        self.vni = vni
        self.timeout = timeout
        self._conn = None  # one kept-alive HTTP connection (the agent asks every few seconds)
        self._lock = threading.Lock()  # the agent reads from executor threads
        self._seen = {}  # key -> (mod_revision, record or MalformedRecord)
        self._last = None  # (store revision, records, errors) of the last full read

    @staticmethod
    def _b64(s):
        return base64.b64encode(s.encode('utf-8')).decode('ascii')

    @staticmethod
    def _range_end(prefix):
        b = bytearray(prefix.encode('utf-8'))
        b[-1] += 1
        return base64.b64encode(bytes(b)).decode('ascii')

    def _connection(self):
        if self._conn is None:
            from urllib.parse import urlsplit
            import http.client
            u = urlsplit(self.endpoint)
            cls = http.client.HTTPSConnection if u.scheme == 'https' else http.client.HTTPConnection
            self._conn = cls(u.hostname, u.port, timeout=self.timeout)
            self._base = u.path.rstrip('/')
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, path, body):
        """One request on the kept-alive connection (reopened once if the server closed it).

        http.client, not urllib's opener: one TCP connection for the agent's
        lifetime instead of one per request (a daemon outside Ansible: no open_url).
        """
        data = json.dumps(body).encode('utf-8')
        with self._lock:
            return self._request(path, data)

    def _request(self, path, data):
        import http.client
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request('POST', self._base + path, body=data,
                             headers={'Content-Type': 'application/json'})
                resp = conn.getresponse()
                text = resp.read().decode('utf-8')
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if resp.status >= 400:
                raise IOError('etcd %s: HTTP %d %s' % (path, resp.status, text[:200]))
            return json.loads(text or '{}')

    def _revision(self):
        """The store's revision (changes with every write), or None if not reported."""
        r = self._post('/v3/kv/range', {'key': self._b64(self.prefix),
                                        'range_end': self._range_end(self.prefix),
                                        'count_only': True})
        rev = (r.get('header') or {}).get('revision')
        return str(rev) if rev is not None else None

    def _key(self, ip):
        return self.prefix + str(ipaddress.ip_address(ip))

    def get(self, ip):
        r = self._post('/v3/kv/range', {'key': self._b64(self._key(ip))})
        kvs = r.get('kvs') or []
        if not kvs:
            return None
        return parse_record(base64.b64decode(kvs[0]['value']), 'etcd ' + self._key(ip))

    def put(self, record):
        record = check_record(record)
        try:
            if self.get(record['ip']) == record:
                return False
        except MalformedRecord:
            pass
        self._post('/v3/kv/put', {'key': self._b64(self._key(record['ip'])),
                                  'value': self._b64(json.dumps(record, sort_keys=True))})
        return True

    def delete(self, ip):
        r = self._post('/v3/kv/deleterange', {'key': self._b64(self._key(ip))})
        return int(r.get('deleted', 0)) > 0

    def records(self, errors=None):
        """Valid records ({ip: record}); malformed ones go to ``errors`` (list).

        Raises (OSError, http.client.HTTPException, ValueError) when etcd
        cannot be read; an empty answer means an empty prefix. When the store's revision has not moved since the last read, the last
        answer is returned after one tiny request; otherwise one range request
        reads every record and only the keys whose ``mod_revision`` changed
        are parsed again.
        """
        rev = self._revision() if self._last is not None else None
        if rev is not None and self._last[0] == rev:
            if errors is not None:
                errors.extend(self._last[2])
            return dict((ip, dict(r)) for ip, r in self._last[1].items())
        r = self._post('/v3/kv/range', {'key': self._b64(self.prefix),
                                        'range_end': self._range_end(self.prefix)})
        out, errs, seen = {}, [], {}
        for kv in r.get('kvs') or []:
            key = base64.b64decode(kv['key']).decode('utf-8', 'replace')
            mod = kv.get('mod_revision')
            hit = self._seen.get(key)
            if mod is not None and hit is not None and hit[0] == mod:
                rec = hit[1]
            else:
                try:
                    rec = parse_record(base64.b64decode(kv.get('value', '')), 'etcd ' + key)
                except MalformedRecord as e:
                    rec = e
            seen[key] = (mod, rec)
            if isinstance(rec, MalformedRecord):
                errs.append(str(rec))
                continue
            out[rec['ip']] = rec
        self._seen = seen
        head = (r.get('header') or {}).get('revision')
        self._last = (str(head), out, errs) if head is not None else None
        if errors is not None:
            errors.extend(errs)
        return dict((ip, dict(rec)) for ip, rec in out.items())


def open_registry(spec, vni=None, timeout=None):
    """'dir:/path' or 'etcd:http://host:2379' -> a registry object.

    ``timeout``: seconds for each etcd request (default 3); the directory
    registry has none (a hung NFS mount blocks the reader).
    """
    if not isinstance(spec, str) or ':' not in spec:
        raise ValueError('registry %r: use dir:/PATH or etcd:http://HOST:2379' % (spec,))
    kind, dummy, where = spec.partition(':')
    if kind == 'dir':
        if not where.startswith('/'):
            raise ValueError('registry directory %r must be an absolute path' % where)
        return DirectoryRegistry(where, vni=vni)
    if kind == 'etcd':
        if not where.startswith(('http://', 'https://')):
            raise ValueError('etcd endpoint %r must be an http(s):// URL' % where)
        return EtcdRegistry(where, vni=vni, timeout=timeout or 3.0)
    raise ValueError('registry kind %r is unknown: use dir or etcd' % kind)


def by_mac(records):
    """{mac: record} from {ip: record}."""
    return dict((r['mac'], r) for r in records.values())
