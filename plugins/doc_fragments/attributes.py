# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The attributes every state module of the collection has."""

    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
'''

    # Modules that only read: nothing to diff, never a change.
    INFO_MODULE = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
'''

    # Added after DOCUMENTATION by the network modules that act inside a namespace
    # or on existing links: only the check-mode details (fragments merge, the
    # description and support come from DOCUMENTATION).
    NETLINK = r'''
attributes:
  check_mode:
    details:
      - >-
        A network namespace or link that does not exist yet is taken to be made by an
        earlier task of the same play (in check mode that task only reports it). The
        task warns, reports C(changed) and returns an empty C(commands) list (a
        removal reports unchanged: there is nothing to remove). Applied, the same task
        fails and changes nothing.
'''
