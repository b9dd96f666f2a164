# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's registry: which container (IP, MAC) lives on which host.

Chapter 7's agents answer kernel misses from this registry; every host writes
a record when it attaches a container and removes it when it detaches one.
A record is a small JSON object::

    {"ip": "11.11.11.3", "mac": "02:42:c0:a8:00:03", "host": "192.168.104.3",
     "name": "c2", "vni": 42}

Two backends, same interface (``put``, ``delete``, ``records``):

* ``DirectoryRegistry``: one file per container in a directory every host
  sees (the course's Vagrant shared folder; NFS on real hosts). Writes are
  atomic (temporary file + rename), so a reader never sees half a record.
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
        """Valid records ({ip: record}); malformed ones go to ``errors`` (list)."""
        out = {}
        try:
            names = sorted(os.listdir(self.path))
        except OSError:
            return out
        for n in names:
            if n.startswith('.') or not n.endswith('.json'):
                continue
            p = os.path.join(self.path, n)
            try:
                with open(p, 'rb') as f:
                    rec = parse_record(f.read(), p)
            except (IOError, OSError):
                continue  # removed while listing
            except MalformedRecord as e:
                if errors is not None:
                    errors.append(str(e))
                continue
            if self.vni is not None and rec['vni'] is not None and rec['vni'] != self.vni:
                continue
            out[rec['ip']] = rec
        return out


class EtcdRegistry:
    """etcd v3 through the HTTP/JSON gateway (etcd >= 3.4: ``/v3/...``)."""

    kind = 'etcd'

    def __init__(self, endpoint, prefix='/nodocker-lab/overlay', vni=None, timeout=3.0):
        self.endpoint = endpoint.rstrip('/')
        self.prefix = prefix.rstrip('/') + '/%s/' % (vni if vni is not None else 'any')
        self.vni = vni
        self.timeout = timeout

    @staticmethod
    def _b64(s):
        return base64.b64encode(s.encode('utf-8')).decode('ascii')

    @staticmethod
    def _range_end(prefix):
        b = bytearray(prefix.encode('utf-8'))
        b[-1] += 1
        return base64.b64encode(bytes(b)).decode('ascii')

    def _post(self, path, body):
        # imported here so the module loads where urllib is stripped (never, but cheap)
        from urllib.request import Request, build_opener
        req = Request(self.endpoint + path, data=json.dumps(body).encode('utf-8'),
                      headers={'Content-Type': 'application/json'})
        # a plain opener: the agent is a daemon outside Ansible (no open_url there)
        with build_opener().open(req, timeout=self.timeout) as resp:  # nosec - endpoint is configuration
            return json.loads(resp.read().decode('utf-8') or '{}')

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
        r = self._post('/v3/kv/range', {'key': self._b64(self.prefix),
                                        'range_end': self._range_end(self.prefix)})
        out = {}
        for kv in r.get('kvs') or []:
            key = base64.b64decode(kv['key']).decode('utf-8', 'replace')
            try:
                rec = parse_record(base64.b64decode(kv.get('value', '')), 'etcd ' + key)
            except MalformedRecord as e:
                if errors is not None:
                    errors.append(str(e))
                continue
            out[rec['ip']] = rec
        return out


def open_registry(spec, vni=None):
    """'dir:/path' or 'etcd:http://host:2379' -> a registry object."""
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
        return EtcdRegistry(where, vni=vni)
    raise ValueError('registry kind %r is unknown: use dir or etcd' % kind)


def by_mac(records):
    """{mac: record} from {ip: record}."""
    return dict((r['mac'], r) for r in records.values())
