"""Serving units for servers that start them themselves (granian, hypercorn): one app each.

uvicorn's topologies are ftscale's own code, which builds one app per loop or process and hands
it its slot in the work-request counters (:class:`ftscale.server.counters.UnitCounts`). granian
starts its workers itself, and its multi-threaded server loads the target once and gives the same
object to every worker thread, each of which runs its own lifespan on it: a shared app would
start one pool per thread over the one before. :class:`UnitApp` is the target instead: a small
ASGI app that builds the real one the first time each thread (each worker) calls it, which is
its lifespan, on that worker's own event loop, and claims the next free counter slot for it.

The builder is an :class:`AppFactory` (``create_app`` by default): the engines do not care which
app they serve, only that it takes its config, loop index and counter slot.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.sharedctypes
import threading
from collections.abc import MutableSequence, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from ftscale.server.config import ServerConfig
from ftscale.server.counters import UnitCounts

if TYPE_CHECKING:  # a user's app (--app) may be served without Starlette installed
    from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("ftscale.server")


class AppFactory(Protocol):
    """Builds the app one serving unit runs (``ftscale.server.app.create_app`` is one)."""

    def __call__(
        self,
        config: ServerConfig,
        *,
        loop_index: int | None = ...,
        units: UnitCounts | None = ...,
        unit: int = ...,
    ) -> ASGIApp: ...


class Serve(Protocol):
    """What serves one topology on one server until SIGTERM: the exit status (``cli.runner``)."""

    def __call__(self, config: ServerConfig, factory: AppFactory = ...) -> int: ...


class SharedSlots:
    """Work-request counters and a slot dispenser in shared memory: usable from threads of one
    process and, passed to a process as it is spawned, from other processes."""

    def __init__(self, labels: Sequence[str], start_method: str = "spawn") -> None:
        self.labels = list(labels)
        self.store = multiprocessing.sharedctypes.RawArray(ctypes.c_int64, len(self.labels))
        # Its lock must come from the context the units are started with. A spawn-context lock is a
        # named semaphore watched by a resource-tracker process, which outlives the service by a
        # second or two; a fork-context one is unnamed, and serves units forked from here.
        self.next = multiprocessing.get_context(start_method).Value(ctypes.c_int, 0)

    def claim(self) -> int:
        """The next free slot (wrapping round if more units start than there are slots)."""
        with self.next.get_lock():
            slot = int(self.next.value)
            self.next.value = slot + 1
        return slot % len(self.labels)

    def counts(self) -> UnitCounts:
        return UnitCounts(self.labels, cast(MutableSequence[int], self.store))


class UnitApp:
    """The target given to a server that starts its own units: one app per unit, built on first call.

    ``threads``: the units are threads of one process (their loop index is their slot).
    """

    def __init__(self, config: ServerConfig, factory: AppFactory, slots: SharedSlots, threads: bool) -> None:
        self.config, self.factory, self.slots, self.threads = config, factory, slots, threads
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into a spawned worker (uvicorn --workers) without the apps built here."""
        state = dict(self.__dict__)
        del state["_local"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _build(self) -> ASGIApp:
        slot = self.slots.claim()
        return self.factory(
            self.config,
            loop_index=slot if self.threads else None,
            units=self.slots.counts(),
            unit=slot,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: Any = getattr(self._local, "app", None)
        if app is None:
            try:
                app = self._local.app = self._build()
            except Exception as exc:
                if scope["type"] != "lifespan":
                    raise
                # Said in ASGI's words: a server that sees only an exception may serve without a lifespan.
                logger.exception("the app could not be built")
                await receive()
                await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                return
        await app(scope, receive, send)
