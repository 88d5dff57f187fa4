"""No process outlives the one that started it; Ctrl-C reaches only the process that coordinates.

A pool child or a worker process blocks on a pipe that it holds both ends of, so it never sees
its parent die: after a ``kill -9`` of the parent it would run on, re-parented to init, holding
the port or a pool's resource tracker. :func:`die_with_parent` asks Linux to signal the calling
process when its parent dies (``prctl(PR_SET_PDEATHSIG)``, through ctypes).

Limits: Linux only (elsewhere it does nothing and says so). The signal comes when the *thread*
that started the child ends, not the process: the service only starts children from threads
that outlive them (the serving event loop's thread, which stops its pool before it ends; the
workers' supervisor's main thread). ``prctl`` is set after the child has started, so the
child checks that its parent is still the one that started it, and exits if not.

Ctrl-C sends SIGINT to the whole foreground process group. Pool children ignore it (their
parent drains them), and they are started with SIGINT blocked (:func:`sigint_blocked`) so
that none dies of it in the moment before it can ignore it: the blocked mask survives spawn's
fork and exec, and the child unblocks it only after setting the handler (:func:`ignore_sigint`).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal
import stat
import sys
from collections.abc import Collection, Iterator

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(signum: int, parent_pid: int) -> bool:
    """Have the kernel send ``signum`` to this process when its parent dies.

    Exits at once (status 1) if the parent is already gone, i.e. this process's parent is no
    longer ``parent_pid``. False where the platform cannot do it.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    return True


def ignore_sigint() -> None:
    """Ignore SIGINT from now on, then drop one that arrived while it was blocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread meanwhile: children started here begin with it blocked.

    The process still gets a SIGINT sent to it: another thread (or this one, afterwards)
    takes it.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# --- forked children --------------------------------------------------------------------------------


def os_threads() -> int:
    """Threads of this process as the kernel counts them (native ones included; 0 if unknown)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def start_context(
    start_method: str,
) -> multiprocessing.context.ForkContext | multiprocessing.context.SpawnContext:
    """The multiprocessing context children start with: ``fork`` when asked and this process
    has exactly one thread (forking a process that runs threads can deadlock the child), else
    ``spawn``."""
    if start_method == "fork" and os_threads() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def close_inherited_sockets(keep: Collection[int] = ()) -> int:
    """In a forked child: close every socket it inherited but ``keep``; how many were closed.

    A forked worker or pool child would otherwise hold its parent's listening socket (the port
    stays bound, and connections wait in a backlog nobody accepts, after the parent closed it)
    and its siblings' channels. Pipes, which multiprocessing's queues use, are left alone.
    """
    closed = 0
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    for fd in fds:
        if fd in keep or fd < 3:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
                closed += 1
        except OSError:
            continue
    return closed
