"""What one run of the service is: execution mode, topology, pool sizes, limits.

:class:`ServerConfig` is the single, typed description that the CLI builds, the app factory
reads and ``/info`` reports. It is frozen and picklable, because the ``workers`` topology
sends it to each worker process. It does not bind sockets or start anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ftscale.vocab import MODE_HELP, TOPOLOGY_HELP, Mode, Topology

__all__ = ["MODE_HELP", "TOPOLOGY_HELP", "Mode", "ServerConfig", "Topology"]

# anyio gives every event loop its own default CapacityLimiter with 40 tokens; Starlette's
# run_in_threadpool (and so every FastAPI ``def`` endpoint) goes through it. The threadpool
# mode sets its total_tokens to the pool size instead, on each loop, at start-up.
ANYIO_DEFAULT_THREAD_LIMIT = 40
ANYIO_LIMITER_NOTE = (
    f"anyio's default thread limiter (used by Starlette's run_in_threadpool and FastAPI 'def' "
    f"endpoints) has {ANYIO_DEFAULT_THREAD_LIMIT} tokens per event loop; the threadpool mode "
    "sets its total_tokens to pool_size on every loop"
)

# Admission control: by default a pool may queue four requests per worker thread/process on
# top of those it is running; beyond that the service answers 503 at once.
DEFAULT_QUEUE_FACTOR = 4
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ServerConfig:
    """One run's settings. ``threads`` is the scaling knob: total CPU concurrency.

    ``single``: one loop, a pool of ``threads`` (inline mode records it but computes on the one
    loop). ``workers``: ``threads`` processes. ``loops``: ``threads`` event loops. ``pool_size``
    is per process or per loop; ``None`` means ``threads`` for ``single`` and 1 otherwise.
    ``queue_limit`` is how many requests may wait for a pool beyond those it runs; ``None``
    means ``4 * pool_size``.
    """

    mode: Mode = Mode.THREADPOOL
    topology: Topology = Topology.SINGLE
    threads: int = 1
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    pool_size: int | None = None
    queue_limit: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "warning"

    def __post_init__(self) -> None:
        # Accept plain strings (from JSON or tests) but store the enums.
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "topology", Topology(self.topology))
        for name in ("threads", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.pool_size is not None and self.pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {self.pool_size}")
        if self.queue_limit is not None and self.queue_limit < 0:
            raise ValueError(f"queue_limit must be 0 or more, got {self.queue_limit}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")

    @property
    def effective_pool_size(self) -> int:
        """Workers in one pool: per process (single, workers) or per loop (loops)."""
        if self.pool_size is not None:
            return self.pool_size
        return self.threads if self.topology is Topology.SINGLE else 1

    @property
    def effective_queue_limit(self) -> int:
        """Requests that may wait for one pool beyond those it is running."""
        if self.queue_limit is not None:
            return self.queue_limit
        return DEFAULT_QUEUE_FACTOR * self.effective_pool_size

    @property
    def serving_units(self) -> int:
        """Processes (workers) or event loops (loops) that serve HTTP; 1 for single."""
        return 1 if self.topology is Topology.SINGLE else self.threads

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the resolved pool size and queue limit."""
        data = asdict(self)
        data["mode"] = str(self.mode)
        data["topology"] = str(self.topology)
        data["pool_size"] = self.effective_pool_size
        data["queue_limit"] = self.effective_queue_limit
        return data
