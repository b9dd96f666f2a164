# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay registry's read caches: DirectoryRegistry re-parses only changed
files (inode, mtime, size); EtcdRegistry asks the store revision first and
re-parses only keys whose mod_revision changed (a fake etcd v3 JSON gateway on
127.0.0.1, port 0, in a thread of the test process)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import threading

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _registry as reg

PREFIX = '/nodocker-lab/overlay/42/'


def rec(n, host='192.168.104.3', vni=42, mac=None):
    return reg.make_record('11.11.11.%d' % n, mac or '02:42:c0:a8:00:%02x' % n, host, 'c%d' % n, vni)


@pytest.fixture
def parses(monkeypatch):
    """The origins parse_record was called for (the registry's module global)."""
    calls = []
    real = reg.parse_record

    def counting(raw, origin):
        calls.append(origin)
        return real(raw, origin)

    monkeypatch.setattr(reg, 'parse_record', counting)
    return calls


# ---------------------------------------------------------------- directory
def write(path, record):
    path.write_text(json.dumps(record, sort_keys=True))


def names(calls):
    return sorted(os.path.basename(c) for c in calls)


def test_directory_parses_only_new_and_changed_files(tmp_path, parses):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    for n in (2, 3, 4):
        write(tmp_path / ('11.11.11.%d.json' % n), rec(n))
    first = r.records()
    assert sorted(first) == ['11.11.11.2', '11.11.11.3', '11.11.11.4']
    assert names(parses) == ['11.11.11.2.json', '11.11.11.3.json', '11.11.11.4.json']

    del parses[:]
    assert r.records() == first
    assert parses == []  # nothing changed: a stat pass only

    # a new file, a removed file, a record replaced by rename (a new inode)
    write(tmp_path / '11.11.11.5.json', rec(5))
    (tmp_path / '11.11.11.2.json').unlink()
    assert r.put(rec(3, host='192.168.104.9')) is True
    del parses[:]
    got = r.records()
    assert names(parses) == ['11.11.11.3.json', '11.11.11.5.json']
    assert sorted(got) == ['11.11.11.3', '11.11.11.4', '11.11.11.5']
    assert got['11.11.11.3']['host'] == '192.168.104.9'
    assert sorted(r._cache) == ['11.11.11.3.json', '11.11.11.4.json', '11.11.11.5.json']


def test_directory_same_size_new_mtime_is_parsed_again(tmp_path, parses):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    path = tmp_path / '11.11.11.3.json'
    write(path, rec(3))
    assert r.records()['11.11.11.3']['mac'] == '02:42:c0:a8:00:03'
    st = os.stat(str(path))
    # rewritten in place (same inode), same size, new mtime
    write(path, rec(3, mac='02:42:c0:a8:00:04'))
    os.utime(str(path), ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))
    after = os.stat(str(path))
    assert (after.st_ino, after.st_size) == (st.st_ino, st.st_size)
    del parses[:]
    assert r.records()['11.11.11.3']['mac'] == '02:42:c0:a8:00:04'
    assert len(parses) == 1


