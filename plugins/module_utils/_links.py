# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Links: veth pairs, bridges and the state of any existing link.

Chapters 3 and 4 of the course: ``ip link add ... type veth peer ...``,
``ip link add br0 type bridge``, ``ip link set X master br0 up``.

Every public ``run_*`` function takes the AnsibleModule, validates all input
first (``fail_json`` before any socket is opened), then compares the kernel's
state with the wanted state and records each difference in a ``Plan``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os

from ansible_collections.nodocker.lab.plugins.module_utils._netlink import (
    LinkMissing, Missing, NetlinkError, Plan, fail_missing, error_text, get_link, ip_cmd, link_facts,
    link_kind, netlink, netns_label, netnsid_of, open_netns_fd, require_namespaces,
    require_pyroute2, same_netns)
from ansible_collections.nodocker.lab.plugins.module_utils._validate import (
    check_ifname, check_mtu, check_netns_name, check_unicast_mac)


class TaskError(Exception):
    """A problem found while comparing with the kernel: becomes fail_json."""


def validated(module, checks):
    """Run ``checks`` (a callable returning a dict); fail the task on ValueError."""
    try:
        return checks()
    except ValueError as e:
        module.fail_json(msg=str(e))


def optional(check, value, *args):
    return None if value is None else check(value, *args)


@contextlib.contextmanager
def sockets(netns, peer_netns):
    """One netlink socket per distinct namespace: (socket in netns, socket in peer_netns)."""
    with netlink(netns, reader=True) as ipr:
        if same_netns(netns, peer_netns):
            yield ipr, ipr
        else:
            with netlink(peer_netns, reader=True) as pipr:
                yield ipr, pipr


def summary(facts, *keys):
    """The fields of link_facts a module reports (index and operstate change by themselves)."""
    return dict((k, facts[k]) for k in keys) if facts else {}


# ---------------------------------------------------------------- veth pairs

def veth_params(p):
    """Validated, normalised veth parameters (raises ValueError)."""
    v = dict(
        name=check_ifname(p['name'], 'name'),
        peer=optional(check_ifname, p['peer'], 'peer'),
        netns=optional(check_netns_name, p['netns'], 'netns'),
        mtu=check_mtu(p['mtu'], 'mtu'),
        mac=optional(check_unicast_mac, p['mac'], 'mac'),
        peer_mac=optional(check_unicast_mac, p['peer_mac'], 'peer_mac'),
        state=p['state'],
    )
    v['peer_netns'] = optional(check_netns_name, p['peer_netns'], 'peer_netns')
    if v['peer_netns'] is None:
        v['peer_netns'] = v['netns']
    if v['state'] == 'present' and v['peer'] is None:
        raise ValueError('peer is required when state=present')
    if v['peer'] == v['name'] and v['peer_netns'] == v['netns']:
        raise ValueError('name and peer are both %r in the same namespace; a veth '
                         'pair needs two different names there' % v['name'])
    if v['mac'] and v['peer_mac'] and v['mac'] == v['peer_mac']:
        raise ValueError('mac and peer_mac are both %s; the two ends of a pair need '
                         'different addresses' % v['mac'])
    return v


def is_veth_pair(ipr, end, pipr, peer_end, netns, peer_netns):
    """Whether ``end`` (seen through ipr) and ``peer_end`` (through pipr) are one pair.

    Each end's IFLA_LINK must be the other's ifindex AND each end's
    IFLA_LINK_NETNSID must name the other's namespace (absent when both ends
    share a namespace). Matching ifindexes alone is wrong: they collide
    across namespaces.
    """
    if link_kind(end) != 'veth' or link_kind(peer_end) != 'veth':
        return False
    if end.get('IFLA_LINK') != peer_end['index'] or peer_end.get('IFLA_LINK') != end['index']:
        return False
    if same_netns(netns, peer_netns):
        return end.get('IFLA_LINK_NETNSID') is None and ipr is pipr
    return (end.get('IFLA_LINK_NETNSID') == netnsid_of(ipr, peer_netns)
            and peer_end.get('IFLA_LINK_NETNSID') == netnsid_of(pipr, netns))


def veth_add_command(v):
    args = ['link', 'add', v['name']]
    if v['mac']:
        args += ['address', v['mac']]
    if v['mtu']:
        args += ['mtu', v['mtu']]
    args += ['type', 'veth', 'peer', 'name', v['peer']]
    if not same_netns(v['netns'], v['peer_netns']):
        args += ['netns', v['peer_netns']]
    if v['peer_mac']:
        args += ['address', v['peer_mac']]
    if v['mtu']:
        args += ['mtu', v['mtu']]
    return ip_cmd(v['netns'], *args)


