# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chapter 7's dynamic overlay agent (run as a program, not imported by modules).

The VXLAN device in ``overns`` is made with ``l2miss l3miss``: when the kernel
lacks an entry it sends an RTM_GETNEIGH "miss" on netlink instead of
flooding. The agent listens for them and answers from the registry
(``_registry.py``):

* L3 miss (``NDA_DST``: who has 11.11.11.3?) -> a permanent neighbour entry
  IP -> MAC, plus the FDB entry MAC -> owner host right away, so the first
  frame does not wait for a second miss;
* L2 miss (``NDA_LLADDR``: where is 02:42:c0:a8:00:03?) -> FDB entry MAC ->
  owner host.

Every ``--interval`` seconds it re-reads the registry and corrects the
entries on the device: an entry whose record is gone (container detached),
or points at this host, is deleted; one whose record changed (container
moved) is replaced. The agent owns the permanent entries of its VXLAN device.

Removal bound: a sync waits at most ``interval / 2`` for its registry read
(the read goes on in its thread; the etcd requests of the agent time out
after ``interval / 2`` too, at most 3 s). A record removed just after one
read is seen by the next read, which starts one interval after the previous
sync ended: so a removed container disappears from every other host within
``interval + 2 x (interval / 2)`` = **2 x interval** (plus the milliseconds
of the netlink changes), as long as the registry answers within
``interval / 2``. A registry slower than that, or unreachable, delays the
removal until a read succeeds; it never makes the agent delete entries.

A failed registry read is never taken for an empty registry: the agent
keeps its last good view, and until its first read succeeds (an agent
started while the registry is unreachable) it changes no entry at all.

Answers use ``replace`` (create or update), so an agent restarted over
existing entries answers again without duplicates. A malformed record is
logged once and skipped. Every miss and its answer is logged.

Sub-commands (the role calls them; each prints ``changed`` or ``unchanged``):

* ``run``: the agent itself, in the foreground;
* ``ensure`` / ``stop``: start (or restart on a new configuration) / stop the
  supervised agent: a supervisor process with a pidfile that restarts the
  agent when it dies, logging to ``--log``;
* ``register`` / ``unregister``: write / remove a container's record;
* ``sync-host``: make the registry hold exactly this host's containers;
* ``ready``: wait (bounded) until the agent logged that it listens and that
  agent process is alive; else fail with the log's tail;
* ``check-records``: wait (bounded) until this host sees the other hosts'
  records (a directory registry that is not shared fails here).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

try:
    from ansible_collections.nodocker.lab.plugins.module_utils._registry import (
        MalformedRecord, by_mac, make_record, open_registry)
except ImportError:  # deployed as plain files next to each other
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _registry import MalformedRecord, by_mac, make_record, open_registry  # noqa: E402

AF_BRIDGE = 7
NTF_SELF = 0x02
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
RTMGRP_NEIGH = 0x4  # 1 << (RTNLGRP_NEIGH - 1)
ZERO_MAC = '00:00:00:00:00:00'
# The log line that says an agent is up (``ready`` looks for it)
LISTENING = 'listening for misses on'
LOG = logging.getLogger('nodocker-overlay-agent')


# ----------------------------------------------------------------- pure logic
def classify_miss(msg, vx_index):
    """('l3', ip) or ('l2', mac) for a miss on our device, else None.

    An L3 miss carries NDA_DST (the IP asked for); an L2 miss carries only
    NDA_LLADDR (the MAC asked for). Decide on the attributes, not on the
    family: this kernel (6.18) reports L2 misses with family AF_INET, not
    AF_BRIDGE.
    """
    if msg.get('event') != 'RTM_GETNEIGH' or msg.get('ifindex') != vx_index:
        return None
    if msg.get('NDA_DST'):
        return ('l3', msg.get('NDA_DST'))
    if msg.get('NDA_LLADDR'):
        return ('l2', msg.get('NDA_LLADDR').lower())
    return None


def answer(kind, key, records, self_ip, macs=None):
    """The record answering a miss, or (None, reason).

    ``macs``: the {mac: record} index of ``records`` when the caller keeps one
    (the agent builds it once per registry read, not once per L2 miss).
    """
    rec = records.get(key) if kind == 'l3' else (by_mac(records) if macs is None
                                                 else macs).get(key)
    if rec is None:
        return None, 'no registry record'
    if rec['host'] == self_ip:
        return None, 'owned by this host (local, learned by the bridge)'
    return rec, None


