"""Where a request's compute runs (the four modes), and the bounded queue in front of it.

Every dispatcher runs ``workload.compute(size)`` (or, for a stream, one chunk of it:
``workload.stream.chunk(size, index)``) and reports when the compute started and how long it
took, measured where it ran (the worker thread, or the child process). Timestamps are
``time.monotonic()``: on Linux that is CLOCK_MONOTONIC, one clock for every process on the
machine, so a child's start time can be compared with the parent's arrival time.

:class:`Admission` bounds each pool: at most ``pool_size + queue_limit`` requests may be
running or waiting for it; the next one is refused at once (the app turns that into a 503).
For ``inline`` the "pool" is the event loop itself: a request counts from its arrival at the
endpoint until its compute ends, so requests that wait for the loop count too.

A client that leaves before its compute starts takes its compute with it: each dispatcher
races the queued work against :class:`ClientWatch` (which learns of the disconnect from the
ASGI ``receive``) and cancels what has not started (:class:`ClientGone`), freeing its place.
A compute that has started runs to its end (a thread cannot be interrupted) and keeps its
place meanwhile, so the pool is never oversubscribed; the workloads' size bounds keep that
cost to about 2 s of CPU. ``inline`` lets the loop read its sockets and looks once, just
before computing (a best effort: a disconnect the loop has not read yet goes unseen).
``process`` keeps at most ``pool_size + 1`` calls in the executor (one waiting per pool, as
the executor itself would move onto its call queue, where calls can no longer be cancelled);
the rest wait in the dispatcher, where they can.

``process`` mode survives a dead child (an OOM kill, a ``kill -9``): the pool breaks, every
call in it fails, and the dispatcher replaces it in the background, answering 503 with
Retry-After (:class:`PoolUnavailable`) until the new pool is up. Failed calls are not retried:
the one that was running may be what killed the child.

Not measured here: HTTP parsing, validation and serialisation, which run on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import threading
from concurrent.futures.process import BrokenProcessPool

import anyio.to_thread
from starlette.concurrency import run_in_threadpool

from ftscale import workloads
from ftscale.server import lifeline
from ftscale.server.compute import (
    ClientGone,
    ClientWatch,
    Computed,
    Dispatcher,
    Overloaded,
    PoolState,
    PoolUnavailable,
    timed_compute,
    unless_gone,
)
from ftscale.server.config import Mode
from ftscale.server.counters import EVENTS
from ftscale.workloads import Workload

# spawn by default: pool children start as fresh interpreters that are children of the serving
# process itself, so shutting the pool down joins them all and nothing outlives the service (a
# forkserver helper outlives its parent while it finalises, over a second on 3.14t). Children
# cost a start-up import, paid before serving. ``--start-method fork`` forks them instead while
# the serving process has one thread (fork from a multi-threaded process is unsafe).
PROCESS_START_METHOD = "spawn"

logger = logging.getLogger("ftscale.server")


def compute_by_name(name: str, size: int, chunk: int | None = None) -> Computed:
    """The process pool's task: look the workload up in the child's own registry and run it."""
    return timed_compute(workloads.get(name), size, chunk)


def _child_init(parent_pid: int, forked: bool = False) -> None:
    """A pool child: die with the serving process, leave Ctrl-C to it, pin BLAS (and, forked,
    let go of the serving process's sockets)."""
    if forked:
        lifeline.close_inherited_sockets()
    lifeline.die_with_parent(signal.SIGKILL, parent_pid)
    lifeline.ignore_sigint()
    workloads.pin_blas_threads()


def _ready() -> int:
    return 0


class Admission:
    """At most ``capacity`` requests in flight (running plus queued) for one pool.

    Thread-safe: in the ``loops`` topology each loop has its own, but nothing assumes it.
    """

    def __init__(self, pool_size: int, queue_limit: int) -> None:
        self.pool_size = pool_size
        self.queue_limit = queue_limit
        self.capacity = pool_size + queue_limit
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def enter(self) -> None:
        """Take a place, or raise :class:`Overloaded` when all ``capacity`` are taken."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise Overloaded(
                    f"server busy: {self._in_flight} requests in flight for a pool of {self.pool_size} "
                    f"with a queue limit of {self.queue_limit}"
                )
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class InlineDispatcher:
    """Computes in the endpoint's coroutine: the event loop serves nothing else meanwhile."""

    mode = Mode.INLINE
    state = PoolState.UP

    async def start(self) -> None:
        pass

    async def run(
        self, workload: Workload, size: int, client: ClientWatch, chunk: int | None = None
    ) -> Computed:
        # Let the loop read its sockets (a pass to read, one to report a lost connection), so
        # that a client that left while an earlier compute held the loop is seen as gone.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if await client.left():
            EVENTS.add("dropped_client_gone")
            raise ClientGone
        return timed_compute(workload, size, chunk)

    async def stop(self) -> None:
        pass


class _Ticket:
    """Who wins for one threadpool call: the worker thread starting it, or a client leaving."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "queued"

    def start(self) -> bool:
        with self._lock:
            if self._state == "abandoned":
                return False
            self._state = "running"
            return True

    def abandon(self) -> bool:
        with self._lock:
            if self._state == "running":
                return False
            self._state = "abandoned"
            return True


def _ticketed(ticket: _Ticket, workload: Workload, size: int, chunk: int | None) -> Computed | None:
    return timed_compute(workload, size, chunk) if ticket.start() else None


class ThreadpoolDispatcher:
    """Starlette's ``run_in_threadpool`` (what FastAPI does for a ``def`` endpoint).

    The pool is anyio's, one per event loop, bounded by the loop's default CapacityLimiter;
    :meth:`start` sets that limiter's ``total_tokens`` (40 by default) to ``pool_size``.
    """

    mode = Mode.THREADPOOL
    state = PoolState.UP

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size

    async def start(self) -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.pool_size

    async def run(
        self, workload: Workload, size: int, client: ClientWatch, chunk: int | None = None
    ) -> Computed:
        ticket = _Ticket()
        task = asyncio.ensure_future(run_in_threadpool(_ticketed, ticket, workload, size, chunk))
        computed = await unless_gone(task, ticket.abandon, client)
        assert computed is not None, "a started ticket always computes"
        return computed

    async def stop(self) -> None:
        pass  # anyio's worker threads end with their event loop


class ExecutorDispatcher:
    """A dedicated ``ThreadPoolExecutor(pool_size)``, its futures awaited from the loop."""

    mode = Mode.EXECUTOR
    state = PoolState.UP

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.pool_size, thread_name_prefix="ftscale-compute"
        )

    async def run(
        self, workload: Workload, size: int, client: ClientWatch, chunk: int | None = None
    ) -> Computed:
        assert self._pool is not None, "dispatcher not started"
        # The concurrent future itself, not loop.run_in_executor's wrapper: its cancel() is
        # atomic against the worker taking it, and says whether it was in time.
        future = self._pool.submit(timed_compute, workload, size, chunk)
        return await unless_gone(asyncio.wrap_future(future), future.cancel, client)

    async def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)  # the loop is draining: nothing else to serve


class ProcessDispatcher:
    """A ``ProcessPoolExecutor(pool_size)``; arguments and results are pickled both ways.

    Only the workload's name and size cross to the child, which computes with its own
    registry; the child's timing excludes pickling, which lands in the request's wait time.
    :meth:`start` starts every child before the service reports ready. Children are spawned
    (:data:`PROCESS_START_METHOD`) from the serving loop's thread, with SIGINT blocked; each
    dies with the serving process, ignores SIGINT and pins its BLAS to one thread.
    """

    mode = Mode.PROCESS

    def __init__(self, pool_size: int, start_method: str = PROCESS_START_METHOD) -> None:
        self.pool_size = pool_size
        self.start_method = start_method
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._generation = 0
        self._state = PoolState.DOWN
        self._rebuild: asyncio.Task[None] | None = None
        self._stopping = False
        self._slots: asyncio.Semaphore | None = None  # calls in the executor, see the module docstring

    @property
    def state(self) -> PoolState:
        """The pool's state; a pool found broken (a child died while idle) starts its replacement.

        Read on the serving loop (``/health``, ``/info``). It looks at the executor's private
        ``_broken`` flag (set by its manager thread when a child dies; the same in 3.11-3.14).
        """
        pool = self._pool
        if self._state is PoolState.UP and pool is not None and getattr(pool, "_broken", False):
            self._replace(self._generation)
        return self._state

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self.pool_size + 1)
        self._pool = await self._new_pool()
        self._state = PoolState.UP

    async def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # Forked only while this process has one thread (the first pool, before anything ran):
        # a pool replaced later, or one in a loops topology, is spawned.
        context = lifeline.start_context(self.start_method)
        pool = concurrent.futures.ProcessPoolExecutor(
            self.pool_size,
            mp_context=context,
            initializer=_child_init,
            initargs=(os.getpid(), context.get_start_method() == "fork"),
        )
        try:
            # Children are spawned by these submits, in this (the loop's) thread: the thread
            # whose end would signal them (PR_SET_PDEATHSIG), and which outlives the pool.
            with lifeline.sigint_blocked():
                warm = [pool.submit(_ready) for _ in range(self.pool_size)]
            await asyncio.gather(*(asyncio.wrap_future(f) for f in warm))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return pool

    async def run(
        self, workload: Workload, size: int, client: ClientWatch, chunk: int | None = None
    ) -> Computed:
        assert self._slots is not None, "dispatcher not started"
        slot = asyncio.ensure_future(self._slots.acquire())
        await unless_gone(slot, lambda: True, client)
        try:
            return await self._submit(workload, size, client, chunk)
        finally:
            self._slots.release()

    async def _submit(
        self, workload: Workload, size: int, client: ClientWatch, chunk: int | None = None
    ) -> Computed:
        pool = self._pool
        if self._state is not PoolState.UP or pool is None:
            self._replace(self._generation)
            raise PoolUnavailable(f"the process pool is {self._state}: a compute process died")
        generation = self._generation
        try:
            future = pool.submit(compute_by_name, workload.name, size, chunk)
            return await unless_gone(asyncio.wrap_future(future), future.cancel, client)
        except BrokenProcessPool:
            self._replace(generation)
            raise PoolUnavailable("a compute process died; the process pool is being replaced") from None

    def _replace(self, generation: int) -> None:
        """Start replacing the pool of ``generation``, unless that has been done or begun."""
        if self._stopping or generation != self._generation or self._rebuild is not None:
            return
        self._state = PoolState.REBUILDING
        old, self._pool = self._pool, None
        self._generation += 1
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)  # broken: its children are already gone
        logger.error("a process pool child died; replacing the pool")
        self._rebuild = asyncio.get_running_loop().create_task(self._rebuild_pool())

    async def _rebuild_pool(self) -> None:
        try:
            self._pool = await self._new_pool()
            self._state = PoolState.UP
            EVENTS.add("pool_restarts")
        except Exception:
            logger.exception("replacing the process pool failed; the next request tries again")
            self._state = PoolState.DOWN
        finally:
            self._rebuild = None

    async def stop(self) -> None:
        self._stopping = True
        if self._rebuild is not None:
            await asyncio.gather(self._rebuild, return_exceptions=True)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)  # the loop is draining: nothing else to serve


def make_dispatcher(mode: Mode, pool_size: int, start_method: str = PROCESS_START_METHOD) -> Dispatcher:
    """The dispatcher for ``mode`` with ``pool_size`` workers (ignored by inline); a process
    pool's children start by ``start_method`` (see :class:`ProcessDispatcher`)."""
    if mode is Mode.INLINE:
        return InlineDispatcher()
    if mode is Mode.THREADPOOL:
        return ThreadpoolDispatcher(pool_size)
    if mode is Mode.EXECUTOR:
        return ExecutorDispatcher(pool_size)
    return ProcessDispatcher(pool_size, start_method)


# The app, the stream routes and tests import these from here, as before the compute's own
# vocabulary moved to server.compute.
__all__ = [
    "Admission",
    "ClientGone",
    "ClientWatch",
    "Computed",
    "Dispatcher",
    "Overloaded",
    "PoolState",
    "PoolUnavailable",
    "make_dispatcher",
    "timed_compute",
    "unless_gone",
]
