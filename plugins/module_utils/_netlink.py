# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink through pyroute2, shared by the network modules.

Three ideas live here:

* ``netlink(netns)`` opens a netlink socket *inside* a named namespace without
  ever creating it (pyroute2 0.9 creates a missing namespace unless
  ``flags=0`` -- fatal for check mode and for "missing namespace" errors).
* ``Plan`` collects each change as the equivalent shell command (``ip ...``,
  ``bridge ...``) and a function that performs it; in check mode the
  functions are skipped, so check mode reports exactly the commands a real
  run would execute.
* ``link_facts`` turns a link message into a small dict used for
  before/after/diff, so every module describes links the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import os
import socket
import struct

# Plan and quote are shared with the modules that do not talk netlink
from ansible_collections.nodocker.lab.plugins.module_utils._plan import (  # noqa: F401 pylint: disable=unused-import
    Plan, quote)

try:
    # only the parts of pyroute2 a task uses, not its eager package __init__
    # (see _pyroute2); the exceptions module is tiny, IPRoute (asyncio and the
    # rtnetlink message classes, about 0.1 s) is imported on first use only
    from ansible_collections.nodocker.lab.plugins.module_utils import _pyroute2
    _pyroute2.light()
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - reported by modules
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = e

    class NetlinkError(Exception):
        code = 0


def iproute_class():
    """pyroute2's IPRoute, imported on first use."""
    from pyroute2.iproute.linux import IPRoute
    return IPRoute


NETNS_RUN_DIR = '/run/netns'
IFF_UP = 0x1
ENODEV = 19
EEXIST = 17


class Missing(Exception):
    """A namespace or link the task acts on does not exist, and the task must not
    create it. Applying, that is bad input: the task fails and changes nothing.
    In check mode it is expected: an earlier task of the same play that would
    create it only reported that it would (see ``fail_missing``)."""


class NamespaceMissing(Missing):
    """A network namespace the task must act in does not exist."""


class LinkMissing(Missing):
    """A link (port, master, device) the task needs does not exist."""


def fail_missing(module, exc, **result):
    """Fail on a missing namespace or link, except in check mode.

    ``ansible-playbook --check`` on a fresh host runs ``netns`` (reports RED as
    to be made, makes nothing) and then ``veth`` with ``netns: RED``: failing
    there would make a chapter impossible to preview. So in check mode the task
    warns, reports changed (what it defines would be made once the namespace or
    link exists) and returns no commands, since it cannot know them."""
    if module.check_mode:
        if module.params.get('state') in ('absent', 'deleted'):
            # nothing there, nothing to remove (an earlier task would not make it)
            result.update(changed=False, commands=[], missing=str(exc))
            module.exit_json(**result)
        module.warn('%s; in check mode this task assumes an earlier task of the play '
                    'creates it, and reports what it defines as to be made' % exc)
        result.update(changed=True, commands=[], missing=str(exc))
        module.exit_json(**result)
    result.pop('changed', None)
    module.fail_json(msg=str(exc), **result)


def netns_path(netns):
    """Namespace name -> its file: 'RED' -> '/run/netns/RED'; paths pass through."""
    if netns.startswith('/'):
        return netns
    return os.path.join(NETNS_RUN_DIR, netns)


def netns_exists(netns):
    return os.path.exists(netns_path(netns))


def require_pyroute2(module):
    if not HAS_PYROUTE2:
        module.fail_json(msg='The python library pyroute2 (>= 0.9) is required on the '
                             'managed host: %s' % PYROUTE2_IMPORT_ERROR)


@contextlib.contextmanager
def netlink(netns=None, reader=False):
    """An IPRoute socket in ``netns`` (None: the task's own namespace).

    Raises NamespaceMissing instead of creating a missing namespace.

    ``reader=True`` yields a ``Rtnl`` instead: the same interface, but the
    read requests the link-level modules make to compare (``link('get')``,
    ``addr('dump')``, ``get_netnsid``) go through a plain netlink socket, and
    pyroute2's IPRoute is imported and opened only when something has to
    change. A task with nothing to do (an idempotent re-run) never pays for
    pyroute2 (about 0.1 s per task).
    """
    if netns is not None and not netns_exists(netns):
        raise NamespaceMissing(
            'network namespace %r does not exist (see `ip netns list`); this task '
            'does not create it: add it first with nodocker.lab.netns' % netns)
    ipr = Rtnl(netns) if reader else open_iproute(netns)
    try:
        yield ipr
    finally:
        ipr.close()


