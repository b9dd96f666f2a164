# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fork-based start path's unprivileged parts (the kernel steps run in the
reliability and integration tests, inside simulated hosts)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import marshal
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


def test_helper_file_imports_nothing_heavy():
    """The module's monitor runs this file with python -I -S: no json, enum, signal."""
    out = subprocess.run([os.path.realpath(sys.executable), '-I', '-S', '-X', 'importtime',
                          rs.__file__, 'nomode'], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and 'usage' in out.stderr
    for heavy in ('json', 'signal', 'warnings', 'enum', 're'):
        assert not re.search(r'\|\s+%s$' % heavy, out.stderr, re.M), out.stderr


def test_marshalled_config_round_trip():
    """The helper's configuration: what start_container builds survives marshal."""
    cfg = {'name': 'RED', 'command': ['busybox', 'true'], 'env': {'PATH': '/bin'},
           'uid_map': None, 'caps_keep': [0, 1], 'init': True, 'limits': {'memory': 1 << 20}}
    assert marshal.loads(marshal.dumps(cfg)) == cfg


def _status_field(pid, field):
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return line.split()[1]
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason='dropping capabilities needs them first')
def test_init_capabilities_and_bounding_set_dropped_twice(tmp_path):
    """What PID 1 does (in a fork here): the bounding set reduced, then only
    CAP_KILL kept; a second drop (the workload's, after the init's) skips the
    capabilities already gone, though CAP_SETPCAP is no longer held."""
    out = tmp_path / 'caps'

    def child():
        rs.drop_bounding_set([0, rs.CAP_KILL])
        rs.limit_capabilities([rs.CAP_KILL])
        rs.drop_bounding_set([rs.CAP_KILL, 0])  # a fork of the init: nothing to do
        del rs._BOUNDED[:]  # as if it had not been done here: every drop is refused
        rs.drop_bounding_set([0, rs.CAP_KILL])
        try:
            del rs._BOUNDED[:]
            rs.drop_bounding_set([rs.CAP_KILL])  # CAP_CHOWN is still there: an error
        except rs.SetupError as e:
            assert 'PR_CAPBSET_DROP, 0' in str(e)
        else:
            raise AssertionError('dropping without CAP_SETPCAP did not fail')
        fields = ('CapBnd', 'CapEff', 'CapPrm', 'CapInh')
        out.write_text(' '.join(_status_field('self', f) for f in fields))
        os._exit(0)
    pid = _forked(child)
    assert os.waitpid(pid, 0)[1] == 0
    assert out.read_text().split() == ['0000000000000021', '0000000000000020',
                                       '0000000000000020', '0000000000000000']


@pytest.mark.skipif(os.geteuid() != 0, reason='the init drops capabilities')
def test_init_forwards_a_sigterm_sent_as_soon_as_the_start_is_reported(tmp_path):
    """The caller may stop the container the moment the report pipe ends: the
    init must already forward SIGTERM then (it exits with the workload's
    status, 128+15, instead of being killed by the signal itself)."""
    r, w = os.pipe()
    cfg = {'command': ['sleep', '30'], 'env': {'PATH': '/usr/bin:/bin'}, 'cwd': '/',
           'uid': os.getuid(), 'gid': os.getgid(), 'caps_keep': list(range(41))}

    def child():
        os.close(r)
        rs.run_init(cfg, w)
    init = _forked(child)
    os.close(w)
    assert os.read(r, 100) == b''  # end of file: the workload exec'd
    os.close(r)
    os.kill(init, 15)
    _pid, status = os.waitpid(init, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 143, status
