"""One compute, timed, and what every dispatcher (:mod:`server.executors`) promises around it.

:class:`Computed` is a compute's checksum (or a stream chunk) and when it ran, measured where it
ran; :func:`timed_compute` runs one. :class:`ClientWatch` and :func:`unless_gone` let a client
that leaves take its queued compute with it (:class:`ClientGone`); :class:`Overloaded` and
:class:`PoolUnavailable` are the refusals the app turns into 503s; :class:`Dispatcher` is the
shape of a mode's dispatcher.
"""

from __future__ import annotations

import asyncio
import enum
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio.to_thread
from starlette.types import Receive

from ftscale.server.config import Mode
from ftscale.server.counters import EVENTS
from ftscale.workloads import Workload

T = TypeVar("T")


@dataclass(frozen=True)
class Computed:
    """A compute's checksum and when (monotonic seconds) it started and ended, where it ran.

    For one chunk of a stream, ``data`` is the chunk and ``checksum`` its CRC-32.
    """

    checksum: int
    started: float
    ended: float
    data: bytes = b""

    @property
    def compute_s(self) -> float:
        return self.ended - self.started


def timed_compute(workload: Workload, size: int, chunk: int | None = None) -> Computed:
    """Run one compute (or chunk ``chunk`` of the workload's stream) in the calling thread, timed."""
    started = time.monotonic()
    if chunk is None:
        return Computed(checksum=workload.compute(size), started=started, ended=time.monotonic())
    if workload.stream is None:
        raise ValueError(f"workload {workload.name!r} does not stream")
    data = workload.stream.chunk(size, chunk)
    return Computed(checksum=zlib.crc32(data), started=started, ended=time.monotonic(), data=data)


class Overloaded(Exception):
    """The pool and its queue are full; the message says how full."""


class PoolUnavailable(Exception):
    """The process pool is being replaced (a child died); retry after a moment."""


class ClientGone(Exception):
    """The client disconnected before its compute started; the compute was dropped."""


class PoolState(enum.StrEnum):
    UP = "up"
    REBUILDING = "rebuilding"  # a child died; a new pool is starting
    DOWN = "down"  # the last rebuild failed; the next request tries again


class ClientWatch:
    """Whether one request's client has gone; ``gone`` completes when it goes.

    ``receive`` is the request's ASGI receive, after its body was read: it then waits until
    the client disconnects (or the response is complete).
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.gone: asyncio.Future[None] = asyncio.ensure_future(self._until_disconnected())

    async def _until_disconnected(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    async def left(self) -> bool:
        """Whether the server has already seen the client go (without waiting)."""
        if self.gone.done():
            return True
        with anyio.CancelScope() as scope:  # as Starlette's Request.is_disconnected does
            scope.cancel()
            return bool((await self._receive())["type"] == "http.disconnect")
        return False

    def close(self) -> None:
        self.gone.cancel()


async def unless_gone(work: asyncio.Future[T], try_cancel: Callable[[], bool], client: ClientWatch) -> T:
    """``work``'s result; if the client goes first, drop the work when it has not started.

    ``try_cancel`` cancels the work if it has not started and says whether it did. Work that
    has started is waited for (its thread or process stays busy, so its place stays taken) and
    its result thrown away. Either way a gone client gets :class:`ClientGone`.
    """
    racing: set[asyncio.Future[Any]] = {work, client.gone}
    done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
    if work in done:
        return work.result()
    if try_cancel():
        work.cancel()
        EVENTS.add("dropped_client_gone")
        raise ClientGone
    try:
        await asyncio.shield(work)
    finally:
        EVENTS.add("finished_client_gone")
    raise ClientGone


class Dispatcher(Protocol):
    """Runs one compute in this mode. ``start`` and ``stop`` run on the serving event loop."""

    mode: Mode

    @property
    def state(self) -> PoolState: ...

    async def start(self) -> None: ...

    async def run(
        self, workload: Workload, size: int, client: ClientWatch, chunk: int | None = None
    ) -> Computed: ...

    async def stop(self) -> None: ...