def test_directory_same_mtime_new_inode_or_size_is_parsed_again(tmp_path, parses):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    path = tmp_path / '11.11.11.3.json'
    write(path, rec(3))
    r.records()
    st = os.stat(str(path))
    # replaced by rename, same size, the mtime forced back: the inode tells
    assert r.put(rec(3, mac='02:42:c0:a8:00:05')) is True
    os.utime(str(path), ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(str(path)).st_ino != st.st_ino
    assert r.records()['11.11.11.3']['mac'] == '02:42:c0:a8:00:05'
    # rewritten in place, same mtime, another size: the size tells
    st = os.stat(str(path))
    write(path, rec(3, host='192.168.104.33'))
    os.utime(str(path), ns=(st.st_atime_ns, st.st_mtime_ns))
    del parses[:]
    assert r.records()['11.11.11.3']['host'] == '192.168.104.33'
    assert len(parses) == 1


def test_directory_in_place_rewrite_with_identical_signature_is_not_seen(tmp_path, parses):
    """The documented contract: writers replace records by rename. A rewrite in
    place keeping inode, size and mtime is not noticed (kept as the cached record)."""
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    path = tmp_path / '11.11.11.3.json'
    write(path, rec(3))
    r.records()
    st = os.stat(str(path))
    write(path, rec(3, mac='02:42:c0:a8:00:09'))
    os.utime(str(path), ns=(st.st_atime_ns, st.st_mtime_ns))
    del parses[:]
    assert r.records()['11.11.11.3']['mac'] == '02:42:c0:a8:00:03'
    assert parses == []


def test_directory_malformed_cached_but_reported_every_read(tmp_path, parses):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    write(tmp_path / '11.11.11.3.json', rec(3))
    (tmp_path / '11.11.11.9.json').write_text('{broken')
    (tmp_path / '.tmp-x1y2').write_text('{half')  # a writer's temporary file
    (tmp_path / 'README').write_text('not a record')
    for dummy in range(2):
        errors = []
        assert list(r.records(errors)) == ['11.11.11.3']
        assert len(errors) == 1 and '11.11.11.9.json' in errors[0] and 'not JSON' in errors[0]
    assert names(parses) == ['11.11.11.3.json', '11.11.11.9.json']
    # fixed by its writer: parsed again and valid
    assert r.put(rec(9)) is True
    errors = []
    assert sorted(r.records(errors)) == ['11.11.11.3', '11.11.11.9'] and errors == []


def test_directory_returns_copies_and_filters_vni_from_cache(tmp_path, parses):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    write(tmp_path / '11.11.11.3.json', rec(3))
    write(tmp_path / '11.11.11.4.json', rec(4, vni=43))
    write(tmp_path / '11.11.11.5.json', rec(5, vni=None))
    got = r.records()
    assert sorted(got) == ['11.11.11.3', '11.11.11.5']
    got['11.11.11.3']['host'] = 'mutated by the caller'
    del parses[:]
    again = r.records()
    assert again['11.11.11.3']['host'] == '192.168.104.3' and parses == []
    assert sorted(again) == ['11.11.11.3', '11.11.11.5']


def test_directory_removed_directory_clears_the_cache(tmp_path, parses):
    d = tmp_path / 'registry'
    r = reg.DirectoryRegistry(str(d), vni=42)
    # a directory that cannot be listed is a failed read, never "no records"
    with pytest.raises(FileNotFoundError):
        r.records()
    r.put(rec(3))
    assert list(r.records()) == ['11.11.11.3']
    (d / '11.11.11.3.json').unlink()
    d.rmdir()
    with pytest.raises(FileNotFoundError):
        r.records()
    assert r._cache == {}
    r.put(rec(3))
    del parses[:]
    assert list(r.records()) == ['11.11.11.3'] and len(parses) == 1


# --------------------------------------------------------------- fake etcd
class FakeEtcdServer(ThreadingHTTPServer):
    """The etcd v3 JSON gateway's kv endpoints the client uses (int64 as strings)."""

    daemon_threads = True

    def __init__(self):
        ThreadingHTTPServer.__init__(self, ('127.0.0.1', 0), EtcdHandler)
        self.kv = {}  # key -> (value bytes, mod_revision)
        self.revision = 1
        self.log = []  # (path, body)
        self.connections = 0
        self.drop_after_next = False  # close the connection without telling the client
        self.fail_with = None  # an HTTP status for every request
        self.clients = []

    def client(self):
        """An EtcdRegistry on this server (closed by the fixture)."""
        self.clients.append(reg.EtcdRegistry('http://127.0.0.1:%d' % self.server_address[1], vni=42))
        return self.clients[-1]

    def write(self, key, value):
        self.revision += 1
        self.kv[key] = (value.encode('utf-8'), self.revision)

    def remove(self, key):
        if self.kv.pop(key, None) is not None:
            self.revision += 1
            return 1
        return 0

    def ranges(self, full=True):
        """The range requests logged: full reads (True) or revision probes (False)."""
        return [b for p, b in self.log if p == '/v3/kv/range' and 'range_end' in b
                and bool(b.get('count_only')) != full]

    def answer(self, path, body):
        key = base64.b64decode(body['key']).decode('utf-8')
        header = {'cluster_id': '1', 'member_id': '2', 'raft_term': '3'}
        if path == '/v3/kv/put':
            self.write(key, base64.b64decode(body['value']).decode('utf-8'))
            return dict(header=dict(header, revision=str(self.revision)))
        if path == '/v3/kv/deleterange':
            n = self.remove(key)
            out = dict(header=dict(header, revision=str(self.revision)))
            if n:
                out['deleted'] = str(n)  # the gateway omits zero values
            return out
        if path != '/v3/kv/range':
            return None
        if 'range_end' in body:
            end = base64.b64decode(body['range_end']).decode('utf-8')
            keys = sorted(k for k in self.kv if key <= k < end)
        else:
            keys = [key] if key in self.kv else []
        out = dict(header=dict(header, revision=str(self.revision)))
        if keys:
            out['count'] = str(len(keys))
        if body.get('count_only') or not keys:
            return out
        out['kvs'] = [{'key': base64.b64encode(k.encode('utf-8')).decode('ascii'),
                       'value': base64.b64encode(self.kv[k][0]).decode('ascii'),
                       'create_revision': '2', 'mod_revision': str(self.kv[k][1]), 'version': '1'}
                      for k in keys]
        return out


class EtcdHandler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive, as etcd's gateway
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        self.server.connections += 1

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    def do_POST(self):  # pylint: disable=invalid-name
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])).decode('utf-8'))
        srv.log.append((self.path, body))
        status, out = 200, None
        if srv.fail_with:
            status, out = srv.fail_with, {'error': 'etcdserver: too many requests', 'code': 14}
        else:
            out = srv.answer(self.path, body)
            if out is None:
                status, out = 404, {'error': 'not found'}
        data = json.dumps(out).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if srv.drop_after_next:
            srv.drop_after_next = False
            self.close_connection = True


