# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks: every bad input raises ValueError with a readable message."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _validate as v


@pytest.mark.parametrize('name', ['eth0', 'veth-red', 'a' * 15, 'br0.42'])
def test_good_ifnames(name):
    assert v.check_ifname(name) == name


@pytest.mark.parametrize('name, fragment', [
    ('a' * 16, 'at most 15'),
    ('ndl/x', "'/'"),
    ('ndl x', "' '"),
    ('ndl:x', "':'"),
    ('', 'non-empty'),
    ('..', 'not allowed'),
])
def test_bad_ifnames(name, fragment):
    with pytest.raises(ValueError, match=None) as e:
        v.check_ifname(name)
    assert fragment in str(e.value)


def test_mac_is_normalised():
    assert v.normalize_mac('02:42:C0:A8:00:02') == '02:42:c0:a8:00:02'


@pytest.mark.parametrize('mac', ['02:42:c0:a8:00', '02:42:zz:a8:00:02', '0242c0a80002', None])
def test_bad_macs(mac):
    with pytest.raises(ValueError):
        v.normalize_mac(mac)


def test_multicast_mac_refused():
    with pytest.raises(ValueError, match='multicast'):
        v.check_unicast_mac('01:00:5e:00:00:01')


@pytest.mark.parametrize('cidr', ['11.11.11.2', '11.11.11.300/24', '11.11.11.2/33', 'x/24'])
def test_bad_interfaces(cidr):
    with pytest.raises(ValueError):
        v.parse_interface(cidr)


def test_interface_keeps_host_part():
    assert str(v.parse_interface('11.11.11.2/24')) == '11.11.11.2/24'


def test_networks():
    assert str(v.parse_network('default')) == '0.0.0.0/0'
    assert str(v.parse_network('10.0.0.0/8')) == '10.0.0.0/8'
    with pytest.raises(ValueError, match='host bits'):
        v.parse_network('10.0.0.1/8')


@pytest.mark.parametrize('mtu', [67, 65536, '1500'])
def test_bad_mtu(mtu):
    with pytest.raises(ValueError):
        v.check_mtu(mtu)


def test_netns_names():
    assert v.check_netns_name('RED') == 'RED'
    assert v.check_netns_name('/proc/1/ns/net') == '/proc/1/ns/net'
    with pytest.raises(ValueError):
        v.check_netns_name('a b')
