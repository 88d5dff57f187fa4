"""uvicorn's h11 and httptools protocols, bounding slow, idle and surplus connections; a drain on stop.

uvicorn bounds none of these: a connection that never sends, or sends its head a byte a
second, stays open for good (its only timer is the keep-alive one, armed after a response),
and ``limit_concurrency`` counts idle sockets but answers only complete requests, in plain
text. :class:`GuardedH11Protocol` (and its httptools twin, :func:`guarded_httptools`, for
``--server uvicorn-fast``) adds, per connection:

* a **request deadline**: a request's head must arrive within ``--header-timeout``, counted
  from the connection's opening (first request) or from the request's first byte (later ones),
  and its body within ``--body-timeout`` of the head's end. A late request gets a JSON 408 and
  the connection closes; a connection that never sent a byte is closed without one (browsers
  open connections ahead of need, and a 408 crossing a request on the wire would read as its
  answer). Idle keep-alive connections are uvicorn's to close (``--keepalive-timeout``).
* a **head size limit** (``--max-head-bytes``): h11 bounds the head it buffers itself (uvicorn's
  ``h11_max_incomplete_event_size``), httptools does not (it buffers a header field until it
  ends, however long), so the httptools protocol counts the bytes of a head still arriving and
  cuts it at the limit. Either way the answer is a JSON 431 and the connection closes.
* a **write timeout** (``--write-timeout``): once a response's bytes wait in the transport (the
  kernel's buffer is full), the client must take some of them within the timeout, again and
  again, or the connection is dropped; so must a connection closing with bytes unsent. The
  request's cycle then reads a disconnect: a stream ends and gives its places back.
* a **connection limit** (``--max-connections``, per uvicorn Server): a connection over it
  first makes room by closing the connection idle longest (nothing in progress, nothing
  buffered or unread, for :data:`EVICT_IDLE_S` at least); if every connection is busy, it
  is answered 503 (JSON, ``Retry-After``, ``connection: close``) once its head has arrived,
  and beyond an extra margin it is closed at once, so a flood costs one descriptor for a
  moment.
* a **drain on stop**: uvicorn's shutdown closes every connection without a request in
  progress, including one whose request is already on its way (a fresh connection, or bytes
  buffered). Those get a short wait instead (:data:`DRAIN_WAIT_S`) and their request is
  answered with ``connection: close``; so do connections made after the stop began.

It also counts connections and records whether each had TCP_NODELAY (:mod:`server.counters`).
Checked against uvicorn 0.55, h11 0.16 and httptools 0.9: it relies on ``handle_events``,
``cycle``, ``conn.trailing_data``, ``send_400_response``, the httptools parser callbacks,
``data_received``, ``on_response_complete``, ``pause_writing``/``resume_writing`` and
``shutdown`` as they are there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ftscale.server.config import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_HEAD_BYTES, DEFAULT_WRITE_TIMEOUT_S
from ftscale.server.counters import EVENTS
from ftscale.server.wire import EVICT_IDLE_S, RETRY_AFTER_S, nodelay, raw_json_response, unread_bytes

if TYPE_CHECKING:  # a user's app (--app) may be served without Starlette installed
    from starlette.types import Receive, Scope, Send

DRAIN_WAIT_S = 1.0  # how long a connection that has not sent its request yet may take, once stopping

logger = logging.getLogger("ftscale.server")

_FRAMING = (b"content-length", b"transfer-encoding")  # a request with either has a body


def _nothing() -> None:
    pass


class ConnectionGuard:
    """One uvicorn Server's connection rules; its protocol class reads them."""

    def __init__(
        self,
        max_connections: int,
        header_timeout_s: float,
        is_stopping: Callable[[], bool],
        *,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    ) -> None:
        self.limit = max_connections
        self.hard_limit = max_connections + max(8, max_connections // 8)
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.write_timeout_s = write_timeout_s
        self.max_head_bytes = max_head_bytes
        self.is_stopping = is_stopping
        # Called for every connection that closes (the workers' acceptor counts them).
        self.on_lost: Callable[[], None] = _nothing
        self.timeout_response = raw_json_response(
            408, "Request Timeout", {"detail": f"request not received within {header_timeout_s:g} s"}
        )
        self.body_timeout_response = raw_json_response(
            408, "Request Timeout", {"detail": f"request body not received within {body_timeout_s:g} s"}
        )
        self.head_too_large_response = raw_json_response(
            431,
            "Request Header Fields Too Large",
            {"detail": f"request head larger than {max_head_bytes} bytes"},
        )

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app for a connection over the limit: 503 once its head has arrived."""
        body = json.dumps(
            {"detail": f"too many connections (limit {self.limit})", "retry_after_s": RETRY_AFTER_S}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def protocol_class(self, http: str = "h11") -> type[Any]:
        """A protocol class for ``http`` ("h11" or "httptools") bound to this guard (uvicorn
        builds protocols from a class)."""
        base = GuardedH11Protocol if http == "h11" else guarded_httptools()
        return type("Guarded", (base,), {"guard": self})


class _Guarded:
    """The rules of a :class:`ConnectionGuard`, for uvicorn's h11 and httptools protocols alike.

    Mixed in before the uvicorn protocol; each variant below says when a request has begun
    arriving (:meth:`_receiving`) and arms or disarms the deadline as its parser reports progress.
    """

    guard: ClassVar[ConnectionGuard]
    on_made: Callable[[], None] = staticmethod(_nothing)  # set per instance for handed-over connections
    _deadline: asyncio.TimerHandle | None = None
    _body_phase = False  # the deadline armed is the body's (its head is in)
    _draining = False
    _served = False
    _idle_since = 0.0
    _write_timer: asyncio.TimerHandle | None = None
    _write_mark = 0  # bytes waiting to be written when the write watch was (re)armed
    # What the uvicorn protocol provides (declared for the type checker).
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    app: Any

    def _receiving(self) -> bool:
        """Whether part of a request has arrived and the rest has not."""
        raise NotImplementedError

    def _in_flight(self) -> bool:
        """A request is being answered (its cycle started and not complete)."""
        return self.cycle is not None and not self.cycle.response_complete

    # -- connection lifetime -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self.guard
        try:
            super().connection_made(transport)  # type: ignore[misc]
            transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass: no isinstance
            self._idle_since = self.loop.time()
            EVENTS.add("connections")
            if nodelay(transport) is False:
                EVENTS.add("connections_without_nodelay")
            if len(self.connections) > guard.limit and not self._make_room():
                if len(self.connections) > guard.hard_limit:
                    EVENTS.add("connections_aborted")
                    transport.abort()
                    return
                EVENTS.add("connections_refused")
                self.app = guard.refuse  # uvicorn runs self.app for each request on this connection
            wait = guard.header_timeout_s
            if guard.is_stopping():
                self._draining = True
                wait = min(wait, DRAIN_WAIT_S)
            self._arm(wait)
        finally:
            self.on_made()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._unwatch_writes()
        try:
            super().connection_lost(exc)  # type: ignore[misc]
        finally:
            self.guard.on_lost()

    def on_response_complete(self) -> None:
        self._served = True
        self._idle_since = self.loop.time()
        super().on_response_complete()  # type: ignore[misc]
        self._watch_closing()

    def shutdown(self) -> None:
        """uvicorn's graceful stop, except that a request on its way is still answered."""
        on_its_way = self._receiving() or not self._served
        if self._in_flight() or not on_its_way or self.transport.is_closing():
            super().shutdown()  # type: ignore[misc]
            self._watch_closing()
            return
        self._draining = True
        self._disarm()
        self._arm(DRAIN_WAIT_S)

    # -- the write timeout ---------------------------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's buffer is full (the kernel's is too): the client must take bytes in time."""
        super().pause_writing()  # type: ignore[misc]
        self._watch_writes()

    def resume_writing(self) -> None:
        self._unwatch_writes()
        super().resume_writing()  # type: ignore[misc]

    def _watch_closing(self) -> None:
        """A connection closing with bytes still unsent waits for its client too: watch it."""
        if self.transport.is_closing() and self.transport.get_write_buffer_size():
            self._watch_writes()

    def _watch_writes(self) -> None:
        if self._write_timer is None:
            self._write_mark = self.transport.get_write_buffer_size()
            self._write_timer = self.loop.call_later(self.guard.write_timeout_s, self._check_writes)

    def _unwatch_writes(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _check_writes(self) -> None:
        """The client took none of the waiting bytes since the last check: drop it (its cycle
        reads a disconnect, so a stream ends and gives its places back); else watch on."""
        self._write_timer = None
        waiting = self.transport.get_write_buffer_size()
        if not waiting:
            return
        if waiting < self._write_mark:
            self._watch_writes()
            return
        EVENTS.add("writes_timed_out")
        logger.warning(
            "dropped a client that took no bytes for %g s (%d waiting)", self.guard.write_timeout_s, waiting
        )
        self.transport.abort()

    # -- the request deadline ------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        in_flight = self._in_flight()
        if self.transport.is_closing() or (in_flight and self.cycle.response_started):
            return
        if not in_flight and not self._receiving():
            self.transport.close()  # never sent a byte of this request: close without a word
            if not self._draining:
                EVENTS.add("requests_timed_out")
            return
        if self._body_phase:
            EVENTS.add("bodies_timed_out")
            self.transport.write(self.guard.body_timeout_response)
        else:
            EVENTS.add("requests_timed_out")
            self.transport.write(self.guard.timeout_response)
        if in_flight:  # a body still trickling: the app's receive() reports a disconnect
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()
        self._watch_closing()

    def _arm_body(self) -> None:
        """The head is in and its body is not: the deadline is the body's from now."""
        if not self._body_phase:
            self._body_phase = True
            self._disarm()
            self._arm(self.guard.body_timeout_s)

    def _refuse_head(self) -> None:
        """A head over ``--max-head-bytes``: 431, and the connection closes."""
        EVENTS.add("heads_refused")
        logger.warning("refused a request head larger than %d bytes: 431", self.guard.max_head_bytes)
        self._disarm()
        self.transport.write(self.guard.head_too_large_response)
        self.transport.close()
        self._watch_closing()

    # -- the connection limit ------------------------------------------------------------------

    def _idle(self, now: float) -> bool:
        """Nothing in progress, nothing buffered or unread, for :data:`EVICT_IDLE_S` at least."""
        if self._in_flight() or self._receiving() or self.transport.is_closing():
            return False
        return now - self._idle_since >= EVICT_IDLE_S and not unread_bytes(self.transport)

    def _make_room(self) -> bool:
        """Close the connection idle longest, if one is; True if room was made."""
        now = self.loop.time()
        idle = [c for c in self.connections if c is not self and isinstance(c, _Guarded) and c._idle(now)]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c._idle_since)
        victim._disarm()
        victim.transport.close()
        victim.connections.discard(victim)  # it no longer counts, although connection_lost comes later
        EVENTS.add("connections_evicted_idle")
        return True


class GuardedH11Protocol(_Guarded, H11Protocol):
    """uvicorn's ``H11Protocol`` under a :class:`ConnectionGuard` (see the module docstring)."""

    def _receiving(self) -> bool:
        return bool(self.conn.trailing_data[0])

    def handle_events(self) -> None:
        # Also called by on_response_complete for a pipelined request, so the deadline is
        # managed here rather than in data_received.
        super().handle_events()
        if self._draining and self._in_flight():
            self.cycle.keep_alive = False
        state = self.conn.their_state
        if state is h11.IDLE:
            self._body_phase = False
            if self.conn.trailing_data[0]:
                self._arm(
                    self.guard.header_timeout_s
                )  # part of a head: the deadline runs from its first byte
        elif state is h11.SEND_BODY:
            self._arm_body()  # head read, body still coming: the body's deadline, from now
        else:  # DONE, MUST_CLOSE, CLOSED, ERROR: the whole request is in
            self._body_phase = False
            self._disarm()

    def send_400_response(self, msg: str) -> None:
        # h11 refuses a head longer than its buffer (--max-head-bytes) as any bad request: 431 here.
        if len(self.conn.trailing_data[0]) > self.guard.max_head_bytes:
            self._refuse_head()
            return
        super().send_400_response(msg)


def guarded_httptools() -> type[Any]:
    """uvicorn's ``HttpToolsProtocol`` under a guard (``uvicorn-fast``); httptools is imported here,
    so that the other servers run without it.

    httptools parses everything it is given at once and reports each step through callbacks: a
    request's first byte (``on_message_begin``) arms the deadline, its end
    (``on_message_complete``) disarms it.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(_Guarded, HttpToolsProtocol):
        _partial = False  # between a request's first byte and its end
        _in_head = False  # between a request's first byte and the end of its head
        _head_bytes = 0  # bytes fed to the parser while this head was incomplete
        _refused = False

        def _receiving(self) -> bool:
            return self._partial

        def data_received(self, data: bytes) -> None:
            # httptools buffers a header field until it ends, however long: the head is counted
            # here, chunk by chunk as the transport reads it, and cut at the limit.
            if self._refused:
                return
            was_in_head, was_idle = self._in_head, not self._partial
            super().data_received(data)
            if not self._in_head or self._refused:
                return
            if was_in_head:
                self._head_bytes += len(data)
            else:  # began in this chunk: after an earlier request's end (not counted) or at its start
                self._head_bytes = len(data) if was_idle else 0
            if self._head_bytes > self.guard.max_head_bytes and not self.transport.is_closing():
                self._refused = True
                self._refuse_head()

        def on_message_begin(self) -> None:
            self._partial = self._in_head = True
            self._head_bytes = 0
            self._body_phase = False
            super().on_message_begin()
            self._arm(self.guard.header_timeout_s)  # armed already for a connection's first request

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()
            if self._draining and self._in_flight():
                self.cycle.keep_alive = False
            if any(name in _FRAMING for name, _ in self.headers):  # a body follows
                self._arm_body()

        def on_message_complete(self) -> None:
            self._partial = False
            self._body_phase = False
            self._disarm()
            super().on_message_complete()

    return GuardedHttpToolsProtocol