def create_veth_pair(ipr, v):
    """Create both ends at once, the peer directly in its namespace.

    Passing the peer's namespace fd in the same RTM_NEWLINK means the peer
    never exists anywhere else, not even for a moment.
    """
    peer = {'ifname': v['peer']}
    if v['peer_mac']:
        peer['address'] = v['peer_mac']
    if v['mtu']:
        peer['mtu'] = v['mtu']
    extra = {}
    if v['mac']:
        extra['address'] = v['mac']
    if v['mtu']:
        extra['mtu'] = v['mtu']
    fd = None
    if not same_netns(v['netns'], v['peer_netns']):
        fd = open_netns_fd(v['peer_netns'])
        peer['net_ns_fd'] = fd
    try:
        ipr.link('add', ifname=v['name'], kind='veth', peer=peer, **extra)
    finally:
        if fd is not None:
            os.close(fd)


def set_link_attr(ipr, index, **attrs):
    ipr.link('set', index=index, **attrs)


def veth_facts(v, end, peer_end, ipr, pipr):
    if end is None:
        return {}
    e = link_facts(ipr, end)
    pe = link_facts(pipr, peer_end) if peer_end is not None else {}
    return dict(name=v['name'], netns=v['netns'], mtu=e['mtu'], mac=e['mac'],
                peer=pe.get('name'), peer_netns=v['peer_netns'],
                peer_mtu=pe.get('mtu'), peer_mac=pe.get('mac'))


def correct_drift(plan, ipr, msg, netns, mtu, mac):
    """Record (and make) the MTU/MAC changes one end needs."""
    name = msg.get('IFLA_IFNAME')
    if mtu and msg.get('IFLA_MTU') != mtu:
        plan.do(ip_cmd(netns, 'link', 'set', 'dev', name, 'mtu', mtu),
                set_link_attr, ipr, msg['index'], mtu=mtu)
    if mac and (msg.get('IFLA_ADDRESS') or '').lower() != mac:
        plan.do(ip_cmd(netns, 'link', 'set', 'dev', name, 'address', mac),
                set_link_attr, ipr, msg['index'], address=mac)


def run_veth(module):
    require_pyroute2(module)
    v = validated(module, lambda: veth_params(module.params))
    plan = Plan(module.check_mode)
    try:
        require_namespaces(v['netns'], v['peer_netns'])
        with sockets(v['netns'], v['peer_netns']) as (ipr, pipr):
            end = get_link(ipr, v['name'])
            peer_end = get_link(pipr, v['peer']) if v['peer'] else None
            if end is not None and link_kind(end) != 'veth':
                raise TaskError('%s already exists in %s and is a %s, not a veth'
                                % (v['name'], netns_label(v['netns']), link_kind(end) or 'device'))
            if end is not None and v['peer'] is not None:
                if peer_end is None or not is_veth_pair(ipr, end, pipr, peer_end,
                                                        v['netns'], v['peer_netns']):
                    raise TaskError(
                        'veth %s in %s exists but its peer is not %s in %s (its peer is '
                        'ifindex %s, link-netnsid %s); delete it or choose other names'
                        % (v['name'], netns_label(v['netns']), v['peer'],
                           netns_label(v['peer_netns']), end.get('IFLA_LINK'),
                           end.get('IFLA_LINK_NETNSID')))
            if end is None and peer_end is not None and v['state'] == 'present':
                raise TaskError('peer name %s is already used by another link (%s, ifindex %s) '
                                'in %s; choose another peer name or delete that link'
                                % (v['peer'], link_kind(peer_end) or 'device',
                                   peer_end['index'], netns_label(v['peer_netns'])))
            before = veth_facts(v, end, peer_end, ipr, pipr)

            if v['state'] == 'absent':
                if end is not None:
                    plan.do(ip_cmd(v['netns'], 'link', 'del', v['name']),
                            ipr.link, 'del', index=end['index'])
                after = {}
            elif end is None:
                plan.do(veth_add_command(v), create_veth_pair, ipr, v)
                after = dict(name=v['name'], netns=v['netns'], mtu=v['mtu'] or 1500,
                             mac=v['mac'], peer=v['peer'], peer_netns=v['peer_netns'],
                             peer_mtu=v['mtu'] or 1500, peer_mac=v['peer_mac'])
            else:
                correct_drift(plan, ipr, end, v['netns'], v['mtu'], v['mac'])
                correct_drift(plan, pipr, peer_end, v['peer_netns'], v['mtu'], v['peer_mac'])
                after = dict(before, mtu=v['mtu'] or before['mtu'], mac=v['mac'] or before['mac'],
                             peer_mtu=v['mtu'] or before['peer_mtu'],
                             peer_mac=v['peer_mac'] or before['peer_mac'])
            if plan.changed and not module.check_mode and v['state'] == 'present':
                after = veth_facts(v, get_link(ipr, v['name']),
                                   get_link(pipr, v['peer']), ipr, pipr)
    except Missing as e:
        fail_missing(module, e, commands=plan.commands)
    except TaskError as e:
        module.fail_json(msg=str(e), commands=plan.commands)
    except (NetlinkError, OSError) as e:
        module.fail_json(msg='veth %s: %s' % (v['name'], error_text(e)), commands=plan.commands)
    return dict(changed=plan.changed, commands=plan.commands, before=before, after=after,
                diff=dict(before=before, after=after))


