# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fork-based start path's unprivileged parts (the kernel steps run in the
reliability and integration tests, inside simulated hosts)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.nodocker.lab.plugins.module_utils import _runtime_start as rs


def _forked(fn):
    """Run fn in a fork that never returns here; -> its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(99)
    return pid


def test_exit_code():
    pid = _forked(lambda: os._exit(3))
    assert rs.exit_code(os.waitpid(pid, 0)[1]) == 3
    pid = _forked(lambda: os.kill(os.getpid(), 15))
    assert rs.exit_code(os.waitpid(pid, 0)[1]) == 143


def test_wait_and_record_writes_json_without_json(tmp_path):
    exit_file = str(tmp_path / 'exit.json')
    p1 = _forked(lambda: os._exit(7))
    rs.wait_and_record(p1, exit_file, 1234.5)
    rec = json.loads(open(exit_file).read())
    assert rec['pid'] == p1 and rec['exit_code'] == 7 and rec['started_at'] == 1234.5
    assert rec['finished_at'] >= 1234.5 and 'signal' not in rec
    assert not os.path.exists(exit_file + '.tmp')


def test_wait_and_record_signal(tmp_path):
    exit_file = str(tmp_path / 'exit.json')
    p1 = _forked(lambda: os.kill(os.getpid(), 9))
    rs.wait_and_record(p1, exit_file, 1.0)
    rec = json.loads(open(exit_file).read())
    assert rec['exit_code'] == 137 and rec['signal'] == 9


def test_lean_waiter_source_runs_in_a_bare_interpreter(tmp_path):
    """What the monitor execs after the grace period: python -I -S, no imports
    beyond os and time; it reaps a child it inherits across exec."""
    exit_file = str(tmp_path / 'exit.json')
    code = ('import os, sys\n'
            'pid = os.fork()\n'
            'if pid == 0:\n'
            '    os._exit(5)\n'
            'os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", sys.argv[1], '
            'str(pid), sys.argv[2], "2.5"])\n')
    subprocess.run([os.path.realpath(sys.executable), '-c', code,
                    rs.WAITER + rs.WAITER_MAIN, exit_file], check=True, timeout=60)
    rec = json.loads(open(exit_file).read())
    assert rec['exit_code'] == 5 and rec['started_at'] == 2.5
    out = subprocess.run([os.path.realpath(sys.executable), '-I', '-S', '-X', 'importtime',
                          '-c', rs.WAITER], capture_output=True, text=True, check=True).stderr
    for heavy in ('json', 'ctypes', 'signal', 'warnings', 'enum'):
        assert not re.search(r'\|\s+%s$' % heavy, out, re.M), out


def test_execvpe_searches_path_and_reports_missing(tmp_path):
    def run_it():
        rs.execvpe(['true'], {'PATH': '%s:/usr/bin:/bin' % tmp_path})
    pid = _forked(run_it)
    assert os.waitpid(pid, 0)[1] == 0
    with pytest.raises(FileNotFoundError):
        rs.execvpe(['ndl-no-such-command'], {'PATH': str(tmp_path)})
    script = tmp_path / 'noexec'
    script.write_text('#!/bin/sh\n')
    script.chmod(0o644)
    with pytest.raises(PermissionError):
        rs.execvpe(['noexec'], {'PATH': str(tmp_path)})


def test_ended_within(tmp_path):
    pid = _forked(lambda: os._exit(0))
    assert rs.ended_within(pid, 5)
    os.waitpid(pid, 0)
    r, w = os.pipe()
    pid = _forked(lambda: os.read(r, 1))
    try:
        assert not rs.ended_within(pid, 0.05)
    finally:
        os.write(w, b'x')
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)


def test_detach_closes_the_callers_descriptors(tmp_path):
    """A forked monitor keeps none of the caller's fds (an Ansible module's pipes)."""
    stray = os.open(str(tmp_path / 'stray'), os.O_WRONLY | os.O_CREAT)
    os.set_inheritable(stray, True)
    out = str(tmp_path / 'out')
    r, w = os.pipe()

    def child():
        log = os.open(out, os.O_WRONLY | os.O_CREAT)
        rs.detach(os.open(os.devnull, os.O_RDONLY), log, log, w)
        os.write(1, (' '.join(sorted(os.listdir('/proc/self/fd')))).encode())
        rs.report(rs.REPORT_FD, 'pid 42')
        os._exit(0)
    pid = _forked(child)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 100) == b'pid 42\n'
    os.close(r)
    os.close(stray)
    # 0-3 and the fd listdir itself opened
    assert len(open(out).read().split()) == 5
