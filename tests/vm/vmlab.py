#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real virtual machines as test hosts (issue 6), standard library only.

    vmlab.py build-image          # Debian 12 image, cached by a hash of its recipe
    vmlab.py up 2                 # netns ndl-vmnet + bridge + taps, qemu (TCG), SSH, inventory
    vmlab.py exec -- CMD ...      # run CMD inside ndl-vmnet (e.g. ansible-playbook -i INVENTORY ...)
    vmlab.py ssh 1 [CMD ...]      # SSH into VM 1 (host1, 192.168.104.2)
    vmlab.py status
    vmlab.py down                 # kill qemu, delete taps/bridge/netns, overlays, state

The machine's own (root) network namespace is never changed: the bridge, the taps,
the 192.168.104.1 address and every qemu process live in the network namespace
``ndl-vmnet``; SSH and Ansible reach the VMs from inside it (``exec``).

Layout: image cache (kept) under /var/cache/nodocker-lab/vm/<recipe-hash>/
(base.qcow2, vmlinuz, initrd.img, id_ed25519[.pub]); runtime state (removed by
``down``) under /run/nodocker-lab-vm (pids, consoles, inventory) and
/var/lib/nodocker-lab-vm (per-VM qcow2 overlays).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

CACHE_DIR = os.environ.get('NDL_VM_CACHE', '/var/cache/nodocker-lab/vm')
RUN_DIR = '/run/nodocker-lab-vm'
STATE_DIR = '/var/lib/nodocker-lab-vm'
NETNS = 'ndl-vmnet'
BRIDGE = 'ndlvmbr0'
SUBNET = '192.168.104'
GATEWAY = SUBNET + '.1'
MARKER = 'ndl-vmlab'          # in every qemu's -name, with RUN_DIR in its -pidfile

SUITE = 'bookworm'
MIRROR = os.environ.get('NDL_VM_MIRROR', 'http://deb.debian.org/debian')
IMAGE_SIZE = '3G'


