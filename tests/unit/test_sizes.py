# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils._sizes import (
    format_size, parse_limit, parse_size)


@pytest.mark.parametrize('text,expected', [
    ('200M', 200 * 1024 ** 2), ('200MiB', 200 * 1024 ** 2), ('200mb', 200 * 1024 ** 2),
    ('1G', 1024 ** 3), ('1.5G', 1536 * 1024 ** 2), ('4096', 4096), (4096, 4096),
    ('10k', 10240), ('max', 'max'), ('unlimited', 'max'), (-1, 'max'), ('-1', 'max'),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize('bad', ['200 potatoes', '', 'M', '1.2.3G', 'iB', True, -5, '-5M', None])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_format_size():
    assert format_size(209715200) == '200MiB'
    assert format_size(1000) == '1000'
    assert format_size('max') == 'max'


def test_parse_limit():
    assert parse_limit('40000') == 40000
    assert parse_limit('max') == 'max'
    with pytest.raises(ValueError, match='too small'):
        parse_limit(10, minimum=1000)
    with pytest.raises(ValueError, match='whole number'):
        parse_limit('forty')
