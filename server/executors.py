"""Where a request's compute runs (the four modes), and the bounded queue in front of it.

Every dispatcher runs ``workload.compute(size)`` and reports when the compute started and how
long it took, measured where it ran (the worker thread, or the child process). Timestamps are
``time.monotonic()``: on Linux that is CLOCK_MONOTONIC, one clock for every process on the
machine, so a child's start time can be compared with the parent's arrival time.

:class:`Admission` bounds each pool: at most ``pool_size + queue_limit`` requests may be
running or waiting for it; the next one is refused at once (the app turns that into a 503).
For ``inline`` the "pool" is the event loop itself; requests queue in the loop's sockets, not
here, so admission rarely refuses anything in that mode.

Not measured here: HTTP parsing, validation and serialisation, which run on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread
from ftscale.server.config import Mode
from ftscale.workloads import Workload
from starlette.concurrency import run_in_threadpool

from ftscale import workloads

# spawn: pool children start as fresh interpreters that are children of the serving process
# itself, so shutting the pool down joins them all and nothing outlives the service (fork from
# a multi-threaded process is unsafe; a forkserver helper outlives its parent while it
# finalises, over a second on 3.14t). Children cost a start-up import, paid before serving.
PROCESS_START_METHOD = "spawn"


@dataclass(frozen=True)
class Computed:
    """A compute's checksum and when (monotonic seconds) it started and ended, where it ran."""

    checksum: int
    started: float
    ended: float

    @property
    def compute_s(self) -> float:
        return self.ended - self.started


def timed_compute(workload: Workload, size: int) -> Computed:
    """Run one compute in the calling thread and time it."""
    started = time.monotonic()
    checksum = workload.compute(size)
    return Computed(checksum, started, time.monotonic())


def compute_by_name(name: str, size: int) -> Computed:
    """The process pool's task: look the workload up in the child's own registry and run it."""
    return timed_compute(workloads.get(name), size)


def _child_init() -> None:
    workloads.pin_blas_threads()


def _ready() -> int:
    return 0


class Overloaded(Exception):
    """The pool and its queue are full; the message says how full."""


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


class Dispatcher(Protocol):
    """Runs one compute in this mode. ``start`` and ``stop`` run on the serving event loop."""

    mode: Mode

    async def start(self) -> None: ...

    async def run(self, workload: Workload, size: int) -> Computed: ...

    async def stop(self) -> None: ...


class InlineDispatcher:
    """Computes in the endpoint's coroutine: the event loop serves nothing else meanwhile."""

    mode = Mode.INLINE

    async def start(self) -> None:
        pass

    async def run(self, workload: Workload, size: int) -> Computed:
        return timed_compute(workload, size)

    async def stop(self) -> None:
        pass


class ThreadpoolDispatcher:
    """Starlette's ``run_in_threadpool`` (what FastAPI does for a ``def`` endpoint).

    The pool is anyio's, one per event loop, bounded by the loop's default CapacityLimiter;
    :meth:`start` sets that limiter's ``total_tokens`` (40 by default) to ``pool_size``.
    """

    mode = Mode.THREADPOOL

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size

    async def start(self) -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.pool_size

    async def run(self, workload: Workload, size: int) -> Computed:
        return await run_in_threadpool(timed_compute, workload, size)

    async def stop(self) -> None:
        pass  # anyio's worker threads end with their event loop


class ExecutorDispatcher:
    """A dedicated ``ThreadPoolExecutor(pool_size)`` driven by ``loop.run_in_executor``."""

    mode = Mode.EXECUTOR

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.pool_size, thread_name_prefix="ftscale-compute"
        )

    async def run(self, workload: Workload, size: int) -> Computed:
        assert self._pool is not None, "dispatcher not started"
        return await asyncio.get_running_loop().run_in_executor(self._pool, timed_compute, workload, size)

    async def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)  # the loop is draining: nothing else to serve


class ProcessDispatcher:
    """A ``ProcessPoolExecutor(pool_size)``; arguments and results are pickled both ways.

    Only the workload's name and size cross to the child, which computes with its own
    registry; the child's timing excludes pickling, which lands in the request's wait time.
    :meth:`start` starts every child before the service reports ready. Children are spawned
    (:data:`PROCESS_START_METHOD`) and pin their BLAS to one thread.
    """

    mode = Mode.PROCESS

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def start(self) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.pool_size,
            mp_context=multiprocessing.get_context(PROCESS_START_METHOD),
            initializer=_child_init,
        )
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, _ready) for _ in range(self.pool_size)))

    async def run(self, workload: Workload, size: int) -> Computed:
        assert self._pool is not None, "dispatcher not started"
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, compute_by_name, workload.name, size
        )

    async def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)  # the loop is draining: nothing else to serve


def make_dispatcher(mode: Mode, pool_size: int) -> Dispatcher:
    """The dispatcher for ``mode`` with ``pool_size`` workers (ignored by inline)."""
    if mode is Mode.INLINE:
        return InlineDispatcher()
    if mode is Mode.THREADPOOL:
        return ThreadpoolDispatcher(pool_size)
    if mode is Mode.EXECUTOR:
        return ExecutorDispatcher(pool_size)
    return ProcessDispatcher(pool_size)
