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
import os

# Plan and quote are shared with the modules that do not talk netlink
from ansible_collections.nodocker.lab.plugins.module_utils._plan import (  # noqa: F401 pylint: disable=unused-import
    Plan, quote)

try:
    # only the rtnetlink part of pyroute2, not its eager package __init__ (see _pyroute2)
    from ansible_collections.nodocker.lab.plugins.module_utils import _pyroute2
    _pyroute2.light()
    from pyroute2.iproute.linux import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - reported by modules
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = e

    class NetlinkError(Exception):
        code = 0

NETNS_RUN_DIR = '/run/netns'
IFF_UP = 0x1
ENODEV = 19
EEXIST = 17


class NamespaceMissing(Exception):
    """A namespace the task must act in does not exist."""


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
def netlink(netns=None):
    """An IPRoute socket in ``netns`` (None: the task's own namespace).

    Raises NamespaceMissing instead of creating a missing namespace.
    """
    if netns is None:
        ipr = IPRoute()
    else:
        if not netns_exists(netns):
            raise NamespaceMissing(
                'network namespace %r does not exist (see `ip netns list`); this task '
                'does not create it: add it first with nodocker.lab.netns' % netns)
        ipr = IPRoute(netns=netns, flags=0)
    try:
        yield ipr
    finally:
        ipr.close()


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
