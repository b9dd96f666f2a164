# -*- coding: utf-8 -*-
# Copyright: nodocker.lab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container start and exec paths, run from the caller's own process.

The caller (the ``container`` module, or any Python using ``_runtime``) is
already an interpreter with ``ctypes`` loaded, so nothing here starts a new
one on the timed path: every process of the container is an ``os.fork()`` of
the caller, and each kernel step below is a small named function (the way
runc's libcontainer or rubber-docker read).

``spawn(cfg, log_path)`` -- process tree::

    caller  (waits for the report pipe's end-of-file, then returns)
      |  moves the monitor into the container's cgroup right after the fork
      '- monitor: setsid; stdin /dev/null, stdout+stderr to the log, every
         |  other file descriptor closed (detach); subreaper; unshare(pid) for
         |  its children; forks PID 1; then moves PID 1 into the cgroup too and
         |  sends the token 'c' (a v1 cgroup migration waits for an RCU grace
         |  period: so it passes while the monitor and PID 1 work)
         '- PID 1: setns(net) / unshare(mnt, uts, ipc, [net]), the root mounted
            |  (overlay or bind), /proc, read-only /sys, minimal /dev, hostname,
            |  pivot_root, old root detached; waits for 'c'; [unshare(cgroup)];
            |  then either the init (forks the workload, forwards signals, reaps
            |  orphans) or the workload itself
            '- workload: bounding set reduced, no_new_privs, user, env, cwd, execve

With ``userns`` the PID namespace must belong to the container's user
namespace, so a setup child sits between the monitor and PID 1: it enters the
user namespace (the monitor writes its uid/gid maps), unshares the others
(pid included), is moved into the cgroup, and forks PID 1 after 'c'.

Everything reports through the pipe as lines ``pid N`` / ``error TEXT``; the
pipe reaches end-of-file when the workload has exec'd (close-on-exec), so the
caller knows the container really started.

The monitor waits for PID 1 (re-parented to it as a subreaper when a setup
child sits between them) and writes its exit status to ``exit_file``.

The monitor is a fork of the caller, or (``spawn(helper=...)``, what the
module does) a fresh ``python -I -S`` running this file, which imports only
built-in or small modules (``_signal``, not ``signal``: no ``enum``; no
``json``; ``marshal`` for the configuration). A fork is fastest; but the
container's monitor and init then keep the caller's heap for the container's
life, which a big caller that exits (the module process) should not leave.

``exec_command(cfg, timeout)`` -- join a running container (cgroup, then the
namespaces of its PID 1, user namespace last, its root), fork, exec; collect
stdout, stderr and the exit status.

Every forked child ends with ``os._exit``: none ever returns into the caller's
code, runs its ``atexit`` handlers or flushes its buffers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import fcntl
import gc
import marshal
import os
import select
import time
# the built-in half of `signal` (same functions and numbers): `signal` itself
# imports enum, which a fresh helper interpreter would pay for
import _signal as signal

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
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = {'x86_64': 155, 'aarch64': 41, 'armv7l': 218, 'ppc64le': 203,
                  's390x': 217, 'riscv64': 41}
DEVICES = ('null', 'zero', 'full', 'random', 'urandom', 'tty')
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)
# the interpreter ignores these; a workload must get the defaults back
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
CAP_KILL = 5
LINUX_CAPABILITY_VERSION_3 = 0x20080522
REPORT_FD = 3          # the report pipe's number in every forked child
REPORT_TIMEOUT = 30.0

libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise SetupError('%s: %s' % (what, os.strerror(e)))


# ------------------------------------------------------------ kernel steps

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


def set_name(text):
    """The process name ps shows (comm, 15 bytes): a fork keeps the caller's otherwise."""
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(text.encode()[:15]), 0, 0, 0)


def report(fd, line):
    try:
        os.write(fd, (line.replace('\n', ' ') + '\n').encode())
    except OSError:
        pass


def write_text(path, text):
    with open(path, 'w') as f:
        f.write(text)


# ------------------------------------------------------------ forked children

