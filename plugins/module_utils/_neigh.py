# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Permanent neighbour (ARP/NDP) entries on one device (``ip neigh ... nud permanent``).

A resource list handled in one task, with the states of Ansible network
resource modules: ``merged`` (add/update the listed), ``deleted`` (remove the
listed) and ``overridden`` (exactly the listed permanent entries on the device;
dynamic entries the kernel learned are left alone). One netlink socket, one
dump, one request per change: 1,000 entries in a fraction of a second.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.nodocker.lab.plugins.module_utils._netlink import (
    LinkMissing, Missing, NetlinkError, Plan, fail_missing, error_text, get_link, ip_cmd, neigh_message, netlink,
    require_pyroute2)
from ansible_collections.nodocker.lab.plugins.module_utils._fdb import (
    RequestFailed, phased, run_requests)
from ansible_collections.nodocker.lab.plugins.module_utils._validate import (
    check_ifname, check_netns_name, normalize_mac, parse_ip)

NUD_PERMANENT = 0x80
STATES = ('merged', 'deleted', 'overridden')
# the usual Ansible spelling, for those who ask for present/absent
# (overridden is the exclusive mode: exactly the listed entries)
ALIASES = {'present': 'merged', 'absent': 'deleted'}


def validate(params):
    """Check the task's input; return (dev, netns, state, entries). Raises ValueError."""
    dev = check_ifname(params['dev'], 'dev')
    netns = check_netns_name(params['netns'], 'netns') if params.get('netns') else None
    state = ALIASES.get(params['state'], params['state'])
    if state not in STATES:
        raise ValueError('state %r: use one of %s' % (
            params['state'], ', '.join(STATES + tuple(sorted(ALIASES)))))
    entries, seen = [], {}
    for i, e in enumerate(params.get('entries') or []):
        what = 'entries[%d]' % i
        if not isinstance(e, dict):
            raise ValueError('%s must be a dict with ip and mac, got %r' % (what, e))
        unknown = set(e) - {'ip', 'mac'}
        if unknown:
            raise ValueError('%s: unknown key(s) %s (allowed: ip, mac)'
                             % (what, ', '.join(sorted(unknown))))
        if not e.get('ip'):
            raise ValueError('%s: ip is required' % what)
        ip = str(parse_ip(e['ip'], '%s.ip' % what))
        mac = None
        if e.get('mac'):
            mac = normalize_mac(e['mac'], '%s.mac' % what)
        elif state != 'deleted':
            raise ValueError('%s (%s): mac is required with state=%s' % (what, ip, state))
        if ip in seen and seen[ip] != mac:
            raise ValueError('%s: %s is listed twice with different MACs (%s, %s)'
                             % (what, ip, seen[ip], mac))
        seen[ip] = mac
        entries.append({'ip': ip, 'mac': mac})
    return dev, netns, state, entries


def compute_changes(have, want, state):
    """Pure diff -> list of (op, entry); op in replace, del."""
    hmap = dict((e['ip'], e['mac']) for e in have)
    wmap = {}
    for e in want:
        wmap[e['ip']] = e['mac']
    ops = []
    if state in ('merged', 'overridden'):
        for ip, mac in wmap.items():
            if hmap.get(ip) != mac:
                ops.append(('replace' if ip in hmap else 'add', {'ip': ip, 'mac': mac}))
        if state == 'overridden':
            for ip in sorted(set(hmap) - set(wmap), key=sort_key_ip):
                ops.append(('del', {'ip': ip, 'mac': hmap[ip]}))
    else:
        for ip, mac in wmap.items():
            if ip in hmap and (mac is None or hmap[ip] == mac):
                ops.append(('del', {'ip': ip, 'mac': hmap[ip]}))
    return ops


def sort_key_ip(ip):
    a = parse_ip(ip)
    return (a.version, int(a))


def sort_entries(entries):
    return sorted(entries, key=lambda e: sort_key_ip(e['ip']))


def apply_ops(have, ops):
    cur = dict((e['ip'], e['mac']) for e in have)
    for op, e in ops:
        if op == 'del':
            cur.pop(e['ip'], None)
        else:
            cur[e['ip']] = e['mac']
    return sort_entries([{'ip': ip, 'mac': mac} for ip, mac in cur.items()])


def command_for(netns, dev, op, e):
    if op == 'del':
        return ip_cmd(netns, 'neigh', 'del', e['ip'], 'dev', dev)
    return ip_cmd(netns, 'neigh', op, e['ip'], 'lladdr', e['mac'], 'dev', dev,
                  'nud', 'permanent')


def dump_entries(ipr, index):
    """Permanent entries on the device (both families), as [{ip, mac}]."""
    out = []
    for m in ipr.neigh('dump', ifindex=index):
        if m['ifindex'] != index or m['family'] not in (socket.AF_INET, socket.AF_INET6):
            continue
        if not m['state'] & NUD_PERMANENT:
            continue
        dst, mac = m.get('NDA_DST'), m.get('NDA_LLADDR')
        if dst and mac:
            out.append({'ip': dst, 'mac': mac.lower()})
    return sort_entries(out)


def op_request(index, op, e):
    """One change as a raw netlink request (type, flags, body), like ``ip neigh``'s."""
    family = socket.AF_INET6 if ':' in e['ip'] else socket.AF_INET
    if op == 'del':
        return neigh_message('del', family, index, dst=e['ip'])
    # replace covers both "add" and "update": NLM_F_CREATE|NLM_F_REPLACE
    return neigh_message('replace', family, index, state=NUD_PERMANENT, dst=e['ip'],
                         lladdr=e['mac'])


def run_neigh(module):
    require_pyroute2(module)
    try:
        dev, netns, state, entries = validate(module.params)
    except ValueError as e:
        module.fail_json(msg=str(e))
    plan = Plan(module.check_mode)
    try:
        with netlink(netns, reader=True) as ipr:
            msg = get_link(ipr, ifname=dev)
            if msg is None:
                raise LinkMissing('device %r not found in %s' % (dev, netns or 'this namespace'))
            index = msg['index']
            before = dump_entries(ipr, index)
            ops = compute_changes(before, entries, state)
            phases = phased(ops, lambda op, e: command_for(netns, dev, op, e),
                            lambda op, e: op_request(index, op, e))
            for phase in phases:
                for cmd, dummy in phase:
                    plan.do(cmd)
            if not module.check_mode:
                run_requests(ipr, phases)
            if module.check_mode or not ops:
                after = apply_ops(before, ops)
            else:
                after = dump_entries(ipr, index)
    except Missing as e:
        fail_missing(module, e, commands=plan.commands)
    except ValueError as e:
        module.fail_json(msg=str(e), commands=plan.commands)
    except RequestFailed as e:
        module.fail_json(msg='neigh on %s: the kernel refused %s' % (dev, e), commands=plan.commands)
    except (NetlinkError, OSError) as e:
        module.fail_json(msg='neigh on %s: %s' % (dev, error_text(e)), commands=plan.commands)
    return dict(changed=plan.changed, commands=plan.commands, before=before, after=after,
                diff=dict(before={'entries': before}, after={'entries': after}))
