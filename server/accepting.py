"""accept() out of descriptors: one log line a second with a count, and a back-off.

When a process runs out of file descriptors (EMFILE, ENFILE; also ENOBUFS, ENOMEM), accept()
fails while the listening socket stays readable. asyncio's own accept loop (uvicorn's ``single``)
then logs a traceback per attempt and goes on trying, up to its backlog (2048) times per wake-up,
each time scheduling another restart: ``single`` under ``ulimit -n 256`` with 400 idle sockets
logged about 8,000 tracebacks in 2 s.

* :class:`Listener` is the listening socket every uvicorn and hypercorn topology binds
  (:func:`server.topology.bind_listener`): after one such failure, its accept() says "nothing
  more to accept" (``BlockingIOError``) for :data:`BACKOFF_S`, so asyncio's loop stops at the
  first failure and waits its own second (``ACCEPT_RETRY_DELAY``) before trying again.
* :func:`quiet_accept_errors` gives an event loop an exception handler that turns asyncio's
  report of that failure into :func:`report`, which logs at most one line a second, with how
  many failures it stands for; any other report goes to the loop's default handler.
* ftscale's own acceptors (``loops``, ``workers``) call :func:`report` and back off themselves.

uvloop (``uvicorn-fast``) accepts in libuv, which meets EMFILE by accepting and closing the
pending connections (its reserved-descriptor trick) without telling the app: nothing to log.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time
from multiprocessing import reduction
from typing import Any

from ftscale.server.counters import EVENTS

BACKOFF_S = 0.5  # a Listener's quiet spell after a failure (asyncio retries after 1 s)
LOG_EVERY_S = 1.0
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

logger = logging.getLogger("ftscale.server")


class _Reporter:
    """Counts accept failures; logs one line per :data:`LOG_EVERY_S` at most (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since_log = 0
        self._last_log = float("-inf")

    def report(self, exc: BaseException) -> None:
        EVENTS.add("accept_errors")
        now = time.monotonic()
        with self._lock:
            self._since_log += 1
            if now - self._last_log < LOG_EVERY_S:
                return
            count, self._since_log, self._last_log = self._since_log, 0, now
        logger.error("accept() failed %d time(s) since the last report: %s; backing off", count, exc)


_REPORTER = _Reporter()


def report(exc: BaseException) -> None:
    """One accept failure (logged once a second at most, with a count)."""
    _REPORTER.report(exc)


def out_of_resources(exc: BaseException | None) -> bool:
    return isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES


class Listener(socket.socket):
    """A listening socket whose accept() backs off for :data:`BACKOFF_S` after running out of
    descriptors (the failure itself is raised once, for the caller to report)."""

    _quiet_until = 0.0

    def accept(self) -> tuple[socket.socket, Any]:
        if time.monotonic() < self._quiet_until:
            raise BlockingIOError(errno.EAGAIN, "backing off after running out of descriptors")
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno in OUT_OF_RESOURCES:
                self._quiet_until = time.monotonic() + BACKOFF_S
            raise


def _rebuild_listener(dup: Any, family: int, kind: int, proto: int) -> Listener:
    return Listener(family, kind, proto, fileno=dup.detach())


def _reduce_listener(sock: Listener) -> tuple[Any, tuple[Any, ...]]:
    """A Listener passed to a spawned process (hypercorn's workers) arrives as a Listener."""
    return _rebuild_listener, (reduction.DupFd(sock.fileno()), sock.family, sock.type, sock.proto)


reduction.register(Listener, _reduce_listener)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Route ``loop``'s reports of accept() out of descriptors to :func:`report` (no traceback)."""
    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if out_of_resources(context.get("exception")) and "accept" in str(context.get("message", "")):
            report(context["exception"])
        elif default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
