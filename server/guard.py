"""The ASGI guard in front of every app: framing rules and the limits a server leaves to ftscale.

Every server runs its app through :class:`RequestGuard` (:func:`guarded`), which answers, before
the app sees the request, with a JSON body and ``connection: close`` (every server closes the
connection after such an answer, so nothing that follows on it is read as a request):

* **400** for a request carrying both ``Content-Length`` and ``Transfer-Encoding`` (RFC 9112
  §6.1: a smuggling attempt; h11 frames it by ``Transfer-Encoding`` and would keep the connection
  open), and for an HTTP/1.1 request with no ``Host`` field or with more than one (RFC 9112
  §3.2; httptools and granian pass both through);
* **431** for a head of more than ``--max-headers`` fields, or larger than ``--max-head-bytes``
  (each server bounds a head it is still reading: :mod:`server.limits`; a head that arrived whole
  in one read is measured here).

Where the server has no setting of its own for them (:data:`server.limits.ENFORCED_BY`: granian
and hypercorn), it also holds

* the **body timeout**: a request body that has not arrived ``--body-timeout`` seconds after its
  head gets 408, and the app reads a disconnect. On granian the guard then closes the connection
  itself once the client has the answer: granian reads the body in a task of its own, which
  cancelling the ASGI ``receive`` does not stop, and while that task waits for bytes that never
  come granian keeps the connection open after the 408, up to its header timeout (seen under CPU
  contention). The guard looks every :data:`CLOSE_AFTER_408_S` (off the event loop: the look scans
  this process's sockets) and shuts the connection down once the client has acknowledged bytes
  sent after the deadline, or after ``--write-timeout`` when it has not; a connection granian
  closed meanwhile, or a later one between the same addresses, is left alone;
* the **write timeout** (granian only; hypercorn's is on its connection, uvicorn's in its
  protocol): a send that the client has not taken within ``--write-timeout`` drops the client:
  the server's socket is shut down under it (:func:`server.sockets.sever`) and the app's send
  raises :class:`ClientTooSlow` (an ``OSError``, as a send to a gone client does).

It reads only the scope's headers and wraps ``receive`` and ``send``; the app is untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ftscale.server.config import ServerConfig
from ftscale.server.counters import EVENTS
from ftscale.server.sockets import ConnectionState, connection_state, sever
from ftscale.vocab import HttpServer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("ftscale.server")

DISCONNECT: Message = {"type": "http.disconnect"}
# After a 408 for a stalled body on granian: how often the guard looks whether the client has the
# answer and granian still holds the connection open.
CLOSE_AFTER_408_S = 0.5
_closing: set[asyncio.Task[None]] = set()  # the guard's own tasks, held until they end


class ClientTooSlow(OSError):
    """The client took none of a response's bytes within the write timeout; it was dropped."""


def head_bytes(scope: Scope) -> int:
    """The size of the request's head as sent, give or take spaces around the field values."""
    line = (
        len(scope.get("method", "")) + len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
    )
    fields = sum(len(name) + len(value) + 4 for name, value in scope.get("headers") or [])
    return line + len(" HTTP/1.1\r\n?") + fields + 2


def framing_problem(
    scope: Scope, max_headers: int, max_head_bytes: int, empty_host_is_none: bool = False
) -> tuple[int, str, str] | None:
    """(status, detail, counter) for a request the guard refuses, or None.

    ``empty_host_is_none``: the server puts an empty ``Host`` in the scope of a request that had
    none (granian), so an empty one counts as none.
    """
    headers = scope.get("headers") or []
    if len(headers) > max_headers:
        return 431, f"more than {max_headers} header fields", "heads_refused"
    if head_bytes(scope) > max_head_bytes:
        return 431, f"request head larger than {max_head_bytes} bytes", "heads_refused"
    hosts = 0
    length = chunked = False
    for name, value in headers:
        name = bytes(name).lower()
        if name == b"host":
            hosts += 1 if value or not empty_host_is_none else 0
        elif name == b"content-length":
            length = True
        elif name == b"transfer-encoding":
            chunked = True
    if length and chunked:
        return 400, "Content-Length and Transfer-Encoding together", "framing_refused"
    if hosts > 1:
        return 400, "more than one Host header field", "framing_refused"
    if hosts == 0 and scope.get("http_version") == "1.1":
        return 400, "no Host header field", "framing_refused"
    return None


