"""The service on hypercorn (``ftscale serve --server hypercorn``): pure Python (h11) on asyncio.

``single``: this process serves on a socket ftscale bound (:func:`ftscale.server.topology.bind_listener`,
so every accepted connection has TCP_NODELAY), through hypercorn's per-worker entry point
``worker_serve`` with its own stop trigger. ``workers``: N spawned processes doing the same on
that one shared socket, as ``hypercorn --workers N`` does: the kernel gives each connection to
whichever worker accepts first (no balancing by load; the per-unit counts show the skew). The
supervisor is ftscale's, not hypercorn's, so that the workers get the socket ftscale made, their
slot in shared counters and the lifeline of every ftscale child: they die with the supervisor
(``PR_SET_PDEATHSIG``) and ignore Ctrl-C, which the supervisor coordinates. hypercorn has no
event loops in threads, so ``loops`` is not available (:mod:`ftscale.engines`).

Settings, matched to the others where hypercorn has the knob: backlog as uvicorn's; idle
keep-alive connections close after ``--keepalive-timeout``; a busy keep-alive connection is
never closed after a number of requests (hypercorn's default closes it after 1000, which neither
uvicorn nor granian does); requests in flight get up to the same grace period on SIGTERM.

The head's size is hypercorn's own (``h11_max_incomplete_size`` = ``--max-head-bytes``); what
hypercorn lacks, ftscale adds: the head deadline, the connection cap and the write timeout on
each connection (:mod:`server.hypercorn_limits`), the header count, framing rules and body
deadline in front of the app (:mod:`server.guard`), a stop bounded by the grace period and its
margin (:mod:`server.grace`: the worker ends itself, and the supervisor kills a worker that
does not). Admission to the pool (503 when full) is the app's, the same on every server.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from typing import Any, cast

from uvicorn.config import STARTUP_FAILURE

from ftscale.server import accepting, grace, hypercorn_limits, lifeline
from ftscale.server.app import create_app
from ftscale.server.config import ServerConfig
from ftscale.server.guard import guarded
from ftscale.server.topology import BACKLOG, GRACEFUL_S, HANDLED_SIGNALS, bind_listener, on_signals
from ftscale.server.units import AppFactory, SharedSlots
from ftscale.vocab import TOPOLOGIES

logger = logging.getLogger("ftscale.server")

NEVER_CLOSE_AFTER = 10**12  # keep_alive_max_requests: in effect, no limit


def hypercorn_config(config: ServerConfig) -> Any:
    from hypercorn.config import Config

    hc = Config()
    hc.backlog = BACKLOG
    hc.graceful_timeout = GRACEFUL_S
    hc.keep_alive_timeout = config.keepalive_timeout_s
    hc.keep_alive_max_requests = NEVER_CLOSE_AFTER
    hc.h11_max_incomplete_size = config.max_head_bytes
    hc.accesslog = "-" if config.log_level == "debug" else None
    hc.errorlog = "-"
    hc.loglevel = config.log_level.upper()
    return hc


async def _serve(config: ServerConfig, app: Any, listener: socket.socket) -> None:
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.config import Sockets
    from hypercorn.utils import wrap_app

    hc = hypercorn_config(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    accepting.quiet_accept_errors(loop)
    hypercorn_limits.install(config)

    def on_stop() -> None:
        grace.begin_stop()  # streams end at their next chunk
        grace.watchdog(what="the hypercorn worker")  # hypercorn's own wait ends, but its close may not
        stop.set()

    for signum in HANDLED_SIGNALS:
        loop.add_signal_handler(signum, on_stop)
    listener.setblocking(False)
    await worker_serve(
        wrap_app(cast(Any, guarded(app, config)), hc.wsgi_max_body_size, "asgi"),
        hc,
        sockets=Sockets([], [listener], []),
        shutdown_trigger=stop.wait,
    )


def serve_one(config: ServerConfig, app: Any, listener: socket.socket) -> int:
    """Serve ``app`` on ``listener`` in this process until SIGTERM/SIGINT; the exit status."""
    from hypercorn.utils import LifespanFailureError, LifespanTimeoutError

    try:
        asyncio.run(_serve(config, app, listener))
    except (LifespanFailureError, LifespanTimeoutError) as exc:
        logger.error("the app failed to start: %s", exc)
        return STARTUP_FAILURE
    return 0


def worker_main(
    config: ServerConfig,
    factory: AppFactory,
    listener: socket.socket,
    slots: SharedSlots,
    slot: int,
    parent_pid: int,
) -> None:
    """A worker process's body (spawned): serve the shared socket until told to stop."""
    lifeline.die_with_parent(signal.SIGTERM, parent_pid)
    lifeline.ignore_sigint()  # Ctrl-C is the supervisor's to coordinate
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s: %(message)s")
    app = factory(config, units=slots.counts(), unit=slot)
    sys.exit(serve_one(config, app, listener))


