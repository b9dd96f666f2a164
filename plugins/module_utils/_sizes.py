# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes and limits written the way people write them.

``parse_size('200M') == 200 * 1024 * 1024``. Like Docker (``-m 200m``) and the
kernel's own ``memparse``, the suffixes K, M, G, T are binary (powers of 1024)
whether or not they are written ``KB``/``KiB``; case does not matter. A plain
number is bytes; ``1.5G`` is allowed and rounded down to a whole byte.
``'max'``, ``'unlimited'`` and ``-1`` mean "no limit" and return ``'max'``.

``parse_limit`` does the same for plain counts (pids, microseconds).
Every function raises ``ValueError`` with a readable message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

UNLIMITED = 'max'
_UNLIMITED_WORDS = ('max', 'unlimited', 'none', 'infinity', '-1')
_UNITS = {'': 1, 'b': 1, 'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3, 't': 1024 ** 4}
_SIZE_RE = re.compile(r'^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b)?\s*$', re.IGNORECASE)


def parse_size(value, what='size'):
    """'200M' / '200MiB' / '1G' / 209715200 / 'max' -> bytes (int) or 'max'."""
    if isinstance(value, bool):
        raise ValueError('%s %r is not a size' % (what, value))
    if isinstance(value, int):
        if value == -1:
            return UNLIMITED
        if value < 0:
            raise ValueError('%s %r is negative' % (what, value))
        return value
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        raise ValueError('%s %r is not a size' % (what, value))
    if value.strip().lower() in _UNLIMITED_WORDS:
        return UNLIMITED
    m = _SIZE_RE.match(value)
    if not m or (m.group(3) and m.group(3).lower() == 'ib' and not m.group(2)):
        raise ValueError('%s %r is not a size: write a number with an optional unit '
                         'K, M, G or T (binary: 200M = 200MiB = 209715200 bytes), '
                         'or "max" for no limit' % (what, value))
    number, unit = m.group(1), m.group(2).lower()
    if '.' in number:
        whole, frac = number.split('.')
        return (int(whole) * _UNITS[unit]
                + int(frac) * _UNITS[unit] // (10 ** len(frac)))
    return int(number) * _UNITS[unit]


def format_size(value):
    """bytes -> the shortest exact binary form: 209715200 -> '200MiB'."""
    if value == UNLIMITED or value is None:
        return value
    for unit, factor in (('TiB', 1024 ** 4), ('GiB', 1024 ** 3), ('MiB', 1024 ** 2),
                         ('KiB', 1024)):
        if value and value % factor == 0:
            return '%d%s' % (value // factor, unit)
    return '%d' % value


def parse_limit(value, what='limit', minimum=0):
    """A whole number (or 'max'/-1 for no limit) -> int or 'max'."""
    if isinstance(value, bool):
        raise ValueError('%s %r is not a number' % (what, value))
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _UNLIMITED_WORDS:
            return UNLIMITED
        if not re.match(r'^[0-9]+$', text):
            raise ValueError('%s %r is not a whole number (or "max" for no limit)'
                             % (what, value))
        value = int(text)
    if not isinstance(value, int):
        raise ValueError('%s %r is not a whole number (or "max" for no limit)' % (what, value))
    if value == -1:
        return UNLIMITED
    if value < minimum:
        raise ValueError('%s %r is too small: the minimum is %d' % (what, value, minimum))
    return value
