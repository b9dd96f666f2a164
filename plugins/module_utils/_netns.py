# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named network namespaces (``ip netns add/del``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.nodocker.lab.plugins.module_utils._netlink import (
    NETNS_RUN_DIR, Plan, error_text, require_pyroute2, quote)
from ansible_collections.nodocker.lab.plugins.module_utils._validate import check_netns_name


def _pyroute2_netns():
    """pyroute2.netns, imported only when a namespace is to be added or deleted
    (a task with nothing to do only lists /run/netns)."""
    import pyroute2.netns  # the light package: _netlink registered it
    return pyroute2.netns


def create_netns(name):
    _pyroute2_netns().create(name)


def remove_netns(name):
    _pyroute2_netns().remove(name)


def list_namespaces():
    """Named namespaces: entries of /run/netns that are namespace pins."""
    try:
        names = os.listdir(NETNS_RUN_DIR)
    except OSError:
        return []
    return sorted(n for n in names if not n.startswith('.'))


def run_netns(module):
    require_pyroute2(module)
    p = module.params
    try:
        names = [check_netns_name(n) for n in p['name']]
    except ValueError as e:
        module.fail_json(msg=str(e))
    for n in names:
        if n.startswith('/'):
            module.fail_json(msg='name %r: give a namespace name, not a path' % n)
    before = list_namespaces()
    plan = Plan(module.check_mode)
    try:
        for n in names:
            if p['state'] == 'present' and n not in before:
                plan.do(quote(('ip', 'netns', 'add', n)), create_netns, n)
            elif p['state'] == 'absent' and n in before:
                plan.do(quote(('ip', 'netns', 'del', n)), remove_netns, n)
    except Exception as e:
        module.fail_json(msg='netns: %s' % error_text(e), commands=plan.commands)
    if module.check_mode:
        after = sorted(set(before) | set(names)) if p['state'] == 'present' \
            else sorted(set(before) - set(names))
    else:
        after = list_namespaces()
    return dict(
        changed=plan.changed,
        namespaces=after,
        commands=plan.commands,
        diff=dict(before={'namespaces': before}, after={'namespaces': after}),
    )