def run_workers(config: ServerConfig, listener: socket.socket, factory: AppFactory) -> int:
    """N spawned workers on one shared socket; this process only starts, watches and stops them."""
    context = multiprocessing.get_context("spawn")
    slots = SharedSlots([f"worker {i}" for i in range(config.threads)])
    procs = [
        context.Process(
            target=worker_main,
            args=(config, factory, listener, slots, i, os.getpid()),
            name=f"ftscale-hypercorn-{i}",
        )
        for i in range(config.threads)
    ]
    stopping: list[bool] = []

    def stop(force: bool = False) -> None:
        stopping.append(force)
        for proc in procs:
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGTERM)

    def bound_stop() -> None:
        """Kill what is left of a worker past the stop's bound (the grace and its margin)."""
        for proc in procs:
            if proc.exitcode is None:
                logger.error("hypercorn worker %s did not stop in time; killing it", proc.name)
                proc.kill()

    status = 0
    with on_signals(stop):
        with lifeline.sigint_blocked():  # workers ignore SIGINT before they unblock it
            for proc in procs:
                proc.start()
        listener.close()  # the workers hold it
        pending = {proc.sentinel: proc for proc in procs}
        deadline: float | None = None
        killed = False
        while pending:
            if stopping and deadline is None:
                deadline = time.monotonic() + GRACEFUL_S + grace.STOP_MARGIN_S
            wait = None if deadline is None or killed else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait(list(pending), timeout=wait)
            if not ready and wait is not None:
                bound_stop()
                killed = True  # now wait for them to go
                continue
            for sentinel in ready:
                proc = pending.pop(cast(int, sentinel))
                proc.join()
                if not stopping:  # a worker ended by itself: stop the service
                    logger.error("hypercorn worker %s exited with %s; stopping", proc.name, proc.exitcode)
                    status = STARTUP_FAILURE if proc.exitcode == STARTUP_FAILURE else 1
                    stop()
    # A worker asked to stop exits 0 once drained; one that the stop signal itself ended (it
    # arrived before the worker's loop took the signal over, or after the loop had handed it back)
    # was not serving a request either: that is a stop, not a failure.
    # So is one killed at the stop's bound (bound_stop): it had the whole grace period.
    ended_by_stop = {-signal.SIGTERM, -signal.SIGKILL} if killed else {-signal.SIGTERM}
    failed = [
        proc for proc in procs if proc.exitcode != 0 and not (stopping and proc.exitcode in ended_by_stop)
    ]
    for proc in failed:
        logger.error("hypercorn worker %s exited with %s", proc.name, proc.exitcode)
    if status == 0 and failed:
        status = 1
    return status


def run_hypercorn(config: ServerConfig, factory: AppFactory = create_app) -> int:
    """Serve ``config`` on hypercorn until SIGTERM/SIGINT; the exit status."""
    listener = bind_listener(config.host, config.port)
    logger.info("serving on http://%s:%d (hypercorn, %s)", config.host, config.port, config.topology)
    if not TOPOLOGIES[config.topology].one_process:
        return run_workers(config, listener, factory)
    try:
        return serve_one(config, factory(config), listener)
    finally:
        listener.close()