async def send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    """A complete JSON response that closes the connection."""
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": _close_headers(body)})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """An ASGI app in front of ``app`` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        config: ServerConfig,
        *,
        body_timeout: bool = False,
        write_timeout: bool = False,
        close_after_408: bool = False,
    ) -> None:
        self.app = app
        self.max_headers = config.max_headers
        self.max_head_bytes = config.max_head_bytes
        self.empty_host_is_none = config.server is HttpServer.GRANIAN
        self.body_timeout_s = config.body_timeout_s if body_timeout else None
        self.write_timeout_s = config.write_timeout_s if write_timeout else None
        self.close_after_408 = close_after_408
        self.close_within_s = config.write_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = framing_problem(scope, self.max_headers, self.max_head_bytes, self.empty_host_is_none)
        if problem is not None:
            status, detail, counter = problem
            EVENTS.add(counter)
            logger.warning("refused %s %s: %d %s", scope.get("method"), scope.get("path"), status, detail)
            await send_json(send, status, {"detail": detail})
            return
        if self.body_timeout_s is None and self.write_timeout_s is None:
            await self.app(scope, receive, send)
            return
        await _Timed(self, scope, receive, send).run()


class _Timed:
    """One request under the guard's body and write timeouts."""

    def __init__(self, guard: RequestGuard, scope: Scope, receive: Receive, send: Send) -> None:
        self.guard, self.scope, self._receive, self._send = guard, scope, receive, send
        self.loop = asyncio.get_running_loop()
        timeout = guard.body_timeout_s
        self.body_deadline = None if timeout is None else self.loop.time() + timeout
        self.started = False
        self.answered = False  # the guard answered (408) or dropped the client: the app's sends go nowhere

    async def run(self) -> None:
        try:
            await self.guard.app(self.scope, self.receive, self.send)
        except ClientTooSlow:
            pass  # counted and logged where it was raised

    async def receive(self) -> Message:
        if self.answered:
            return dict(DISCONNECT)
        if self.body_deadline is None:
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), max(0.0, self.body_deadline - self.loop.time()))
        except TimeoutError:
            await self._body_timed_out()
            return dict(DISCONNECT)
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_deadline = None  # the body is in (or the client left): no deadline after it
        return message

    async def _body_timed_out(self) -> None:
        EVENTS.add("bodies_timed_out")
        self.answered = True
        timeout = self.guard.body_timeout_s
        logger.warning("refused %s %s: 408 body not received within %g s", *self._what(), timeout)
        before = await self._state() if self.guard.close_after_408 else None
        if not self.started:
            self.started = True
            body = json.dumps({"detail": f"request body not received within {timeout:g} s"}).encode()
            await self._send_bounded(
                {"type": "http.response.start", "status": 408, "headers": _close_headers(body)}
            )
            await self._send_bounded({"type": "http.response.body", "body": body})
        if before is not None:
            task = self.loop.create_task(self._close_once_answered(before))
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def _state(self) -> ConnectionState | None:
        return await asyncio.to_thread(connection_state, self.scope.get("client"), self.scope.get("server"))

    async def _close_once_answered(self, before: ConnectionState) -> None:
        """Shut the connection down once the client has acknowledged bytes sent since ``before``
        (the answer), or past the write timeout; leave it if the server closed it (see the module)."""
        give_up = self.loop.time() + self.guard.close_within_s
        try:
            while True:
                await asyncio.sleep(CLOSE_AFTER_408_S)
                now = await self._state()
                if now is None or now.inode != before.inode:
                    return  # the server closed it (and a later connection is not this one)
                was, now_acked = before.bytes_acked, now.bytes_acked
                acked = was is not None and now_acked is not None and now_acked > was
                if acked or now_acked is None or self.loop.time() >= give_up:
                    client, server = self.scope.get("client"), self.scope.get("server")
                    await asyncio.to_thread(sever, client, server, before.inode)
                    return
        except Exception as exc:  # a look that failed leaves the connection to the server
            logger.warning("could not close the connection of %s %s after its 408: %s", *self._what(), exc)

    def _what(self) -> tuple[Any, Any]:
        return self.scope.get("method"), self.scope.get("path")

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send_bounded(message)

    async def _send_bounded(self, message: Message) -> None:
        timeout = self.guard.write_timeout_s
        if timeout is None:
            await self._send(message)
            return
        try:
            await asyncio.wait_for(self._send(message), timeout)
        except TimeoutError:
            self.answered = True
            EVENTS.add("writes_timed_out")
            logger.warning("dropped the client of %s %s: it took no bytes for %g s", *self._what(), timeout)
            await asyncio.to_thread(sever, self.scope.get("client"), self.scope.get("server"))
            raise ClientTooSlow(f"the client took no bytes for {timeout:g} s") from None


def _close_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]


def guarded(app: Any, config: ServerConfig) -> RequestGuard:
    """``app`` behind the guard, with the timeouts ``config.server`` leaves to it."""
    asgi_timeouts = config.server in (HttpServer.GRANIAN, HttpServer.HYPERCORN)
    return RequestGuard(
        app,
        config,
        body_timeout=asgi_timeouts,
        write_timeout=config.server is HttpServer.GRANIAN,
        close_after_408=config.server is HttpServer.GRANIAN,
    )
