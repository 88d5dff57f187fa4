"""The service on granian (``ftscale serve --server granian``): HTTP in Rust, the app on asyncio.

What runs is decided by granian's wheel, not by an option (:mod:`ftscale.engines`):

* a **free-threaded** build gets granian's multi-threaded server: N worker *threads* of this
  process, each with its own event loop and its own SO_REUSEPORT socket. It serves ``single``
  (one worker thread) and ``loops`` (N).
* a **GIL** build gets its multi-process server: N worker *processes* spawned by this one, each
  with its own loop and SO_REUSEPORT socket. It serves ``single`` (one worker process) and
  ``workers`` (N).

Every worker runs its own app (pool, admission, counters slot): :class:`ftscale.server.units.UnitApp`.

Settings, chosen to match the other servers where granian has the knob: ASGI with lifespan;
HTTP/1 only, no websockets; ``--runtime-threads`` tokio threads per worker (default 1: they parse
HTTP and move bytes without running Python); one *blocking thread* (for ASGI it is granian's
bridge to the event loop, not an app pool, and granian refuses more); ``backpressure`` (granian's
cap on one worker's open connections) = ``--max-connections``; its header read timeout =
``--header-timeout``; the event loop is uvloop where installed (what granian's own ``auto``
picks), else asyncio; worker processes are spawned on every build.

Limits (:mod:`server.limits`): the head's size is granian's ``max_buffer_size``
(``--max-head-bytes``); its header read timeout bounds both a head and an idle keep-alive
connection, so it is the shorter of ``--header-timeout`` and ``--keepalive-timeout``; the header
count, framing rules, body deadline and write timeout are ftscale's ASGI guard in front of each
worker's app (:mod:`server.guard`).

Differences from uvicorn, all granian's: it binds its own sockets, one per worker, with
TCP_NODELAY (accepted sockets inherit it; ``/info`` checks the connection it is asked on); a
socket ftscale made cannot be given to it. Over the connection limit it holds new connections
back instead of answering 503. A worker that fails to start makes it exit 1 (not 3: granian
does not tell a failed start from a crash). On SIGTERM it waits for requests in flight without a
time limit: ftscale tells the apps (streams end at their next chunk) and bounds the stop
(:func:`bound_the_stop`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import multiprocessing
import os
import signal
import socket
from typing import Any

from ftscale.server import grace, lifeline
from ftscale.server.app import create_app
from ftscale.server.config import ServerConfig
from ftscale.server.counters import UnitCounts
from ftscale.server.guard import guarded
from ftscale.server.limits import granian_idle_timeout_s
from ftscale.server.sockets import free_port
from ftscale.server.topology import BACKLOG, GRACEFUL_S
from ftscale.server.units import AppFactory, SharedSlots, UnitApp
from ftscale.vocab import TOPOLOGIES

logger = logging.getLogger("ftscale.server")

MS_PER_S = 1000


def threaded() -> bool:
    """Whether this granian runs its workers as threads (its free-threaded wheel) or processes."""
    from granian._granian import BUILD_GIL

    return not BUILD_GIL


def unit_labels(config: ServerConfig, threads: bool) -> list[str]:
    if TOPOLOGIES[config.topology].units == "one":
        return [str(config.topology)]
    return [f"{'loop' if threads else 'worker'} {i}" for i in range(config.threads)]


class GuardedFactory:
    """``factory``'s app behind ftscale's ASGI guard (:mod:`server.guard`)."""

    def __init__(self, factory: AppFactory) -> None:
        self.factory = factory

    def __call__(
        self,
        config: ServerConfig,
        *,
        loop_index: int | None = None,
        units: UnitCounts | None = None,
        unit: int = 0,
    ) -> Any:
        return guarded(self.factory(config, loop_index=loop_index, units=units, unit=unit), config)


def load_app(
    config: ServerConfig,
    factory: AppFactory,
    slots: SharedSlots,
    loops: bool,
    parent_pid: int,
    stop_flag: grace.SharedFlag | None = None,
) -> UnitApp:
    """granian's target loader: module level, so that it reaches spawned worker processes pickled.

    ``loops``: the units are loops in threads of this process (their slot is their loop index).
    ``stop_flag`` is set by granian's main process when it is asked to stop.
    """
    if os.getpid() != parent_pid:  # in a worker process: go when granian's main process goes
        lifeline.die_with_parent(signal.SIGTERM, parent_pid)
    if stop_flag is not None:
        grace.watch_shared(stop_flag)
    return UnitApp(config, GuardedFactory(factory), slots, loops)


def bound_the_stop(server: Any, stop_flag: grace.SharedFlag, threads: bool) -> None:
    """On granian's stop signal, tell the apps (streams end) and bound the stop: granian waits for
    connections with no time limit. Worker processes are killed by granian itself at the bound
    (``workers_kill_timeout``); worker threads cannot be, so the process ends itself there."""
    interrupt = server.signal_handler_interrupt

    def on_interrupt(*args: Any, **kwargs: Any) -> None:
        grace.begin_stop()
        stop_flag.value = 1
        if threads:
            grace.watchdog(what="granian")
        interrupt(*args, **kwargs)

    server.signal_handler_interrupt = on_interrupt  # granian installs its handlers from this attribute


def ensure_port_free(host: str, port: int) -> None:
    """Raise OSError if ``port`` is taken: granian's SO_REUSEPORT sockets would join a leftover
    server's listeners on it instead of failing.

    With SO_REUSEADDR, as every listener ftscale binds: a port whose last server has just stopped
    (its connections in TIME_WAIT) is free for the next, and one another socket listens on is not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def settings(config: ServerConfig) -> dict[str, Any]:
    """granian's Server arguments for ``config`` (everything but the target)."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    try:
        import uvloop  # noqa: F401

        loop = Loops.uvloop
    except ImportError:
        loop = Loops.asyncio
    return {
        "address": config.host,
        "port": config.port,
        "interface": Interfaces.ASGI,
        "workers": 1 if TOPOLOGIES[config.topology].units == "one" else config.threads,
        "runtime_threads": config.runtime_threads,
        "blocking_threads": 1,
        "loop": loop,
        "http": HTTPModes.http1,
        "websockets": False,
        "backlog": BACKLOG,
        "backpressure": config.effective_max_connections,
        "http1_settings": HTTP1Settings(
            header_read_timeout=int(granian_idle_timeout_s(config) * MS_PER_S),
            max_buffer_size=config.max_head_bytes,
        ),
        "log_level": LogLevels(config.log_level),
        "log_access": config.log_level == "debug",
        "respawn_failed_workers": False,
        # Worker processes are killed at the stop's bound; a worker thread cannot be: never try.
        "workers_kill_timeout": None if threaded() else GRACEFUL_S + grace.STOP_MARGIN_S,
    }


def run_granian(config: ServerConfig, factory: AppFactory = create_app) -> int:
    """Serve ``config`` on granian until SIGTERM/SIGINT; the exit status."""
    from granian.errors import FatalError
    from granian.server import Server

    threads = threaded()
    if config.port == 0:  # granian does not tell which port it got: pick one free now
        config = dataclasses.replace(config, port=free_port(config.host))
    ensure_port_free(config.host, config.port)
    # The same start method on every build (3.13 would fork, 3.14 spawns): spawned workers rebuild
    # their socket from granian's spec and import the service afresh.
    multiprocessing.set_start_method("spawn", force=True)
    slots = SharedSlots(unit_labels(config, threads))
    stop_flag = multiprocessing.get_context("spawn").RawValue(ctypes.c_int, 0)
    server = Server("ftscale.server.app:create_app", **settings(config))  # the name is only logged
    bound_the_stop(server, stop_flag, threads)
    # One loop per thread is a loop index; a single worker or worker processes have none.
    loops = threads and TOPOLOGIES[config.topology].units != "one"
    loader = functools.partial(load_app, config, factory, slots, loops, os.getpid(), stop_flag)
    kind = "threads" if threads else "processes"
    logger.info(
        "serving on http://%s:%d (granian, %d worker %s)", config.host, config.port, server.workers, kind
    )
    try:
        server.serve(target_loader=loader, wrap_loader=False)
    except SystemExit as exc:  # a worker died, a failed start included
        return exc.code if isinstance(exc.code, int) else 1
    except FatalError as exc:
        logger.error("granian refused to serve: %s", exc)
        return 1
    return 0
