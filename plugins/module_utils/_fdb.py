# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Forwarding database entries of a VXLAN device (``bridge fdb ... self``).

The entries are a *resource list* handled in one task, with the states of
Ansible network resource modules:

* ``merged``: add the listed entries, update those that differ;
* ``deleted``: remove the listed entries;
* ``overridden``: the device ends up with exactly the listed permanent
  entries (unlisted permanent ``self`` entries are removed; learned ones and
  the device's own default destination are left alone).

A MAC normally has one destination, and a changed destination is replaced. A
flood entry (``00:00:00:00:00:00``) or any MAC listed more than once keeps a
*set* of destinations, maintained with ``bridge fdb append`` / ``del ... dst``.

Everything goes through one netlink socket and one dump: no subprocess per
entry, so 1,000 entries take a fraction of a second.

``bridge fdb show`` (and the kernel's dump) leaves out ``vni`` and ``port``
when they equal the device's own; entries are normalised to explicit values
using the device's VNI and port before comparing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.nodocker.lab.plugins.module_utils._netlink import (
    BatchFailed, LinkMissing, Missing, NetlinkError, Plan, bridge_cmd, error_text, fail_missing,
    get_link, link_kind, neigh_message, netlink, require_pyroute2)
from ansible_collections.nodocker.lab.plugins.module_utils._validate import (
    check_ifname, check_netns_name, normalize_mac, parse_ip)

AF_BRIDGE = 7
NTF_SELF = 0x02
NUD_PERMANENT = 0x80
NUD_NOARP = 0x40
ZERO_MAC = '00:00:00:00:00:00'
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
    entries = []
    for i, e in enumerate(params.get('entries') or []):
        what = 'entries[%d]' % i
        if not isinstance(e, dict):
            raise ValueError('%s must be a dict with mac and dst, got %r' % (what, e))
        unknown = set(e) - {'mac', 'dst', 'vni', 'port'}
        if unknown:
            raise ValueError('%s: unknown key(s) %s (allowed: mac, dst, vni, port)'
                             % (what, ', '.join(sorted(unknown))))
        if not e.get('mac'):
            raise ValueError('%s: mac is required' % what)
        mac = normalize_mac(e['mac'], '%s.mac' % what)
        if not e.get('dst'):
            raise ValueError('%s (%s): dst (the remote host IP) is required' % (what, mac))
        dst = str(parse_ip(e['dst'], '%s.dst' % what))
        vni = e.get('vni')
        if vni is not None:
            vni = _int(vni, '%s.vni' % what)
            if not 0 <= vni <= 0xFFFFFF:
                raise ValueError('%s.vni %r is out of range (0..16777215)' % (what, vni))
        port = e.get('port')
        if port is not None:
            port = _int(port, '%s.port' % what)
            if not 1 <= port <= 65535:
                raise ValueError('%s.port %r is out of range (1..65535)' % (what, port))
        entries.append({'mac': mac, 'dst': dst, 'vni': vni, 'port': port})
    return dev, netns, state, entries


def _int(value, what):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError('%s %r is not an integer' % (what, value))


def remote_key(entry):
    return (entry['dst'], entry['vni'], entry['port'])


def fill_defaults(entries, dev_vni, dev_port):
    """Explicit vni/port on every entry (the kernel omits the device's own)."""
    out = []
    for e in entries:
        out.append({'mac': e['mac'], 'dst': e['dst'],
                    'vni': dev_vni if e['vni'] is None else e['vni'],
                    'port': dev_port if e['port'] is None else e['port']})
    return out


def group_by_mac(entries):
    """{mac: set of (dst, vni, port)}; order of MACs kept."""
    groups = {}
    for e in entries:
        groups.setdefault(e['mac'], set()).add(remote_key(e))
    return groups


def is_multi(mac, want_groups):
    """Append semantics: the flood MAC, or a MAC listed with several destinations."""
    return mac == ZERO_MAC or len(want_groups.get(mac, ())) > 1


def compute_changes(have, want, state, protected=()):
    """Pure diff -> list of (op, entry); op in add, replace, append, del, del_mac.

    ``have``/``want``: lists of normalised entries. ``protected``: remotes
    (mac, dst, vni, port) that overridden must keep (the device's own default
    destination).
    """
    hg, wg = group_by_mac(have), group_by_mac(want)
    ops = []
    if state in ('merged', 'overridden'):
        for mac, wremotes in wg.items():
            hremotes = hg.get(mac, set())
            if is_multi(mac, wg):
                for r in sorted(wremotes - hremotes):
                    ops.append(('append', _entry(mac, r)))
                if state == 'overridden':
                    for r in sorted(hremotes - wremotes):
                        if (mac,) + r not in protected:
                            ops.append(('del', _entry(mac, r)))
            else:
                (r,) = wremotes
                if not hremotes:
                    ops.append(('add', _entry(mac, r)))
                elif hremotes != {r}:
                    if len(hremotes) == 1:
                        ops.append(('replace', _entry(mac, r)))
                    else:
                        ops.append(('del_mac', {'mac': mac}))
                        ops.append(('add', _entry(mac, r)))
        if state == 'overridden':
            for mac, hremotes in hg.items():
                if mac in wg:
                    continue
                for r in sorted(hremotes):
                    if (mac,) + r not in protected:
                        ops.append(('del', _entry(mac, r)))
    else:  # deleted
        for mac, wremotes in wg.items():
            for r in sorted(wremotes & hg.get(mac, set())):
                ops.append(('del', _entry(mac, r)))
    return ops


def _entry(mac, remote):
    return {'mac': mac, 'dst': remote[0], 'vni': remote[1], 'port': remote[2]}


def apply_ops(have, ops):
    """The entries after ``ops`` (used for check mode's ``after``)."""
    cur = [dict(e) for e in have]
    for op, e in ops:
        if op in ('add', 'append'):
            cur.append(dict(e))
        elif op == 'replace':
            cur = [c for c in cur if c['mac'] != e['mac']] + [dict(e)]
        elif op == 'del':
            cur = [c for c in cur if c != e]
        elif op == 'del_mac':
            cur = [c for c in cur if c['mac'] != e['mac']]
    return sort_entries(cur)


def sort_entries(entries):
    return sorted(entries, key=lambda e: (e['mac'], e['dst'], e['vni'], e['port']))


def command_for(netns, dev, op, e, dev_vni, dev_port):
    if op == 'del_mac':
        return bridge_cmd(netns, 'fdb', 'del', e['mac'], 'dev', dev, 'self')
    args = ['fdb', 'add' if op == 'add' else op, e['mac'], 'dev', dev, 'self', 'dst', e['dst']]
    if op != 'del' or e['vni'] != dev_vni:
        args += ['vni', str(e['vni'])]
    if op != 'del' or e['port'] != dev_port:
        args += ['port', str(e['port'])]
    if op != 'del':
        args.append('permanent')
    return bridge_cmd(netns, *args)


def read_device(ipr, dev, netns):
    msg = get_link(ipr, ifname=dev)
    if msg is None:
        raise LinkMissing('device %r not found in %s' % (dev, netns or 'this namespace'))
    if link_kind(msg) != 'vxlan':
        raise ValueError('device %r is a %s device; FDB entries with dst need a vxlan '
                         'device' % (dev, link_kind(msg)))
    data = dict(msg.get_nested('IFLA_LINKINFO', 'IFLA_INFO_DATA')['attrs'])
    group = data.get('IFLA_VXLAN_GROUP')
    return msg['index'], data.get('IFLA_VXLAN_ID'), data.get('IFLA_VXLAN_PORT'), group


def dump_entries(ipr, index, dev_vni, dev_port):
    """Permanent ``self`` entries of the device, normalised (vni/port explicit)."""
    out = []
    for m in ipr.fdb('dump', ifindex=index):
        if m['ifindex'] != index or not m['flags'] & NTF_SELF:
            continue
        if not m['state'] & NUD_PERMANENT:
            continue  # learned entries are the kernel's, not ours
        dst = m.get('NDA_DST')
        if not dst:
            continue
        vni, port = m.get('NDA_VNI'), m.get('NDA_PORT')
        out.append({'mac': (m.get('NDA_LLADDR') or '').lower(), 'dst': dst,
                    'vni': dev_vni if vni is None else vni,
                    'port': dev_port if port is None else port})
    return sort_entries(out)


def op_request(index, op, e):
    """One change as a raw netlink request (type, flags, body), like ``bridge fdb``'s."""
    base = dict(lladdr=e['mac'], state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)
    if op == 'del_mac':
        return neigh_message('del', AF_BRIDGE, index, **base)
    return neigh_message(op, AF_BRIDGE, index, dst=e['dst'], vni=e['vni'], port=e['port'],
                         **base)


def run_requests(ipr, phases, window=256):
    """Send the requests of each phase in batches on the one socket, phase after phase.

    Encoding each request with pyroute2 and awaiting it on its asyncio core
    cost about 1 ms per entry (2 s for 1,000 FDB + 1,000 neighbour entries);
    packed with struct and written ``window`` at a time, like ``ip -batch``,
    the kernel's own work is what remains. Phases keep the order that
    matters (deletions before additions of the same MAC/IP). ``phases``:
    lists of (command, request). Raises the first refusal as RequestFailed
    naming its command.
    """
    for phase in phases:
        try:
            ipr.batch([req for dummy, req in phase], window)
        except BatchFailed as e:
            raise RequestFailed(phase[e.index][0], e.error)


class RequestFailed(Exception):
    def __init__(self, command, error):
        Exception.__init__(self, '%s: %s' % (command, error_text(error)))
        self.command = command


def phased(ops, make_cmd, make_request):
    """Deletions first, then additions/updates: [[(cmd, request)], [(cmd, request)]]."""
    first, second = [], []
    for op, e in ops:
        item = (make_cmd(op, e), make_request(op, e))
        (first if op in ('del', 'del_mac') else second).append(item)
    return [first, second]


def run_fdb(module):
    require_pyroute2(module)
    try:
        dev, netns, state, entries = validate(module.params)
    except ValueError as e:
        module.fail_json(msg=str(e))
    plan = Plan(module.check_mode)
    try:
        with netlink(netns, reader=True) as ipr:
            index, dev_vni, dev_port, dev_group = read_device(ipr, dev, netns)
            want = fill_defaults(entries, dev_vni, dev_port)
            before = dump_entries(ipr, index, dev_vni, dev_port)
            protected = set()
            if dev_group:
                protected.add((ZERO_MAC, dev_group, dev_vni, dev_port))
            ops = compute_changes(before, want, state, protected)
            phases = phased(ops, lambda op, e: command_for(netns, dev, op, e, dev_vni, dev_port),
                            lambda op, e: op_request(index, op, e))
            for phase in phases:
                for cmd, dummy in phase:
                    plan.do(cmd)
            if not module.check_mode:
                run_requests(ipr, phases)
            if module.check_mode or not ops:
                after = apply_ops(before, ops)
            else:
                after = dump_entries(ipr, index, dev_vni, dev_port)
    except Missing as e:
        fail_missing(module, e, commands=plan.commands)
    except ValueError as e:
        module.fail_json(msg=str(e), commands=plan.commands)
    except RequestFailed as e:
        module.fail_json(msg='fdb on %s: the kernel refused %s' % (dev, e), commands=plan.commands)
    except (NetlinkError, OSError) as e:
        module.fail_json(msg='fdb on %s: %s' % (dev, error_text(e)), commands=plan.commands)
    return dict(changed=plan.changed, commands=plan.commands, before=before, after=after,
                diff=dict(before={'entries': before}, after={'entries': after}))
