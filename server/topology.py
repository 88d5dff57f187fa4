"""How the service serves HTTP: ``single`` here, :mod:`server.workers` and :mod:`server.loops` the others.

Every topology binds its listening socket itself with :func:`bind_listener`, never through
``uvicorn.Config.bind_socket``: that one creates the socket with ``proto=0``; accepted sockets
inherit it, asyncio only sets TCP_NODELAY when ``proto == IPPROTO_TCP``, and every keep-alive
response (uvicorn writes head and body separately) then waits ~40 ms for the client's delayed
ACK. That is what ``uvicorn --workers N`` does today (Kludex/uvicorn#3149); measuring it would
compare a socket option, not interpreters.

Shutdown: SIGTERM or SIGINT stops accepting, lets requests in flight finish (up to
:data:`GRACEFUL_S`), answers requests already on their way (:mod:`server.protocol`), stops the
pools through each app's lifespan, and exits 0. The service handles the signals itself:
uvicorn's ``Server.serve`` would re-raise them after a graceful stop, so the process would die
by the signal instead of exiting 0. Computes already running are waited for; a thread cannot
be interrupted.

Every topology serves through :class:`ServiceServer`: uvicorn's ``Server`` with the guarded
h11 protocol (httptools on uvloop for ``--server uvicorn-fast``: request deadlines, head size,
connection limit, write timeout, drain) and the app behind ftscale's ASGI guard (framing and
header count: :mod:`server.guard`), and, where no listener of its own, fed connections that
another thread or process accepted (:meth:`ServiceServer.connect`). Its listeners back off when
accept() runs out of descriptors, and its loop reports that once a second
(:mod:`server.accepting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ftscale.server import accepting, grace
from ftscale.server.apps import make_app
from ftscale.server.config import HttpServer, ServerConfig
from ftscale.server.guard import guarded
from ftscale.server.protocol import ConnectionGuard
from ftscale.server.units import AppFactory

GRACEFUL_S = grace.GRACEFUL_S
BACKLOG = 2048
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HANDOVER_WAIT_S = 1.0  # at shutdown, how long to wait for handed-over connections to register

logger = logging.getLogger("ftscale.server")


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket whose accepted connections get TCP_NODELAY from asyncio, and whose
    accept() backs off once it runs out of descriptors (:class:`server.accepting.Listener`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = accepting.Listener(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Linux copies it to accepted sockets: TCP_NODELAY holds however a connection's socket
        # object is made later (proto=0 after passing it to another process, say).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


# uvicorn's (loop, http) for each uvicorn flavour; the other servers do not run through uvicorn.
UVICORN_STACKS: dict[HttpServer, tuple[str, str]] = {
    HttpServer.UVICORN_H11: ("asyncio", "h11"),
    HttpServer.UVICORN_FAST: ("uvloop", "httptools"),
}


def uvicorn_config(app: Any, config: ServerConfig, **overrides: Any) -> uvicorn.Config:
    """uvicorn settings shared by every topology: h11 on asyncio (``uvicorn-h11``) or httptools on
    uvloop (``uvicorn-fast``), no websockets."""
    verbose = config.log_level.lower() in {"trace", "debug"}
    loop, http = UVICORN_STACKS[config.server]
    settings: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "loop": loop,
        "http": http,
        "ws": "none",
        "lifespan": "on",
        "log_level": config.log_level,
        "access_log": verbose,
        "timeout_graceful_shutdown": GRACEFUL_S,
        "timeout_keep_alive": config.keepalive_timeout_s,
        "backlog": BACKLOG,
    }
    if config.server is HttpServer.UVICORN_H11:  # httptools has no such setting: server.protocol counts
        settings["h11_max_incomplete_event_size"] = config.max_head_bytes
    settings.update(overrides)
    return uvicorn.Config(guarded(app, config), **settings)


class ServiceServer(uvicorn.Server):
    """uvicorn's Server with the guarded protocol, minus its signal handling (the topology's).

    Started with sockets, it accepts on them as uvicorn does. Started without (``fed``), it
    serves connections accepted elsewhere: :meth:`hand_over` (any thread) then
    :meth:`connect` (its loop) for each; a connection counts in :attr:`load` from the first
    until it closes, and at shutdown the server waits for those in transit to register so that
    their requests are answered too.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        max_connections: int,
        header_timeout_s: float,
        limits: ServerConfig | None = None,
    ) -> None:
        super().__init__(config)
        limits = limits or ServerConfig(header_timeout_s=header_timeout_s)
        self.guard = ConnectionGuard(
            max_connections,
            header_timeout_s,
            lambda: self.should_exit,
            body_timeout_s=limits.body_timeout_s,
            write_timeout_s=limits.write_timeout_s,
            max_head_bytes=limits.max_head_bytes,
        )
        if not isinstance(config.http, str):
            raise TypeError(f"uvicorn.Config.http must name a protocol (h11, httptools), got {config.http!r}")
        self.protocol_class = self.guard.protocol_class(config.http)
        config.http = self.protocol_class
        self.fed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._in_transit = 0
        self._lock = threading.Lock()
        self._adoptions: set[asyncio.Task[object]] = set()
        self._closed = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self, force: bool = False) -> None:
        """Begin a graceful stop (from any thread); ``force`` stops waiting for connections."""
        grace.begin_stop()  # streams end at their next chunk
        grace.watchdog(what="the uvicorn server")  # uvicorn bounds the wait for requests, not the rest
        self.should_exit = True
        if force:
            self.force_exit = True

    @property
    def load(self) -> int:
        """Open connections plus those handed over and not yet set up (read from any thread)."""
        return len(self.server_state.connections) + self._in_transit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        accepting.quiet_accept_errors(self.loop)
        if sockets:
            await super().startup(sockets=sockets)
            return
        # uvicorn's startup minus the listener: the lifespan (which starts the pool), then ready.
        self.fed = True
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise SystemExit(STARTUP_FAILURE)
        self.servers = []
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        for listener in sockets or ():
            self._drain_backlog(listener)
        deadline = loop.time() + HANDOVER_WAIT_S
        while (self._in_transit or self._adoptions) and not self.force_exit and loop.time() < deadline:
            await asyncio.sleep(0.01)
        try:
            await super().shutdown(sockets=sockets)
        finally:
            self._closed = True

    def hand_over(self) -> None:
        """Count a connection about to be passed to :meth:`connect` (from any thread)."""
        with self._lock:
            self._in_transit += 1

    def _settled(self) -> None:
        with self._lock:
            self._in_transit -= 1

    def connect(self, conn: socket.socket) -> None:
        """Serve an accepted connection (on this server's loop, after :meth:`hand_over`)."""
        if self._closed or self.loop is None:
            self._dropped(conn)
            return
        task = self.loop.create_task(self.loop.connect_accepted_socket(self._protocol, conn))
        self._adoptions.add(task)
        task.add_done_callback(lambda done: self._adopted(done, conn))

    def _adopted(self, task: asyncio.Task[object], conn: socket.socket) -> None:
        self._adoptions.discard(task)
        # Success means connection_made ran (asyncio calls it before the transport is
        # reported ready) and settled the count; a failure happened before it.
        if task.cancelled() or task.exception() is not None:
            self._dropped(conn)

    def _dropped(self, conn: socket.socket) -> None:
        self._settled()
        self.guard.on_lost()
        conn.close()

    def _protocol(self) -> asyncio.Protocol:
        # What uvicorn's Server.startup passes to create_server, for a connection accepted elsewhere.
        protocol = self.protocol_class(
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=self.loop,
        )
        protocol.on_made = self._settled
        return cast(asyncio.Protocol, protocol)

    def _drain_backlog(self, listener: socket.socket, most: int = 1000) -> None:
        """Take the connections the kernel accepted but the server has not, before closing.

        Closing a listener resets the connections in its backlog; these clients have sent, or
        are sending, a request, so they are served (with ``connection: close``) instead.
        """
        blocking = listener.getblocking()
        listener.setblocking(False)
        try:
            for _ in range(most):
                try:
                    conn, _ = listener.accept()
                except OSError:  # BlockingIOError: the backlog is empty
                    return
                self.hand_over()
                self.connect(conn)
        finally:
            listener.setblocking(blocking)


@contextlib.contextmanager
def on_signals(stop: Callable[[bool], None]) -> Iterator[None]:
    """Call ``stop(force)`` on SIGTERM/SIGINT (``force`` on a repeated SIGINT); restore after."""
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        stop(signum == signal.SIGINT and signal.SIGINT in seen)
        seen.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_single(config: ServerConfig, factory: AppFactory = make_app) -> int:
    """One process, one event loop, one pool of ``pool_size``; ``factory`` builds the app."""
    listener = bind_listener(config.host, config.port)
    server = ServiceServer(
        uvicorn_config(factory(config), config),
        config.effective_max_connections,
        config.header_timeout_s,
        limits=config,
    )
    logger.info("serving on http://%s:%d (single)", config.host, config.port)
    with on_signals(server.request_exit):
        server.run(sockets=[listener])
    return 0 if server.started else STARTUP_FAILURE
