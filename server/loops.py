"""N event loops in N threads of one process, each serving HTTP: the free-threaded-native design.

``loops`` (the design to use): the main thread's event loop owns the one listening socket and
does nothing but accept connections and hand each to the loop thread that has the fewest open
connections; that loop wraps it in uvicorn's h11 protocol and serves it for its whole life.
Every loop thread runs its own uvicorn ``Server`` with its own app, anyio limiter and pool, so
the loops share nothing but the process (and, on a GIL build, the GIL).

``loops-reuseport`` (kept so the bench can show the difference): each loop thread binds its
own SO_REUSEPORT socket on the same port and runs an unmodified uvicorn ``Server`` on it; the
kernel picks a socket per connection by hashing its address tuple.

Why not the obvious version, one ``uvicorn.Server`` per thread on a SO_REUSEPORT socket made
like ``uvicorn.Config.bind_socket`` makes one? Two reasons, both measured (see
docs/servers-and-topologies.md):

* ``socket.socket(family)`` leaves ``proto=0``; accepted sockets inherit it, and asyncio only
  sets TCP_NODELAY when ``proto == IPPROTO_TCP``. uvicorn writes a response's head and body
  in two sends, so Nagle holds the body until the client's delayed ACK (~40 ms): every
  keep-alive request costs ~44 ms however idle the loop is. The service binds with
  ``IPPROTO_TCP`` (:func:`server.topology.bind_listener`), in every topology.
* SO_REUSEPORT balances connections by hash, not by load: with a few keep-alive connections
  some loops get several and some none, and a connection stays on its loop. The acceptor
  balances by open connections instead.

Limits: balancing is per connection, not per request; a loop whose connections all send heavy
requests stays busy while another idles. Accepting costs the main thread a few microseconds per
connection, negligible with keep-alive clients but a ceiling for one-request connections. On a
GIL build the loops take turns on the GIL.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence

import uvicorn

from ftscale.server import accepting, grace
from ftscale.server.apps import make_app
from ftscale.server.config import ServerConfig
from ftscale.server.counters import UnitCounts
from ftscale.server.topology import (
    HANDLED_SIGNALS,
    HANDOVER_WAIT_S,
    ServiceServer,
    bind_listener,
    uvicorn_config,
)
from ftscale.server.units import AppFactory

logger = logging.getLogger("ftscale.server")

STARTUP_TIMEOUT_S = 60
ACCEPT_BACKOFF_S = 1.0


class LoopServer(ServiceServer):
    """One loop's uvicorn Server: on its own ``listener``, or fed connections by :meth:`adopt`."""

    def __init__(
        self, config: uvicorn.Config, index: int, limits: ServerConfig, listener: socket.socket | None = None
    ) -> None:
        per_loop = -(-limits.effective_max_connections // limits.threads)  # the process's limit, shared out
        super().__init__(config, per_loop, limits.header_timeout_s, limits=limits)
        self.index = index
        self.listener = listener
        self.ready = threading.Event()  # set when started, or when the thread ends
        self.ended = threading.Event()
        self.on_end: Callable[[], object] = lambda: None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[self.listener] if self.listener is not None else None)
        self.ready.set()

    def serve_in_thread(self) -> None:
        """The loop thread's body: run the server until it is asked to exit."""
        try:
            self.run(sockets=[self.listener] if self.listener is not None else None)
        except BaseException:  # a loop that dies must stop the process, not vanish
            logger.exception("event loop %d failed", self.index)
        finally:
            self.ended.set()
            self.ready.set()
            self.on_end()

    def adopt(self, conn: socket.socket) -> None:
        """Serve an accepted connection on this loop; called from the acceptor's thread.

        Also while the loop is stopping: the connection's request is on its way and is
        answered (with ``connection: close``); only a loop that has closed drops it.
        """
        self.hand_over()
        loop = self.loop
        try:
            if loop is None:
                raise RuntimeError("loop not started")
            loop.call_soon_threadsafe(self.connect, conn)
        except RuntimeError:  # not started, or its loop already closed
            self._dropped(conn)


def _least_loaded(servers: list[LoopServer], start: int) -> LoopServer:
    """The server with the fewest connections; ties go round-robin from ``start``."""
    count = len(servers)
    return min((servers[(start + k) % count] for k in range(count)), key=lambda s: s.load)


def _drain(listener: socket.socket, servers: list[LoopServer], turn: Iterator[int], most: int = 1000) -> None:
    """Hand over what the kernel accepted but the acceptor had not: closing would reset them."""
    for _ in range(most):
        try:
            conn, _ = listener.accept()
        except OSError:  # BlockingIOError: the backlog is empty
            return
        _least_loaded(servers, next(turn) % len(servers)).adopt(conn)