def detach(stdin, stdout, stderr, report_fd):
    """In a fresh fork: the given fds as 0, 1, 2 and REPORT_FD, every other fd closed.

    A fork inherits all the caller's descriptors (an Ansible module's pipes to
    its controller among them): a monitor holding one would keep it open for
    the container's whole life.
    """
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (stdin, stdout, stderr, report_fd)]
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(REPORT_FD + 1, os.sysconf('SC_OPEN_MAX'))
    # the caller's handlers are Python functions of the caller: not ours
    for s in FORWARDED_SIGNALS + (signal.SIGCHLD, signal.SIGALRM):
        signal.signal(s, signal.SIG_DFL)
    # collecting would touch (and copy) every object of the caller's heap
    gc.disable()
    # give back the caller's free heap pages: the container's long-lived
    # processes would otherwise keep them resident (glibc only)
    trim = getattr(libc, 'malloc_trim', None)
    if trim is not None:
        trim(0)


def run_and_exit(fn, cfg, rfd):
    """Run fn(cfg, rfd) in a forked child; never return into the caller's code."""
    code = 1
    try:
        code = fn(cfg, rfd)
    except BaseException as e:  # noqa: BLE001 pylint: disable=broad-except
        report(rfd, 'error %s' % e)
    finally:
        os._exit(code if isinstance(code, int) else 1)


def child_main(fn, cfg, fds):
    """In a fresh fork: detach(*fds), then run_and_exit(fn, cfg, REPORT_FD)."""
    try:
        detach(*fds)
    except BaseException as e:  # noqa: BLE001 pylint: disable=broad-except
        report(fds[3], 'error %s' % e)
        os._exit(1)
    run_and_exit(fn, cfg, REPORT_FD)


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

_LAST_CAP = []
_BOUNDED = []  # the keep set this process's bounding set was reduced to (forks inherit it)


def last_cap():
    """The highest capability number this kernel knows (read once per process tree)."""
    if not _LAST_CAP:
        with open('/proc/sys/kernel/cap_last_cap') as f:
            _LAST_CAP.append(int(f.read()))
    return _LAST_CAP[0]


def drop_bounding_set(keep):
    """Every capability not in keep out of the bounding set (what a later
    execve can ever grant).

    The workload, a fork of the init that already did it, skips the work. A
    drop refused (dropping needs CAP_SETPCAP, which keep may not hold) is
    fine when the capability is gone already."""
    keep = frozenset(keep or ())
    if _BOUNDED and _BOUNDED[0] == keep:
        return
    for cap in range(last_cap() + 1):
        if cap not in keep and libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if libc.prctl(PR_CAPBSET_READ, ctypes.c_ulong(cap), 0, 0, 0) != 0:
                raise SetupError('prctl(PR_CAPBSET_DROP, %d): %s' % (cap, os.strerror(err)))
    _BOUNDED[:] = [keep]


def limit_capabilities(caps):
    """Permitted and effective sets down to caps, inheritable empty (capset(2)).

    Unlike the bounding set, this takes capabilities away from this very
    process, not only from what it may exec."""
    mask = 0
    for cap in caps:
        mask |= 1 << cap
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    # two (effective, permitted, inheritable) triples: capabilities 0-31, 32-63
    data = (ctypes.c_uint32 * 6)(mask & 0xffffffff, mask & 0xffffffff, 0,
                                 mask >> 32, mask >> 32, 0)
    _check(libc.capset(header, data), 'capset')


def drop_privileges(cfg):
    drop_bounding_set(cfg.get('caps_keep'))
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    os.setgroups(cfg.get('groups') or [])
    os.setresgid(cfg['gid'], cfg['gid'], cfg['gid'])
    os.setresuid(cfg['uid'], cfg['uid'], cfg['uid'])


def execvpe(argv, env):
    """execve argv[0], searched in env's PATH as execvp(3) does.

    Not os.execvpe: it imports `warnings` on first use, and after pivot_root the
    host's library directory is out of reach.
    """
    name = argv[0]
    if '/' in name:
        os.execve(name, argv, env)
    saved = last = None
    for d in env.get('PATH', os.defpath).split(':'):
        try:
            os.execve((d or '.') + '/' + name, argv, env)
        except (FileNotFoundError, NotADirectoryError) as e:
            last = e
        except OSError as e:
            last = e
            saved = saved or e
    raise saved or last or FileNotFoundError(name)


