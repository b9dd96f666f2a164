# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recording changes as the shell commands that would make them.

Pure standard library on purpose: modules that never talk netlink (rootfs,
overlay, image) import this instead of ``_netlink`` so they do not pay for
loading pyroute2 (about 0.28 s per task). ``_netlink`` can re-export these
names unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex


def quote(args):
    """One shell command line from an argument list."""
    return ' '.join(shlex.quote(str(a)) for a in args)


class Plan:
    """Changes to make, each as (shell command, callable).

    ``do(cmd, fn, ...)`` records the command and runs ``fn`` unless in check
    mode. ``commands`` is what the module returns: empty when nothing changed.
    """

    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.commands = []

    @property
    def changed(self):
        return bool(self.commands)

    def do(self, command, fn=None, *args, **kwargs):
        self.commands.append(command)
        if fn is not None and not self.check_mode:
            return fn(*args, **kwargs)
        return None
