# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routes in a namespace (``ip route add/replace/del``), chapter 4's default routes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.nodocker.lab.plugins.module_utils._netlink import (
    LinkMissing, Missing, NetlinkError, Plan, fail_missing, error_text, get_link, ip_cmd, netlink,
    netns_label, require_namespaces, require_pyroute2)
from ansible_collections.nodocker.lab.plugins.module_utils._validate import (
    check_ifname, check_netns_name, parse_ip, parse_network)

RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
IPV6_DEFAULT_METRIC = 1024  # what the kernel gives an IPv6 route added without a metric


class RouteError(Exception):
    """Bad state found in the kernel: becomes fail_json."""


def route_params(p):
    v = dict(
        dest=parse_network(p['dest'], 'dest'),
        gateway=parse_ip(p['gateway'], 'gateway') if p['gateway'] else None,
        dev=check_ifname(p['dev'], 'dev') if p['dev'] else None,
        netns=check_netns_name(p['netns'], 'netns') if p['netns'] is not None else None,
        metric=p['metric'],
        table=p['table'],
        state=p['state'],
    )
    if v['gateway'] is not None and v['gateway'].version != v['dest'].version:
        raise ValueError('gateway %s and dest %s are not the same IP version'
                         % (v['gateway'], v['dest']))
    if v['state'] == 'present' and v['gateway'] is None and v['dev'] is None:
        raise ValueError('a route needs a gateway, a dev, or both')
    if v['metric'] is not None and not 0 <= v['metric'] <= 4294967295:
        raise ValueError('metric %r is out of range 0..4294967295' % v['metric'])
    if not 1 <= v['table'] <= 4294967295:
        raise ValueError('table %r is out of range 1..4294967295' % v['table'])
    if v['metric'] is None:
        v['metric'] = IPV6_DEFAULT_METRIC if v['dest'].version == 6 else 0
    return v


def dest_text(dest):
    return 'default' if dest.prefixlen == 0 else str(dest)


def route_command(v, verb):
    args = ['route', verb, dest_text(v['dest'])]
    if v['gateway'] is not None:
        args += ['via', str(v['gateway'])]
    if v['dev'] is not None:
        args += ['dev', v['dev']]
    if v['metric']:
        args += ['metric', v['metric']]
    if v['table'] != RT_TABLE_MAIN:
        args += ['table', v['table']]
    return ip_cmd(v['netns'], *args)


def route_table(msg):
    return msg.get('RTA_TABLE') or msg['table']


def find_route(ipr, v):
    """The route with the same dest, metric and table (the kernel's identity of a route)."""
    family = 2 if v['dest'].version == 4 else 10
    for msg in ipr.route('dump', family=family):
        if msg['family'] != family or msg['dst_len'] != v['dest'].prefixlen:
            continue
        if route_table(msg) != v['table'] or (msg.get('RTA_PRIORITY') or 0) != v['metric']:
            continue
        if msg['dst_len'] and msg.get('RTA_DST') != str(v['dest'].network_address):
            continue
        if msg['type'] != 1:  # only unicast routes; leave local/broadcast ones alone
            continue
        return msg
    return None


def route_facts(ipr, msg, v):
    if msg is None:
        return {}
    dev = get_link(ipr, index=msg.get('RTA_OIF')) if msg.get('RTA_OIF') else None
    return dict(dest=dest_text(v['dest']), gateway=msg.get('RTA_GATEWAY'),
                dev=dev.get('IFLA_IFNAME') if dev is not None else None,
                metric=v['metric'], table=v['table'], netns=v['netns'])


def connected_networks(ipr, version):
    """Subnets the namespace reaches directly: unicast routes of scope link, any table."""
    family = 2 if version == 4 else 10
    nets = []
    for msg in ipr.route('dump', family=family):
        if msg['family'] != family or msg['type'] != 1 or msg['scope'] != RT_SCOPE_LINK:
            continue
        dst = msg.get('RTA_DST') or ('0.0.0.0' if version == 4 else '::')
        nets.append(ipaddress.ip_network('%s/%s' % (dst, msg['dst_len']), strict=False))
    return nets