def plan_sync(neigh, fdb, records, self_ip, stale=()):
    """Corrections for the device's entries. ``neigh``: {ip: mac}; ``fdb``: {mac: dst}.

    ``stale``: IPs with a non-permanent (incomplete/failed) entry. With
    ``proxy`` the VXLAN device answers ARP itself and raises no L3 miss while
    such an entry exists -- typically right after the agent deleted the
    permanent entry of a container that then came back -- so an IP with a
    record is answered here instead of waiting for a miss that never comes.

    Returns a list of (op, kind, key, value): op 'del' or 'replace'.
    """
    ops = []
    macs = by_mac(records)
    for ip in sorted(set(stale) - set(neigh)):
        rec = records.get(ip)
        if rec is not None and rec['host'] != self_ip:
            ops.append(('replace', 'neigh', ip, rec['mac']))
            if fdb.get(rec['mac']) != rec['host']:
                ops.append(('replace', 'fdb', rec['mac'], rec['host']))
    for ip, mac in sorted(neigh.items()):
        rec = records.get(ip)
        if rec is None or rec['host'] == self_ip:
            ops.append(('del', 'neigh', ip, mac))
        elif rec['mac'] != mac:
            ops.append(('replace', 'neigh', ip, rec['mac']))
    for mac, dst in sorted(fdb.items()):
        if mac == ZERO_MAC:
            continue
        rec = macs.get(mac)
        if rec is None or rec['host'] == self_ip:
            ops.append(('del', 'fdb', mac, dst))
        elif rec['host'] != dst:
            ops.append(('replace', 'fdb', mac, rec['host']))
    return ops


# ------------------------------------------------------------------ the agent
def read_budget(interval):
    """Seconds a sync waits for its registry read (and the agent's etcd
    request timeout): half the interval, so that the removal bound
    (2 x interval) holds; at most 3 s, at least 0.1 s."""
    return max(0.1, min(3.0, float(interval) / 2))


