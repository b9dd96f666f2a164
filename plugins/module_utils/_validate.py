# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks shared by every module.

Each check raises ``ValueError`` with a message written for a student: what
was given, what is allowed. Modules turn that into ``fail_json`` before they
touch the kernel, so bad input never leaves anything half-made.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

IFNAMSIZ = 16  # the kernel's limit, including the terminating NUL
_MAC_RE = re.compile(r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$')
_NETNS_NAME_RE = re.compile(r'^[A-Za-z0-9_.@+-]+$')


def check_ifname(name, what='interface name'):
    """An interface name the kernel accepts: 1-15 bytes, no '/', ':' or space."""
    if not isinstance(name, str) or not name:
        raise ValueError('%s must be a non-empty string' % what)
    if len(name.encode('utf-8')) > IFNAMSIZ - 1:
        raise ValueError('%s %r is %d characters long; Linux allows at most %d'
                         % (what, name, len(name), IFNAMSIZ - 1))
    if name in ('.', '..'):
        raise ValueError('%s %r is not allowed' % (what, name))
    for bad in ('/', ':', ' ', '\t', '\n'):
        if bad in name:
            raise ValueError('%s %r must not contain %r' % (what, name, bad))
    return name


def check_netns_name(name, what='namespace name'):
    """A name for /run/netns/NAME (or an absolute path to a namespace file)."""
    if not isinstance(name, str) or not name:
        raise ValueError('%s must be a non-empty string' % what)
    if name.startswith('/'):
        return name
    if name in ('.', '..') or not _NETNS_NAME_RE.match(name) or len(name) > 255:
        raise ValueError('%s %r is invalid: use letters, digits and . _ - @ + '
                         '(or an absolute path to a namespace file)' % (what, name))
    return name


def normalize_mac(mac, what='MAC address'):
    """Return MAC in lower-case colon form, or raise ValueError."""
    if not isinstance(mac, str) or not _MAC_RE.match(mac):
        raise ValueError('%s %r is invalid: expected six colon-separated hex '
                         'bytes such as 02:42:c0:a8:00:02' % (what, mac))
    return mac.lower()


def check_unicast_mac(mac, what='MAC address'):
    mac = normalize_mac(mac, what)
    if int(mac[:2], 16) & 1:
        raise ValueError('%s %s is a multicast address (lowest bit of the first '
                         'byte is set); an interface needs a unicast one' % (what, mac))
    return mac


def parse_interface(cidr, what='address'):
    """'11.11.11.2/24' -> ipaddress.IPv4Interface; a prefix is required."""
    if not isinstance(cidr, str) or '/' not in cidr:
        raise ValueError('%s %r is invalid: expected ADDRESS/PREFIX such as 11.11.11.2/24'
                         % (what, cidr))
    try:
        return ipaddress.ip_interface(cidr)
    except ValueError:
        raise ValueError('%s %r is not a valid ADDRESS/PREFIX' % (what, cidr))


def parse_network(cidr, what='network'):
    """'11.11.11.0/24' or 'default' -> ipaddress network (strict about host bits)."""
    if cidr in ('default', '0.0.0.0/0'):
        return ipaddress.ip_network('0.0.0.0/0')
    if cidr == '::/0':
        return ipaddress.ip_network('::/0')
    try:
        return ipaddress.ip_network(cidr, strict=True)
    except ValueError as e:
        raise ValueError('%s %r is not a valid network: %s' % (what, cidr, e))


def parse_ip(addr, what='IP address'):
    try:
        return ipaddress.ip_address(addr)
    except ValueError:
        raise ValueError('%s %r is not a valid IP address' % (what, addr))


def check_mtu(mtu, what='MTU'):
    if mtu is None:
        return None
    if not isinstance(mtu, int) or mtu < 68 or mtu > 65535:
        raise ValueError('%s %r is out of range: use 68..65535' % (what, mtu))
    return mtu
