"""What ``GET /info`` reports: the interpreter, the run's settings, this process and its threads.

Facts that cannot change while the process lives (build, package versions) are gathered once;
the GIL state, thread count and CPU affinity are read on every call, because an import or a
pool start can change them. A worker in the ``workers`` topology reports itself and its parent,
and every worker's count of work requests (they share the counters).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import threading
from typing import Any

from ftscale import buildfacts
from ftscale.schema import BuildFacts, Info, ServerSettings
from ftscale.server.config import ANYIO_DEFAULT_THREAD_LIMIT, ANYIO_LIMITER_NOTE, ServerConfig, Topology
from ftscale.server.counters import EVENTS, UnitCounts

PACKAGES = ("fastapi", "starlette", "uvicorn", "anyio", "pydantic", "pydantic-core", "numpy", "h11")


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


def describe(
    config: ServerConfig,
    *,
    loop_index: int | None = None,
    units: UnitCounts | None = None,
    pool_state: str | None = None,
    max_sizes: dict[str, int] | None = None,
    app: str | None = None,
    gil_reenabled_by: str | None = None,
) -> Info:
    """The ``/info`` document for this process (and, in ``loops``, the loop that answers).

    ``app`` and ``gil_reenabled_by`` describe a user's app (:mod:`server.userapp`).
    """
    interpreter, versions = _static_facts()
    counters = EVENTS.snapshot()
    pid = os.getpid()
    workers = config.topology is Topology.WORKERS
    return Info(
        interpreter=BuildFacts.model_validate(interpreter),
        gil_enabled=buildfacts.gil_enabled(),
        config=ServerSettings.model_validate(config.as_dict()),
        mode=str(config.mode),
        topology=str(config.topology),
        threads=config.threads,
        pool_size=config.effective_pool_size,
        queue_limit=config.effective_queue_limit,
        anyio_default_thread_limit=ANYIO_DEFAULT_THREAD_LIMIT,
        anyio_limiter_note=ANYIO_LIMITER_NOTE,
        pid=pid,
        worker_pid=pid if workers else None,
        parent_pid=os.getppid(),
        loop_index=loop_index,
        thread_count=threading.active_count(),
        cpu_affinity=affinity(),
        cpu_count=os.cpu_count(),
        packages=versions,
        unit_requests=units.snapshot() if units is not None else None,
        tcp_nodelay=(counters.connections_without_nodelay == 0) if counters.connections else None,
        pool_state=pool_state,
        counters=counters,
        max_sizes=max_sizes,
        app=app,
        gil_reenabled_by=gil_reenabled_by,
    )