def exec_workload(cfg, rfd):
    """Never returns: exec the command, or report why not and exit 127."""
    try:
        drop_privileges(cfg)
        try:
            os.chdir(cfg.get('cwd') or '/')
        except OSError as e:
            raise SetupError('working directory %s: %s' % (cfg.get('cwd'), e.strerror))
        for s in RESTORED_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.set_inheritable(rfd, False)  # close-on-exec: EOF tells the caller exec worked
        execvpe(cfg['command'], cfg['env'])
    except FileNotFoundError:
        report(rfd, 'error command not found in the container: %s (PATH=%s)'
               % (cfg['command'][0], cfg['env'].get('PATH', '')))
    except PermissionError as e:
        report(rfd, 'error cannot execute %s: %s' % (cfg['command'][0], e.strerror))
    except Exception as e:  # noqa: BLE001 pylint: disable=broad-except
        report(rfd, 'error %s' % e)
    os._exit(127)


def exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def wait_and_record(p1, exit_file, started):
    """Reap every child; write PID 1's end to exit_file (JSON, atomically;
    formatted by hand: a helper interpreter does not import json)."""
    result = None
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid == p1:
            result = status
    fields = ['"pid": %d' % p1, '"started_at": %r' % started,
              '"finished_at": %r' % time.time()]
    if result is not None:
        fields.append('"exit_code": %d' % exit_code(result))
        if os.WIFSIGNALED(result):
            fields.append('"signal": %d' % os.WTERMSIG(result))
    tmp = exit_file + '.tmp'
    with open(tmp, 'w') as f:
        f.write('{%s}' % ', '.join(fields))
    os.rename(tmp, exit_file)


def run_init(cfg, rfd):
    """PID 1: start the workload, forward signals to it, reap every orphan.

    The init runs no program and needs no privilege but CAP_KILL (to signal
    a workload that runs as another user): its bounding set is the
    workload's (pid1() dropped it), no_new_privs is set, and once the
    workload is forked it keeps only CAP_KILL.

    The forwarding handlers are in place before the caller learns that the
    container started (the report pipe's end): a namespace's init ignores a
    signal it has no handler for, so an early `stop` would otherwise be lost
    and end in SIGKILL. The signals stay blocked until the workload's PID is
    known, then any that came meanwhile are forwarded.
    """
    workload = []

    def forward(signum, _frame):
        try:
            os.kill(workload[0], signum)
        except (IndexError, OSError):
            pass
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    for s in FORWARDED_SIGNALS:
        signal.signal(s, forward)
    child = os.fork()
    if child == 0:
        for s in FORWARDED_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        exec_workload(cfg, rfd)  # unblocks every signal right before execve
    workload.append(child)
    try:
        limit_capabilities([CAP_KILL])
    except SetupError as e:
        report(rfd, 'error the init: %s' % e)
        os.kill(child, signal.SIGKILL)
    os.close(rfd)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            # the kernel kills whatever is left in the PID namespace when we go
            os._exit(exit_code(status))


def join_or_new_netns(cfg):
    """Join the container's named network namespace, if it has one.

    Returns the unshare flag still needed: CLONE_NEWNET when the container
    gets a new network namespace of its own, 0 when it joined one."""
    if cfg.get('netns'):
        setns(cfg['netns'], CLONE_NEWNET)
        return 0
    return CLONE_NEWNET


def enter_new_namespaces(cfg):
    """PID 1 forked by the monitor (no user namespace): net (joined or new),
    mount, UTS and IPC namespaces of its own, and the root mounted."""
    unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | join_or_new_netns(cfg))
    mount_root(cfg)


def pid1(cfg, rfd, cgroup_token=None):
    """PID 1 of the container. With cgroup_token it was forked by the monitor
    right away and makes its own namespaces while the monitor moves it into
    the cgroup; nothing of the workload starts before the token 'c'."""
    set_name('ndl-init')
    try:
        if cgroup_token is not None:
            enter_new_namespaces(cfg)
        root = cfg['root']
        mount_proc(root)
        mount_sys_readonly(root)
        mount_minimal_dev(root)
        sethostname(cfg['hostname'])
        enter_root(root)
        if cgroup_token is not None:
            await_token(cgroup_token, b'c', 'the monitor could not join the cgroup')
            os.close(cgroup_token)
        if cfg.get('cgroupns'):
            # only now: the container's cgroup becomes the namespace's root
            unshare(CLONE_NEWCGROUP)
        if cfg.get('init', True):
            # the init keeps no more than its workload may ever have
            drop_bounding_set(cfg.get('caps_keep'))
            prctl(PR_SET_NO_NEW_PRIVS, 1)
    except Exception as e:  # noqa: BLE001 pylint: disable=broad-except
        report(rfd, 'error %s' % e)
        os._exit(126)
    if cfg.get('init', True):
        run_init(cfg, rfd)
    exec_workload(cfg, rfd)