# ------------------------------------------------------------------- bridges

def bridge_params(p):
    v = dict(
        name=check_ifname(p['name'], 'name'),
        netns=optional(check_netns_name, p['netns'], 'netns'),
        ports=[check_ifname(x, 'port') for x in (p['ports'] or [])],
        ports_exclusive=p['ports_exclusive'],
        state=p['state'],
    )
    if v['name'] in v['ports']:
        raise ValueError('bridge %s cannot be its own port' % v['name'])
    if len(set(v['ports'])) != len(v['ports']):
        raise ValueError('ports lists a name twice: %s' % ', '.join(v['ports']))
    return v


def bridge_ports(ipr, bridge_index):
    """Names of the links enslaved to a bridge, sorted."""
    return sorted(m.get('IFLA_IFNAME') for m in ipr.link('dump')
                  if m.get('IFLA_MASTER') == bridge_index)


def add_bridge(ipr, name):
    ipr.link('add', ifname=name, kind='bridge')
    return get_link(ipr, name)['index']


def run_bridge(module):
    require_pyroute2(module)
    v = validated(module, lambda: bridge_params(module.params))
    plan = Plan(module.check_mode)
    undo = []  # what to remove if a later step fails: nothing half-made
    try:
        require_namespaces(v['netns'])
        with netlink(v['netns']) as ipr:
            bridge = get_link(ipr, v['name'])
            if bridge is not None and link_kind(bridge) != 'bridge':
                raise TaskError('%s already exists in %s and is a %s, not a bridge'
                                % (v['name'], netns_label(v['netns']),
                                   link_kind(bridge) or 'device'))
            ports_before = bridge_ports(ipr, bridge['index']) if bridge is not None else []
            before = dict(name=v['name'], netns=v['netns'], ports=ports_before) \
                if bridge is not None else {}
            if v['state'] == 'absent':
                if bridge is not None:
                    plan.do(ip_cmd(v['netns'], 'link', 'del', v['name']),
                            ipr.link, 'del', index=bridge['index'])
                after = {}
            else:
                port_links = {}
                for port in v['ports']:
                    msg = get_link(ipr, port)
                    if msg is None:
                        raise LinkMissing('port %s does not exist in %s; create it first '
                                          '(nothing was changed)' % (port, netns_label(v['netns'])))
                    port_links[port] = msg
                bridge_index = bridge['index'] if bridge is not None else None
                if bridge is None:
                    bridge_index = plan.do(ip_cmd(v['netns'], 'link', 'add', v['name'],
                                                  'type', 'bridge'), add_bridge, ipr, v['name'])
                    if bridge_index is not None:
                        undo.append(lambda i=bridge_index: ipr.link('del', index=i))
                for port in v['ports']:
                    if bridge is not None and port_links[port].get('IFLA_MASTER') == bridge_index:
                        continue
                    plan.do(ip_cmd(v['netns'], 'link', 'set', 'dev', port, 'master', v['name']),
                            set_link_attr, ipr, port_links[port]['index'], master=bridge_index)
                released = [x for x in ports_before if x not in v['ports']] \
                    if v['ports_exclusive'] else []
                for port in released:
                    plan.do(ip_cmd(v['netns'], 'link', 'set', 'dev', port, 'nomaster'),
                            set_link_attr, ipr, get_link(ipr, port)['index'], master=0)
                ports_after = sorted((set(ports_before) | set(v['ports'])) - set(released))
                if plan.changed and not module.check_mode:
                    ports_after = bridge_ports(ipr, bridge_index)
                after = dict(name=v['name'], netns=v['netns'], ports=ports_after)
    except Missing as e:
        fail_missing(module, e, commands=plan.commands)
    except TaskError as e:
        module.fail_json(msg=str(e), commands=plan.commands)
    except (NetlinkError, OSError) as e:
        for fn in undo:
            try:
                fn()
            except Exception:  # the original error is the one worth reporting
                pass
        module.fail_json(msg='bridge %s: %s%s' % (v['name'], error_text(e),
                                                  ' (the new bridge was removed again)'
                                                  if undo else ''),
                         commands=plan.commands)
    return dict(changed=plan.changed, commands=plan.commands, before=before, after=after,
                diff=dict(before=before, after=after))


