# -*- coding: utf-8 -*-
"""The main job (build-container.yml at the repository's root), checked inside
the simulated host: chapter 10's proof, shared with the ch10_container scenario
(tests/lib/ch10_checks.py), and what only this playbook does: its final
message tells how to get a shell in RED, and that command must work."""

import json
import os
import shlex
import subprocess

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
from tests.lib import ansible_run

MESSAGE_TASK = 'How to get a shell in RED'


def final_message():
    """The message build-container.yml prints for host1, read from a run that
    starts at that task (the build itself is converge's job), as JSON."""
    p = ansible_run.playbook(os.path.join(ansible_run.ROOT, 'build-container.yml'),
                             os.environ['NODOCKER_INVENTORY'], '--start-at-task', MESSAGE_TASK,
                             extra_env={'ANSIBLE_STDOUT_CALLBACK': 'ansible.posix.json'})
    run = json.loads(p.stdout[p.stdout.index('{'):])
    for play in run['plays']:
        for task in play['tasks']:
            if task['task']['name'] == MESSAGE_TASK:
                return task['hosts']['host1']['msg']
    raise AssertionError('no task %r in the run:\n%s' % (MESSAGE_TASK, p.stdout[-5000:]))


def test_final_message_gives_a_working_shell_command_in_red(tmp_path):
    msg = final_message()
    i = [n for n, line in enumerate(msg) if line.endswith('A shell in RED:')][0]
    command = msg[i + 1].strip()
    argv = shlex.split(command)
    # NODOCKER_SIMHOST_LAB=<this scenario's lab> /abs/scripts/simhost-shell host1 <enter> RED
    assert argv[0] == 'NODOCKER_SIMHOST_LAB=build_container', command
    assert argv[1] == os.path.join(ansible_run.ROOT, 'scripts', 'simhost-shell'), command
    assert os.path.isabs(argv[1]) and os.access(argv[1], os.X_OK), command
    assert argv[2:] == ['host1', '/var/lib/nodocker-lab/ch10/enter', 'RED'], command
    # run exactly the printed command, from another directory, with a command
    # argument instead of the interactive shell (both scripts take one)
    p = subprocess.run(['/bin/sh', '-c', command + ' sh -c "hostname; ip addr"'],
                       cwd=str(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == 'RED', p.stdout
    assert '11.11.11.2/' in p.stdout, p.stdout
