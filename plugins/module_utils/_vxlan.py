# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VXLAN devices (``ip link add NAME type vxlan ...``), chapter 6 of the course.

A VXLAN device has two namespaces that matter:

* ``create_netns``: where it is *created*. Its UDP socket (port 4789) and its
  underlay device live there for its whole life, even after it moves.
* ``netns``: where the device itself ends up (the course's ``overns``).

The course creates ``vxlan1`` in the host and moves it into ``overns``; here
the device is created with ``IFLA_NET_NS_FD`` set, which the kernel treats the
same way (the link namespace stays the creating one). The underlay is checked
through ``IFLA_LINK_NETNSID`` + ``IFLA_VXLAN_LINK``: interface indexes collide
across namespaces, so an index alone proves nothing.

Drift: attributes the kernel can change in place (local, unicast remote,
learning, MTU, master, up) are corrected; the others make the module delete
and recreate the device. ``vxlan_changelink`` refuses a new VNI, dstport,
proxy, l2miss or l3miss with EOPNOTSUPP ("Cannot change ..."), and a local
or remote of the other address family; a new multicast group is accepted,
but kernels before 6.11 keep the old group's membership on an up device, and
the underlay device/namespace is fixed at creation here: those recreate too.
Both are reported in ``commands`` and ``diff``.

``local``, ``remote`` and ``group`` left out of the task mean "don't care":
the device keeps what it has (the kernel has no way to *unset* them in place,
and a definition that only names ``dev`` must not fight one made with a
``local``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.nodocker.lab.plugins.module_utils._netlink import (
    IFF_UP, Missing, NamespaceMissing, NetlinkError, Plan, error_text, fail_missing, get_link,
    ip_cmd, link_kind, netlink, netns_exists, netns_path, require_pyroute2)
from ansible_collections.nodocker.lab.plugins.module_utils._validate import (
    check_ifname, check_mtu, check_netns_name, parse_ip)

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
IANA_VXLAN_PORT = 4789
NO_NSID = 4294967295  # RTM_GETNSID answer for "no id" / "same namespace"

# attributes vxlan_changelink changes in place (same address family only);
# everything else it refuses with EOPNOTSUPP, so the device is recreated
CHANGEABLE = ('local', 'remote', 'learning')
# omitted in the task = keep what the device has
OPTIONAL = ('local', 'remote', 'group')
FLAGS = ('learning', 'proxy', 'l2miss', 'l3miss')
DEFINITION = ('vni', 'port', 'proxy', 'l2miss', 'l3miss', 'learning', 'local', 'remote',
              'group')


def validate(params):
    """Check every input; return the desired definition (dict). Raises ValueError."""
    d = {'name': check_ifname(params['name'], 'name')}
    for key in ('netns', 'create_netns'):
        d[key] = check_netns_name(params[key], key) if params.get(key) else None
    d['state'] = params['state']
    if d['state'] == 'absent':
        return d
    vni = params.get('vni')
    if vni is None:
        raise ValueError('vni is required with state=present (the course uses 42)')
    if not 0 <= vni <= 0xFFFFFF:
        raise ValueError('vni %r is out of range: a VXLAN id has 24 bits (0..16777215)' % vni)
    d['vni'] = vni
    port = params.get('port')
    if port is None:
        port = IANA_VXLAN_PORT
    if not 1 <= port <= 65535:
        raise ValueError('port %r is out of range: use 1..65535 (IANA VXLAN: 4789)' % port)
    d['port'] = port
    d['local'] = str(parse_ip(params['local'], 'local')) if params.get('local') else None
    d['dev'] = check_ifname(params['dev'], 'dev') if params.get('dev') else None
    d['remote'] = d['group'] = None
    if params.get('remote') and params.get('group'):
        raise ValueError('give either remote (one unicast peer) or group (a multicast '
                         'group), not both')
    if params.get('remote'):
        ip = parse_ip(params['remote'], 'remote')
        if ip.is_multicast:
            raise ValueError('remote %s is a multicast address: use group for that' % ip)
        d['remote'] = str(ip)
    if params.get('group'):
        ip = parse_ip(params['group'], 'group')
        if not ip.is_multicast:
            raise ValueError('group %s is not a multicast address: use remote for a '
                             'unicast peer' % ip)
        if not d['dev']:
            raise ValueError('group (multicast) needs dev: the kernel must know which '
                             'underlay device joins the group')
        d['group'] = str(ip)
    for f in FLAGS:
        d[f] = bool(params.get(f))
    d['mtu'] = check_mtu(params.get('mtu'), 'mtu')
    d['master'] = check_ifname(params['master'], 'master') if params.get('master') else None
    d['up'] = params.get('up', True)
    return d


def vxlan_facts(msg, dev_name=None, underlay_netns_ok=None):
    """A link message -> the VXLAN attributes this module manages."""
    if msg is None:
        return None
    data = msg.get_nested('IFLA_LINKINFO', 'IFLA_INFO_DATA')
    attrs = dict(data['attrs']) if data else {}
    group = attrs.get('IFLA_VXLAN_GROUP')
    is_mcast = bool(group) and int(group.split('.')[0]) >= 224
    return {
        'name': msg.get('IFLA_IFNAME'),
        'vni': attrs.get('IFLA_VXLAN_ID'),
        'port': attrs.get('IFLA_VXLAN_PORT'),
        'local': attrs.get('IFLA_VXLAN_LOCAL'),
        'remote': group if group and not is_mcast else None,
        'group': group if is_mcast else None,
        'learning': bool(attrs.get('IFLA_VXLAN_LEARNING')),
        'proxy': bool(attrs.get('IFLA_VXLAN_PROXY')),
        'l2miss': bool(attrs.get('IFLA_VXLAN_L2MISS')),
        'l3miss': bool(attrs.get('IFLA_VXLAN_L3MISS')),
        'mtu': msg.get('IFLA_MTU'),
        'dev': dev_name,
        'underlay_netns_ok': underlay_netns_ok,
        'mac': (msg.get('IFLA_ADDRESS') or '').lower() or None,
        'up': bool(msg['flags'] & IFF_UP),
        'master': None,
    }


def ip_family(address):
    return 6 if address and ':' in address else 4


def device_family(have):
    """The family the kernel fixed for the device's local and remote (IPv4 unless set)."""
    for key in OPTIONAL:
        if have.get(key):
            return ip_family(have[key])
    return 4


def diff_definition(want, have):
    """(keys to change in place, keys that force a recreate) between want and have.

    An omitted ``local``/``remote``/``group`` (None in ``want``) is not compared.
    """
    in_place, recreate = [], []
    family = device_family(have)
    for key in DEFINITION:
        if key in OPTIONAL and want[key] is None:
            continue  # don't care: keep the device's
        if want[key] == have[key]:
            continue
        changeable = key in CHANGEABLE
        if key in OPTIONAL and ip_family(want[key]) != family:
            changeable = False  # "New ... address family does not match old"
        if key == 'remote' and have.get('group'):
            changeable = False  # leaving a multicast group: see the module docstring
        (in_place if changeable else recreate).append(key)
    if have.get('underlay_netns_ok') is False:
        recreate.append('create_netns')
    if want['dev'] and want['dev'] != have['dev']:
        recreate.append('dev')
    return in_place, recreate


def create_command_args(want):
    """`ip link add` arguments, in the course's spelling."""
    args = ['link', 'add', want['name'], 'type', 'vxlan', 'id', str(want['vni'])]
    if want['remote']:
        args += ['remote', want['remote']]
    if want['group']:
        args += ['group', want['group']]
    if want['local']:
        args += ['local', want['local']]
    if want['dev']:
        args += ['dev', want['dev']]
    args += ['dstport', str(want['port'])]
    for f in FLAGS:
        args.append(f if want[f] else 'no' + f)
    return args


def change_command_args(want, keys):
    """`ip link set ... type vxlan` arguments for what changes in place, and only that."""
    args = []
    for key in keys:
        if key in FLAGS:
            args.append(key if want[key] else 'no' + key)
        else:
            args += [key, want[key]]
    return args


def netlink_kwargs(want, keys):
    kw = {}
    for key in keys:
        if key in ('remote', 'group'):
            if want[key]:
                kw['vxlan_group'] = want[key]
        elif key == 'local':
            if want['local']:
                kw['vxlan_local'] = want['local']
        elif key in FLAGS:
            kw['vxlan_' + key] = int(want[key])
    return kw


def ns_file(netns):
    return netns_path(netns) if netns else '/proc/%d/ns/net' % os.getpid()


def same_netns(a, b):
    sa, sb = os.stat(ns_file(a)), os.stat(ns_file(b))
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def expected_link_nsid(ipr, create_netns):
    """The id under which the device's namespace knows ``create_netns`` (or None)."""
    fd = os.open(ns_file(create_netns), os.O_RDONLY)
    try:
        nsid = ipr.get_netnsid(fd=fd).get('nsid')
    finally:
        os.close(fd)
    return None if nsid in (None, NO_NSID) else nsid


def describe_underlay(ipr, cipr, msg, want, moved):
    """Name of the underlay device and whether the link namespace is right."""
    data = msg.get_nested('IFLA_LINKINFO', 'IFLA_INFO_DATA')
    link_idx = dict(data['attrs']).get('IFLA_VXLAN_LINK') if data else None
    link_nsid = msg.get('IFLA_LINK_NETNSID')
    if moved:
        ok = link_nsid is not None and link_nsid == expected_link_nsid(ipr, want['create_netns'])
    else:
        ok = link_nsid is None
    dev = None
    if ok and link_idx:
        lower = get_link(cipr if moved else ipr, index=link_idx)
        dev = lower.get('IFLA_IFNAME') if lower is not None else None
    return dev, ok


def run_vxlan(module):
    require_pyroute2(module)
    try:
        want = validate(module.params)
    except ValueError as e:
        module.fail_json(msg=str(e))
    try:
        return apply(want, module.check_mode)
    except Missing as e:
        fail_missing(module, e)
    except ValueError as e:
        module.fail_json(msg=str(e))
    except (NetlinkError, OSError) as e:
        module.fail_json(msg='vxlan %s: %s' % (want['name'], error_text(e)))


def apply(want, check_mode):
    name, netns, create_netns = want['name'], want['netns'], want['create_netns']
    plan = Plan(check_mode)
    if want['state'] == 'absent' and netns and not netns_exists(netns):
        return result(plan, None, None)  # no namespace, no device: already absent
    for ns in (netns, create_netns) if want['state'] == 'present' else (netns,):
        if ns and not netns_exists(ns):
            raise NamespaceMissing('network namespace %r does not exist; create it first '
                                   'with nodocker.lab.netns' % ns)
    moved = not same_netns(netns, create_netns)
    with netlink(netns) as ipr, netlink(create_netns if moved else netns) as cipr:
        msg = get_link(ipr, ifname=name)
        if msg is not None and link_kind(msg) != 'vxlan':
            raise ValueError('%s exists in %s but is a %s device, not vxlan: refusing to '
                             'replace it' % (name, netns or 'this namespace', link_kind(msg)))
        before = None
        if msg is not None:
            before = vxlan_facts(msg, *describe_underlay(ipr, cipr, msg, want, moved))
            before['master'] = master_name(ipr, msg)

        if want['state'] == 'absent':
            if msg is not None:
                plan.do(ip_cmd(netns, 'link', 'del', name), ipr.link, 'del', index=msg['index'])
            return result(plan, before, None)

        dev_msg = None
        if want['dev']:
            dev_msg = get_link(cipr, ifname=want['dev'])
            if dev_msg is None:
                raise ValueError('underlay device %r not found in %s' % (
                    want['dev'], create_netns or 'the namespace the task runs in'))
        mtu = want['mtu']
        if mtu is None and dev_msg is not None:
            mtu = dev_msg.get('IFLA_MTU') - VXLAN_OVERHEAD
        master_msg = None
        if want['master']:
            master_msg = get_link(ipr, ifname=want['master'])
            if master_msg is None:
                raise ValueError('master %r not found in %s'
                                 % (want['master'], netns or 'this namespace'))

        recreate = []
        if msg is not None:
            in_place, recreate = diff_definition(want, before)
            if recreate:
                plan.do(ip_cmd(netns, 'link', 'del', name) + '  # recreate: %s changed'
                        % ', '.join(recreate), ipr.link, 'del', index=msg['index'])
                msg = None
            elif in_place:
                plan.do(ip_cmd(netns, *(['link', 'set', name, 'type', 'vxlan']
                                        + change_command_args(want, in_place))),
                        ipr.link, 'set', index=msg['index'], kind='vxlan',
                        **netlink_kwargs(want, in_place))
        created = msg is None
        if created:
            create_vxlan(plan, cipr, want, dev_msg, mtu, moved)
            if not check_mode:
                msg = get_link(ipr, ifname=name)
        index = msg['index'] if msg is not None else None
        cur_mtu = msg.get('IFLA_MTU') if msg is not None else None
        if mtu is not None and not created and cur_mtu != mtu:
            plan.do(ip_cmd(netns, 'link', 'set', name, 'mtu', str(mtu)),
                    ipr.link, 'set', index=index, mtu=mtu)
        if want['master'] and (created or before['master'] != want['master']):
            plan.do(ip_cmd(netns, 'link', 'set', name, 'master', want['master']),
                    ipr.link, 'set', index=index, master=master_msg['index'])
        if want['up'] and (created or not before['up']):
            plan.do(ip_cmd(netns, 'link', 'set', name, 'up'),
                    ipr.link, 'set', index=index, state='up')
        elif not want['up'] and not created and before['up']:
            plan.do(ip_cmd(netns, 'link', 'set', name, 'down'),
                    ipr.link, 'set', index=index, state='down')

        if check_mode:
            after = dict(before or {}, **{k: want[k] for k in (
                'name', 'vni', 'port', 'local', 'remote', 'group', 'dev', 'master', 'up')
                + FLAGS})
            if not created:
                for key in OPTIONAL + ('dev', 'master'):
                    if want[key] is None:
                        after[key] = before[key]  # omitted: kept as it is
            after['mtu'] = mtu if mtu is not None else (before or {}).get('mtu')
            after['underlay_netns_ok'] = True
        else:
            msg = get_link(ipr, ifname=name)
            after = vxlan_facts(msg, *describe_underlay(ipr, cipr, msg, want, moved))
            after['master'] = master_name(ipr, msg)
    return result(plan, before, after)


def create_vxlan(plan, cipr, want, dev_msg, mtu, moved):
    """Create the device in create_netns; with net_ns_fd it lands in netns directly."""
    kw = dict(ifname=want['name'], kind='vxlan', vxlan_id=want['vni'],
              vxlan_port=want['port'])
    kw.update(netlink_kwargs(want, ('local', 'remote', 'group') + FLAGS))
    if dev_msg is not None:
        kw['vxlan_link'] = dev_msg['index']
    if mtu is not None:
        kw['mtu'] = mtu
    cmd = ip_cmd(want['create_netns'] if moved else want['netns'], *create_command_args(want))
    if mtu is not None:
        cmd += ' mtu %d' % mtu
    if moved:
        kw['net_ns_fd'] = ns_file(want['netns'])
        plan.do(cmd)
        plan.do(ip_cmd(want['create_netns'], 'link', 'set', want['name'], 'netns',
                       want['netns'] or str(os.getpid())),
                cipr.link, 'add', **kw)
    else:
        plan.do(cmd, cipr.link, 'add', **kw)


def master_name(ipr, msg):
    idx = msg.get('IFLA_MASTER')
    if not idx:
        return None
    m = get_link(ipr, index=idx)
    return m.get('IFLA_IFNAME') if m is not None else None


def result(plan, before, after):
    return dict(changed=plan.changed, commands=plan.commands, vxlan=after or {},
                diff=dict(before=before or {}, after=after or {}))
