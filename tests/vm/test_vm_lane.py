# -*- coding: utf-8 -*-
"""The VM lane (issue 6): the collection over SSH on two real Debian 12 VMs
(qemu TCG, systemd 252, pure cgroup v2). Run as root:

    .venv/bin/python -m pytest -m vm tests/vm -v

The ``lab`` fixture (conftest.py) builds/reuses the image, boots host1
(192.168.104.2) and host2 (192.168.104.3) in the network namespace ndl-vmnet
and tears everything down afterwards.
"""

import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHAPTER_VARS = os.path.join(HERE, 'inventory_chapters.yml')

pytestmark = pytest.mark.vm


def _first_existing(*names):
    for n in names:
        if os.path.exists(os.path.join(REPO, n)):
            return n
    return None


def test_guests_are_systemd_cgroup_v2_with_pyroute2(lab):
    for i in (1, 2):
        out = lab.ssh(i, 'hostname; ps -p 1 -o comm=; stat -fc %T /sys/fs/cgroup; '
                         'systemctl --version | head -1; '
                         'python3 -c "import pyroute2; print(pyroute2.__version__)"; '
                         'ip -br addr show eth0').stdout.split('\n')
        assert out[0] == 'host%d' % i, out
        assert out[1] == 'systemd', out
        assert out[2] == 'cgroup2fs', out
        assert out[3].startswith('systemd 252'), out
        assert out[4] == '0.9.7', out
        assert '192.168.104.%d/24' % (i + 1) in out[5], out


def test_cgroup_module_v2(lab):
    lab.playbook(os.path.join(HERE, 'playbooks', 'cgroup_v2.yml'))


def test_container_v2_cpu_quota_and_oom(lab):
    pb = os.path.join(HERE, 'playbooks', 'container_v2.yml')
    try:
        # starts the container (its command is a CPU hog), proves the OOM kill inside
        lab.playbook(pb)
        # CPU near 40% of a core, measured from cpu.stat over 10 s
        out = lab.ssh(1, r'''d=$(find /sys/fs/cgroup -maxdepth 3 -type d -name ndlvm_red | head -1)
            cat $d/cpu.max
            a=$(awk '$1=="usage_usec"{print $2}' $d/cpu.stat); t=$(date +%s%N)
            sleep 10
            b=$(awk '$1=="usage_usec"{print $2}' $d/cpu.stat); u=$(date +%s%N)
            echo $a $b $t $u
            awk '$1=="nr_throttled"{print $2}' $d/cpu.stat''').stdout.split('\n')
        assert out[0] == '40000 100000', out
        a, b, t, u = (int(x) for x in out[1].split())
        pct = 100.0 * (b - a) * 1000 / (u - t)
        lab.timings['cpu hog %'] = round(pct, 1)
        assert 30 <= pct <= 50, 'CPU hog used %.1f%% of a core (want about 40%%)' % pct
        assert int(out[2]) > 0, out
    finally:
        lab.playbook(pb, '-e', 'ctr_state=absent', check=False)
    left = lab.ssh(1, 'find /sys/fs/cgroup -name ndlvm_red; ls /var/tmp', check=False).stdout
    assert 'ndlvm' not in left, left


def test_build_container(lab):
    """The main job on a real cgroup v2 VM: RED and BLUE on host1, then the course's
    proofs through the enter script (ping, CPU held near 40%, OOM kill)."""
    pb = _first_existing('build-container.yml', 'playbooks/build-container.yml')
    if not pb:
        pytest.skip('build-container.yml does not exist yet')
    # --limit host1: the imported simhosts play (localhost) is skipped; with this
    # inventory it would only make (or, exclusive, prune) simulated hosts here.
    args = ['-l', 'host1', '-e', 'nodocker_hosts=host1']
    enter = '/var/lib/nodocker-lab/ch10/enter'
    try:
        lab.playbook(pb, *args)
        r = lab.ssh(1, '%s RED hostname; %s RED ping -c 2 -W 2 11.11.11.3' % (enter, enter), check=False)
        assert r.returncode == 0 and r.stdout.startswith('RED\n'), r.stdout + r.stderr
        # CPU: a hog entered into RED is held near 40% of a core (cpu.stat over 6 s);
        # then a 300 MB dd in RED is OOM-killed while RED's PID 1 survives
        out = lab.ssh(1, r'''
            d=$(grep -o '"/sys/fs/cgroup/[^"]*/cgroup.procs"' /var/lib/nodocker-lab/containers/RED/start.json \
                | head -1 | tr -d '"'); d=${d%/cgroup.procs}
            pid1=$(sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p' /run/nodocker-lab/containers/RED.json)
            E=ENTER
            $E RED timeout 9 sh -c 'while :; do :; done' >/dev/null 2>&1 &
            sleep 2
            a=$(awk '$1=="usage_usec"{print $2}' $d/cpu.stat); t=$(date +%s%N)
            sleep 6
            b=$(awk '$1=="usage_usec"{print $2}' $d/cpu.stat); u=$(date +%s%N)
            wait || :
            echo $(cat $d/cpu.max) $(cat $d/memory.max) $(cat $d/memory.swap.max)
            echo $a $b $t $u
            if $E RED dd if=/dev/zero of=/dev/null bs=300M count=1 >/dev/null 2>&1; then echo dd-ok; else echo dd-killed; fi
            awk '$1=="oom_kill"{print $2}' $d/memory.events
            kill -0 $pid1 && echo pid1-alive'''.replace('ENTER', enter)).stdout.split('\n')
        assert out[0] == '40000 100000 209715200 0', out
        a, b, t, u = (int(x) for x in out[1].split())
        pct = 100.0 * (b - a) * 1000 / (u - t)
        lab.timings['RED cpu hog %'] = round(pct, 1)
        assert 30 <= pct <= 50, 'CPU hog in RED used %.1f%% of a core (want about 40%%)' % pct
        assert out[2] == 'dd-killed' and int(out[3]) >= 1 and out[4] == 'pid1-alive', out
        r = lab.playbook(pb, *args)
        assert 'changed=0' in r.stdout, r.stdout[-3000:]
    finally:
        lab.playbook(pb, *args, '-e', 'ch10_state=absent', check=False)
    left = lab.ssh(1, 'ip netns list; ls /var/lib/nodocker-lab/ch10 2>/dev/null; '
                      'find /sys/fs/cgroup -name RED -o -name BLUE', check=False).stdout
    assert left.strip() == '', left


