# -*- coding: utf-8 -*-
"""Chapter 10's proof (playbooks/ch10_container.yml), checked inside the
simulated host. The checks live in tests/lib/ch10_checks.py, shared with the
build_container scenario (the main job builds the same chapter)."""

# pytest collects imported test functions as this module's tests, in this order
from tests.lib.ch10_checks import (  # noqa: F401  pylint: disable=unused-import
    test_red_pings_blue,
    test_hostnames,
    test_ps_shows_only_the_container,
    test_root_is_the_overlay,
    test_cpu_limit_files,
    test_memory_limit_and_swappiness_files,
    test_cpu_is_held_near_40_percent,
    test_memory_hog_is_oom_killed_and_init_survives,
)
