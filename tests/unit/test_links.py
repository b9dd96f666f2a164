# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the link-level modules: parameter checks and shell commands."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _address, _links, _route


def veth(**kw):
    p = dict(name='veth0', peer='veth1', netns='RED', peer_netns='BLUE', mtu=None,
             mac=None, peer_mac=None, state='present')
    p.update(kw)
    return _links.veth_params(p)


def test_veth_peer_netns_defaults_to_netns():
    assert veth(peer_netns=None)['peer_netns'] == 'RED'


def test_veth_add_command_puts_peer_in_its_namespace():
    v = veth(mtu=1450, mac='02:42:C0:A8:00:02')
    assert _links.veth_add_command(v) == (
        'ip -n RED link add veth0 address 02:42:c0:a8:00:02 mtu 1450 type veth '
        'peer name veth1 netns BLUE mtu 1450')


@pytest.mark.parametrize('kw, fragment', [
    (dict(name='veth_name_too_long'), 'at most 15'),
    (dict(peer='a/b'), "'/'"),
    (dict(mac='nope'), 'is invalid'),
    (dict(peer=None), 'peer is required'),
    (dict(peer='veth0', peer_netns='RED'), 'two different names'),
    (dict(mac='02:00:00:00:00:01', peer_mac='02:00:00:00:00:01'), 'different addresses'),
    (dict(netns='a b'), 'is invalid'),
])
def test_veth_bad_input(kw, fragment):
    with pytest.raises(ValueError) as e:
        veth(**kw)
    assert fragment in str(e.value)


def test_bridge_refuses_itself_and_duplicates():
    base = dict(name='br0', netns=None, ports_exclusive=False, state='present')
    with pytest.raises(ValueError, match='own port'):
        _links.bridge_params(dict(base, ports=['br0']))
    with pytest.raises(ValueError, match='twice'):
        _links.bridge_params(dict(base, ports=['a', 'a']))


def test_link_wanted_state():
    v = _links.link_params(dict(name=['eth0'], netns=None, state='up', mtu=1450, mac=None,
                                master=''))
    facts = dict(state='down', mtu=1500, mac='02:00:00:00:00:01', master='br0')
    assert _links.wanted_link(v, facts) == dict(state='up', mtu=1450,
                                                mac='02:00:00:00:00:01', master=None)


def test_link_mac_needs_one_link():
    with pytest.raises(ValueError, match='one link'):
        _links.link_params(dict(name=['a', 'b'], netns=None, state=None, mtu=None,
                                mac='02:00:00:00:00:01', master=None))


def test_address_params():
    v = _address.address_params(dict(dev='eth0', netns='RED', state='present', exclusive=True,
                                     addresses=['11.11.11.2/24', 'fd00::1/64']))
    assert _address.families_of(v['addresses']) == set((4, 6))
    with pytest.raises(ValueError):
        _address.address_params(dict(dev='eth0', netns=None, state='present',
                                     exclusive=False, addresses=['11.11.11.300/24']))


def route(**kw):
    p = dict(dest='default', gateway='11.11.11.1', dev=None, netns='RED', metric=None,
             table=254, state='present')
    p.update(kw)
    return _route.route_params(p)


def test_route_command_and_defaults():
    v = route()
    assert v['metric'] == 0
    assert _route.route_command(v, 'add') == 'ip -n RED route add default via 11.11.11.1'
    v6 = route(dest='fd00::/64', gateway=None, dev='eth0')
    assert v6['metric'] == 1024
    assert _route.route_command(v6, 'replace') == \
        'ip -n RED route replace fd00::/64 dev eth0 metric 1024'
    assert _route.route_command(route(table=100, metric=5), 'del') == \
        'ip -n RED route del default via 11.11.11.1 metric 5 table 100'


@pytest.mark.parametrize('kw, fragment', [
    (dict(dest='10.0.0.1/8'), 'host bits'),
    (dict(gateway='fd00::1'), 'same IP version'),
    (dict(gateway=None), 'needs a gateway'),
    (dict(gateway='300.1.1.1'), 'not a valid IP'),
    (dict(table=0), 'out of range'),
])
def test_route_bad_input(kw, fragment):
    with pytest.raises(ValueError) as e:
        route(**kw)
    assert fragment in str(e.value)
