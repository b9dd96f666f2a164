# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure naming rules of simulated hosts (no namespace is made here)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.nodocker.lab.plugins.module_utils._simhost import (
    switch_port_name, underlay_mac)


def test_switch_port_name_short_host_keeps_its_name():
    assert switch_port_name('host1') == 'vhost1'


def test_switch_port_name_long_host_fits_ifnamsiz():
    name = switch_port_name('a-very-long-host-name-for-a-classroom')
    assert len(name) <= 15
    assert name != switch_port_name('a-very-long-host-name-for-a-classroom2')


def test_underlay_mac_is_stable_local_unicast():
    mac = underlay_mac('nodocker-lab', 'host1')
    assert re.match(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$', mac)
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01  # locally administered, unicast
    # A re-created host gets the same MAC: peers' ARP entries stay right.
    assert underlay_mac('nodocker-lab', 'host1') == mac


def test_underlay_mac_differs_per_host_and_lab():
    macs = {underlay_mac(lab, host) for lab in ('a', 'b') for host in ('host%d' % i for i in range(16))}
    assert len(macs) == 32