# ------------------------------------------------------------ start

def setup_child(cfg, rfd, to_monitor, from_monitor, pid_w):
    """With a user namespace: namespaces and root; forks PID 1 and exits.

    The PID namespace must belong to the container's user namespace (PID 1
    mounts /proc in it), so it is made here, after the user namespace, and
    PID 1 is this process's child.
    """
    try:
        flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | join_or_new_netns(cfg)
        # mount the root as the real root first; then the user namespace,
        # whose maps the monitor (still in the host's user namespace) writes
        unshare(CLONE_NEWNS)
        mount_root(cfg)
        unshare(CLONE_NEWUSER)
        os.write(to_monitor, b'u')
        await_token(from_monitor, b'm', 'uid/gid maps were not written')
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        unshare(flags)
        # mounts inherited from a more privileged namespace are locked and
        # pivot_root refuses a locked new root: bind it once more from here
        mount(cfg['root'], cfg['root'], None, MS_BIND | MS_REC)
        # PID 1 and everything below it must start in the container's cgroup
        await_token(from_monitor, b'c', 'the monitor could not join the cgroup')
        os.close(to_monitor)
        os.close(from_monitor)
        p1 = os.fork()
        if p1 == 0:
            os.close(pid_w)
            pid1(cfg, rfd)
        report(rfd, 'pid %d' % p1)
        os.write(pid_w, b'%d\n' % p1)
        os._exit(0)
    except Exception as e:  # noqa: BLE001 pylint: disable=broad-except
        report(rfd, 'error %s' % e)
        os._exit(1)


def write_id_maps(pid, cfg):
    try:
        write_text('/proc/%d/uid_map' % pid, cfg['uid_map'])
        write_text('/proc/%d/gid_map' % pid, cfg['gid_map'])
    except OSError as e:
        raise SetupError('the host cannot grant uid/gid map %r / %r: %s'
                         % (cfg['uid_map'], cfg['gid_map'], e.strerror))


def join_cgroups(procs_files, pids):
    """Move pids into the cgroup (one cgroup.procs per v1 hierarchy)."""
    for procs in procs_files or ():
        for pid in pids:
            write_text(procs, str(pid))


def await_token(fd, token, what):
    if os.read(fd, 1) != token:
        raise SetupError(what)


def start_pid1(cfg, rfd):
    """Without a user namespace: PID 1 is forked by the monitor itself.

    unshare(CLONE_NEWPID) applies to the monitor's children only, so the next
    fork is PID 1 of a new PID namespace; PID 1 makes its other namespaces
    itself while this process moves it into the cgroup (the caller moved the
    monitor): a cgroup migration waits for an RCU grace period (milliseconds
    on a busy host), which so overlaps the work instead of preceding it.
    """
    unshare(CLONE_NEWPID)
    token_r, token_w = os.pipe()
    p1 = os.fork()
    if p1 == 0:
        os.close(token_w)
        pid1(cfg, rfd, token_r)
    os.close(token_r)
    report(rfd, 'pid %d' % p1)
    try:
        join_cgroups(cfg.get('cgroup_procs'), (p1,))
        os.write(token_w, b'c')
    except OSError as e:
        report(rfd, 'error joining cgroup: %s' % e)
        os.kill(p1, signal.SIGKILL)
    os.close(token_w)
    return p1


