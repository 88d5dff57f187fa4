"""What ``GET /info`` reports: the interpreter, the run's settings, this process and its threads.

Facts that cannot change while the process lives (build, package versions) are gathered once;
the GIL state, thread count and CPU affinity are read on every call, because an import or a
pool start can change them. A worker in the ``workers`` topology reports itself and its parent,
and every worker's count of work requests (they share the counters).

``--info minimal`` (:class:`~ftscale.vocab.InfoDetail`) leaves out, for a shared host, what
says where and how things run on it: the interpreter's path and configure arguments (reported
empty), the app's folder and every pid (reported null). The rest stays, because the benches
need it: the build and GIL state, package versions, settings and limits, counters, threads,
CPU affinity, the server and its TCP_NODELAY.

Which server serves, on which event loop, with what kind of serving unit and balancing, is
reported too. TCP_NODELAY: uvicorn's protocol (ours) sees every connection's socket and counts
those without it; granian and hypercorn never show theirs to the app, so there ``/info`` reads
the option from this process's own socket for the connection that asked (matched by its
addresses), which says how that server makes its connections.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

from ftscale import buildfacts, engines
from ftscale.schema import BuildFacts, Info, ServerSettings
from ftscale.server import limits
from ftscale.server.config import ANYIO_DEFAULT_THREAD_LIMIT, ANYIO_LIMITER_NOTE, ServerConfig
from ftscale.server.counters import EVENTS, UnitCounts
from ftscale.server.sockets import connection_socket
from ftscale.vocab import TOPOLOGIES, HttpServer, InfoDetail

PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "anyio",
    "pydantic",
    "pydantic-core",
    "numpy",
    "h11",
    "httptools",
    "uvloop",
    "granian",
    "hypercorn",
)
# The distribution whose version is the server's.
SERVER_DISTRIBUTION = {
    HttpServer.UVICORN_H11: "uvicorn",
    HttpServer.UVICORN_FAST: "uvicorn",
    HttpServer.GRANIAN: "granian",
    HttpServer.HYPERCORN: "hypercorn",
}
EVERY_CONNECTION = "every connection"
THIS_CONNECTION = "this connection"


@functools.cache
def _static_facts() -> tuple[dict[str, Any], dict[str, str | None]]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return buildfacts.describe(), versions


def affinity() -> list[int]:
    """CPUs this process may run on (all CPUs where the platform cannot say)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


def connection_nodelay(client: Sequence[Any] | None, server: Sequence[Any] | None) -> bool | None:
    """Whether this process's TCP socket from ``server`` to ``client`` (a request's ASGI scope
    addresses) has TCP_NODELAY; None where no such socket is found. Scans this process's
    sockets: for a check now and then, not for every request."""
    sock = connection_socket(client, server)
    if sock is None:
        return None
    with sock:  # our duplicate: closing it is safe
        try:
            return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        except OSError:  # closed meanwhile
            return None


def _loop_impl() -> str | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return f"{type(loop).__module__}.{type(loop).__qualname__}"


def describe(
    config: ServerConfig,
    *,
    loop_index: int | None = None,
    units: UnitCounts | None = None,
    pool_state: str | None = None,
    max_sizes: dict[str, int] | None = None,
    app: str | None = None,
    gil_reenabled_by: str | None = None,
    connection: tuple[Sequence[Any] | None, Sequence[Any] | None] | None = None,
) -> Info:
    """The ``/info`` document for this process (and, in ``loops``, the loop that answers).

    ``app`` and ``gil_reenabled_by`` describe a user's app (:mod:`server.userapp`).
    ``connection``: the (client, server) addresses of the request asking, for the TCP_NODELAY
    check where the server's own protocol does not count connections.
    """
    interpreter, versions = _static_facts()
    counters = EVENTS.snapshot()
    minimal = config.info_detail is InfoDetail.MINIMAL
    pid: int | None = None if minimal else os.getpid()
    workers = TOPOLOGIES[config.topology].own_workers
    settings = config.as_dict()
    if minimal:  # what a shared host should not show: paths, build options, processes
        interpreter = {**interpreter, "executable": "", "config_args": ""}
        settings["app_dir"] = None
    if counters.connections:
        nodelay: bool | None = counters.connections_without_nodelay == 0
        checked: str | None = EVERY_CONNECTION
    else:
        nodelay = connection_nodelay(*connection) if connection is not None else None
        checked = THIS_CONNECTION if nodelay is not None else None
    return Info(
        interpreter=BuildFacts.model_validate(interpreter),
        gil_enabled=buildfacts.gil_enabled(),
        config=ServerSettings.model_validate(settings),
        mode=str(config.mode),
        topology=str(config.topology),
        threads=config.threads,
        pool_size=config.effective_pool_size,
        queue_limit=config.effective_queue_limit,
        anyio_default_thread_limit=ANYIO_DEFAULT_THREAD_LIMIT,
        anyio_limiter_note=ANYIO_LIMITER_NOTE,
        pid=pid,
        worker_pid=pid if workers else None,
        parent_pid=None if minimal else os.getppid(),
        loop_index=loop_index,
        thread_count=threading.active_count(),
        cpu_affinity=affinity(),
        cpu_count=os.cpu_count(),
        packages=versions,
        unit_requests=units.snapshot() if units is not None else None,
        tcp_nodelay=nodelay,
        tcp_nodelay_checked=checked,
        pool_state=pool_state,
        counters=counters,
        max_sizes=max_sizes,
        app=app,
        gil_reenabled_by=gil_reenabled_by,
        server=str(config.server),
        server_version=versions.get(SERVER_DISTRIBUTION[config.server]),
        loop_impl=_loop_impl(),
        unit_kind=engines.unit_kind(config.topology),
        balance=engines.balance(config.server, config.topology, str(config.worker_balance)),
        limits=limits.in_force(config),
        detail=str(config.info_detail),
    )