def open_iproute(netns):
    IPRoute = iproute_class()
    if netns is None:
        return IPRoute()
    return IPRoute(netns=netns, flags=0)


# --- a plain rtnetlink socket for the read side of the link-level modules

NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
RTM_NEWNSID, RTM_GETNSID = 88, 90
CLONE_NEWNET = 0x40000000
_IFLA = {1: 'IFLA_ADDRESS', 3: 'IFLA_IFNAME', 4: 'IFLA_MTU', 5: 'IFLA_LINK', 10: 'IFLA_MASTER',
         16: 'IFLA_OPERSTATE', 18: 'IFLA_LINKINFO', 37: 'IFLA_LINK_NETNSID'}
_OPERSTATES = ('UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP')


class RtnlMessage(dict):
    """A parsed message: header fields as items, attributes through ``get``,
    like pyroute2's messages for the few fields the modules read."""

    def __init__(self, fields, attrs):
        dict.__init__(self, fields)
        self.attrs = attrs

    def get(self, key, default=None):
        if key in self.attrs:
            return self.attrs[key]
        return dict.get(self, key, default)

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return self.attrs[key]

    def get_nested(self, *keys):
        value = self
        for k in keys:
            value = value.get(k) if value is not None else None
        return value


def _attrs(data, off, end):
    """{type: raw bytes} of the netlink attributes in data[off:end]."""
    out = {}
    while off + 4 <= end:
        length, kind = struct.unpack_from('=HH', data, off)
        if length < 4:
            break
        out[kind & 0x3fff] = data[off + 4:off + length]
        off += (length + 3) & ~3
    return out


def _u32(raw):
    return struct.unpack('=I', raw[:4])[0]


def _cstr(raw):
    return raw.split(b'\0', 1)[0].decode('utf-8', 'replace')


def _parse_link(data, off, end):
    family, kind, index, flags, change = struct.unpack_from('=BxHiII', data, off)
    attrs = {}
    for t, raw in _attrs(data, off + 16, end).items():
        name = _IFLA.get(t)
        if name in ('IFLA_IFNAME',):
            attrs[name] = _cstr(raw)
        elif name in ('IFLA_MTU', 'IFLA_LINK', 'IFLA_MASTER'):
            attrs[name] = _u32(raw)
        elif name == 'IFLA_LINK_NETNSID':
            attrs[name] = struct.unpack('=i', raw[:4])[0]
        elif name == 'IFLA_ADDRESS':
            attrs[name] = ':'.join('%02x' % b for b in bytearray(raw))
        elif name == 'IFLA_OPERSTATE':
            v = bytearray(raw)[0]
            attrs[name] = _OPERSTATES[v] if v < len(_OPERSTATES) else v
        elif name == 'IFLA_LINKINFO':
            attrs[name] = _parse_linkinfo(raw)
    return RtnlMessage(dict(family=family, ifi_type=kind, index=index, flags=flags,
                            change=change), attrs)


def _parse_linkinfo(raw):
    """IFLA_LINKINFO: the kind, and for a VXLAN device the attributes the fdb
    module reads (as pyroute2 shows them: {'attrs': [(name, value), ...]})."""
    info = _attrs(raw, 0, len(raw))
    out = {}
    if 1 in info:
        out['IFLA_INFO_KIND'] = _cstr(info[1])
    if out.get('IFLA_INFO_KIND') == 'vxlan' and 2 in info:
        data = _attrs(info[2], 0, len(info[2]))
        pairs = []
        if 1 in data:
            pairs.append(('IFLA_VXLAN_ID', _u32(data[1])))
        if 2 in data and len(data[2]) == 4:
            pairs.append(('IFLA_VXLAN_GROUP', socket.inet_ntop(socket.AF_INET, data[2])))
        if 15 in data:
            pairs.append(('IFLA_VXLAN_PORT', struct.unpack('!H', data[15][:2])[0]))
        out['IFLA_INFO_DATA'] = {'attrs': pairs}
    return RtnlMessage({}, out)


