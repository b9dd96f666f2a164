# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay registry: records, directory backend, etcd request shapes (no etcd)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _registry as reg


def rec(ip='11.11.11.3', mac='02:42:C0:A8:00:03', host='192.168.104.3'):
    return reg.make_record(ip, mac, host, 'c2', 42)


def test_record_normalised():
    assert rec()['mac'] == '02:42:c0:a8:00:03'


@pytest.mark.parametrize('bad', [
    {'ip': 'x', 'mac': '02:42:c0:a8:00:03', 'host': '1.1.1.1'},
    {'ip': '11.11.11.3', 'mac': 'nope', 'host': '1.1.1.1'},
    {'ip': '11.11.11.3', 'mac': '02:42:c0:a8:00:03'},
    {'ip': '11.11.11.3', 'mac': '02:42:c0:a8:00:03', 'host': '1.1.1.1', 'vni': 'x'},
    ['not', 'a', 'dict'],
])
def test_malformed_records(bad):
    with pytest.raises(reg.MalformedRecord):
        reg.check_record(bad)


def test_directory_put_is_idempotent_and_atomic(tmp_path):
    r = reg.DirectoryRegistry(str(tmp_path / 'registry'), vni=42)
    assert r.put(rec()) is True
    assert r.put(rec()) is False
    assert [p.name for p in (tmp_path / 'registry').iterdir()] == ['11.11.11.3.json']
    assert r.records() == {'11.11.11.3': rec()}
    assert r.delete('11.11.11.3') is True
    assert r.delete('11.11.11.3') is False


def test_directory_skips_and_reports_malformed(tmp_path):
    r = reg.DirectoryRegistry(str(tmp_path), vni=42)
    r.put(rec())
    (tmp_path / '11.11.11.9.json').write_text('{broken')
    (tmp_path / '11.11.11.8.json').write_text(json.dumps({'ip': '11.11.11.8'}))
    errors = []
    assert list(r.records(errors)) == ['11.11.11.3']
    assert len(errors) == 2 and any('not JSON' in e for e in errors)


def test_directory_ignores_other_vni(tmp_path):
    r = reg.DirectoryRegistry(str(tmp_path), vni=43)
    reg.DirectoryRegistry(str(tmp_path), vni=42).put(rec())
    assert r.records() == {}


def test_open_registry():
    assert reg.open_registry('dir:/srv/x').kind == 'dir'
    assert reg.open_registry('etcd:http://192.168.104.2:2379').kind == 'etcd'
    for bad in ('dir:relative', 'etcd:192.168.104.2:2379', 'zk:/x', 'nothing'):
        with pytest.raises(ValueError):
            reg.open_registry(bad)


class FakeEtcd(reg.EtcdRegistry):
    """EtcdRegistry with the HTTP call replaced by a dict (the v3 JSON shapes)."""

    def __init__(self):
        reg.EtcdRegistry.__init__(self, 'http://etcd:2379', vni=42)
        self.kv = {}

    def _post(self, path, body):
        key = base64.b64decode(body['key']).decode()
        if path == '/v3/kv/put':
            self.kv[key] = base64.b64decode(body['value']).decode()
            return {}
        if path == '/v3/kv/deleterange':
            return {'deleted': str(int(self.kv.pop(key, None) is not None))}
        if 'range_end' in body:
            end = base64.b64decode(body['range_end']).decode()
            keys = sorted(k for k in self.kv if key <= k < end)
        else:
            keys = [key] if key in self.kv else []
        return {'kvs': [{'key': base64.b64encode(k.encode()).decode(),
                         'value': base64.b64encode(self.kv[k].encode()).decode()}
                        for k in keys]} if keys else {}


def test_etcd_round_trip_and_malformed():
    r = FakeEtcd()
    assert r.put(rec()) is True
    assert r.put(rec()) is False
    assert '/nodocker-lab/overlay/42/11.11.11.3' in r.kv
    r.kv['/nodocker-lab/overlay/42/11.11.11.9'] = '{broken'
    r.kv['/nodocker-lab/overlay/43/11.11.11.7'] = json.dumps(rec('11.11.11.7'))
    errors = []
    assert list(r.records(errors)) == ['11.11.11.3']
    assert len(errors) == 1
    assert r.delete('11.11.11.3') is True
    assert r.records() == {}
