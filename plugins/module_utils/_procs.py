# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Process identity shared by the runtime and the simulated hosts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (clock ticks since boot): identifies a process
    across PID reuse.

    None when the process is gone -- or has exited and waits to be reaped (a
    zombie): a process whose parent has not reaped it yet must not count as alive.
    """
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (IOError, OSError, ValueError, IndexError):
        return None
    if fields[0] in ('Z', 'X'):
        return None
    try:
        return int(fields[19])
    except (ValueError, IndexError):
        return None
