"""How the service serves HTTP: ``single`` and ``workers`` here, the loop designs in :mod:`server.loops`.

Every topology binds its listening socket itself with :func:`bind_listener`, never through
``uvicorn.Config.bind_socket``: that one creates the socket with ``proto=0``; accepted sockets
inherit it, asyncio only sets TCP_NODELAY when ``proto == IPPROTO_TCP``, and every keep-alive
response (uvicorn writes head and body separately) then waits ~40 ms for the client's delayed
ACK. That is what ``uvicorn --workers N`` does today (Kludex/uvicorn#3149); measuring it would
compare a socket option, not interpreters.

Shutdown: SIGTERM or SIGINT stops accepting, lets requests in flight finish (up to
:data:`GRACEFUL_S`), stops the pools through each app's lifespan, and exits 0. The service
handles the signals itself: uvicorn's ``Server.serve`` would re-raise them after a graceful
stop, so the process would die by the signal instead of exiting 0. Computes already running
are waited for; a thread cannot be interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn
from ftscale.server.app import create_app
from ftscale.server.config import ServerConfig
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

GRACEFUL_S = 10
BACKLOG = 2048
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger("ftscale.server")


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket whose accepted connections get TCP_NODELAY from asyncio."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def uvicorn_config(app: Any, config: ServerConfig, **overrides: Any) -> uvicorn.Config:
    """uvicorn settings shared by every topology: plain h11 on asyncio, no websockets."""
    verbose = config.log_level.lower() in {"trace", "debug"}
    settings: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "loop": "asyncio",
        "http": "h11",
        "ws": "none",
        "lifespan": "on",
        "log_level": config.log_level,
        "access_log": verbose,
        "timeout_graceful_shutdown": GRACEFUL_S,
        "backlog": BACKLOG,
    }
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


class ServiceServer(uvicorn.Server):
    """uvicorn's Server, minus its signal handling: the topology owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self, force: bool = False) -> None:
        """Begin a graceful stop (from any thread); ``force`` stops waiting for connections."""
        self.should_exit = True
        if force:
            self.force_exit = True


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


def run_single(config: ServerConfig) -> int:
    """One process, one event loop, one pool of ``pool_size``."""
    listener = bind_listener(config.host, config.port)
    server = ServiceServer(uvicorn_config(create_app(config), config))
    logger.info("serving on http://%s:%d (single)", config.host, config.port)
    with on_signals(server.request_exit):
        server.run(sockets=[listener])
    return 0 if server.started else STARTUP_FAILURE


def run_workers(config: ServerConfig) -> int:
    """``threads`` uvicorn worker processes (spawned) accepting from one shared socket.

    uvicorn's own supervisor: it restarts a worker that dies and, on SIGTERM/SIGINT, sends
    SIGTERM to every worker and joins them. Each worker builds its app from the pickled
    :class:`ServerConfig`; a worker's exit status is its SIGTERM (uvicorn re-raises it), the
    parent's is 0.
    """
    listener = bind_listener(config.host, config.port)
    factory = functools.partial(create_app, config)
    supervisor = Multiprocess(
        uvicorn_config(factory, config, factory=True, workers=config.threads),
        sockets=[listener],
    )
    logger.info("serving on http://%s:%d (%d workers)", config.host, config.port, config.threads)
    try:
        supervisor.run()
    finally:
        listener.close()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return STARTUP_FAILURE if failed else 0