def test_ch06_static_overlay_across_vms(lab):
    pb = 'playbooks/ch06_overlay_network.yml'
    try:
        lab.playbook(pb, '-i', CHAPTER_VARS)
        for src, host, dst in ((1, 'c1', '11.11.11.3'), (1, 'c1', '11.11.11.10'),
                               (2, 'c2', '11.11.11.2'), (2, 'c3', '11.11.11.2')):
            r = lab.ssh(src, 'ip netns exec %s ping -c 2 -W 2 %s' % (host, dst), check=False)
            assert r.returncode == 0, 'host%d/%s -> %s: %s' % (src, host, dst, r.stdout + r.stderr)
        # the underlay carries VXLAN (UDP 4789) between the two VMs
        r = lab.ssh(1, '(timeout 8 tcpdump -l -n -i eth0 -c 2 udp port 4789 > /tmp/ndl_cap 2>/dev/null &); '
                       'sleep 2; ip netns exec c1 ping -c 3 -W 2 11.11.11.3 >/dev/null; sleep 1; '
                       'cat /tmp/ndl_cap; rm -f /tmp/ndl_cap')
        assert '192.168.104.3.4789' in r.stdout, r.stdout
        # (ch06's idempotence is proven by its Molecule scenario; over SSH on these
        # hosts by test_build_container's second run)
    finally:
        lab.playbook(pb, '-i', CHAPTER_VARS, '-e', 'ch06_state=absent', check=False)
    for i in (1, 2):
        assert lab.ssh(i, 'ip netns list').stdout.strip() == ''


def test_ch07_dynamic_overlay_across_vms(lab):
    pb = _first_existing('playbooks/ch07_dynamic_overlay.yml')
    if not pb:
        pytest.skip('playbooks/ch07_dynamic_overlay.yml does not exist yet')
    # Registry served over the network: etcd 3.4 (baked in the image) on host1.
    lab.ssh(1, 'systemd-run --unit=ndl-etcd etcd --data-dir /var/tmp/ndl-etcd '
               '--listen-client-urls http://0.0.0.0:2379 '
               '--advertise-client-urls http://192.168.104.2:2379')
    reg = ['-e', 'ch07_registry=etcd', '-e', 'ch07_etcd_endpoint=http://192.168.104.2:2379']
    try:
        lab.playbook(pb, '-i', CHAPTER_VARS, *reg)
        # The agents start under systemd on slow (TCG) guests and the first packets of a
        # flow are lost while a miss is answered: allow them up to a minute to answer.
        for src, host, dst in ((1, 'c1', '11.11.11.3'), (2, 'c2', '11.11.11.2')):
            r = lab.ssh(src, 'for i in $(seq 30); do ip netns exec %s ping -c 1 -W 2 %s '
                             '&& exit 0; sleep 1; done; exit 1' % (host, dst), check=False)
            assert r.returncode == 0, 'host%d/%s -> %s: %s' % (src, host, dst, r.stdout + r.stderr)
        # the agent runs as a systemd unit and systemd restarts it when it is killed
        units = lab.ssh(1, "systemctl list-units --plain --no-legend 'nodocker*' '*overlay*' "
                           "| awk '/\\.service/{print $1}'").stdout.split()
        assert units, 'no overlay agent unit on host1'
        unit = units[0]
        pid1 = lab.ssh(1, 'systemctl show -p MainPID --value %s' % unit).stdout.strip()
        lab.ssh(1, 'kill -9 %s' % pid1)
        pid2 = lab.ssh(1, 'for i in $(seq 30); do p=$(systemctl show -p MainPID --value %s); '
                          '[ "$p" != 0 ] && [ "$p" != %s ] && echo $p && exit 0; sleep 1; done; exit 1'
                       % (unit, pid1)).stdout.strip()
        assert pid2 and pid2 != pid1
    finally:
        lab.playbook(pb, '-i', CHAPTER_VARS, *reg, '-e', 'ch07_state=absent', check=False)
        lab.ssh(1, 'systemctl stop ndl-etcd; rm -rf /var/tmp/ndl-etcd', check=False)


def test_overlay_legacy_mount_on_6_1(lab):
    """nodocker.lab.overlay on Linux 6.1 (no lowerdir+): the mount(2) fallback with
    absolute paths, with relative ones past a page, four-step idempotence for both."""
    lab.playbook(os.path.join(HERE, 'playbooks', 'overlay_legacy.yml'))
    left = lab.ssh(1, 'grep " overlay " /proc/self/mountinfo | grep ndl-ovl; ls /var/tmp',
                   check=False).stdout
    assert 'ndl-ovl' not in left, left
