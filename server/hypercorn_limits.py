"""hypercorn's connections held to ftscale's limits: head deadline, connection cap, write timeout.

hypercorn bounds a head's size (``h11_max_incomplete_size``) and idle keep-alive connections
(``keep_alive_timeout``), and ftscale sets both; it has no deadline for a head (its
``read_timeout`` would also cut a client waiting for a long computation), no connection cap, and
no bound on a write to a client that does not read: a stalled stream held its place, and its
connection held the stop up (closing waits for unsent bytes to leave) for good.
:func:`guarded_tcp_server` makes a subclass of hypercorn's ``TCPServer`` (one per connection)
that adds, as :mod:`server.protocol` does for uvicorn:

* a **head deadline** (``--header-timeout``), from the connection's opening for its first
  request and from the first byte of a later one: a late head gets a JSON 408, a connection
  that sent nothing is closed without one (the body's deadline is the ASGI guard's,
  :mod:`server.guard`);
* a **connection cap** (``--max-connections`` per process): over it the connection idle longest
  is closed to make room; if none is idle the newcomer gets a JSON 503 with ``Retry-After`` at
  its first bytes, and beyond a margin it is closed at once;
* a **write timeout** (``--write-timeout``): a write whose bytes the client takes none of for that
  long drops the connection, and closing never waits longer than that for unsent bytes.

:func:`install` puts the subclass where hypercorn's ``worker_serve`` looks its ``TCPServer`` up
(a module global of ``hypercorn.asyncio.run``), in the serving process only. Checked against
hypercorn 0.18: it relies on ``TCPServer.run``, ``_read_data``, ``protocol_send``, ``_close``
and ``protocol.protocol.connection`` (h11's) as they are there. A connection that switches to
HTTP/2 (prior knowledge or ``h2c``) has no h11 state: only the cap and the write timeout hold.
"""

from __future__ import annotations

import asyncio
import logging
from ssl import SSLError
from typing import Any, ClassVar

import h11
from hypercorn.asyncio.tcp_server import MAX_RECV, TCPServer
from hypercorn.events import Closed, Event, RawData

from ftscale.server.config import ServerConfig
from ftscale.server.counters import EVENTS
from ftscale.server.wire import EVICT_IDLE_S, RETRY_AFTER_S, raw_json_response, unread_bytes

logger = logging.getLogger("ftscale.server")

CLOSE_POLL_S = 0.1  # how often a closing connection with unsent bytes looks at them