def _pinned(package):
    """The version requirements.txt pins (one place for every Python pin)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'requirements.txt')
    with open(path) as f:
        for line in f:
            name, sep, version = line.split('#')[0].strip().partition('==')
            if sep and name.lower() == package:
                return version.strip()
    raise RuntimeError('requirements.txt pins no %s' % package)


# the modules use the pyroute2 0.9 API; Debian 12 ships 0.7.2
PYROUTE2 = _pinned('pyroute2')

# Everything the guests need: they have no package mirror.
PACKAGES = [
    'linux-image-amd64', 'initramfs-tools', 'systemd-sysv', 'udev', 'dbus',
    'openssh-server', 'python3', 'iproute2', 'iptables', 'nftables', 'iputils-ping',
    'busybox-static', 'procps', 'psmisc', 'kmod', 'util-linux', 'tcpdump',
    'etcd-server', 'etcd-client', 'ca-certificates', 'less',
]

# Runs in the image (chroot) after debootstrap. Part of the recipe hash.
GUEST_SETUP = r'''#!/bin/sh
set -eu
echo 'ndl-vm' > /etc/hostname
cat > /etc/hosts <<EOF
127.0.0.1 localhost
192.168.104.1 gateway
192.168.104.2 host1
192.168.104.3 host2
192.168.104.4 host3
192.168.104.5 host4
EOF
echo '/dev/vda / ext4 defaults,noatime 0 0' > /etc/fstab
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
passwd -d root >/dev/null
mkdir -p /root/.ssh && chmod 700 /root/.ssh
install -m 600 /tmp/ndl/id_ed25519.pub /root/.ssh/authorized_keys
# pyroute2 0.9 (pure Python wheel = zip), without pip
python3 - <<'EOF'
import glob, zipfile
for whl in glob.glob('/tmp/ndl/*.whl'):
    zipfile.ZipFile(whl).extractall('/usr/local/lib/python3.11/dist-packages')
EOF
python3 -c 'import pyroute2, sys; print("pyroute2", pyroute2.__version__)'
# Ansible's module payloads are zips whose sources zipimport compiles on every task
# (seconds on an emulated CPU): keep their bytecode (see ndl_zipcache.py)
install -m 644 /tmp/ndl/ndl_zipcache.py /usr/local/lib/python3.11/dist-packages/ndl_zipcache.py
echo 'import ndl_zipcache' > /usr/local/lib/python3.11/dist-packages/ndl_zipcache.pth
python3 -m compileall -q /usr/local/lib/python3.11/dist-packages
install -m 755 /tmp/ndl/ndl-vmconfig /usr/local/sbin/ndl-vmconfig
install -m 644 /tmp/ndl/ndl-vmconfig.service /etc/systemd/system/ndl-vmconfig.service
systemctl enable ndl-vmconfig.service systemd-networkd.service ssh.service
systemctl disable etcd.service 2>/dev/null || true
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    e2scrub_reap.service systemd-networkd-wait-online.service 2>/dev/null || true
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' > /etc/systemd/journald.conf.d/ndl.conf
printf 'UseDNS no\nPermitRootLogin prohibit-password\n' > /etc/ssh/sshd_config.d/ndl.conf
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /tmp/ndl
'''

# The per-VM address comes from the kernel command line (ndl.addr=), the hostname
# from systemd.hostname=.
VMCONFIG = r'''#!/bin/sh
ADDR= GW=
for a in $(cat /proc/cmdline); do
  case "$a" in
    ndl.addr=*) ADDR="${a#ndl.addr=}" ;;
    ndl.gw=*) GW="${a#ndl.gw=}" ;;
  esac
done
[ -n "$ADDR" ] || exit 0
mkdir -p /run/systemd/network
{
  printf '[Match]\nName=eth0\n\n[Link]\nRequiredForOnline=no\n\n[Network]\nAddress=%s\n' "$ADDR"
  [ -z "$GW" ] || printf 'Gateway=%s\n' "$GW"
} > /run/systemd/network/10-ndl.network
'''

VMCONFIG_UNIT = '''[Unit]
Description=nodocker.lab VM address from the kernel command line
DefaultDependencies=no
Before=systemd-networkd.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/ndl-vmconfig

[Install]
WantedBy=sysinit.target
'''

# An x86-64-v2 CPU, not "-cpu max": with AVX2 offered, glibc and CPython take their
# AVX2 code paths, which TCG emulates slowly -- a guest's Python ran about twice as
# fast with this model (loop, compile and start-up timings on this machine kind).
CPU_MODEL = 'qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16'

SSH_OPTS = ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
            '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
            '-o', 'ConnectTimeout=30', '-o', 'ServerAliveInterval=15']


class VMLabError(RuntimeError):
    pass


class AlreadyUp(VMLabError):
    pass


def log(msg):
    sys.stderr.write('[vmlab %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, **kw)


def recipe_key():
    recipe = {'suite': SUITE, 'packages': PACKAGES, 'setup': GUEST_SETUP, 'files': guest_files(),
              'vmconfig': VMCONFIG, 'unit': VMCONFIG_UNIT, 'pyroute2': PYROUTE2,
              'size': IMAGE_SIZE, 'v': 1}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def guest_files():
    """Files of tests/vm/guest/, copied into the image: {name: text}."""
    d = os.path.join(HERE, 'guest')
    out = {}
    for name in sorted(os.listdir(d)):
        if name.endswith('.py'):
            with open(os.path.join(d, name)) as f:
                out[name] = f.read()
    return out


def image_dir():
    return os.path.join(CACHE_DIR, recipe_key())


def image_ready(d=None):
    d = d or image_dir()
    return all(os.path.exists(os.path.join(d, f)) for f in
               ('base.qcow2', 'vmlinuz', 'initrd.img', 'id_ed25519', 'id_ed25519.pub', 'DONE'))


def _wheel(dest):
    """The pyroute2 wheel, from the cache or PyPI (pip download, host side)."""
    cached = os.path.join(CACHE_DIR, 'wheels')
    os.makedirs(cached, exist_ok=True)
    have = [f for f in os.listdir(cached) if f.startswith('pyroute2-%s-' % PYROUTE2) and f.endswith('.whl')]
    if not have:
        run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
             '-d', cached, 'pyroute2==%s' % PYROUTE2], stdout=subprocess.DEVNULL)
        have = [f for f in os.listdir(cached) if f.startswith('pyroute2-%s-' % PYROUTE2)]
    for f in have:
        shutil.copy(os.path.join(cached, f), dest)


def build_image(force=False):
    """Build (or reuse) the cached image for the current recipe. Returns its directory."""
    final = image_dir()
    if image_ready(final) and not force:
        log('image cached: %s' % final)
        return final
    os.makedirs(CACHE_DIR, exist_ok=True)
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='.build-%s-' % recipe_key(), dir=CACHE_DIR)
    try:
        run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'nodocker-lab-vm',
             '-f', os.path.join(tmp, 'id_ed25519')])
        _wheel(tmp)
        # The root tree lives on a tmpfs (dpkg's fsyncs cost minutes on a disk) in a
        # private mount namespace: the tmpfs and whatever debootstrap mounts die with it.
        run(['unshare', '--mount', '--propagation', 'private',
             sys.executable, os.path.abspath(__file__), '_build', tmp])
        with open(os.path.join(tmp, 'DONE'), 'w') as f:
            json.dump({'key': recipe_key(), 'seconds': round(time.time() - t0)}, f)
        os.chmod(tmp, 0o755)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
        log('image built in %.0fs: %s' % (time.time() - t0, final))
        prune_images(keep=final)
        return final
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def prune_images(keep):
    """Remove the images of older recipes (about 1 GB each) and failed builds."""
    for name in os.listdir(CACHE_DIR):
        path = os.path.join(CACHE_DIR, name)
        if name != 'wheels' and path != keep and os.path.isdir(path):
            log('removing superseded image %s' % path)
            shutil.rmtree(path, ignore_errors=True)


def _build_inner(tmp):
    """Runs in a private mount namespace (see build_image)."""
    t0 = time.time()
    root = os.path.join(tmp, 'root')
    ndl = os.path.join(root, 'tmp', 'ndl')
    os.makedirs(root)
    run(['mount', '-t', 'tmpfs', '-o', 'size=4g,mode=755', 'ndl-vm-build', root])
    try:
        log('debootstrap %s (%d packages) ...' % (SUITE, len(PACKAGES)))
        with open(os.path.join(tmp, 'debootstrap.log'), 'w') as out:
            run(['debootstrap', '--variant=minbase', '--include=' + ','.join(PACKAGES),
                 SUITE, root, MIRROR], stdout=out, stderr=subprocess.STDOUT)
        log('debootstrap done in %.0fs' % (time.time() - t0))
        os.makedirs(ndl, exist_ok=True)
        for f in os.listdir(tmp):
            if f.endswith('.whl') or f == 'id_ed25519.pub':
                shutil.copy(os.path.join(tmp, f), ndl)
        files = [('setup.sh', GUEST_SETUP), ('ndl-vmconfig', VMCONFIG),
                 ('ndl-vmconfig.service', VMCONFIG_UNIT)] + sorted(guest_files().items())
        for name, text in files:
            with open(os.path.join(ndl, name), 'w') as f:
                f.write(text)
        run(['chroot', root, '/bin/sh', '/tmp/ndl/setup.sh'])
        boot = os.path.join(root, 'boot')
        kern = sorted(f for f in os.listdir(boot) if f.startswith('vmlinuz-'))[-1]
        initrd = sorted(f for f in os.listdir(boot) if f.startswith('initrd.img-'))[-1]
        shutil.copy(os.path.join(boot, kern), os.path.join(tmp, 'vmlinuz'))
        shutil.copy(os.path.join(boot, initrd), os.path.join(tmp, 'initrd.img'))
        raw = os.path.join(tmp, 'root.ext4')
        run(['mkfs.ext4', '-q', '-F', '-L', 'ndlroot', '-d', root, raw, IMAGE_SIZE])
        run(['qemu-img', 'convert', '-O', 'qcow2', raw, os.path.join(tmp, 'base.qcow2')])
        os.unlink(raw)
        log('image files ready in %.0fs (kernel %s)' % (time.time() - t0, kern))
    finally:
        run(['umount', '-R', root], check=False)
        os.rmdir(root)


# ---------------------------------------------------------------- network + VMs

def vm_addr(i):
    return '%s.%d' % (SUBNET, i + 1)


def vm_name(i):
    return 'host%d' % i


def tap_name(i):
    return 'ndlvtap%d' % i


def netns_exec(cmd, **kw):
    return run(['ip', 'netns', 'exec', NETNS] + cmd, **kw)


def netns_exists():
    return os.path.exists(os.path.join('/run/netns', NETNS))


def ssh_cmd(i, *cmd, key=None):
    key = key or os.path.join(image_dir(), 'id_ed25519')
    return ['ip', 'netns', 'exec', NETNS, 'ssh', '-i', key] + SSH_OPTS + \
        ['root@' + vm_addr(i)] + list(cmd)


def _qemu_pids():
    """PIDs of qemu processes this tool started (pid files in RUN_DIR, checked by cmdline)."""
    pids = []
    if not os.path.isdir(RUN_DIR):
        return pids
    for f in os.listdir(RUN_DIR):
        if not f.endswith('.pid'):
            continue
        try:
            pid = int(open(os.path.join(RUN_DIR, f)).read().strip())
            cmdline = open('/proc/%d/cmdline' % pid, 'rb').read().decode(errors='replace')
        except (OSError, ValueError):
            continue
        if MARKER in cmdline and RUN_DIR in cmdline:
            pids.append(pid)
    return pids


def qemu_running():
    return bool(_qemu_pids())


def up(n=2, memory=1024, smp=1, timeout=600):
    if n < 1 or n > 4:
        raise VMLabError('1 to 4 VMs')
    if netns_exists() or os.path.exists(RUN_DIR):
        raise AlreadyUp('already up (or left over): run "vmlab.py down" first')
    img = build_image()
    t0 = time.time()
    os.makedirs(RUN_DIR)
    os.makedirs(STATE_DIR, exist_ok=True)
    run(['ip', 'netns', 'add', NETNS])
    netns_exec(['ip', 'link', 'set', 'lo', 'up'])
    netns_exec(['ip', 'link', 'add', BRIDGE, 'type', 'bridge'])
    netns_exec(['ip', 'addr', 'add', GATEWAY + '/24', 'dev', BRIDGE])
    netns_exec(['ip', 'link', 'set', BRIDGE, 'up'])
    for i in range(1, n + 1):
        tap = tap_name(i)
        netns_exec(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap'])
        netns_exec(['ip', 'link', 'set', tap, 'master', BRIDGE, 'up'])
        disk = os.path.join(STATE_DIR, 'vm%d.qcow2' % i)
        run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2',
             '-b', os.path.join(img, 'base.qcow2'), disk])
        append = ('root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.hostname=%s '
                  'ndl.addr=%s/24 ndl.gw=%s panic=-1 %s'
                  % (vm_name(i), vm_addr(i), GATEWAY, os.environ.get('NDL_VM_APPEND', '')))
        netns_exec([
            'qemu-system-x86_64', '-name', '%s-%s' % (MARKER, vm_name(i)),
            '-accel', 'tcg,thread=multi,tb-size=256', '-cpu', os.environ.get('NDL_VM_CPU', CPU_MODEL),
            '-m', str(memory), '-smp', str(smp),
            '-kernel', os.path.join(img, 'vmlinuz'), '-initrd', os.path.join(img, 'initrd.img'),
            '-append', append,
            '-drive', 'file=%s,if=virtio,format=qcow2,cache=unsafe' % disk,
            '-netdev', 'tap,id=n0,ifname=%s,script=no,downscript=no' % tap,
            '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:68:00:%02x' % (i + 1),
            '-display', 'none', '-monitor', 'none', '-no-reboot',
            '-serial', 'file:%s' % os.path.join(RUN_DIR, 'vm%d.console' % i),
            '-pidfile', os.path.join(RUN_DIR, 'vm%d.pid' % i), '-daemonize'])
    log('%d VM(s) started, waiting for SSH ...' % n)
    key = os.path.join(img, 'id_ed25519')
    pending = set(range(1, n + 1))
    deadline = time.time() + timeout
    while pending:
        if time.time() > deadline:
            raise VMLabError('SSH not up after %ds on %s (see %s/vm*.console)'
                             % (timeout, sorted(pending), RUN_DIR))
        if len(_qemu_pids()) < n:
            raise VMLabError('a qemu process died (see %s/vm*.console)' % RUN_DIR)
        for i in sorted(pending):
            r = run(ssh_cmd(i, 'true', key=key), check=False,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                pending.discard(i)
                log('%s (%s) up after %.0fs' % (vm_name(i), vm_addr(i), time.time() - t0))
        if pending:
            time.sleep(3)
    inv = write_inventory(n, key)
    with open(os.path.join(RUN_DIR, 'state.json'), 'w') as f:
        json.dump({'n': n, 'image': img, 'key': key, 'inventory': inv,
                   'up_seconds': round(time.time() - t0)}, f)
    log('inventory: %s' % inv)
    return inv


def write_inventory(n, key):
    lines = ['---',
             '# Written by tests/vm/vmlab.py up: real VMs reached over SSH from the',
             '# network namespace %s. Run: ip netns exec %s ansible-playbook -i THIS ...' % (NETNS, NETNS),
             'all:', '  vars:',
             '    ansible_connection: ssh', '    ansible_user: root',
             '    ansible_python_interpreter: /usr/bin/python3',
             '    ansible_ssh_private_key_file: %s' % key,
             '    ansible_ssh_common_args: "%s"' % ' '.join(SSH_OPTS),
             # one SSH connection per VM for the whole run (a handshake with a TCG
             # guest costs about a second); the masters' sockets are in RUN_DIR and
             # "down" stops them. ansible_ssh_args replaces Ansible's default (-C ...).
             '    ansible_ssh_args: "-o ControlMaster=auto -o ControlPersist=120s '
             '-o ControlPath=%s/cp-%%C"' % RUN_DIR,
             '  children:', '    course:', '      hosts:']
    for i in range(1, n + 1):
        lines += ['        %s:' % vm_name(i),
                  '          ansible_host: %s' % vm_addr(i),
                  '          nodocker_underlay_address: %s/24' % vm_addr(i),
                  '          nodocker_underlay_gateway: %s' % GATEWAY]
    path = os.path.join(RUN_DIR, 'inventory.yml')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def _ssh_masters():
    """PIDs of the SSH control masters of the inventory (ControlPath in RUN_DIR)."""
    pids = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            cmdline = open('/proc/%s/cmdline' % d, 'rb').read().decode(errors='replace')
            comm = open('/proc/%s/comm' % d).read().strip()
        except OSError:
            continue
        if comm == 'ssh' and RUN_DIR + '/cp-' in cmdline:
            pids.append(int(d))
    return pids


def down():
    for pid in _ssh_masters():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    pids = _qemu_pids()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 15
    for pid in pids:
        while os.path.exists('/proc/%d' % pid) and time.time() < deadline:
            time.sleep(0.2)
        if os.path.exists('/proc/%d' % pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in pids:  # qemu closes the taps on exit; wait for it to be gone
        while os.path.exists('/proc/%d' % pid) and time.time() < deadline + 10:
            time.sleep(0.2)
    if netns_exists():
        out = netns_exec(['ip', '-o', 'link', 'show'], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name = line.split(':')[1].strip().split('@')[0]
            if name.startswith('ndlvtap') or name == BRIDGE:
                netns_exec(['ip', 'link', 'del', name], check=False)
        run(['ip', 'netns', 'delete', NETNS])
    for d in (RUN_DIR, STATE_DIR):
        shutil.rmtree(d, ignore_errors=True)
    log('down: %d qemu process(es) stopped, %s deleted' % (len(pids), NETNS))


def status():
    st = {'image': image_dir(), 'image_ready': image_ready(), 'netns': netns_exists(),
          'qemu_pids': _qemu_pids(), 'run_dir': os.path.exists(RUN_DIR)}
    print(json.dumps(st, indent=2))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    b = sub.add_parser('build-image')
    b.add_argument('--force', action='store_true')
    sub.add_parser('key')
    sub.add_parser('_build').add_argument('dir')
    u = sub.add_parser('up')
    u.add_argument('n', type=int, nargs='?', default=2)
    u.add_argument('--memory', type=int, default=1024)
    u.add_argument('--smp', type=int, default=1)
    u.add_argument('--timeout', type=int, default=600)
    sub.add_parser('down')
    sub.add_parser('status')
    e = sub.add_parser('exec')
    e.add_argument('argv', nargs=argparse.REMAINDER)
    s = sub.add_parser('ssh')
    s.add_argument('i', type=int)
    s.add_argument('argv', nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    if a.cmd == 'build-image':
        print(build_image(force=a.force))
    elif a.cmd == '_build':
        _build_inner(a.dir)
    elif a.cmd == 'key':
        print(recipe_key())
    elif a.cmd == 'up':
        try:
            print(up(a.n, memory=a.memory, smp=a.smp, timeout=a.timeout))
        except AlreadyUp as e:
            log(str(e))
            return 1
        except BaseException as e:
            log('up failed (%s); tearing down' % e)
            down()
            return 1
    elif a.cmd == 'down':
        down()
    elif a.cmd == 'status':
        status()
    elif a.cmd == 'exec':
        argv = a.argv[1:] if a.argv[:1] == ['--'] else a.argv
        os.execvp('ip', ['ip', 'netns', 'exec', NETNS] + argv)
    elif a.cmd == 'ssh':
        argv = a.argv[1:] if a.argv[:1] == ['--'] else a.argv
        os.execvp('ip', ssh_cmd(a.i, *argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())