def _ip_text(raw):
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _parse_neigh(data, off, end):
    family, ifindex, state, flags, ntype = struct.unpack_from('=BxxxiHBB', data, off)
    attrs = {}
    for t, raw in _attrs(data, off + 12, end).items():
        if t == 1 and len(raw) in (4, 16):
            attrs['NDA_DST'] = _ip_text(raw)
        elif t == 2:
            attrs['NDA_LLADDR'] = ':'.join('%02x' % b for b in bytearray(raw))
        elif t == 6:
            attrs['NDA_PORT'] = struct.unpack('!H', raw[:2])[0]
        elif t == 7:
            attrs['NDA_VNI'] = _u32(raw)
    return RtnlMessage(dict(family=family, ifindex=ifindex, state=state, flags=flags,
                            ndm_type=ntype), attrs)


def _attr(kind, value):
    """One netlink attribute, padded to 4 bytes."""
    raw = struct.pack('=HH', 4 + len(value), kind) + value
    return raw + b'\0' * ((4 - len(raw) % 4) % 4)


NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
NEIGH_FLAGS = {'add': NLM_F_CREATE | NLM_F_EXCL, 'append': NLM_F_CREATE | NLM_F_APPEND,
               'replace': NLM_F_CREATE | NLM_F_REPLACE}


def neigh_message(op, family, ifindex, state=0, flags=0, dst=None, lladdr=None, vni=None,
                  port=None):
    """(type, netlink flags, body) of one RTM_NEWNEIGH/RTM_DELNEIGH request, as ``ip
    neigh`` / ``bridge fdb`` send it; ``op``: add, append, replace or del."""
    body = struct.pack('=BxxxiHBB', family, ifindex, state, flags, 0)
    if dst is not None:
        body += _attr(1, socket.inet_pton(socket.AF_INET6 if ':' in dst else socket.AF_INET,
                                          dst))
    if lladdr is not None:
        body += _attr(2, bytes(bytearray(int(x, 16) for x in lladdr.split(':'))))
    if port is not None:
        body += _attr(6, struct.pack('!H', port))
    if vni is not None:
        body += _attr(7, struct.pack('=I', vni))
    if op == 'del':
        return RTM_DELNEIGH, 0, body
    return RTM_NEWNEIGH, NEIGH_FLAGS[op], body


class BatchFailed(Exception):
    """A request of a batch was refused: ``index`` in the batch, ``error`` the NetlinkError."""

    def __init__(self, index, error):
        Exception.__init__(self, str(error))
        self.index, self.error = index, error


def _parse_addr(data, off, end):
    family, prefixlen, flags, scope, index = struct.unpack_from('=BBBBI', data, off)
    attrs = {}
    for t, raw in _attrs(data, off + 8, end).items():
        if t in (1, 2) and family in (socket.AF_INET, socket.AF_INET6):
            attrs['IFA_ADDRESS' if t == 1 else 'IFA_LOCAL'] = socket.inet_ntop(family, raw)
    return RtnlMessage(dict(family=family, prefixlen=prefixlen, flags=flags, scope=scope,
                            index=index), attrs)


def _parse_nsid(data, off, end):
    attrs = _attrs(data, off + 4, end)
    nsid = struct.unpack('=i', attrs[1][:4])[0] if 1 in attrs else None
    return {'nsid': nsid}


def _messages(data):
    """Walk the netlink messages of one datagram: (offset, length, type, seq).

    A header shorter than itself means a corrupt datagram; waiting for more
    would hang, so it is an error rather than a silent end."""
    off = 0
    while off + 16 <= len(data):
        length, kind, dummy, seq = struct.unpack_from('=IHHI', data, off)
        if length < 16 or off + length > len(data):
            raise NetlinkError(errno.EPROTO, 'malformed netlink message at byte %d' % off)
        yield off, length, kind, seq
        off += (length + 3) & ~3


