# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nodocker.lab.vxlan: input checks and the drift decision (no kernel)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _vxlan as vx


def params(**kw):
    p = dict(name='vxlan1', vni=42, port=4789, local=None, dev=None, remote=None, group=None,
             learning=True, proxy=False, l2miss=False, l3miss=False, mtu=None, master=None,
             up=True, netns='overns', create_netns=None, state='present')
    p.update(kw)
    return p


def test_default_port_is_iana_not_kernel():
    assert vx.validate(params(port=None))['port'] == 4789


@pytest.mark.parametrize('kw, msg', [
    (dict(vni=None), 'vni is required'),
    (dict(vni=1 << 24), 'out of range'),
    (dict(port=0), 'out of range'),
    (dict(port=70000), 'out of range'),
    (dict(remote='239.1.1.1'), 'multicast address: use group'),
    (dict(group='10.0.0.1', dev='eth1'), 'not a multicast'),
    (dict(group='239.1.1.1'), 'needs dev'),
    (dict(remote='10.0.0.1', group='239.1.1.1', dev='eth1'), 'not both'),
    (dict(local='1.2.3'), 'not a valid IP'),
    (dict(name='a' * 16), 'at most 15'),
    (dict(netns='bad/name'), 'invalid'),
    (dict(mtu=20), 'out of range'),
])
def test_bad_input(kw, msg):
    with pytest.raises(ValueError, match=msg):
        vx.validate(params(**kw))


def test_absent_needs_no_vni():
    assert vx.validate(params(vni=None, state='absent'))['state'] == 'absent'


def have(**kw):
    h = dict(name='vxlan1', vni=42, port=4789, local=None, remote=None, group=None,
             learning=True, proxy=False, l2miss=False, l3miss=False, mtu=1450, dev=None,
             underlay_netns_ok=True, up=True, master=None, mac=None)
    h.update(kw)
    return h


def test_no_drift():
    assert vx.diff_definition(vx.validate(params()), have()) == ([], [])


@pytest.mark.parametrize('kw, in_place, recreate', [
    (dict(learning=False), ['learning'], []),
    (dict(local='192.168.104.9'), ['local'], []),
    (dict(remote='192.168.104.3'), ['remote'], []),
    (dict(vni=43), [], ['vni']),
    (dict(port=8472), [], ['port']),
    (dict(proxy=True), [], ['proxy']),
    (dict(l2miss=True, l3miss=True), [], ['l2miss', 'l3miss']),
    # vxlan_changelink: "New local address family does not match old"
    (dict(local='fd00::2'), [], ['local']),
    (dict(remote='fd00::3'), [], ['remote']),
    (dict(group='239.1.1.1', dev='eth1'), [], ['group', 'dev']),
])
def test_drift_in_place_or_recreate(kw, in_place, recreate):
    want = vx.validate(params(**kw))
    assert vx.diff_definition(want, have()) == (in_place, recreate)


def test_wrong_underlay_namespace_recreates():
    assert vx.diff_definition(vx.validate(params()), have(underlay_netns_ok=False))[1] == \
        ['create_netns']


def test_other_underlay_device_recreates():
    want = vx.validate(params(dev='eth1'))
    assert vx.diff_definition(want, have(dev='eth2'))[1] == ['dev']


def test_create_command_reads_like_the_course():
    want = vx.validate(params(dev='eth1', local='192.168.104.2', proxy=True, l2miss=True,
                              l3miss=True))
    assert ' '.join(vx.create_command_args(want)) == (
        'link add vxlan1 type vxlan id 42 local 192.168.104.2 dev eth1 dstport 4789 '
        'learning proxy l2miss l3miss')


def test_omitted_addresses_are_not_compared():
    """local/remote/group left out: the device keeps its own, nothing to change."""
    h = have(local='192.168.104.2', remote='192.168.104.3')
    assert vx.diff_definition(vx.validate(params()), h) == ([], [])
    h = have(group='239.1.1.1', dev='eth1')
    assert vx.diff_definition(vx.validate(params()), h) == ([], [])


def test_unicast_remote_replacing_a_group_recreates():
    want = vx.validate(params(remote='192.168.104.3', dev='eth1'))
    assert vx.diff_definition(want, have(group='239.1.1.1', dev='eth1')) == ([], ['remote'])


def test_remote_family_follows_local_of_the_device():
    # a device with an IPv6 local only takes an IPv6 remote in place
    want = vx.validate(params(remote='fd00::3'))
    assert vx.diff_definition(want, have(local='fd00::2')) == (['remote'], [])


def test_in_place_command_lists_only_what_changes():
    want = vx.validate(params(dev='eth1', local='192.168.104.9', learning=False, proxy=True))
    in_place, recreate = vx.diff_definition(
        want, have(local='192.168.104.2', dev='eth1', proxy=True))
    assert recreate == []
    assert vx.change_command_args(want, in_place) == ['nolearning', 'local', '192.168.104.9']
    assert vx.netlink_kwargs(want, in_place) == {'vxlan_learning': 0,
                                                 'vxlan_local': '192.168.104.9'}


def test_in_place_remote_is_sent_as_group_attribute():
    want = vx.validate(params(remote='192.168.104.3'))
    in_place, dummy = vx.diff_definition(want, have(remote='192.168.104.5'))
    assert vx.change_command_args(want, in_place) == ['remote', '192.168.104.3']
    assert vx.netlink_kwargs(want, in_place) == {'vxlan_group': '192.168.104.3'}