@pytest.fixture
def etcd():
    srv = FakeEtcdServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={'poll_interval': 0.01})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        for c in srv.clients:
            c.close()
        srv.shutdown()
        srv.server_close()
        thread.join(2)


def seed(srv, *numbers):
    for n in numbers:
        srv.write(PREFIX + '11.11.11.%d' % n, json.dumps(rec(n), sort_keys=True))


def test_etcd_unchanged_revision_skips_the_range_read(etcd, parses):
    seed(etcd, 2, 3, 4)
    etcd.write('/nodocker-lab/overlay/43/11.11.11.7', json.dumps(rec(7, vni=43)))  # another VNI
    etcd.write('/nodocker-lab/overlay/420/11.11.11.8', json.dumps(rec(8)))  # not under 42/
    r = etcd.client()
    first = r.records()
    assert sorted(first) == ['11.11.11.2', '11.11.11.3', '11.11.11.4']
    assert len(etcd.ranges(full=True)) == 1 and etcd.ranges(full=False) == []  # no probe on a first read
    assert len(parses) == 3
    full = etcd.ranges()[0]
    assert base64.b64decode(full['key']).decode() == PREFIX
    assert base64.b64decode(full['range_end']).decode() == PREFIX[:-1] + '0'

    del parses[:]
    for dummy in range(3):
        assert r.records() == first
    assert len(etcd.ranges(full=True)) == 1  # still the first one only
    probes = etcd.ranges(full=False)
    assert len(probes) == 3 and all(p['count_only'] is True for p in probes)
    assert parses == []
    assert etcd.connections == 1  # one kept-alive connection


def test_etcd_changed_keys_are_parsed_again(etcd, parses):
    seed(etcd, 2, 3, 4)
    r = etcd.client()
    got = r.records()
    got['11.11.11.2']['host'] = 'mutated by the caller'
    etcd.write(PREFIX + '11.11.11.3', json.dumps(rec(3, host='192.168.104.9')))  # moved
    seed(etcd, 5)  # attached
    etcd.remove(PREFIX + '11.11.11.4')  # detached
    del parses[:]
    got = r.records()
    assert sorted(parses) == ['etcd ' + PREFIX + '11.11.11.3', 'etcd ' + PREFIX + '11.11.11.5']
    assert sorted(got) == ['11.11.11.2', '11.11.11.3', '11.11.11.5']
    assert got['11.11.11.3']['host'] == '192.168.104.9'
    assert got['11.11.11.2']['host'] == '192.168.104.3'  # the cache holds its own copy
    assert len(etcd.ranges(full=True)) == 2 and len(etcd.ranges(full=False)) == 1
    # a write anywhere in the store moves the revision: one more range, nothing parsed
    etcd.write('/elsewhere', 'x')
    del parses[:]
    assert r.records() == got and parses == []
    assert len(etcd.ranges(full=True)) == 3


def test_etcd_put_get_delete_through_the_gateway(etcd, parses):
    r = etcd.client()
    assert r.put(rec(3)) is True
    assert r.put(rec(3)) is False  # get first: unchanged
    assert json.loads(etcd.kv[PREFIX + '11.11.11.3'][0].decode()) == rec(3)
    assert r.get('11.11.11.3') == rec(3) and r.get('11.11.11.99') is None
    assert list(r.records()) == ['11.11.11.3']
    assert r.delete('11.11.11.3') is True
    assert r.delete('11.11.11.3') is False  # no "deleted" field when zero
    assert r.records() == {}
    assert [p for p, dummy in etcd.log].count('/v3/kv/put') == 1
    assert etcd.connections == 1


def test_etcd_malformed_reported_on_every_read(etcd, parses):
    seed(etcd, 3)
    etcd.write(PREFIX + '11.11.11.9', '{broken')
    r = etcd.client()
    for dummy in range(2):
        errors = []
        assert list(r.records(errors)) == ['11.11.11.3']
        assert len(errors) == 1 and '11.11.11.9' in errors[0]
    assert len(etcd.ranges(full=True)) == 1  # the second came from the revision check
    assert len(parses) == 2


def test_etcd_reconnects_once_when_the_server_dropped_the_connection(etcd):
    seed(etcd, 3)
    r = etcd.client()
    etcd.drop_after_next = True
    assert list(r.records()) == ['11.11.11.3']
    assert list(r.records()) == ['11.11.11.3']  # the kept connection is dead: reopened
    assert etcd.connections == 2
    assert len(etcd.ranges(full=False)) == 1


def test_etcd_http_error_raises_and_keeps_the_last_view(etcd):
    seed(etcd, 3)
    r = etcd.client()
    assert list(r.records()) == ['11.11.11.3']
    etcd.fail_with = 503
    with pytest.raises(IOError) as e:
        r.records()
    assert 'HTTP 503' in str(e.value) and '/v3/kv/range' in str(e.value)
    etcd.fail_with = None
    assert list(r.records()) == ['11.11.11.3']