class GuardedTCPServer(TCPServer):
    """hypercorn's connection under ftscale's limits (see the module docstring)."""

    limits: ClassVar[ServerConfig]
    live: ClassVar[set[GuardedTCPServer]]  # this process's open connections
    timeout_response: ClassVar[bytes]
    refuse_response: ClassVar[bytes]

    _opened = 0.0
    _head_started: float | None = None
    _seen_request = False
    _idle_since = 0.0
    _refusing = False

    # -- the connection cap ----------------------------------------------------------------------

    async def run(self) -> None:
        now = self.loop.time()
        self._opened = self._idle_since = now
        live = type(self).live
        live.add(self)
        try:
            limit = self.limits.effective_max_connections
            if len(live) > limit and not self._make_room(now):
                if len(live) > limit + max(8, limit // 8):
                    EVENTS.add("connections_aborted")
                    self.writer.transport.abort()
                    return
                EVENTS.add("connections_refused")
                self._refusing = True
            await super().run()
        finally:
            live.discard(self)

    def _h11(self) -> h11.Connection | None:
        conn = getattr(getattr(self, "protocol", None), "protocol", None)
        found = getattr(conn, "connection", None)
        return found if isinstance(found, h11.Connection) else None

    def _idle(self, now: float) -> bool:
        """Nothing in progress, nothing buffered or unread, for a moment at least."""
        conn = self._h11()
        if conn is None or self.writer.transport.is_closing():
            return False
        if conn.their_state is not h11.IDLE or conn.our_state is not h11.IDLE or conn.trailing_data[0]:
            return False
        return now - self._idle_since >= EVICT_IDLE_S and not unread_bytes(self.writer.transport)

    def _make_room(self, now: float) -> bool:
        idle = [c for c in type(self).live if c is not self and c._idle(now)]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c._idle_since)
        victim.writer.transport.close()
        type(self).live.discard(victim)
        EVENTS.add("connections_evicted_idle")
        return True

    # -- the head deadline ------------------------------------------------------------------------

    def _head_deadline(self) -> float | None:
        """When the head being waited for must be in (loop time), or None: no head is due."""
        conn = self._h11()
        if conn is None:
            return None
        if conn.their_state is not h11.IDLE:
            self._seen_request = True
            self._head_started = None
            return None
        if not self._seen_request:
            return self._opened + self.limits.header_timeout_s
        if conn.trailing_data[0]:
            if self._head_started is None:
                self._head_started = self.loop.time()
            return self._head_started + self.limits.header_timeout_s
        self._head_started = None
        if conn.our_state is h11.IDLE:
            self._idle_since = self.loop.time()
        return None

    async def _read_data(self) -> None:
        while not self.reader.at_eof():
            deadline = self._head_deadline()
            wait = None if deadline is None else max(0.0, deadline - self.loop.time())
            try:
                data = await asyncio.wait_for(self.reader.read(MAX_RECV), wait)
            except TimeoutError:
                await self._head_timed_out()
                break
            except (ConnectionError, OSError, SSLError):
                break
            if self._refusing:
                if data:
                    self.writer.write(self.refuse_response)
                    await self._close()
                break
            await self.protocol.handle(RawData(data))
        await self.protocol.handle(Closed())

    async def _head_timed_out(self) -> None:
        conn = self._h11()
        silent = not self._seen_request and conn is not None and not conn.trailing_data[0]
        EVENTS.add("requests_timed_out")
        if not silent:  # part of a head arrived: say why (a silent connection is just closed)
            self.writer.write(self.timeout_response)

    # -- the write timeout ------------------------------------------------------------------------

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            await super().protocol_send(event)
            return
        async with self.send_lock:
            try:
                self.writer.write(event.data)
                await self._drain()
            except (ConnectionError, RuntimeError):
                await self.protocol.handle(Closed())

    async def _drain(self) -> None:
        """``writer.drain()``, unless the client takes none of the waiting bytes for the write
        timeout: then the connection is dropped (ConnectionError)."""
        transport = self.writer.transport
        if not transport.get_write_buffer_size():
            await self.writer.drain()
            return
        draining = asyncio.ensure_future(self.writer.drain())
        if not await self._progressing(draining):
            draining.cancel()
            self._drop(transport)
            raise ConnectionAbortedError("the client took no bytes within the write timeout")
        await draining

    async def _progressing(self, waiting: asyncio.Future[Any] | None) -> bool:
        """Wait for ``waiting`` (None: for the write buffer to empty) while the client takes some
        of the waiting bytes at least once per write timeout; False once it stops taking any."""
        transport = self.writer.transport
        mark = transport.get_write_buffer_size()
        last_progress = self.loop.time()
        while True:
            if waiting is None:
                await asyncio.sleep(CLOSE_POLL_S)
                if not transport.get_write_buffer_size():
                    return True
            else:
                done, _ = await asyncio.wait({waiting}, timeout=self.limits.write_timeout_s)
                if done:
                    return True
            left = transport.get_write_buffer_size()
            if left < mark:
                mark, last_progress = left, self.loop.time()
            elif self.loop.time() - last_progress >= self.limits.write_timeout_s:
                return False

    def _drop(self, transport: asyncio.WriteTransport) -> None:
        EVENTS.add("writes_timed_out")
        logger.warning("dropped a client that took no bytes for %g s", self.limits.write_timeout_s)
        transport.abort()

    async def _close(self) -> None:
        # hypercorn's close waits for unsent bytes to leave, for as long as the client takes.
        transport = self.writer.transport
        if transport.get_write_buffer_size() and not await self._progressing(None):
            self._drop(transport)
        await super()._close()


def guarded_tcp_server(config: ServerConfig) -> type[GuardedTCPServer]:
    """A :class:`GuardedTCPServer` class holding ``config``'s limits, with its own set of connections."""
    timeout = raw_json_response(
        408, "Request Timeout", {"detail": f"request not received within {config.header_timeout_s:g} s"}
    )
    refuse = raw_json_response(
        503,
        "Service Unavailable",
        {
            "detail": f"too many connections (limit {config.effective_max_connections})",
            "retry_after_s": RETRY_AFTER_S,
        },
        extra=f"retry-after: {RETRY_AFTER_S}\r\n",
    )
    attributes = {"limits": config, "live": set(), "timeout_response": timeout, "refuse_response": refuse}
    return type("Guarded", (GuardedTCPServer,), attributes)


def install(config: ServerConfig) -> None:
    """Make hypercorn's ``worker_serve`` in this process open connections as :class:`GuardedTCPServer`."""
    import hypercorn.asyncio.run

    setattr(hypercorn.asyncio.run, "TCPServer", guarded_tcp_server(config))  # noqa: B010 (not exported)
