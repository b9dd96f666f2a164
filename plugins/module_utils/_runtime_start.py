# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container start path: a lean script run as ``python -S THIS MODE CONFIG FD``.

It imports only the standard library's smallest modules (no Ansible, no
pyroute2), because it is timed against runc and crun. ``_runtime.py`` writes
this file's source to ``/run/nodocker-lab/runtime/`` and runs it with a real
interpreter path (never a pyenv shim).

``start`` -- process tree::

    monitor (this script; subreaper; in the container's cgroup)
      '- setup child: setns(net) / unshare(mnt, uts, ipc, pid, [net], [user], [cgroup]),
         mounts the root (overlay or bind), forks PID 1, reports its PID, exits
           '- PID 1: /proc, read-only /sys, minimal /dev, hostname, pivot_root,
              old root detached; then either the init (forks the workload,
              forwards signals, reaps orphans) or the workload itself.
              '- workload: bounding set reduced, no_new_privs, user, env, cwd, exec

The monitor waits for PID 1 (re-parented to it as a subreaper) and writes the
exit status to ``exit_file``. Everything reports through the pipe FD as lines
``pid N`` / ``error TEXT``; the pipe reaches end-of-file when the workload has
exec'd (close-on-exec), so the caller knows the container really started.

``exec`` -- join a running container (cgroup, then namespaces of its PID 1,
user namespace last, its root), fork, exec; exit with the command's status.
"""

import ctypes
import json
import os
import signal
import sys
import time
# os.execvpe imports `warnings` lazily; after pivot_root the host's library
# directory is out of reach, so import it now
import warnings  # noqa: F401 pylint: disable=unused-import

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = {'x86_64': 155, 'aarch64': 41, 'armv7l': 218, 'ppc64le': 203,
                  's390x': 217, 'riscv64': 41}
DEVICES = ('null', 'zero', 'full', 'random', 'urandom', 'tty')
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)

libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise SetupError('%s: %s' % (what, os.strerror(e)))


def unshare(flags):
    _check(libc.unshare(ctypes.c_int(flags)), 'unshare(0x%x)' % flags)


def setns(path, nstype=0):
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(libc.setns(fd, nstype), 'setns(%s)' % path)
    finally:
        os.close(fd)


def mount(source, target, fstype, flags=0, data=None):
    _check(libc.mount(source and source.encode(), target.encode(),
                      fstype and fstype.encode(), ctypes.c_ulong(flags),
                      data and data.encode()),
           'mount %s on %s (%s)' % (source, target, fstype or 'bind'))


def umount2(target, flags):
    _check(libc.umount2(target.encode(), flags), 'umount %s' % target)


def pivot_root(new_root, put_old):
    nr = SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise SetupError('pivot_root: unknown syscall number on %s' % os.uname().machine)
    _check(libc.syscall(nr, new_root.encode(), put_old.encode()), 'pivot_root')


def prctl(option, arg):
    _check(libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), 'prctl(%d)' % option)


def sethostname(name):
    b = name.encode()
    _check(libc.sethostname(b, len(b)), 'sethostname %s' % name)


def report(fd, line):
    try:
        os.write(fd, (line.replace('\n', ' ') + '\n').encode())
    except OSError:
        pass


def write_text(path, text):
    with open(path, 'w') as f:
        f.write(text)


# ------------------------------------------------------------ root filesystem

def mount_root(cfg):
    """The container's root as a mount point (pivot_root needs one)."""
    root = cfg['root']
    mount(None, '/', None, MS_REC | MS_PRIVATE)  # nothing leaks back to the host
    if cfg.get('lowerdirs'):
        opts = 'lowerdir=%s,upperdir=%s,workdir=%s' % (
            ':'.join(cfg['lowerdirs']), cfg['upperdir'], cfg['workdir'])
        mount('overlay', root, 'overlay', 0, opts)
    else:
        mount(root, root, None, MS_BIND | MS_REC)


def _mkdir(path, mode=0o755):
    if not os.path.isdir(path):
        os.makedirs(path, mode)


def mount_proc(root):
    _mkdir(root + '/proc')
    mount('proc', root + '/proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC)


def mount_sys_readonly(root):
    _mkdir(root + '/sys')
    try:
        mount('sysfs', root + '/sys', 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SetupError:
        # in a user namespace joined to a netns it does not own, sysfs cannot be
        # mounted fresh: bind the host's and make the bind read-only
        mount('/sys', root + '/sys', None, MS_BIND | MS_REC)
        mount(None, root + '/sys', None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
              | MS_NODEV | MS_NOEXEC)


def mount_minimal_dev(root):
    dev = root + '/dev'
    _mkdir(dev)
    mount('tmpfs', dev, 'tmpfs', MS_NOSUID | MS_STRICTATIME, 'mode=755,size=65536k')
    for name in DEVICES:
        # bind the host's nodes: mknod is not allowed inside a user namespace
        open(dev + '/' + name, 'w').close()
        mount('/dev/' + name, dev + '/' + name, None, MS_BIND)
    _mkdir(dev + '/pts')
    mount('devpts', dev + '/pts', 'devpts', MS_NOSUID | MS_NOEXEC,
          'newinstance,ptmxmode=0666,mode=0620')
    os.symlink('pts/ptmx', dev + '/ptmx')
    _mkdir(dev + '/shm', 0o1777)
    mount('shm', dev + '/shm', 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=1777,size=65536k')
    for link, target in (('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'),
                         ('stdout', '/proc/self/fd/1'), ('stderr', '/proc/self/fd/2')):
        os.symlink(target, dev + '/' + link)


def enter_root(root):
    """pivot_root into root and detach the old root (no put_old directory needed)."""
    os.chdir(root)
    pivot_root('.', '.')
    umount2('.', MNT_DETACH)
    os.chdir('/')


# ------------------------------------------------------------ the workload

def drop_privileges(cfg):
    last = int(open('/proc/sys/kernel/cap_last_cap').read())
    keep = set(cfg.get('caps_keep') or ())
    for cap in range(last + 1):
        if cap not in keep:
            prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    os.setgroups(cfg.get('groups') or [])
    os.setresgid(cfg['gid'], cfg['gid'], cfg['gid'])
    os.setresuid(cfg['uid'], cfg['uid'], cfg['uid'])


def exec_workload(cfg, rfd):
    """Never returns: exec the command, or report why not and exit 127."""
    try:
        drop_privileges(cfg)
        try:
            os.chdir(cfg.get('cwd') or '/')
        except OSError as e:
            raise SetupError('working directory %s: %s' % (cfg.get('cwd'), e.strerror))
        os.set_inheritable(rfd, False)  # close-on-exec: EOF tells the caller exec worked
        cmd = cfg['command']
        os.execvpe(cmd[0], cmd, cfg['env'])
    except FileNotFoundError:
        report(rfd, 'error command not found in the container: %s (PATH=%s)'
               % (cfg['command'][0], cfg['env'].get('PATH', '')))
    except PermissionError as e:
        report(rfd, 'error cannot execute %s: %s' % (cfg['command'][0], e.strerror))
    except Exception as e:  # noqa: BLE001 - the message is the report
        report(rfd, 'error %s' % e)
    os._exit(127)


def exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_init(cfg, rfd):
    """PID 1: start the workload, forward signals to it, reap every orphan."""
    child = os.fork()
    if child == 0:
        for s in FORWARDED_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        exec_workload(cfg, rfd)
    os.close(rfd)

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except OSError:
            pass
    for s in FORWARDED_SIGNALS:
        signal.signal(s, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            # the kernel kills whatever is left in the PID namespace when we go
            os._exit(exit_code(status))


def pid1(cfg, rfd):
    try:
        root = cfg['root']
        mount_proc(root)
        mount_sys_readonly(root)
        mount_minimal_dev(root)
        sethostname(cfg['hostname'])
        enter_root(root)
    except Exception as e:  # noqa: BLE001
        report(rfd, 'error %s' % e)
        os._exit(126)
    if cfg.get('init', True):
        run_init(cfg, rfd)
    exec_workload(cfg, rfd)


# ------------------------------------------------------------ start

def setup_child(cfg, rfd, to_monitor, from_monitor, pid_w):
    """Namespaces and root; forks PID 1 and exits."""
    try:
        flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
        if cfg.get('netns'):
            setns(cfg['netns'], CLONE_NEWNET)
        else:
            flags |= CLONE_NEWNET
        if cfg.get('cgroupns'):
            flags |= CLONE_NEWCGROUP
        if cfg.get('userns'):
            # mount the root as the real root first; then the user namespace,
            # whose maps the monitor (still in the host's user namespace) writes
            unshare(CLONE_NEWNS)
            mount_root(cfg)
            unshare(CLONE_NEWUSER)
            os.write(to_monitor, b'u')
            if os.read(from_monitor, 1) != b'm':
                raise SetupError('uid/gid maps were not written')
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            unshare(flags)
            # mounts inherited from a more privileged namespace are locked and
            # pivot_root refuses a locked new root: bind it once more from here
            mount(cfg['root'], cfg['root'], None, MS_BIND | MS_REC)
        else:
            unshare(flags)
            mount_root(cfg)
        p1 = os.fork()
        if p1 == 0:
            pid1(cfg, rfd)
        report(rfd, 'pid %d' % p1)
        os.write(pid_w, b'%d\n' % p1)
        os._exit(0)
    except Exception as e:  # noqa: BLE001
        report(rfd, 'error %s' % e)
        os._exit(1)


def write_id_maps(pid, cfg):
    try:
        write_text('/proc/%d/uid_map' % pid, cfg['uid_map'])
        write_text('/proc/%d/gid_map' % pid, cfg['gid_map'])
    except OSError as e:
        raise SetupError('the host cannot grant uid/gid map %r / %r: %s'
                         % (cfg['uid_map'], cfg['gid_map'], e.strerror))


def start(cfg, rfd):
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        for procs in cfg.get('cgroup_procs') or ():
            write_text(procs, str(os.getpid()))
    except OSError as e:
        report(rfd, 'error joining cgroup: %s' % e)
        return 1
    to_monitor_r, to_monitor_w = os.pipe()
    from_monitor_r, from_monitor_w = os.pipe()
    pid_r, pid_w = os.pipe()
    child = os.fork()
    if child == 0:
        setup_child(cfg, rfd, to_monitor_w, from_monitor_r, pid_w)
    os.close(pid_w)
    if cfg.get('userns'):
        if os.read(to_monitor_r, 1) == b'u':
            try:
                write_id_maps(child, cfg)
                os.write(from_monitor_w, b'm')
            except SetupError as e:
                report(rfd, 'error %s' % e)
                os.kill(child, signal.SIGKILL)
    os.close(rfd)
    _pid, status = os.waitpid(child, 0)
    text = os.read(pid_r, 64).decode().strip()
    if not text:
        return 1
    p1 = int(text)
    started = time.time()
    result = None
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid == p1:
            result = status
    record = {'pid': p1, 'finished_at': time.time(), 'started_at': started}
    if result is not None:
        record['exit_code'] = exit_code(result)
        if os.WIFSIGNALED(result):
            record['signal'] = os.WTERMSIG(result)
    tmp = cfg['exit_file'] + '.tmp'
    write_text(tmp, json.dumps(record))
    os.rename(tmp, cfg['exit_file'])
    return 0


# ------------------------------------------------------------ exec

def do_exec(cfg, rfd):
    pid = cfg['pid']
    try:
        for procs in cfg.get('cgroup_procs') or ():
            write_text(procs, str(os.getpid()))
        fds = [(os.open('/proc/%d/ns/%s' % (pid, ns), os.O_RDONLY), ns)
               for ns in cfg['namespaces']]
        root_fd = os.open('/proc/%d/root' % pid, os.O_RDONLY)
        # the user namespace last: entering it drops our host privileges
        for fd, ns in sorted(fds, key=lambda x: x[1] == 'user'):
            _check(libc.setns(fd, 0), 'setns(%s of PID %d)' % (ns, pid))
            os.close(fd)
        os.fchdir(root_fd)
        os.chroot('.')
        os.close(root_fd)
    except (OSError, SetupError) as e:
        report(rfd, 'error entering the container: %s' % e)
        return 125
    child = os.fork()  # the PID namespace applies to children only
    if child == 0:
        exec_workload(cfg, rfd)
    os.close(rfd)
    for s in FORWARDED_SIGNALS:
        signal.signal(s, lambda n, _f: os.kill(child, n))
    _pid, status = os.waitpid(child, 0)
    return exit_code(status)


def main():
    mode, cfg_path, rfd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(cfg_path) as f:
        cfg = json.load(f)
    if mode == 'start':
        return start(cfg, rfd)
    if mode == 'exec':
        return do_exec(cfg, rfd)
    report(rfd, 'error unknown mode %s' % mode)
    return 2


if __name__ == '__main__':
    raise SystemExit(main())