def start_pid1_in_user_namespace(cfg, rfd):
    """With a user namespace: a setup child (see setup_child) forks PID 1."""
    to_monitor_r, to_monitor_w = os.pipe()
    from_monitor_r, from_monitor_w = os.pipe()
    pid_r, pid_w = os.pipe()
    child = os.fork()
    if child == 0:
        for fd in (to_monitor_r, from_monitor_w, pid_r):
            os.close(fd)
        setup_child(cfg, rfd, to_monitor_w, from_monitor_r, pid_w)
    for fd in (pid_w, to_monitor_w, from_monitor_r):
        os.close(fd)
    ok = os.read(to_monitor_r, 1) == b'u'  # else the setup child failed (and says why)
    if ok:
        try:
            write_id_maps(child, cfg)
            os.write(from_monitor_w, b'm')
        except SetupError as e:
            report(rfd, 'error %s' % e)
            os.kill(child, signal.SIGKILL)
            ok = False
    # the setup child joins the cgroup while it makes its namespaces (see
    # start_pid1); it forks PID 1 only after the token 'c'
    try:
        if ok:
            join_cgroups(cfg.get('cgroup_procs'), (child,))
            os.write(from_monitor_w, b'c')
    except OSError as e:
        report(rfd, 'error joining cgroup: %s' % e)
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    text = os.read(pid_r, 64).decode().strip()
    for fd in (pid_r, to_monitor_r, from_monitor_w):
        os.close(fd)
    return int(text) if text else None


def monitor(cfg, rfd):
    """The monitor: PID 1 started (see above), then wait for it and record its end."""
    set_name('ndl-monitor')
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    if cfg.get('userns'):
        p1 = start_pid1_in_user_namespace(cfg, rfd)
    else:
        p1 = start_pid1(cfg, rfd)
    os.close(rfd)
    if p1 is None:
        return 1
    wait_and_record(p1, cfg['exit_file'], time.time())
    return 0


def detached_monitor(cfg, rfd):
    """The monitor's start: a session of its own (no terminal's signals), cwd /."""
    os.setsid()
    os.chdir('/')
    return monitor(cfg, rfd)


_MONITORS = set()  # monitors this process forked and has not reaped yet


def reap_monitors():
    """Reap the monitors this process forked that have ended.

    A monitor is this process's child (one fork less on the start path than a
    double fork); a module process exits and leaves them to init, a
    long-lived caller reaps them here (spawn() and the runtime's stop call it).
    """
    for pid in list(_MONITORS):
        try:
            done = os.waitpid(pid, os.WNOHANG)[0]
        except ChildProcessError:
            done = pid
        if done:
            _MONITORS.discard(pid)


def read_lines(fd, timeout):
    """Everything written to fd until end-of-file, or SetupError after timeout."""
    out, deadline = b'', time.time() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.time()
        if left <= 0 or not poller.poll(left * 1000):
            raise SetupError('the container did not report within %ss' % timeout)
        chunk = os.read(fd, 4096)
        if not chunk:
            return out.decode(errors='replace').splitlines()
        out += chunk