class Rtnl:
    """Reads through a plain NETLINK_ROUTE socket, everything else through IPRoute.

    The socket is made inside ``netns`` (setns there and straight back, in
    this single-threaded task), so it is created in the namespace like
    IPRoute's, without the helper process pyroute2 forks for that. Calls the
    reader does not know (``link('add')``, ``addr('add')``, ``link('dump')``,
    ...) open pyroute2's IPRoute in the same namespace on first use.
    """

    def __init__(self, netns=None):
        self.netns = netns
        self._ipr = None
        self._seq = 0
        self._sock = self._open_socket()

    def _open_socket(self):
        if self.netns is None:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open('/proc/self/ns/net', os.O_RDONLY)
        try:
            target = os.open(netns_path(self.netns), os.O_RDONLY)
            try:
                if libc.setns(target, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, 'setns(%s): %s' % (self.netns, os.strerror(err)))
                try:
                    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
                finally:
                    if libc.setns(home, CLONE_NEWNET) != 0:  # pragma: no cover
                        err = ctypes.get_errno()
                        raise OSError(err, 'setns back: %s' % os.strerror(err))
            finally:
                os.close(target)
        finally:
            os.close(home)

    # -- the full library, when a change is to be made
    @property
    def ipr(self):
        if self._ipr is None:
            self._ipr = open_iproute(self.netns)
        return self._ipr

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self.ipr, name)

    def close(self):
        self._sock.close()
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    # -- the read side
    def _request(self, mtype, flags, payload, parse, want):
        self._seq += 1
        seq = self._seq
        self._sock.send(struct.pack('=IHHII', 16 + len(payload), mtype, flags | NLM_F_REQUEST,
                                    seq, 0) + payload)
        out = []
        while True:
            data = self._sock.recv(1 << 20)
            for off, length, kind, mseq in _messages(data):
                if mseq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from('=i', data, off + 16)[0]
                    if code:
                        raise NetlinkError(-code, os.strerror(-code))
                    return out
                if kind == NLMSG_DONE:
                    return out
                if kind == want:
                    out.append(parse(data, off + 16, off + length))
                    if not flags & NLM_F_DUMP:
                        return out

    def link(self, command, **kw):
        if command != 'get' or not set(kw) <= set(('ifname', 'index')):
            return self.ipr.link(command, **kw)
        payload = struct.pack('=BxHiII', 0, 0, kw.get('index') or 0, 0, 0)
        if kw.get('ifname') is not None and not kw.get('index'):
            name = kw['ifname'].encode('utf-8') + b'\0'
            payload += struct.pack('=HH', 4 + len(name), 3) + name
            payload += b'\0' * ((4 - len(payload) % 4) % 4)
        return self._request(RTM_GETLINK, 0, payload, _parse_link, RTM_NEWLINK)

    def addr(self, command, **kw):
        if command != 'dump' or not set(kw) <= set(('index',)):
            return self.ipr.addr(command, **kw)
        msgs = self._request(RTM_GETADDR, NLM_F_DUMP, struct.pack('=BBBBI', 0, 0, 0, 0, 0),
                             _parse_addr, RTM_NEWADDR)
        if kw.get('index') is not None:
            msgs = [m for m in msgs if m['index'] == kw['index']]
        return msgs

    def neigh(self, command, **kw):
        if command != 'dump' or not set(kw) <= set(('ifindex', 'family')):
            return self.ipr.neigh(command, **kw)
        return self._neigh_dump(kw.get('family') or 0, kw.get('ifindex'))

    def fdb(self, command, **kw):
        if command != 'dump' or not set(kw) <= set(('ifindex',)):
            return self.ipr.fdb(command, **kw)
        return self._neigh_dump(7, kw.get('ifindex'))  # AF_BRIDGE

    def _neigh_dump(self, family, ifindex):
        msgs = self._request(RTM_GETNEIGH, NLM_F_DUMP,
                             struct.pack('=BxxxiHBB', family, 0, 0, 0, 0), _parse_neigh,
                             RTM_NEWNEIGH)
        if ifindex is not None:
            msgs = [m for m in msgs if m['ifindex'] == ifindex]
        return msgs

    def batch(self, requests, window=256):
        """Send (type, flags, body) requests, ``window`` per write, each acknowledged.

        What ``ip -batch`` does: no round trip per request, no library
        encoding. Every request is applied or refused on its own; raises
        BatchFailed for the first refused one (after reading the whole window).
        """
        for start in range(0, len(requests), window):
            chunk = requests[start:start + window]
            first = self._seq + 1
            buf = []
            for mtype, flags, body in chunk:
                self._seq += 1
                buf.append(struct.pack('=IHHII', 16 + len(body), mtype,
                                       flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0) + body)
            self._sock.sendall(b''.join(buf))
            pending, failed = set(range(first, self._seq + 1)), None
            while pending:
                data = self._sock.recv(1 << 20)
                for off, length, kind, mseq in _messages(data):
                    if kind == NLMSG_ERROR and mseq in pending:
                        pending.discard(mseq)
                        code = struct.unpack_from('=i', data, off + 16)[0]
                        if code and (failed is None or mseq < failed[0]):
                            failed = (mseq, NetlinkError(-code, os.strerror(-code)))
            if failed is not None:
                raise BatchFailed(start + failed[0] - first, failed[1])

    def get_netnsid(self, fd=None, **kw):
        if fd is None or kw:
            return self.ipr.get_netnsid(fd=fd, **kw)
        payload = struct.pack('=B3x', 0) + struct.pack('=HHI', 8, 3, fd)  # NETNSA_FD
        msgs = self._request(RTM_GETNSID, 0, payload, _parse_nsid, RTM_NEWNSID)
        return msgs[0] if msgs else None


