# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry client's TLS settings (ca_path, validate_certs) and its certificate errors.

The handshakes themselves are tested against a real TLS registry in
tests/integration/test_registry.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil
import ssl
import subprocess
from urllib.error import URLError

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _registry_client as rc


@pytest.fixture
def ca_pem(tmp_path):
    if not shutil.which('openssl'):
        pytest.fail('openssl is missing: run ./scripts/setup.sh')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=ndl unit CA',
                    '-keyout', str(tmp_path / 'ca.key'), '-out', str(tmp_path / 'ca.pem')],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(tmp_path / 'ca.pem')


def test_ca_path_replaces_the_system_store(ca_pem):
    ctx = rc.tls_context(True, ca_pem)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    cas = ctx.get_ca_certs()
    assert len(cas) == 1 and dict(x[0] for x in cas[0]['subject'])['commonName'] == 'ndl unit CA'


def test_validate_certs_false_checks_nothing_and_ignores_ca_path(tmp_path):
    ctx = rc.tls_context(False, str(tmp_path / 'missing.pem'))
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    c = rc.RegistryClient('reg.example/ndl/demo:1', validate_certs=False,
                          ca_path=str(tmp_path / 'missing.pem'))
    assert c.ca_path is None


def test_bad_ca_path_is_a_clear_error(tmp_path):
    with pytest.raises(rc.RegistryError, match='is not a file'):
        rc.RegistryClient('reg.example/ndl/demo:1', ca_path=str(tmp_path / 'missing.pem'))
    with pytest.raises(rc.RegistryError, match='is not a file'):
        rc.tls_context(True, str(tmp_path))
    junk = tmp_path / 'junk.pem'
    junk.write_text('not a certificate\n')
    with pytest.raises(rc.RegistryError, match='cannot load CA certificates'):
        rc.tls_context(True, str(junk))


class _Untrusted:
    def open(self, req, timeout=None):
        err = ssl.SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate '
                                              'verify failed: unable to get local issuer certificate')
        err.verify_message = 'unable to get local issuer certificate'
        raise URLError(err)


@pytest.mark.parametrize('ca', [None, 'ca'])
def test_untrusted_certificate_says_what_to_do(ca, ca_pem):
    c = rc.RegistryClient('reg.example/ndl/demo:1', ca_path=ca and ca_pem)
    c.opener = _Untrusted()
    with pytest.raises(rc.RegistryError) as e:
        c.resolve()
    msg = str(e.value)
    assert msg.startswith('TLS certificate verification failed for '
                          'https://reg.example/v2/ndl/demo/manifests/1: unable to get local issuer')
    assert ('ca_path %s' % ca_pem if ca else "the system's CA certificates") in msg
    assert 'validate_certs=false' in msg


def test_other_connection_errors_are_unchanged():
    class Refused:
        def open(self, req, timeout=None):
            raise URLError(ConnectionRefusedError(111, 'Connection refused'))
    c = rc.RegistryClient('reg.example/ndl/demo:1')
    c.opener = Refused()
    with pytest.raises(rc.RegistryError, match='cannot reach .*Connection refused'):
        c.resolve()
