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
moved) is replaced. So a removed container disappears from every other host
within one interval plus the time of one registry read (documented bound:
2 x interval). The agent owns the permanent entries of its VXLAN device.

Answers use ``replace`` (create or update), so an agent restarted over
existing entries answers again without duplicates. A malformed record is
logged once and skipped. Every miss and its answer is logged.

Sub-commands (the role calls them; each prints ``changed`` or ``unchanged``):

* ``run``: the agent itself, in the foreground;
* ``ensure`` / ``stop``: start (or restart on a new configuration) / stop the
  supervised agent: a supervisor process with a pidfile that restarts the
  agent when it dies, logging to ``--log``;
* ``register`` / ``unregister``: write / remove a container's record.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import hashlib
import json
import logging
import os
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
class Agent:
    def __init__(self, args, registry):
        self.args = args
        self.registry = registry
        self.records = {}
        self.macs = {}
        self.seen_errors = set()
        self.last_read = 0.0
        self.vx_index = None

    def read_registry(self):
        errors = []
        try:
            records = self.registry.records(errors)
        except Exception as e:  # registry down: keep the last good view
            LOG.warning('registry %s unreadable, keeping %d known records: %s',
                        self.registry.kind, len(self.records), e)
            return
        for err in errors:
            if err not in self.seen_errors:
                LOG.warning('malformed registry record skipped: %s', err)
        self.seen_errors = set(errors)
        self.records, self.macs = records, by_mac(records)
        self.last_read = time.monotonic()

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
        import asyncio
        rec, why = answer(kind, key, self.records, self.args.self_ip, self.macs)
        if rec is None and why == 'no registry record' and \
                time.monotonic() - self.last_read > 0.2:
            # maybe attached since the last read: look again (rate-limited)
            await asyncio.get_running_loop().run_in_executor(None, self.read_registry)
            rec, why = answer(kind, key, self.records, self.args.self_ip, self.macs)
        if rec is None:
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
        import asyncio
        await asyncio.get_running_loop().run_in_executor(None, self.read_registry)
        self.vx_index = await self.device_index(ipr)
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
            LOG.info('listening for misses on %s in %s (registry %s, this host %s, '
                     'sync every %ss, %d records)', self.args.dev, self.args.netns,
                     self.registry.kind, self.args.self_ip, self.args.interval,
                     len(self.records))

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
    """What the running agent was started with, including its own code: a new
    version of the agent or of the registry restarts it."""
    conf = {k: getattr(args, k) for k in ('netns', 'dev', 'registry', 'self_ip', 'vni',
                                          'interval', 'log')}
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
    for ip, r in registry.records().items():
        if r['host'] == host and ip not in keep:
            changed = registry.delete(ip) or changed
    return changed


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
        registry = open_registry(args.registry, vni=args.vni)
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
    registry = open_registry(args.registry, vni=args.vni)
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