class Agent:
    def __init__(self, args, registry):
        self.args = args
        self.registry = registry
        self.records = {}
        self.macs = {}
        # False until a registry read succeeds: until then ``records`` is
        # "unknown", not "empty", and sync must not delete anything.
        self.have_view = False
        self.seen_errors = set()
        self.last_read = 0.0
        self.last_fail = 0.0
        self.budget = read_budget(getattr(args, 'interval', 2.0))
        self._reading = None  # the registry read in flight (one at a time)
        self.vx_index = None

    def read_registry(self):
        errors = []
        try:
            records = self.registry.records(errors)
        except Exception as e:  # registry down: keep the last good view
            self.last_fail = time.monotonic()
            if self.have_view:
                LOG.warning('registry %s unreadable, keeping %d known records: %s',
                            self.registry.kind, len(self.records), e)
            else:
                LOG.warning('registry %s unreadable and never read yet: keeping every '
                            'entry of %s as it is until a read succeeds: %s',
                            self.registry.kind, getattr(self.args, 'dev', '?'), e)
            return
        for err in errors:
            if err not in self.seen_errors:
                LOG.warning('malformed registry record skipped: %s', err)
        self.seen_errors = set(errors)
        self.records, self.macs = records, by_mac(records)
        self.have_view = True
        self.last_read = time.monotonic()

    async def refresh(self):
        """Read the registry in a thread, waiting at most ``self.budget`` seconds.

        A read still running after that (a hung NFS mount, a slow etcd) goes
        on in its thread and updates the view when it ends; meanwhile the last
        good view is used and no second read is started.
        """
        import asyncio
        if self._reading is None or self._reading.done():
            self._reading = asyncio.get_running_loop().run_in_executor(None, self.read_registry)
        try:
            await asyncio.wait_for(asyncio.shield(self._reading), self.budget)
        except asyncio.TimeoutError:
            self.last_fail = time.monotonic()
            LOG.warning('registry %s read still running after %.1fs: keeping %d known records',
                        self.registry.kind, self.budget, len(self.records))

    async def device_index(self, ipr):
        idx = await ipr.link_lookup(ifname=self.args.dev)
        if not idx:
            raise RuntimeError('device %s not found in %s' % (self.args.dev, self.args.netns))
        return idx[0]

    async def set_neigh(self, ipr, ip, mac):
        await ipr.neigh('replace', ifindex=self.vx_index, dst=ip, lladdr=mac,
                        family=socket.AF_INET, state=NUD_PERMANENT)

    async def set_fdb(self, ipr, mac, dst):
        await ipr.fdb('replace', ifindex=self.vx_index, lladdr=mac, dst=dst,
                      state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)

    async def on_miss(self, ipr, kind, key):
        rec, why = answer(kind, key, self.records, self.args.self_ip, self.macs)
        if rec is None and why == 'no registry record' and \
                time.monotonic() - max(self.last_read, self.last_fail) > 0.2:
            # maybe attached since the last read: look again (rate-limited)
            await self.refresh()
            rec, why = answer(kind, key, self.records, self.args.self_ip, self.macs)
        if rec is None:
            if not self.have_view:
                why = 'registry not read yet'
            LOG.info('%s miss %s: no answer (%s)', kind.upper(), key, why)
            return
        try:
            if kind == 'l3':
                await self.set_neigh(ipr, rec['ip'], rec['mac'])
            await self.set_fdb(ipr, rec['mac'], rec['host'])
        except Exception as e:
            LOG.error('%s miss %s: answering failed: %s', kind.upper(), key, e)
            return
        if kind == 'l3':
            LOG.info('L3 miss %s: answered neigh %s lladdr %s, fdb %s dst %s (%s)',
                     key, rec['ip'], rec['mac'], rec['mac'], rec['host'], rec.get('name'))
        else:
            LOG.info('L2 miss %s: answered fdb %s dst %s (%s %s)',
                     key, rec['mac'], rec['host'], rec['ip'], rec.get('name'))

    async def current_entries(self, ipr):
        neigh, fdb, stale = {}, {}, set()
        async for m in await ipr.neigh('dump', ifindex=self.vx_index, family=socket.AF_INET):
            if m['ifindex'] != self.vx_index or not m.get('NDA_DST'):
                continue
            if m['state'] & NUD_PERMANENT and m.get('NDA_LLADDR'):
                neigh[m.get('NDA_DST')] = m.get('NDA_LLADDR').lower()
            else:
                stale.add(m.get('NDA_DST'))
        async for m in await ipr.fdb('dump', ifindex=self.vx_index):
            if m['ifindex'] == self.vx_index and m['flags'] & NTF_SELF \
                    and m['state'] & NUD_PERMANENT and m.get('NDA_DST'):
                fdb[m.get('NDA_LLADDR').lower()] = m.get('NDA_DST')
        return neigh, fdb, stale

    async def sync(self, ipr):
        await self.refresh()
        self.vx_index = await self.device_index(ipr)
        if not self.have_view:
            return  # no record known is not "no record": delete nothing (logged by the read)
        neigh, fdb, stale = await self.current_entries(ipr)
        for op, kind, key, value in plan_sync(neigh, fdb, self.records, self.args.self_ip, stale):
            try:
                if kind == 'neigh' and op == 'del':
                    await ipr.neigh('del', ifindex=self.vx_index, dst=key, family=socket.AF_INET)
                elif kind == 'neigh':
                    await self.set_neigh(ipr, key, value)
                elif op == 'del':
                    await ipr.fdb('del', ifindex=self.vx_index, lladdr=key, dst=value,
                                  state=NUD_PERMANENT | NUD_NOARP, flags=NTF_SELF)
                else:
                    await self.set_fdb(ipr, key, value)
                LOG.info('sync: %s %s %s %s (%s)', op, kind, key, value,
                         'stale entry, record present' if key in stale else 'registry changed')
            except Exception as e:
                LOG.error('sync: %s %s %s failed: %s', op, kind, key, e)

    async def main(self):
        import asyncio
        from pyroute2 import AsyncIPRoute
        events = AsyncIPRoute(netns=self.args.netns, flags=0)
        requests = AsyncIPRoute(netns=self.args.netns, flags=0)
        try:
            await events.bind(groups=RTMGRP_NEIGH)
            await self.sync(requests)
            LOG.info('%s %s in %s (registry %s, this host %s, sync every %ss, %s)',
                     LISTENING, self.args.dev, self.args.netns, self.registry.kind,
                     self.args.self_ip, self.args.interval,
                     '%d records' % len(self.records) if self.have_view
                     else 'registry not read yet')

            async def listen():
                while True:
                    async for msg in events.get():
                        miss = classify_miss(msg, self.vx_index)
                        if miss:
                            await self.on_miss(requests, *miss)

            async def resync():
                while True:
                    await asyncio.sleep(self.args.interval)
                    try:
                        await self.sync(requests)
                    except Exception as e:
                        LOG.error('sync failed: %s', e)

            await asyncio.gather(listen(), resync())
        finally:
            events.close()
            requests.close()


