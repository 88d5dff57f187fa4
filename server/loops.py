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
like ``uvicorn.Config.bind_socket`` makes one? Two reasons, both measured (see LOOPS.md):

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
from collections.abc import Callable

import uvicorn
from ftscale.server.app import create_app
from ftscale.server.config import ServerConfig
from ftscale.server.topology import HANDLED_SIGNALS, ServiceServer, bind_listener, uvicorn_config

logger = logging.getLogger("ftscale.server")

STARTUP_TIMEOUT_S = 60
ACCEPT_BACKOFF_S = 1.0


class LoopServer(ServiceServer):
    """One loop's uvicorn Server: on its own ``listener``, or fed connections by :meth:`adopt`."""

    def __init__(self, config: uvicorn.Config, index: int, listener: socket.socket | None = None) -> None:
        super().__init__(config)
        self.index = index
        self.listener = listener
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()  # set when started, or when the thread ends
        self.ended = threading.Event()
        self.on_end: Callable[[], object] = lambda: None
        self._in_transit = 0
        self._lock = threading.Lock()
        self._adoptions: set[asyncio.Task[object]] = set()
        self._protocol_class: type[asyncio.Protocol] | None = None  # set by startup

    @property
    def load(self) -> int:
        """Open connections plus those handed over and not yet set up (read from any thread)."""
        return len(self.server_state.connections) + self._in_transit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        if self.listener is not None:
            await super().startup(sockets=[self.listener])
        else:
            # uvicorn's startup minus the listener: the lifespan (which starts the pool), then ready.
            await self.lifespan.startup()
            if self.lifespan.should_exit:
                raise SystemExit(uvicorn.config.STARTUP_FAILURE)
            self._protocol_class = _registering(self.config.http_protocol_class, self._settled)
            self.servers = []
            self.started = True
        self.ready.set()

    def serve_in_thread(self) -> None:
        """The loop thread's body: run the server until it is asked to exit."""
        try:
            self.run()
        except BaseException:  # a loop that dies must stop the process, not vanish
            logger.exception("event loop %d failed", self.index)
        finally:
            self.ended.set()
            self.ready.set()
            self.on_end()

    def adopt(self, conn: socket.socket) -> None:
        """Serve an accepted connection on this loop; called from the acceptor's thread."""
        loop = self.loop
        with self._lock:
            self._in_transit += 1
        try:
            if loop is None or self.should_exit:
                raise RuntimeError("loop not serving")
            loop.call_soon_threadsafe(self._connect, conn)
        except RuntimeError:  # not started, stopping, or its loop already closed
            self._settled()
            conn.close()

    def _settled(self) -> None:
        with self._lock:
            self._in_transit -= 1

    def _connect(self, conn: socket.socket) -> None:
        assert self.loop is not None
        if self.should_exit:
            self._settled()
            conn.close()
            return
        task = self.loop.create_task(self.loop.connect_accepted_socket(self._protocol, conn))
        self._adoptions.add(task)
        task.add_done_callback(lambda done: self._adopted(done, conn))

    def _adopted(self, task: asyncio.Task[object], conn: socket.socket) -> None:
        self._adoptions.discard(task)
        # Success means connection_made ran (asyncio calls it before the transport is
        # reported ready) and settled the count; a failure happened before it.
        if task.cancelled() or task.exception() is not None:
            self._settled()
            conn.close()

    def _protocol(self) -> asyncio.Protocol:
        # What uvicorn's Server.startup passes to create_server, for a connection we accepted.
        assert self._protocol_class is not None, "server not started"
        return self._protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=self.loop,
        )


def _registering(base: type[asyncio.Protocol], settled: Callable[[], None]) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HTTP protocol) that reports when it has registered its connection.

    uvicorn adds a connection to ``server_state.connections`` in ``connection_made``; counting
    a handed-over connection as in transit until exactly then keeps :attr:`LoopServer.load`
    from counting it twice or not at all while a burst of connections is being spread.
    """

    class Registering(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            try:
                super().connection_made(transport)
            finally:
                settled()

    return Registering


def _least_loaded(servers: list[LoopServer], start: int) -> LoopServer:
    """The server with the fewest connections; ties go round-robin from ``start``."""
    count = len(servers)
    return min((servers[(start + k) % count] for k in range(count)), key=lambda s: s.load)


async def _accept(listener: socket.socket, servers: list[LoopServer]) -> None:
    loop = asyncio.get_running_loop()
    turn = itertools.count()
    while True:
        try:
            conn, _ = await loop.sock_accept(listener)
        except OSError as exc:  # e.g. out of file descriptors: back off, as asyncio's servers do
            logger.error("accept failed: %s", exc)
            await asyncio.sleep(ACCEPT_BACKOFF_S)
            continue
        _least_loaded(servers, next(turn) % len(servers)).adopt(conn)


async def _supervise(servers: list[LoopServer], acceptor: socket.socket | None) -> int:
    """Start the loops, accept (if ``acceptor``), stop everything on a signal; exit status."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal(signum: int) -> None:
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
    accepting: asyncio.Task[None] | None = None
    ready = await asyncio.to_thread(all_ready)
    if not ready or any(not s.started or s.ended.is_set() for s in servers):
        logger.error("event loops failed to start")
        status = uvicorn.config.STARTUP_FAILURE
    else:
        if acceptor is not None:
            accepting = loop.create_task(_accept(acceptor, servers))
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
        acceptor.close()
    for server in servers:
        server.request_exit()

    def join_all() -> None:
        for thread in threads:
            thread.join()

    await asyncio.to_thread(join_all)
    served = ", ".join(f"loop {s.index}: {s.server_state.total_requests}" for s in servers)
    logger.info("requests served per loop: %s", served)
    return status


def run_loops(config: ServerConfig) -> int:
    """``threads`` event loops fed by one acceptor balancing connections (the ``loops`` topology)."""
    acceptor = bind_listener(config.host, config.port)
    acceptor.setblocking(False)
    servers = [
        LoopServer(uvicorn_config(create_app(config, loop_index=i), config), i) for i in range(config.threads)
    ]
    logger.info("serving on http://%s:%d (%d loops, one acceptor)", config.host, config.port, config.threads)
    return asyncio.run(_supervise(servers, acceptor))


def run_loops_reuseport(config: ServerConfig) -> int:
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
    servers = [
        LoopServer(uvicorn_config(create_app(config, loop_index=i), config), i, listener)
        for i, listener in enumerate(listeners)
    ]
    logger.info("serving on http://%s:%d (%d loops, SO_REUSEPORT)", config.host, config.port, config.threads)
    return asyncio.run(_supervise(servers, None))
