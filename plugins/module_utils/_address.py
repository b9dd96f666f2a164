# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IP addresses on a link (``ip addr add/del ADDRESS/PREFIX dev LINK``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import socket

from ansible_collections.nodocker.lab.plugins.module_utils._netlink import (
    LinkMissing, Missing, NetlinkError, Plan, fail_missing, error_text, get_link, ip_cmd, netlink,
    netns_label, require_namespaces, require_pyroute2)
from ansible_collections.nodocker.lab.plugins.module_utils._validate import (
    check_ifname, check_netns_name, parse_interface)

RT_SCOPE_LINK = 253
EADDRNOTAVAIL = 99


def address_params(p):
    """Validated parameters; addresses become ipaddress interfaces (raises ValueError)."""
    v = dict(
        dev=check_ifname(p['dev'], 'dev'),
        netns=check_netns_name(p['netns'], 'netns') if p['netns'] is not None else None,
        state=p['state'],
        exclusive=p['exclusive'],
        addresses=[parse_interface(a, 'address') for a in p['addresses']],
    )
    if v['exclusive'] and v['state'] == 'absent':
        raise ValueError('exclusive only makes sense with state=present')
    return v


def families_of(addresses):
    return set(a.version for a in addresses)


def current_addresses(ipr, index):
    """Addresses on a link as ipaddress interfaces, without the kernel's IPv6 link-local ones."""
    found = []
    for msg in ipr.addr('dump', index=index):
        if msg['index'] != index:
            continue
        if msg['family'] == socket.AF_INET6 and msg['scope'] == RT_SCOPE_LINK:
            continue  # fe80::/64 is the kernel's, made for every link; leave it alone
        addr = msg.get('IFA_LOCAL') or msg.get('IFA_ADDRESS')
        found.append(ipaddress.ip_interface('%s/%s' % (addr, msg['prefixlen'])))
    return found


def add_address(ipr, index, iface):
    ipr.addr('add', index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)


def del_address(ipr, index, iface):
    try:
        ipr.addr('del', index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as e:
        # already gone: the kernel removed it with its primary address
        if e.code != EADDRNOTAVAIL:
            raise


def restore_addresses(ipr, index, have):
    """Put the link back to ``have`` after a refused change (best effort, in order).

    Reads the kernel instead of trusting a list of what was done: the refused
    request added nothing, and deleting a primary address may have taken its
    secondaries with it. ``have`` is in the kernel's order (primaries first),
    so re-adding it in that order gives the same primaries back.
    """
    try:
        now = current_addresses(ipr, index)
    except NetlinkError:
        return
    for a in now:
        if a not in have:
            try:
                del_address(ipr, index, a)
            except NetlinkError:
                pass
    try:
        now = current_addresses(ipr, index)
    except NetlinkError:
        return
    for a in have:
        if a not in now:
            try:
                add_address(ipr, index, a)
            except NetlinkError:
                pass


def run_address(module):
    require_pyroute2(module)
    try:
        v = address_params(module.params)
    except ValueError as e:
        module.fail_json(msg=str(e))
    plan = Plan(module.check_mode)
    try:
        require_namespaces(v['netns'])
        with netlink(v['netns'], reader=True) as ipr:
            link = get_link(ipr, v['dev'])
            if link is None:
                raise LinkMissing('link %s does not exist in %s (nothing was changed)'
                                  % (v['dev'], netns_label(v['netns'])))
            index = link['index']
            have = current_addresses(ipr, index)
            want = v['addresses']
            if v['state'] == 'present':
                to_add = [a for a in want if a not in have]
                if v['exclusive']:
                    families = families_of(want) or set((4, 6))
                    to_del = [a for a in have if a.version in families and a not in want]
                else:
                    to_del = []
            else:
                to_add, to_del = [], [a for a in want if a in have]
            try:
                for a in to_del:
                    plan.do(ip_cmd(v['netns'], 'addr', 'del', str(a), 'dev', v['dev']),
                            del_address, ipr, index, a)
                if to_del and not module.check_mode:
                    # removing a primary address also removes its secondaries
                    # (unless promote_secondaries is set): add back what is wanted
                    have_now = current_addresses(ipr, index)
                    to_add = [a for a in want if a not in have_now] \
                        if v['state'] == 'present' else []
                for a in to_add:
                    plan.do(ip_cmd(v['netns'], 'addr', 'add', str(a), 'dev', v['dev']),
                            add_address, ipr, index, a)
            except NetlinkError:
                # nothing half-made: the link gets back the addresses it had
                # (also those exclusive removed) and loses the ones this task added
                restore_addresses(ipr, index, have)
                raise
            after = [a for a in have if a not in to_del] + to_add
            if plan.changed and not module.check_mode:
                after = current_addresses(ipr, index)
    except Missing as e:
        fail_missing(module, e)
    except (NetlinkError, OSError) as e:
        module.fail_json(msg='address on %s: %s (the link was put back as it was; '
                             'commands lists what was attempted, the last one failed)'
                         % (v['dev'], error_text(e)), commands=plan.commands)
    before = dict(dev=v['dev'], netns=v['netns'], addresses=[str(a) for a in have])
    after = dict(dev=v['dev'], netns=v['netns'], addresses=[str(a) for a in after])
    return dict(changed=plan.changed, commands=plan.commands, before=before, after=after,
                addresses=after['addresses'], diff=dict(before=before, after=after))