def ip_cmd(netns, *args):
    """The `ip` command line that does the same as a netlink call."""
    if netns is None:
        return quote(('ip',) + args)
    if netns.startswith('/'):
        return quote(('nsenter', '--net=' + netns, 'ip') + args)
    return quote(('ip', '-n', netns) + args)


def bridge_cmd(netns, *args):
    if netns is None:
        return quote(('bridge',) + args)
    if netns.startswith('/'):
        return quote(('nsenter', '--net=' + netns, 'bridge') + args)
    return quote(('bridge', '-n', netns) + args)


def get_link(ipr, ifname=None, index=None):
    """The link message for a name or index, or None when there is none."""
    try:
        if index is not None:
            msgs = ipr.link('get', index=index)
        else:
            msgs = ipr.link('get', ifname=ifname)
    except NetlinkError as e:
        if e.code == ENODEV:
            return None
        raise
    return msgs[0] if msgs else None


def link_kind(msg):
    return msg.get_nested('IFLA_LINKINFO', 'IFLA_INFO_KIND')


def link_facts(ipr, msg):
    """A small, stable description of a link for before/after and diffs."""
    if msg is None:
        return None
    master = msg.get('IFLA_MASTER')
    master_name = None
    if master:
        m = get_link(ipr, index=master)
        master_name = m.get('IFLA_IFNAME') if m is not None else None
    return {
        'name': msg.get('IFLA_IFNAME'),
        'index': msg['index'],
        'kind': link_kind(msg),
        'mtu': msg.get('IFLA_MTU'),
        'mac': (msg.get('IFLA_ADDRESS') or '').lower() or None,
        'state': 'up' if msg['flags'] & IFF_UP else 'down',
        'operstate': msg.get('IFLA_OPERSTATE'),
        'master': master_name,
        # set when the link's peer (veth) or lower device (vxlan) lives in
        # another namespace; ifindexes are only meaningful per namespace
        'link_netnsid': msg.get('IFLA_LINK_NETNSID'),
    }


def error_text(exc):
    """A readable message for a NetlinkError or OSError."""
    code = getattr(exc, 'code', None) or getattr(exc, 'errno', None)
    if code:
        return '%s (errno %s: %s)' % (exc, code, os.strerror(code))
    return str(exc)


# --- helpers added for the link-level modules (veth, bridge, link, address, route)

NO_NSID = (None, -1, 4294967295)  # RTM_GETNSID's answers for "no id assigned"


def require_namespaces(*names):
    """Raise NamespaceMissing for the first named namespace that does not exist.

    Called before any socket is opened, so a task that names a missing
    namespace fails without touching anything.
    """
    for netns in names:
        if netns is not None and not netns_exists(netns):
            raise NamespaceMissing(
                'network namespace %r does not exist (see `ip netns list`); this task '
                'does not create it: add it first with nodocker.lab.netns' % netns)


def open_netns_fd(netns):
    """An O_RDONLY fd on a namespace file; None means the task's own namespace."""
    return os.open(netns_path(netns) if netns is not None else '/proc/self/ns/net',
                   os.O_RDONLY)


def netnsid_of(ipr, netns):
    """The id under which the socket's namespace knows ``netns`` (None if none).

    A link whose peer lives elsewhere carries that id as IFLA_LINK_NETNSID.
    Comparing ids, not ifindexes, is the only reliable way to tell namespaces
    apart: ifindexes collide across namespaces.
    """
    fd = open_netns_fd(netns)
    try:
        answer = ipr.get_netnsid(fd=fd)
    finally:
        os.close(fd)
    nsid = answer.get('nsid') if answer else None
    return None if nsid in NO_NSID else nsid


def same_netns(netns_a, netns_b):
    """Whether two namespace references point at the same namespace (by inode)."""
    if netns_a == netns_b:
        return True
    try:
        paths = [netns_path(n) if n is not None else '/proc/self/ns/net'
                 for n in (netns_a, netns_b)]
        a, b = (os.stat(p) for p in paths)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def netns_label(netns):
    """How messages name a namespace."""
    return 'namespace %r' % netns if netns is not None else "the task's own namespace"