# ---------------------------------------------------- the state of any link

LINK_KEYS = ('state', 'mtu', 'mac', 'master')


def link_params(p):
    v = dict(
        names=[check_ifname(x, 'name') for x in p['name']],
        netns=optional(check_netns_name, p['netns'], 'netns'),
        state=p['state'],
        mtu=check_mtu(p['mtu'], 'mtu'),
        mac=optional(check_unicast_mac, p['mac'], 'mac'),
        master=p['master'],
    )
    if not v['names']:
        raise ValueError('name must list at least one link')
    if v['master']:
        check_ifname(v['master'], 'master')
        if v['master'] in v['names']:
            raise ValueError('%s cannot be its own master' % v['master'])
    if v['mac'] and len(v['names']) > 1:
        raise ValueError('mac can only be set on one link at a time (name lists %d)'
                         % len(v['names']))
    return v


def wanted_link(v, facts):
    """The link's facts as they should be after the task."""
    want = dict(facts)
    if v['state'] in ('up', 'down'):
        want['state'] = v['state']
    if v['mtu']:
        want['mtu'] = v['mtu']
    if v['mac']:
        want['mac'] = v['mac']
    if v['master'] is not None:
        want['master'] = v['master'] or None
    return want


def set_one_link(plan, ipr, v, name, msg, master_index):
    """Record the changes one existing link needs, in the order `ip` would apply them."""
    facts = summary(link_facts(ipr, msg), *LINK_KEYS)
    want = wanted_link(v, facts)
    idx = msg['index']
    if want['master'] != facts['master']:
        if want['master'] is None:
            plan.do(ip_cmd(v['netns'], 'link', 'set', 'dev', name, 'nomaster'),
                    set_link_attr, ipr, idx, master=0)
        else:
            plan.do(ip_cmd(v['netns'], 'link', 'set', 'dev', name, 'master', want['master']),
                    set_link_attr, ipr, idx, master=master_index)
    if want['mtu'] != facts['mtu']:
        plan.do(ip_cmd(v['netns'], 'link', 'set', 'dev', name, 'mtu', want['mtu']),
                set_link_attr, ipr, idx, mtu=want['mtu'])
    if want['mac'] != facts['mac']:
        plan.do(ip_cmd(v['netns'], 'link', 'set', 'dev', name, 'address', want['mac']),
                set_link_attr, ipr, idx, address=want['mac'])
    if want['state'] != facts['state']:
        plan.do(ip_cmd(v['netns'], 'link', 'set', 'dev', name, want['state']),
                set_link_attr, ipr, idx, state=want['state'])
    return facts, want


def run_link(module):
    require_pyroute2(module)
    v = validated(module, lambda: link_params(module.params))
    plan = Plan(module.check_mode)
    before, after = {}, {}
    try:
        require_namespaces(v['netns'])
        with netlink(v['netns'], reader=True) as ipr:
            msgs = dict((n, get_link(ipr, n)) for n in v['names'])
            missing = [n for n, m in msgs.items() if m is None]
            if missing and v['state'] != 'absent':
                raise LinkMissing('link %s does not exist in %s (nothing was changed)'
                                  % (', '.join(missing), netns_label(v['netns'])))
            master_index = None
            if v['master']:
                master = get_link(ipr, v['master'])
                if master is None:
                    raise LinkMissing('master %s does not exist in %s (nothing was changed)'
                                      % (v['master'], netns_label(v['netns'])))
                master_index = master['index']
            for name in v['names']:
                msg = msgs[name]
                if v['state'] == 'absent':
                    before[name] = summary(link_facts(ipr, msg), *LINK_KEYS) if msg else {}
                    after[name] = {}
                    if msg is not None:
                        plan.do(ip_cmd(v['netns'], 'link', 'del', 'dev', name),
                                ipr.link, 'del', index=msg['index'])
                else:
                    before[name], after[name] = set_one_link(plan, ipr, v, name, msg,
                                                             master_index)
            if plan.changed and not module.check_mode and v['state'] != 'absent':
                after = dict((n, summary(link_facts(ipr, get_link(ipr, n)), *LINK_KEYS))
                             for n in v['names'])
    except Missing as e:
        fail_missing(module, e, commands=plan.commands)
    except TaskError as e:
        module.fail_json(msg=str(e), commands=plan.commands)
    except (NetlinkError, OSError) as e:
        module.fail_json(msg='link %s: %s' % (', '.join(v['names']), error_text(e)),
                         commands=plan.commands)
    return dict(changed=plan.changed, commands=plan.commands, before=before, after=after,
                diff=dict(before=before, after=after))
