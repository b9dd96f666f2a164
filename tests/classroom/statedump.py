#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A normalized dump of one host's chapter state, as JSON on stdout.

Run it *inside* a (simulated) host: links (name, kind, master, MTU, up),
addresses, routes, permanent neighbours, permanent FDB entries, the
iptables ruleset without counters, a few network sysctls -- for the host's
network namespace and inside every named netns -- plus the netns list,
mounts under the chapter directories and the files under them.
Random things (MACs the kernel chose, ifindexes, counters) are left out or
replaced by the name of the link that owns them, so that two hosts built the
same way give the same dump.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import stat
import subprocess
import sys

DIRS = ('/var/lib/nodocker-lab', '/run/netns', '/etc/sysctl.d')
SYSCTLS = ('net/ipv4/ip_forward', 'net/ipv4/conf/all/forwarding')
MAC = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       universal_newlines=True, check=False)
    return p.stdout if p.returncode == 0 else ''


def ipj(ns, *args, tool='ip'):
    argv = [tool, '-j'] + (['-n', ns] if ns else []) + list(args)
    try:
        return json.loads(run(argv) or '[]')
    except ValueError:
        return []


def netns_exec(ns, argv):
    return ['ip', 'netns', 'exec', ns] + argv if ns else argv


def iptables(text):
    """iptables-save without counters and without tables that are empty (a
    table, once listed, stays registered with ACCEPT policies and no rule)."""
    out, table = [], []
    for line in text.splitlines():
        line = re.sub(r'\[\d+:\d+\]', '', line).strip()
        if not line or line.startswith('#'):
            continue
        table.append(line)
        if line == 'COMMIT':
            busy = [l for l in table if l.startswith('-A ')
                    or (l.startswith(':') and l.split()[1] != 'ACCEPT')]
            if busy:
                name = table[0]
                out.extend(name + ' ' + l for l in table[1:-1])
            table = []
    return out


def dump_netns(ns):
    d = {}
    links = ipj(ns, '-d', 'link', 'show')
    macs = {l.get('address'): l.get('ifname') for l in links if l.get('address')}

    def mac(m):
        if m in macs and not (m or '').startswith('02:42:'):
            return '<mac of %s>' % macs[m]
        return m

    d['links'] = sorted('%s kind=%s master=%s mtu=%s up=%s' % (
        l.get('ifname'), (l.get('linkinfo') or {}).get('info_kind'), l.get('master'),
        l.get('mtu'), 'UP' in (l.get('flags') or [])) for l in links)
    d['addresses'] = sorted(
        '%s %s/%s' % (l.get('ifname'), a.get('local'), a.get('prefixlen'))
        for l in ipj(ns, 'addr', 'show') for a in l.get('addr_info', [])
        if not (a.get('family') == 'inet6' and a.get('scope') == 'link'))
    routes = []
    for fam in ('-4', '-6'):
        for r in ipj(ns, fam, 'route', 'show', 'table', 'all'):
            dst = r.get('dst', '')
            if fam == '-6' and (dst.startswith('fe80') or dst.startswith('ff00')
                                or r.get('type') in ('multicast', 'local', 'anycast')):
                continue
            routes.append('%s %s via=%s dev=%s table=%s type=%s' % (
                fam, dst, r.get('gateway'), r.get('dev'), r.get('table', 'main'), r.get('type')))
    d['routes'] = sorted(routes)
    d['neighbours'] = sorted(
        '%s lladdr=%s dev=%s' % (n.get('dst'), mac(n.get('lladdr')), n.get('dev'))
        for n in ipj(ns, 'neigh', 'show', 'nud', 'permanent'))
    own = {l.get('ifname'): l.get('address') for l in links}

    def fdb_mac(f):
        # a bridge takes one of its ports' MACs (chosen at random): name a
        # port's own MAC as such, never by which link happens to share it
        m = f.get('mac')
        if m and m == own.get(f.get('ifname')):
            return '<own mac>'
        return '<mac of a link>' if m in macs and not m.startswith('02:42:') else m

    d['fdb'] = sorted(
        '%s dev=%s master=%s dst=%s vni=%s flags=%s' % (
            fdb_mac(f), f.get('ifname'), f.get('master'), f.get('dst'), f.get('vni'),
            ','.join(sorted(f.get('flags') or [])))
        for f in ipj(ns, 'fdb', 'show', tool='bridge')
        if f.get('state') == 'permanent' and not (f.get('mac') or '').startswith('33:33:')
        and not (f.get('mac') or '').startswith('01:00:5e:'))
    d['iptables'] = iptables(run(netns_exec(ns, ['iptables-save'])))
    sysctls = {}
    for s in SYSCTLS:
        out = run(netns_exec(ns, ['cat', '/proc/sys/' + s])).strip()
        sysctls[s.replace('/', '.')] = out
    d['sysctls'] = sysctls
    return d


def files():
    out = []
    for top in DIRS:
        if top == '/run/netns':
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                kind = stat.S_IFMT(st.st_mode)
                desc = '%s %o' % (p, stat.S_IMODE(st.st_mode))
                if stat.S_ISREG(st.st_mode):
                    desc += ' file size=%d' % st.st_size
                elif stat.S_ISLNK(st.st_mode):
                    desc += ' -> %s' % os.readlink(p)
                elif stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    desc += ' whiteout'
                elif not stat.S_ISDIR(st.st_mode):
                    desc += ' type=%o' % kind
                out.append(desc)
    return out


def mounts():
    out = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            mp = fields[4]
            if not any(mp == t or mp.startswith(t + '/') for t in DIRS) or mp in DIRS:
                continue
            sep = fields.index('-')
            opts = fields[sep + 3].split(',')
            # an overlay mounted with the new mount API lists each layer as
            # lowerdir+=L; `mount -o lowerdir=L1:L2` shows one lowerdir=L1:L2
            layers = [o.split('=', 1)[1] for o in opts if o.startswith('lowerdir+=')]
            if layers:
                opts = ['lowerdir=' + ':'.join(layers)] + [o for o in opts
                                                           if not o.startswith('lowerdir+=')]
            opts = ','.join(o for o in opts
                            if o.split('=')[0] in ('lowerdir', 'upperdir', 'workdir', 'size'))
            out.append('%s type=%s source=%s %s' % (mp, fields[sep + 1], fields[sep + 2], opts))
    return sorted(out)


def dump():
    names = sorted(n.split()[0] for n in run(['ip', 'netns', 'list']).splitlines() if n.strip())
    return {
        'host': dump_netns(None),
        'netns': names,
        'inside': {n: dump_netns(n) for n in names},
        'mounts': mounts(),
        'files': files(),
    }


if __name__ == '__main__':
    json.dump(dump(), sys.stdout, indent=1, sort_keys=True)
