# -*- coding: utf-8 -*-
"""Integration tests run against the real kernel, inside simulated hosts, and
the whole session is wrapped in a leak check of the machine's own state."""

import os

import pytest

from tests.lib import leakcheck


@pytest.fixture(scope='session', autouse=True)
def machine_leak_check():
    if os.geteuid() != 0:
        pytest.skip('integration tests need root')
    before = leakcheck.snapshot()
    yield
    problems = leakcheck.settled_problems(before)
    if problems and os.environ.get('NODOCKER_LEAKCHECK_WARN_ONLY') != '1':
        pytest.fail('LEAK CHECK FAILED after the integration tests:\n  - ' + '\n  - '.join(problems))