# -------------------------------------------------------------- supervision
def config_of(args):
    """What the running agent was started with, including its own code and
    interpreter: a new version of the agent or of the registry, or another
    ``ch07_agent_python`` (the fix for a Python without pyroute2), restarts it."""
    conf = {k: getattr(args, k) for k in ('netns', 'dev', 'registry', 'self_ip', 'vni',
                                          'interval', 'log')}
    conf['python'] = sys.executable  # agent_argv runs the agent with it
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in (os.path.basename(__file__), '_registry.py'):
        try:
            with open(os.path.join(here, name), 'rb') as f:
                digest.update(f.read())
        except IOError:
            pass
    conf['code'] = digest.hexdigest()
    return conf


def agent_argv(args):
    return [sys.executable, os.path.abspath(__file__), 'run', '--netns', args.netns,
            '--dev', args.dev, '--registry', args.registry, '--self-ip', args.self_ip,
            '--vni', str(args.vni), '--interval', str(args.interval), '--log', args.log]


def read_pid(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            if b'_overlay_agent' not in f.read():
                return None  # a recycled pid, not ours
        return pid
    except (IOError, OSError, ValueError, IndexError):
        return None


def supervise(args):
    """Restart the agent whenever it exits; stop it on SIGTERM."""
    child = {'p': None, 'stop': False}

    def on_term(_signum, _frame):
        child['stop'] = True
        if child['p'] is not None and child['p'].poll() is None:
            child['p'].terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    backoff = 1.0
    while not child['stop']:
        started = time.monotonic()
        with open(args.log, 'ab') as logf:
            child['p'] = subprocess.Popen(agent_argv(args), stdout=logf, stderr=logf,
                                          stdin=subprocess.DEVNULL)
        rc = child['p'].wait()
        if child['stop']:
            break
        backoff = 1.0 if time.monotonic() - started > 10 else min(backoff * 2, 10.0)
        _log_line(args.log, 'supervisor: agent exited with %s, restarting in %.0fs'
                  % (rc, backoff))
        time.sleep(backoff)
    try:
        os.unlink(args.pidfile)
    except OSError:
        pass


def _log_line(path, text):
    with open(path, 'a') as f:
        f.write('%s %s\n' % (time.strftime('%Y-%m-%dT%H:%M:%S'), text))


def start_supervisor(args):
    """Double fork: the supervisor leaves the caller's session and stdio."""
    for d in (os.path.dirname(args.pidfile), os.path.dirname(args.log)):
        if d and not os.path.isdir(d):
            os.makedirs(d, 0o755)
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        for dummy in range(50):
            if read_pid(args.pidfile):
                return
            time.sleep(0.1)
        raise RuntimeError('the supervisor did not start; see %s' % args.log)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    logfd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(devnull, 0)
    os.dup2(logfd, 1)
    os.dup2(logfd, 2)
    os.chdir('/')
    with open(args.pidfile + '.tmp', 'w') as f:
        f.write('%d\n' % os.getpid())
    os.rename(args.pidfile + '.tmp', args.pidfile)
    _log_line(args.log, 'supervisor %d: started' % os.getpid())
    try:
        supervise(args)
    finally:
        os._exit(0)


def stop_supervisor(pidfile, timeout=10.0):
    pid = read_pid(pidfile)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    try:
        os.unlink(pidfile)
    except OSError:
        pass
    return True


def cmd_ensure(args):
    """Start the supervised agent, or restart it when its configuration changed."""
    conf = json.dumps(config_of(args), sort_keys=True)
    conf_file = args.pidfile + '.conf'
    running = read_pid(args.pidfile)
    try:
        with open(conf_file) as f:
            old = f.read()
    except IOError:
        old = None
    if running and old == conf:
        return 'unchanged'
    if running:
        stop_supervisor(args.pidfile)
    with open(conf_file, 'w') as f:
        f.write(conf)
    start_supervisor(args)
    return 'changed'


def sync_host(registry, host, wanted):
    """Put this host's records, delete its records not wanted any more."""
    changed = False
    keep = set(r['ip'] for r in wanted)
    for r in wanted:
        changed = registry.put(r) or changed
    try:
        have = registry.records()
    except FileNotFoundError:  # a directory registry never made: none of ours in it
        have = {}
    for ip, r in have.items():
        if r['host'] == host and ip not in keep:
            changed = registry.delete(ip) or changed
    return changed


# ------------------------------------------------------------ health checks
_AGENT_PID = re.compile(r'agent\[(\d+)\]')


def last_line_with(path, needle, chunk=65536):
    """The last line of ``path`` containing ``needle`` (str), or None.

    Reads backwards from the end: the agent's log grows with every miss."""
    target = needle.encode('utf-8')
    try:
        f = open(path, 'rb')
    except (IOError, OSError):
        return None
    with f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        buf = b''
        while end > 0:
            start = max(0, end - chunk)
            f.seek(start)
            buf = f.read(end - start) + buf
            end = start
            i = buf.rfind(target)
            if i < 0:
                continue
            nl = buf.rfind(b'\n', 0, i)
            if nl < 0 and end > 0:
                continue  # the line starts in a chunk not read yet
            stop = buf.find(b'\n', i)
            return buf[nl + 1:stop if stop >= 0 else len(buf)].decode('utf-8', 'replace')
    return None


def is_agent_process(pid):
    """True when ``pid`` is a running ``_overlay_agent.py run`` (not a zombie,
    not a recycled pid)."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            argv = f.read().split(b'\0')
    except (IOError, OSError):
        return False
    return any(a.endswith(b'_overlay_agent.py') for a in argv) and b'run' in argv


def listening_pid(log, alive=is_agent_process):
    """The pid of the agent whose "listening" line is the log's last one,
    if that agent still runs; else None (not started yet, or crashed since).
    An agent restarted by its supervisor logs the line again."""
    line = last_line_with(log, LISTENING)
    m = _AGENT_PID.search(line or '')
    if m is None:
        return None
    pid = int(m.group(1))
    return pid if alive(pid) else None


def log_tail(path, lines=30):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode('utf-8', 'replace')
    except (IOError, OSError) as e:
        return '(no log: %s)' % e
    return '\n'.join(text.splitlines()[-lines:])


def wait_until(fn, timeout, step=0.2):
    """fn()'s first true value, polling until ``timeout`` seconds passed; else
    its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def cmd_ready(args, alive=is_agent_process):
    """(rc, text): 0 when an agent is listening within ``args.timeout``."""
    pid = wait_until(lambda: listening_pid(args.log, alive), args.timeout)
    if pid:
        return 0, 'listening: agent %s' % pid
    return 1, ('the overlay agent is not listening after %ss (crash loop? a Python without '
               'pyroute2 >= 0.9? device missing?); last lines of %s:\n%s'
               % (args.timeout, args.log, log_tail(args.log)))


def missing_records(registry, expected):
    """The expected {ip, host, ...} entries the registry lacks (or holds for
    another host); raises when the registry cannot be read."""
    have = registry.records()
    return [e for e in expected
            if e['ip'] not in have or have[e['ip']]['host'] != e['host']]


def cmd_check_records(args, registry):
    """(rc, text): 0 when every expected record of the other hosts is seen
    within ``args.timeout`` seconds."""
    try:
        expected = json.loads(args.expect)
        expected = [dict(e, ip=str(e['ip']), host=str(e['host'])) for e in expected]
    except (ValueError, KeyError, TypeError) as e:
        return 2, 'error: --expect: %s' % e
    state = {'missing': expected, 'error': None}

    def seen():
        try:
            state['missing'], state['error'] = missing_records(registry, expected), None
        except Exception as e:  # unreadable for now: retry until the timeout
            state['error'] = e
            return False
        return not state['missing']

    if wait_until(seen, args.timeout):
        return 0, 'ok: the %d records of the other hosts are seen here' % len(expected)
    if state['error'] is not None:
        return 1, 'registry %s unreadable from this host: %s' % (args.registry, state['error'])
    lacking = ', '.join('%s (%s on %s)' % (e.get('inventory_host', '?'), e['ip'], e['host'])
                        for e in state['missing'])
    if registry.kind == 'dir':
        hint = ('the usual cause: the registry directory %s is not shared by the hosts, but '
                'every host of the overlay must see the same directory (the course mounts the '
                'Vagrant shared folder; NFS on real hosts); or those hosts failed to register, '
                'or use another directory or VNI. Or use ch07_registry=etcd' % registry.path)
    else:
        hint = 'do all the hosts use the same etcd endpoint and VNI?'
    return 1, ('after %ss this host still does not see the records of: %s; %s'
               % (args.timeout, lacking, hint))


# ---------------------------------------------------------------------- CLI
def parse_args(argv):
    p = argparse.ArgumentParser(prog='overlay-agent', description=__doc__.split('\n', maxsplit=1)[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    for name in ('run', 'ensure', 'supervise'):
        s = sub.add_parser(name)
        s.add_argument('--netns', default='overns')
        s.add_argument('--dev', default='vxlan1')
        s.add_argument('--registry', required=True, help='dir:/PATH or etcd:http://HOST:2379')
        s.add_argument('--self-ip', required=True, help="this host's underlay address")
        s.add_argument('--vni', type=int, default=42)
        s.add_argument('--interval', type=float, default=2.0)
        s.add_argument('--log', default='/var/log/nodocker-lab/overlay-agent.log')
        s.add_argument('--pidfile', default='/run/nodocker-lab/overlay-agent.pid')
    s = sub.add_parser('stop')
    s.add_argument('--pidfile', default='/run/nodocker-lab/overlay-agent.pid')
    s = sub.add_parser('sync-host', help="make the registry hold exactly this host's containers")
    s.add_argument('--registry', required=True)
    s.add_argument('--vni', type=int, default=42)
    s.add_argument('--host', required=True)
    s.add_argument('--containers', required=True,
                   help='JSON list of {"name", "ip", "mac"} (an empty list unregisters all)')
    s = sub.add_parser('ready', help='wait until the agent is listening')
    s.add_argument('--log', default='/var/log/nodocker-lab/overlay-agent.log')
    s.add_argument('--timeout', type=float, default=30.0)
    s = sub.add_parser('check-records', help="wait until this host sees the other hosts' records")
    s.add_argument('--registry', required=True)
    s.add_argument('--vni', type=int, default=42)
    s.add_argument('--expect', required=True,
                   help='JSON list of {"ip", "host"[, "inventory_host"]} this host must see')
    s.add_argument('--timeout', type=float, default=30.0)
    for name in ('register', 'unregister'):
        s = sub.add_parser(name)
        s.add_argument('--registry', required=True)
        s.add_argument('--vni', type=int, default=42)
        s.add_argument('--ip', required=True)
        if name == 'register':
            s.add_argument('--mac', required=True)
            s.add_argument('--host', required=True)
            s.add_argument('--name')
    return p.parse_args(argv)


def _say(text, stream=None):
    """One line of the command-line interface's output (the agent itself logs)."""
    stream = stream or sys.stdout
    stream.write('%s\n' % text)
    stream.flush()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.cmd == 'run':
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format='%(asctime)s agent[%(process)d] %(levelname)s %(message)s')
        import asyncio
        # registry reads run in an executor thread; with the default 5 ms GIL
        # switch interval a miss arriving during one waited up to 5 ms per
        # switch (the p99 of bench/bench_overlay.py): hand the GIL over sooner
        sys.setswitchinterval(0.0005)
        registry = open_registry(args.registry, vni=args.vni, timeout=read_budget(args.interval))
        asyncio.run(Agent(args, registry).main())
        return 0
    if args.cmd == 'supervise':
        supervise(args)
        return 0
    if args.cmd == 'ensure':
        _say(cmd_ensure(args))
        return 0
    if args.cmd == 'stop':
        _say('changed' if stop_supervisor(args.pidfile) else 'unchanged')
        try:
            os.unlink(args.pidfile + '.conf')
        except OSError:
            pass
        return 0
    if args.cmd == 'ready':
        rc, text = cmd_ready(args)
        _say(text)
        return rc
    registry = open_registry(args.registry, vni=args.vni)
    if args.cmd == 'check-records':
        rc, text = cmd_check_records(args, registry)
        _say(text)
        return rc
    if args.cmd == 'sync-host':
        try:
            wanted = [make_record(c['ip'], c['mac'], args.host, c.get('name'), args.vni)
                      for c in json.loads(args.containers)]
        except (MalformedRecord, ValueError, KeyError, TypeError) as e:
            _say('error: --containers: %s' % e, sys.stderr)
            return 2
        _say('changed' if sync_host(registry, args.host, wanted) else 'unchanged')
        return 0
    if args.cmd == 'register':
        try:
            rec = make_record(args.ip, args.mac, args.host, args.name, args.vni)
        except MalformedRecord as e:
            _say('error: %s' % e, sys.stderr)
            return 2
        _say('changed' if registry.put(rec) else 'unchanged')
    else:
        _say('changed' if registry.delete(args.ip) else 'unchanged')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