def _high(fd):
    """A close-on-exec copy of fd numbered 10 or more (file actions target 0-3)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


def spawn_helper(cfg, helper, log_fd, wfd):
    """The monitor as a fresh minimal interpreter running this file (helper_main).

    posix_spawn (vfork: nothing of the caller is copied); the configuration
    goes through a pipe on its stdin, marshalled (no json import there).
    """
    cfg_r, cfg_w = os.pipe()
    fds = [_high(fd) for fd in (cfg_r, log_fd, wfd)]
    try:
        pid = os.posix_spawn(
            cfg['python'], [cfg['python'], '-I', '-S', helper, 'monitor', str(REPORT_FD)],
            os.environ, setsid=True,
            file_actions=[(os.POSIX_SPAWN_DUP2, fds[0], 0), (os.POSIX_SPAWN_DUP2, fds[1], 1),
                          (os.POSIX_SPAWN_DUP2, fds[1], 2), (os.POSIX_SPAWN_DUP2, fds[2], 3)])
    finally:
        for fd in fds + [cfg_r]:
            os.close(fd)
    try:
        os.write(cfg_w, marshal.dumps(cfg))
    except OSError:
        pass  # it died at once: the report pipe tells
    os.close(cfg_w)
    return pid


def helper_main(argv):
    """``python -I -S _runtime_start.py monitor FD``: see spawn_helper()."""
    if len(argv) != 3 or argv[1] != 'monitor':
        os.write(2, b'usage: python -I -S _runtime_start.py monitor REPORT_FD\n')
        return 2
    data = b''
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
    os.chdir('/')
    child_main(monitor, marshal.loads(data),
               (os.open(os.devnull, os.O_RDONLY), 1, 2, int(argv[2])))
    return 1


def spawn(cfg, log_path=None, timeout=REPORT_TIMEOUT, helper=None):
    """Start the container detached (see the module docstring).

    The monitor is a fork of this process, or with ``helper`` (the path of
    this file's source) a fresh ``python -I -S`` running it: slower to start
    by an interpreter's start-up, but the container's long-lived processes
    then hold a small interpreter, not a copy of this process's memory.

    -> {'monitor': PID or None, 'pid': PID 1 (host view) or None, 'errors': [text]}.
    """
    reap_monitors()
    log_fd = os.open(log_path or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rfd, wfd = os.pipe()
    try:
        if helper:
            pid = spawn_helper(cfg, helper, log_fd, wfd)
        else:
            pid = os.fork()
            if pid == 0:
                child_main(detached_monitor, cfg,
                           (os.open(os.devnull, os.O_RDONLY), log_fd, log_fd, wfd))
        _MONITORS.add(pid)
    finally:
        os.close(wfd)
        os.close(log_fd)
    errors = []
    try:
        # the monitor into the cgroup, from here, at once: the migration's RCU
        # grace period passes while the monitor starts; its own moves of PID 1
        # (or the setup child) later find the grace period over
        join_cgroups(cfg.get('cgroup_procs'), (pid,))
    except OSError as e:
        errors.append('joining cgroup: %s' % e)
    try:
        try:
            lines = read_lines(rfd, timeout)
        except SetupError as e:
            lines = []
            errors.append(str(e))
    finally:
        os.close(rfd)
    out = {'monitor': pid, 'pid': None, 'errors': errors}
    for ln in lines:
        word, _sep, rest = ln.partition(' ')
        if word == 'error':
            out['errors'].append(rest)
        elif word == 'pid' and out['pid'] is None and rest.isdigit():
            out['pid'] = int(rest)
    return out


# ------------------------------------------------------------ exec

def enter_container(cfg):
    """This process into the container of PID cfg['pid']: cgroup, namespaces, root."""
    pid = cfg['pid']
    join_cgroups(cfg.get('cgroup_procs'), (os.getpid(),))
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


def do_exec(cfg, rfd):
    """In the forked exec child: enter, fork the command, wait; -> its exit code."""
    set_name('ndl-exec')
    try:
        enter_container(cfg)
    except (OSError, SetupError) as e:
        report(rfd, 'error entering the container: %s' % e)
        return 125
    child = os.fork()  # the PID namespace applies to children only
    if child == 0:
        exec_workload(cfg, rfd)
    report(rfd, 'pid %d' % child)
    os.close(rfd)
    for s in FORWARDED_SIGNALS:
        signal.signal(s, lambda n, _f: os.kill(child, n))
    _pid, status = os.waitpid(child, 0)
    return exit_code(status)


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def exec_command(cfg, timeout=None):
    """Run cfg['command'] in a running container.

    -> {'rc', 'stdout' (bytes), 'stderr' (bytes), 'errors': [text], 'timed_out'}.
    On timeout the command and its exec child are killed.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    try:
        child = os.fork()
        if child == 0:
            child_main(do_exec, cfg, (os.open(os.devnull, os.O_RDONLY), out_w, err_w, rep_w))
    finally:
        for fd in (out_w, err_w, rep_w):
            os.close(fd)
    bufs = {out_r: [], err_r: [], rep_r: []}
    poller = select.poll()
    for fd in bufs:
        poller.register(fd, select.POLLIN)
    left_open = len(bufs)
    deadline = None if timeout is None else time.time() + timeout
    timed_out = False
    try:
        while left_open:
            wait_ms = None
            if deadline is not None:
                wait_ms = (deadline - time.time()) * 1000
                if wait_ms <= 0:
                    timed_out = True
                    break
            for fd, _ev in poller.poll(wait_ms):
                chunk = os.read(fd, 65536)
                if chunk:
                    bufs[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    left_open -= 1
        report_lines = b''.join(bufs[rep_r]).decode(errors='replace').splitlines()
        if timed_out:
            for ln in report_lines:
                if ln.startswith('pid ') and ln[4:].isdigit():
                    _kill(int(ln[4:]))
            _kill(child)
        _pid, status = os.waitpid(child, 0)
    finally:
        for fd in bufs:
            os.close(fd)
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return {'rc': rc, 'stdout': b''.join(bufs[out_r]),
            'stderr': b''.join(bufs[err_r]), 'timed_out': timed_out,
            'errors': [ln[6:] for ln in report_lines if ln.startswith('error ')]}


if __name__ == '__main__':
    import sys
    raise SystemExit(helper_main(sys.argv))
