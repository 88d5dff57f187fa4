"""What one run of the service is: execution mode, topology, pool sizes, limits.

:class:`ServerConfig` is the single, typed description that the CLI builds, the app factory
reads and ``/info`` reports. It is frozen and picklable, because the ``workers`` topology
sends it to each worker process. It does not bind sockets or start anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ftscale.vocab import (
    DEFAULT_SERVER,
    MODE_HELP,
    SERVER_HELP,
    START_METHOD_HELP,
    TOPOLOGIES,
    TOPOLOGY_HELP,
    WORKER_BALANCE_HELP,
    HttpServer,
    InfoDetail,
    Mode,
    StartMethod,
    Topology,
    WorkerBalance,
)

__all__ = [
    "DEFAULT_SERVER",
    "MODE_HELP",
    "SERVER_HELP",
    "START_METHOD_HELP",
    "TOPOLOGY_HELP",
    "WORKER_BALANCE_HELP",
    "HttpServer",
    "Mode",
    "ServerConfig",
    "StartMethod",
    "Topology",
    "WorkerBalance",
]

# anyio gives every event loop its own default CapacityLimiter with 40 tokens; Starlette's
# run_in_threadpool (and so every FastAPI ``def`` endpoint) goes through it. The threadpool
# mode sets its total_tokens to the pool size instead, on each loop, at start-up.
ANYIO_DEFAULT_THREAD_LIMIT = 40
ANYIO_LIMITER_NOTE = (
    f"anyio's default thread limiter (used by Starlette's run_in_threadpool and FastAPI 'def' "
    f"endpoints) has {ANYIO_DEFAULT_THREAD_LIMIT} tokens per event loop; the threadpool mode "
    "sets its total_tokens to pool_size on every loop"
)

# A user's app (--app) runs its work where it decides: the mode is always threadpool.
APP_MODE_NOTE = (
    "a user's app decides itself where its work runs (FastAPI runs 'def' endpoints in Starlette's "
    "thread pool, 'async def' ones on the event loop), so only the threadpool mode applies to it"
)

# A user's app (--app) is served by uvicorn only: ftscale's own topologies build its wrapper.
APP_SERVERS = (HttpServer.UVICORN_H11, HttpServer.UVICORN_FAST)
APP_SERVER_NOTE = "a user's app (--app) is served by " + " or ".join(str(s) for s in APP_SERVERS) + " only"

# Admission control: by default a pool may queue four requests per worker thread/process on
# top of those it is running; beyond that the service answers 503 at once.
DEFAULT_QUEUE_FACTOR = 4
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

# Slow and idle clients. A request head must arrive within HEADER_TIMEOUT_S of its first byte,
# or of the connection's opening for its first request (its body then has BODY_TIMEOUT_S, below);
# an idle keep-alive connection is closed after KEEPALIVE_TIMEOUT_S (uvicorn's own default).
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_KEEPALIVE_TIMEOUT_S = 5.0
# Open connections per process: at most this many, and at most a share of the file
# descriptors the process may open (the rest are for pools, pipes and logs).
DEFAULT_MAX_CONNECTIONS = 1000
RESERVED_FDS = 64

# The rest of the one set of limits every server is held to (server.limits says who enforces
# each, per server). A request head is at most DEFAULT_MAX_HEAD_BYTES (h11's own default) with
# at most DEFAULT_MAX_HEADERS fields (hyper's, under granian, which cannot raise it); its body must
# arrive within DEFAULT_BODY_TIMEOUT_S of its head; a response whose client takes none of its
# bytes for DEFAULT_WRITE_TIMEOUT_S is dropped; a stream lives at most DEFAULT_STREAM_TIMEOUT_S
# (the longest stream within the CPU budget takes about 25 s).
DEFAULT_MAX_HEAD_BYTES = 16 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_BODY_TIMEOUT_S = 10.0
DEFAULT_WRITE_TIMEOUT_S = 5.0
DEFAULT_STREAM_TIMEOUT_S = 60.0


def fd_limit() -> int | None:
    """This process's soft limit on open file descriptors (None where unlimited or unknown)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def default_max_connections(fds: int | None) -> int:
    """The connection limit when none is given: :data:`DEFAULT_MAX_CONNECTIONS`, or less where
    the descriptor limit is lower, so that refusing stays possible when clients hoard sockets."""
    if fds is None:
        return DEFAULT_MAX_CONNECTIONS
    return max(8, min(DEFAULT_MAX_CONNECTIONS, (fds - RESERVED_FDS) * 3 // 4))


@dataclass(frozen=True)
class ServerConfig:
    """One run's settings. ``threads`` is the scaling knob: total CPU concurrency.

    ``single``: one loop, a pool of ``threads`` (inline mode records it but computes on the one
    loop). ``workers``: ``threads`` processes. ``loops``: ``threads`` event loops. ``pool_size``
    is per process or per loop; ``None`` means ``threads`` for ``single`` and 1 otherwise.
    ``queue_limit`` is how many requests may wait for a pool beyond those it runs; ``None``
    means ``4 * pool_size``. In ``inline`` mode requests wait for the event loop instead, and
    the same ``pool_size + queue_limit`` bounds how many may.

    ``max_connections`` is per process (split evenly between the loops of a ``loops``
    topology); ``None`` means :func:`default_max_connections` of the descriptor limit.
    ``allow_large_sizes`` lifts every workload's size bound from its CPU budget (about 2 s a
    call) to its old, far larger maximum.

    ``app`` (``MODULE:ATTR``) serves a user's ASGI app instead of the service, with ``app_dir``
    first on its import path (:mod:`server.userapp`). A user's app decides itself where its work
    runs (FastAPI runs ``def`` endpoints in Starlette's thread pool), so its mode is always
    ``threadpool``: anyio's thread limiter is sized ``pool_size`` on every loop.

    ``start_method`` is how worker processes and process-pool children start: spawned fresh, or
    forked from the serving process (imports included; spawned instead where that process
    already runs threads). A bench forks its servers from a pre-imported parent
    (:mod:`server.zygote`) and asks them to fork theirs.

    ``server`` is the HTTP server that runs the app (:mod:`ftscale.engines` says which serves
    which topology); ``runtime_threads`` is granian's Rust I/O threads per worker (no Python
    runs on them), ignored by the others.

    The one set of limits every server is held to (:mod:`server.limits`): ``max_head_bytes``,
    ``max_headers``, ``header_timeout_s``, ``body_timeout_s``, ``keepalive_timeout_s``,
    ``max_connections`` and ``write_timeout_s``; and the streams': ``stream_timeout_s`` (a
    stream's longest life) and ``max_streams`` (per pool; ``None`` means half its admission
    places, :attr:`effective_max_streams`). ``info_detail`` says what ``/info`` leaves out.
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
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S
    max_connections: int | None = None
    allow_large_sizes: bool = False
    worker_balance: WorkerBalance = WorkerBalance.ACCEPTOR
    app: str | None = None
    app_dir: str | None = None
    server: HttpServer = DEFAULT_SERVER
    runtime_threads: int = 1
    start_method: StartMethod = StartMethod.SPAWN
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S
    stream_timeout_s: float = DEFAULT_STREAM_TIMEOUT_S
    max_streams: int | None = None
    info_detail: InfoDetail = InfoDetail.FULL

    def __post_init__(self) -> None:
        # Accept plain strings (from JSON or tests) but store the enums.
        object.__setattr__(self, "server", HttpServer(self.server))
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "topology", Topology(self.topology))
        object.__setattr__(self, "worker_balance", WorkerBalance(self.worker_balance))
        object.__setattr__(self, "start_method", StartMethod(self.start_method))
        for name in ("header_timeout_s", "keepalive_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        for name in ("threads", "max_body_bytes", "runtime_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.pool_size is not None and self.pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {self.pool_size}")
        if self.queue_limit is not None and self.queue_limit < 0:
            raise ValueError(f"queue_limit must be 0 or more, got {self.queue_limit}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.app is not None and self.mode is not Mode.THREADPOOL:
            raise ValueError(f"{APP_MODE_NOTE}; got mode {self.mode}")
        if self.app is not None and self.server not in APP_SERVERS:
            raise ValueError(f"{APP_SERVER_NOTE}; got --server {self.server}")
        if self.app is None and self.app_dir is not None:
            raise ValueError("app_dir is only for an app (--app MODULE:ATTR)")
        object.__setattr__(self, "info_detail", InfoDetail(self.info_detail))
        for name in ("body_timeout_s", "write_timeout_s", "stream_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("max_head_bytes", "max_headers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_streams is not None and self.max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, got {self.max_streams}")

    @property
    def effective_pool_size(self) -> int:
        """Workers in one pool: per process (single, workers) or per loop (loops)."""
        if self.pool_size is not None:
            return self.pool_size
        return self.threads if TOPOLOGIES[self.topology].pool == "threads" else 1

    @property
    def effective_queue_limit(self) -> int:
        """Requests that may wait for one pool beyond those it is running."""
        if self.queue_limit is not None:
            return self.queue_limit
        return DEFAULT_QUEUE_FACTOR * self.effective_pool_size

    @property
    def effective_max_connections(self) -> int:
        """Open connections one process accepts before it refuses (see :func:`default_max_connections`)."""
        if self.max_connections is not None:
            return self.max_connections
        return default_max_connections(fd_limit())

    @property
    def serving_units(self) -> int:
        """Processes (workers) or event loops (loops) that serve HTTP; 1 for single."""
        return 1 if TOPOLOGIES[self.topology].units == "one" else self.threads

    @property
    def effective_max_streams(self) -> int:
        """Streams one pool may serve at once: by default half its admission places (at least
        one), so that streams never take every place from plain work."""
        if self.max_streams is not None:
            return self.max_streams
        return max(1, (self.effective_pool_size + self.effective_queue_limit) // 2)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the resolved pool size and queue limit."""
        data = asdict(self)
        data["mode"] = str(self.mode)
        data["topology"] = str(self.topology)
        data["pool_size"] = self.effective_pool_size
        data["queue_limit"] = self.effective_queue_limit
        data["max_connections"] = self.effective_max_connections
        data["worker_balance"] = str(self.worker_balance)
        data["server"] = str(self.server)
        data["start_method"] = str(self.start_method)
        data["max_streams"] = self.effective_max_streams
        data["info_detail"] = str(self.info_detail)
        return data