def unreachable_message(v, nets, kernel_answer=None):
    msg = ('gateway %s is not on any connected subnet in %s (connected: %s); add an address '
           'on the gateway\'s subnet first (nothing was changed)'
           % (v['gateway'], netns_label(v['netns']),
              ', '.join(str(n) for n in nets) or 'none'))
    if kernel_answer:
        msg += '; the kernel answers "%s"' % kernel_answer
    return msg


def gateway_is_connected(ipr, v):
    """Whether the kernel will accept the gateway: it must be on a connected subnet.

    This is how the kernel checks a new route's next hop (a lookup limited to
    scope-link routes); asking first gives a clear failure even in check mode.
    """
    nets = connected_networks(ipr, v['gateway'].version)
    return any(v['gateway'] in n for n in nets), nets


def route_kwargs(v, oif):
    kw = dict(dst=str(v['dest']), table=v['table'], priority=v['metric'])
    if v['gateway'] is not None:
        kw['gateway'] = str(v['gateway'])
    if oif is not None:
        kw['oif'] = oif
    return kw


def run_route(module):
    require_pyroute2(module)
    try:
        v = route_params(module.params)
    except ValueError as e:
        module.fail_json(msg=str(e))
    plan = Plan(module.check_mode)
    try:
        require_namespaces(v['netns'])
        with netlink(v['netns']) as ipr:
            oif = None
            if v['dev'] is not None:
                link = get_link(ipr, v['dev'])
                if link is None:
                    raise LinkMissing('dev %s does not exist in %s (nothing was changed)'
                                      % (v['dev'], netns_label(v['netns'])))
                oif = link['index']
            current = find_route(ipr, v)
            before = route_facts(ipr, current, v)
            if v['state'] == 'absent':
                matches = current is not None and \
                    (v['gateway'] is None or before['gateway'] == str(v['gateway'])) and \
                    (v['dev'] is None or before['dev'] == v['dev'])
                if matches:
                    plan.do(route_command(v, 'del'), ipr.route, 'del',
                            **dict(route_kwargs(v, None), gateway=before['gateway'],
                                   oif=current.get('RTA_OIF')))
                after = {} if matches else before
            else:
                same = current is not None and \
                    (v['gateway'] is None or before['gateway'] == str(v['gateway'])) and \
                    (v['dev'] is None or before['dev'] == v['dev']) and \
                    (v['gateway'] is not None or before['gateway'] is None)
                if not same:
                    connected, nets = (True, []) if v['gateway'] is None \
                        else gateway_is_connected(ipr, v)
                    if not connected and module.check_mode:
                        raise RouteError(unreachable_message(v, nets))
                    verb = 'add' if current is None else 'replace'
                    try:
                        plan.do(route_command(v, verb), ipr.route, verb, **route_kwargs(v, oif))
                    except NetlinkError as e:
                        if connected:
                            raise
                        # the kernel is the authority; quote its answer
                        raise RouteError(unreachable_message(v, nets, error_text(e)))
                    after = dict(dest=dest_text(v['dest']),
                                 gateway=str(v['gateway']) if v['gateway'] else None,
                                 dev=v['dev'], metric=v['metric'], table=v['table'],
                                 netns=v['netns'])
                    if not module.check_mode:
                        after = route_facts(ipr, find_route(ipr, v), v)
                else:
                    after = before
    except Missing as e:
        fail_missing(module, e)
    except RouteError as e:
        module.fail_json(msg=str(e))
    except (NetlinkError, OSError) as e:
        module.fail_json(msg='route %s: the kernel answers "%s"'
                         % (dest_text(v['dest']), error_text(e)), commands=plan.commands)
    return dict(changed=plan.changed, commands=plan.commands, before=before, after=after,
                diff=dict(before=before, after=after))
