# -*- coding: utf-8 -*-
"""The VM lane (issue 6): two real Debian 12 VMs (qemu TCG, systemd, cgroup v2)
reached over SSH from the network namespace ndl-vmnet. See tests/vm/README.md."""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import vmlab  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line('markers', 'vm: needs root, qemu and about 2 GiB of RAM (two VMs)')


TIMINGS = []   # one dict per lab: seconds per step, shown at the end of the run


def pytest_terminal_summary(terminalreporter):
    for t in TIMINGS:
        terminalreporter.write_line('VM lane timings (s): %s' % t)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(pytest.mark.vm)


class Lab:
    """Handle on the running VMs: SSH and ansible-playbook, both from inside ndl-vmnet."""

    def __init__(self, inventory, n):
        self.inventory = inventory
        self.n = n
        self.timings = {}

    def ssh(self, i, cmd, check=True, timeout=300):
        r = subprocess.run(vmlab.ssh_cmd(i, cmd), capture_output=True, text=True, timeout=timeout,
                           check=False)
        if check and r.returncode != 0:
            raise AssertionError('host%d: %s -> rc %d\n%s%s' % (i, cmd, r.returncode, r.stdout, r.stderr))
        return r

    def playbook(self, playbook, *args, check=True, timeout=900):
        if not os.path.isabs(playbook):
            playbook = os.path.join(REPO, playbook)
        ansible_playbook = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
        if not os.path.exists(ansible_playbook):
            ansible_playbook = shutil.which('ansible-playbook')
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_NOCOLOR='1')
        env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
        t0 = time.time()
        r = subprocess.run(['ip', 'netns', 'exec', vmlab.NETNS, ansible_playbook,
                            '-i', self.inventory, playbook] + list(args),
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                           check=False)
        self.timings[os.path.basename(playbook) + ' ' + ' '.join(args)] = round(time.time() - t0, 1)
        if check and r.returncode != 0:
            raise AssertionError('%s %s -> rc %d\n%s\n%s' % (
                playbook, ' '.join(args), r.returncode, r.stdout[-6000:], r.stderr[-3000:]))
        return r


@pytest.fixture(scope='module')
def lab():
    if os.geteuid() != 0:
        pytest.skip('the VM lane needs root')
    for tool in ('qemu-system-x86_64', 'qemu-img', 'debootstrap', 'mkfs.ext4', 'ssh'):
        if not shutil.which(tool):
            pytest.skip('the VM lane needs %s (apt: qemu-system-x86 qemu-utils debootstrap '
                        'e2fsprogs openssh-client)' % tool)
    if os.environ.get('NDL_VM_REUSE') and os.path.exists(os.path.join(vmlab.RUN_DIR, 'state.json')):
        # development: reuse VMs started by "vmlab.py up 2"; they stay up
        yield Lab(os.path.join(vmlab.RUN_DIR, 'inventory.yml'), 2)
        return
    if vmlab.netns_exists() or os.path.exists(vmlab.RUN_DIR):
        if vmlab.qemu_running():
            pytest.fail('a VM lab is already up (python tests/vm/vmlab.py down)')
        vmlab.down()  # left over by a killed run: nothing of it runs any more
    # Everything goes even when the run is killed (CI stops a lane with SIGTERM):
    # the finally below, and atexit as a last resort (down is idempotent).
    atexit.register(vmlab.down)
    previous = signal.signal(signal.SIGTERM, _sigterm)
    t0 = time.time()
    try:
        vmlab.build_image()
        t1 = time.time()
        inv = vmlab.up(2)
        t2 = time.time()
        lab = Lab(inv, 2)
        TIMINGS.append(lab.timings)
        lab.timings['build-image'] = round(t1 - t0, 1)
        lab.timings['up 2'] = round(t2 - t1, 1)
        yield lab
    finally:
        t3 = time.time()
        vmlab.down()
        if TIMINGS:
            TIMINGS[-1]['down'] = round(time.time() - t3, 1)
        atexit.unregister(vmlab.down)
        signal.signal(signal.SIGTERM, previous)


def _sigterm(signum, _frame):
    raise SystemExit(128 + signum)