async def _settle(servers: list[LoopServer], timeout_s: float) -> None:
    """Wait (bounded) until every handed-over connection has reached its loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while any(s._in_transit for s in servers) and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def _accept(listener: socket.socket, servers: list[LoopServer], turn: Iterator[int]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            conn, _ = await loop.sock_accept(listener)
        except OSError as exc:  # e.g. out of file descriptors: back off, as asyncio's servers do
            accepting.report(exc)
            await asyncio.sleep(ACCEPT_BACKOFF_S)
            continue
        _least_loaded(servers, next(turn) % len(servers)).adopt(conn)


async def _supervise(servers: list[LoopServer], acceptor: socket.socket | None) -> int:
    """Start the loops, accept (if ``acceptor``), stop everything on a signal; exit status."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal(signum: int) -> None:
        grace.begin_stop()  # streams end at their next chunk
        grace.watchdog(what="the event loops")
        for server in servers if stopping.is_set() else ():
            server.request_exit(force=True)  # a second signal: stop waiting for connections
        stopping.set()

    for signum in HANDLED_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    threads = []
    for server in servers:
        server.on_end = functools.partial(loop.call_soon_threadsafe, stopping.set)
        threads.append(threading.Thread(target=server.serve_in_thread, name=f"ftscale-loop-{server.index}"))
        threads[-1].start()

    def all_ready() -> bool:
        return all(s.ready.wait(STARTUP_TIMEOUT_S) for s in servers)

    status = 0
    turn = itertools.count()
    accepting: asyncio.Task[None] | None = None
    ready = await asyncio.to_thread(all_ready)
    if not ready or any(not s.started or s.ended.is_set() for s in servers):
        logger.error("event loops failed to start")
        status = uvicorn.config.STARTUP_FAILURE
    else:
        if acceptor is not None:
            accepting = loop.create_task(_accept(acceptor, servers, turn))
            accepting.add_done_callback(lambda _: stopping.set())
        await stopping.wait()
        if any(s.ended.is_set() and not s.should_exit for s in servers):
            logger.error("an event loop stopped unexpectedly; stopping the service")
            status = 1
        if accepting is not None and accepting.done():
            logger.error("the acceptor stopped unexpectedly: %r", accepting.exception())
            status = 1
    if accepting is not None:
        accepting.cancel()
        await asyncio.gather(accepting, return_exceptions=True)
    if acceptor is not None:
        _drain(acceptor, servers, turn)
        acceptor.close()
        await _settle(servers, HANDOVER_WAIT_S)
    for server in servers:
        server.request_exit()

    def join_all() -> None:
        for thread in threads:
            thread.join()

    await asyncio.to_thread(join_all)
    served = ", ".join(f"loop {s.index}: {s.server_state.total_requests}" for s in servers)
    logger.info("requests served per loop: %s", served)
    return status


def _loop_servers(
    config: ServerConfig, listeners: Sequence[socket.socket | None], factory: AppFactory
) -> list[LoopServer]:
    """One server per loop, each with its own app, all counting requests in one table."""
    units = UnitCounts([f"loop {i}" for i in range(config.threads)])
    return [
        LoopServer(
            uvicorn_config(factory(config, loop_index=i, units=units, unit=i), config), i, config, listener
        )
        for i, listener in enumerate(listeners)
    ]


def run_loops(config: ServerConfig, factory: AppFactory = make_app) -> int:
    """``threads`` event loops fed by one acceptor balancing connections (the ``loops`` topology)."""
    acceptor = bind_listener(config.host, config.port)
    acceptor.setblocking(False)
    servers = _loop_servers(config, [None] * config.threads, factory)
    logger.info("serving on http://%s:%d (%d loops, one acceptor)", config.host, config.port, config.threads)
    return asyncio.run(_supervise(servers, acceptor))


def run_loops_reuseport(config: ServerConfig, factory: AppFactory = make_app) -> int:
    """``threads`` event loops, each on its own SO_REUSEPORT socket (kernel balancing)."""
    listeners: list[socket.socket] = []
    try:
        for _ in range(config.threads):
            port = listeners[0].getsockname()[1] if listeners else config.port
            listeners.append(bind_listener(config.host, port, reuse_port=True))
    except OSError:
        for sock in listeners:
            sock.close()
        raise
    servers = _loop_servers(config, listeners, factory)
    logger.info("serving on http://%s:%d (%d loops, SO_REUSEPORT)", config.host, config.port, config.threads)
    return asyncio.run(_supervise(servers, None))
