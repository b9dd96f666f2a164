# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leak check: a snapshot of this machine's own state, before and after.

    leakcheck.py snapshot FILE     # write the snapshot
    leakcheck.py compare FILE      # compare now with FILE; exit 1 on any difference
    leakcheck.py show              # print the snapshot (for humans)

The snapshot covers what the project must never leave behind or change in
the machine's root namespaces: links, addresses, routes and rules, the
network sysctls that matter, the firewall ruleset, named network namespaces,
mounts, cgroups under the project's parent, and processes living in other
namespaces (or carrying the project's name). Nothing here writes anything:
it only reads /proc, /sys and the output of read-only commands.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys
import time

PROJECT_MARKERS = ('nodocker', 'qemu-system')
IGNORED_MOUNTS = {'/run/netns'}  # `ip netns add` leaves it as a shared bind mount
SYSCTLS = [
    'net/ipv4/ip_forward',
    'net/ipv4/conf/all/forwarding', 'net/ipv4/conf/all/rp_filter',
    'net/ipv4/conf/default/forwarding', 'net/ipv4/conf/default/rp_filter',
    'net/ipv6/conf/all/forwarding',
    'net/bridge/bridge-nf-call-iptables',
]


def _cmd(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout if p.returncode == 0 else None


def _ip_json(*args):
    out = _cmd(['ip', '-j'] + list(args))
    try:
        return json.loads(out) if out else []
    except ValueError:
        return []


def links():
    return sorted('%s kind=%s mtu=%s master=%s mac=%s up=%s' % (
        l.get('ifname'), (l.get('linkinfo') or {}).get('info_kind'), l.get('mtu'),
        l.get('master'), l.get('address'), 'UP' in l.get('flags', []))
        for l in _ip_json('-d', 'link', 'show'))


def addresses():
    out = []
    for l in _ip_json('addr', 'show'):
        for a in l.get('addr_info', []):
            if a.get('family') == 'inet6' and a.get('scope') == 'link':
                continue  # link-local addresses follow links, already compared
            out.append('%s %s/%s' % (l.get('ifname'), a.get('local'), a.get('prefixlen')))
    return sorted(out)


def routes():
    out = []
    for fam in ('-4', '-6'):
        for r in _ip_json(fam, 'route', 'show', 'table', 'all'):
            dst = r.get('dst', '')
            if fam == '-6' and (dst.startswith('fe80') or dst.startswith('ff00')
                                or r.get('type') in ('multicast', 'local', 'anycast')):
                continue
            out.append('%s %s via=%s dev=%s table=%s type=%s' % (
                fam, dst, r.get('gateway'), r.get('dev'), r.get('table', 'main'), r.get('type')))
    for fam in ('-4', '-6'):
        for r in _ip_json(fam, 'rule', 'show'):
            out.append('rule %s %s' % (fam, json.dumps(r, sort_keys=True)))
    return sorted(out)


def sysctls():
    out = {}
    for s in SYSCTLS:
        try:
            with open('/proc/sys/' + s) as f:
                out[s.replace('/', '.')] = f.read().strip()
        except OSError:
            pass
    return out


def firewall():
    text = _cmd(['nft', 'list', 'ruleset'])
    if text is None:
        text = _cmd(['iptables-save']) or ''
        text = '\n'.join(l for l in text.splitlines() if not l.startswith('#'))
    # counters change with traffic; the rules are what matter
    return sorted(l.strip() for l in text.splitlines() if l.strip())


def namespaces():
    try:
        return sorted(os.listdir('/run/netns'))
    except OSError:
        return []


def mounts():
    out = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            sep = fields.index('-')
            mp = fields[4]
            if mp in IGNORED_MOUNTS:
                continue
            out.append('%s type=%s source=%s' % (mp, fields[sep + 1], fields[sep + 2]))
    return sorted(out)


def cgroups():
    out = []
    base = '/sys/fs/cgroup'
    roots = [base]
    try:
        roots += [os.path.join(base, d) for d in os.listdir(base)]
    except OSError:
        pass
    for root in roots:
        for cand in ('nodocker-lab', 'nodocker-lab.slice'):
            top = os.path.join(root, cand)
            if os.path.isdir(top):
                for dirpath, dummy_dirs, dummy_files in os.walk(top):
                    out.append(dirpath)
    return sorted(set(out))


def _ns_ids(pid):
    ids = {}
    for ns in ('net', 'mnt', 'pid', 'uts', 'ipc'):
        try:
            ids[ns] = os.readlink('/proc/%s/ns/%s' % (pid, ns))
        except OSError:
            ids[ns] = None
    return ids


def _ancestors():
    pids = set()
    pid = os.getpid()
    while pid > 0:
        pids.add(pid)
        try:
            with open('/proc/%d/stat' % pid) as f:
                pid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError):
            break
    return pids


def processes():
    """Processes that belong to the project: in other namespaces than ours, or
    named after it. Identified by pid + start time (pids are reused)."""
    mine = _ns_ids('self')
    skip = _ancestors()
    netns_names = {}
    for name in namespaces():
        try:
            netns_names['net:[%d]' % os.stat('/run/netns/' + name).st_ino] = name
        except OSError:
            pass
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) in skip:
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                stat = f.read()
            with open('/proc/%s/cmdline' % d, 'rb') as f:
                cmdline = f.read().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
        except OSError:
            continue
        fields = stat.rsplit(')', 1)[1].split()
        if int(fields[6]) & 0x00200000 or not cmdline:  # PF_KTHREAD flag
            continue
        ids = _ns_ids(d)
        foreign = [ns for ns in ids if ids[ns] is not None and ids[ns] != mine[ns]]
        named = any(m in cmdline for m in PROJECT_MARKERS)
        if foreign or named:
            where = ','.join(foreign)
            if ids['net'] in netns_names:
                where += ' netns=%s' % netns_names[ids['net']]
            out.append('%s@%s %s%s' % (d, fields[19], cmdline[:160],
                                       ' [ns: %s]' % where if where else ''))
    return sorted(out)


def project_dirs():
    return sorted(p for p in ('/run/nodocker-lab-simhosts', '/var/lib/nodocker-lab-simhosts')
                  if os.path.exists(p))


def snapshot():
    return {
        'links': links(), 'addresses': addresses(), 'routes': routes(),
        'sysctls': sysctls(), 'firewall': firewall(), 'netns': namespaces(),
        'mounts': mounts(), 'cgroups': cgroups(), 'processes': processes(),
        'project_dirs': project_dirs(),
    }


def _ignored(item):
    """Items owned by a test lane running at the same time (NODOCKER_LEAKCHECK_IGNORE:
    comma-separated substrings), which checks its own leaks when it ends."""
    patterns = [p for p in os.environ.get('NODOCKER_LEAKCHECK_IGNORE', '').split(',') if p]
    return any(p in item for p in patterns)


def compare(before, after):
    problems = []
    for key in before:
        b, a = before[key], after.get(key)
        if isinstance(b, dict):
            for k in sorted(set(b) | set(a or {})):
                if b.get(k) != (a or {}).get(k):
                    problems.append('%s: %s changed from %r to %r' % (key, k, b.get(k), (a or {}).get(k)))
            continue
        for item in sorted(set(a or []) - set(b)):
            if not _ignored(item):
                problems.append('%s: left behind: %s' % (key, item))
        for item in sorted(set(b) - set(a or [])):
            if not _ignored(item):
                problems.append('%s: removed: %s' % (key, item))
    return problems


def settled_problems(before, timeout=10):
    """compare() with now, retried for a while: namespaces and processes are
    released asynchronously after their last user goes."""
    deadline = time.time() + timeout
    while True:
        problems = compare(before, snapshot())
        if not problems or time.time() > deadline:
            return problems
        time.sleep(0.5)


def main(argv):
    if len(argv) < 2 or argv[1] not in ('snapshot', 'compare', 'show'):
        sys.stderr.write(__doc__)
        return 2
    if argv[1] == 'show':
        json.dump(snapshot(), sys.stdout, indent=1, sort_keys=True)
        return 0
    path = argv[2]
    if argv[1] == 'snapshot':
        with open(path, 'w') as f:
            json.dump(snapshot(), f, indent=1, sort_keys=True)
        return 0
    with open(path) as f:
        before = json.load(f)
    problems = settled_problems(before)
    if problems:
        print('LEAK CHECK FAILED: the machine is not as it was before:')
        for p in problems:
            print('  - ' + p)
        if os.environ.get('NODOCKER_LEAKCHECK_WARN_ONLY') == '1':
            # only for development while other work runs on the same machine
            print('(NODOCKER_LEAKCHECK_WARN_ONLY=1: not failing)')
            return 0
        return 1
    print('leak check: clean')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
