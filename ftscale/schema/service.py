"""The service's ``GET /info`` (:class:`Info`) and a soak's result (:class:`SoakResult`)."""

from __future__ import annotations

from ftscale.schema.base import Model
from ftscale.schema.machine import BuildFacts


class ServerSettings(Model):
    """The service's resolved configuration, as ``/info`` reports it."""

    mode: str
    topology: str
    threads: int
    host: str
    port: int
    pool_size: int
    queue_limit: int
    max_body_bytes: int
    log_level: str
    # Added later; absent in files written before the service had them.
    header_timeout_s: float | None = None
    keepalive_timeout_s: float | None = None
    max_connections: int | None = None
    allow_large_sizes: bool | None = None
    worker_balance: str | None = None
    # A user's app served instead of the service (``ftscale serve --app``), and the folder put
    # first on its import path; absent for the ftscale service.
    app: str | None = None
    app_dir: str | None = None
    server: str | None = None  # None: written before the server was a choice (uvicorn-h11)
    runtime_threads: int | None = None
    start_method: str | None = None  # None: written before it was a choice (spawn)
    # The rest of the one set of limits (server.limits), absent before the service had them.
    max_head_bytes: int | None = None
    max_headers: int | None = None
    body_timeout_s: float | None = None
    write_timeout_s: float | None = None
    stream_timeout_s: float | None = None
    max_streams: int | None = None
    info_detail: str | None = None  # ftscale.vocab.InfoDetail: what /info leaves out


class ServiceCounters(Model):
    """What one process of the service counted since it started (every loop of it together)."""

    refused_busy: int  # 503: the pool and its queue were full
    refused_pool_down: int  # 503: the process pool was being replaced
    dropped_client_gone: int  # queued work never started because its client had left
    finished_client_gone: int  # work that had started when its client left (computed, answer dropped)
    pool_restarts: int  # process pools replaced after a child process died
    connections: int  # connections accepted
    connections_without_nodelay: int  # of those, how many had TCP_NODELAY off
    connections_evicted_idle: int  # idle connections closed to make room at the connection limit
    connections_refused: int  # 503: at the connection limit with no idle connection to close
    connections_aborted: int  # closed at once, far over the connection limit
    requests_timed_out: int  # request not received within the header timeout (408, or closed if silent)
    # Counted since the service had them (absent in older files).
    bodies_timed_out: int | None = None  # 408: a request body not received within --body-timeout
    heads_refused: int | None = None  # 431: a head over --max-head-bytes or --max-headers
    framing_refused: int | None = None  # 400: Content-Length with Transfer-Encoding, no Host or two
    json_refused: int | None = None  # 422: a body too deeply nested, with a lone surrogate, or not JSON
    internal_errors: int | None = None  # 500 (logged on one line each)
    writes_timed_out: int | None = None  # connections dropped: the client took no bytes for --write-timeout
    streams_refused: int | None = None  # 503: --max-streams streams already open
    streams_timed_out: int | None = None  # streams ended at --stream-timeout
    streams_stopped: int | None = None  # streams ended because the service was stopping
    accept_errors: int | None = None  # accept() failures (out of descriptors), logged once a second


class LimitInForce(Model):
    """One of the limits every server is held to, as this service enforces it (server.limits)."""

    value: float
    by: str  # who enforces it: the server's own setting ("granian"), or "ftscale" (its wrapper)


class Info(Model):
    """``GET /info``: the interpreter, the run's settings, this process and its threads."""

    interpreter: BuildFacts
    gil_enabled: bool
    config: ServerSettings
    mode: str
    topology: str
    threads: int
    pool_size: int
    queue_limit: int
    anyio_default_thread_limit: int
    anyio_limiter_note: str
    pid: int | None  # None: left out (--info minimal)
    worker_pid: int | None = None
    parent_pid: int | None  # None: left out (--info minimal)
    loop_index: int | None = None
    thread_count: int
    cpu_affinity: list[int]
    cpu_count: int | None
    packages: dict[str, str | None]
    # Work requests computed per serving unit (not /health or /info, nor refusals), keyed
    # "single", "worker i" (a slot: a restarted worker counts on in it) or "loop i"; every
    # unit's count, whichever unit answered.
    # The fields below are absent in files written before the service reported them.
    unit_requests: dict[str, int] | None = None
    # True when every connection this process accepted so far had TCP_NODELAY set (uvicorn counts
    # every connection); on a server whose sockets the service never sees (granian, hypercorn),
    # whether the connection that asked for /info has it. ``tcp_nodelay_checked`` says which.
    tcp_nodelay: bool | None = None
    # The answering unit's compute pool: "up", "rebuilding" (a child died) or "down".
    pool_state: str | None = None
    counters: ServiceCounters | None = None
    # The largest size each workload accepts in this run (its CPU budget, or --allow-large-sizes).
    max_sizes: dict[str, int] | None = None
    # A user's app (``ftscale serve --app``): which, and, on a free-threaded build whose GIL came
    # back while the app was imported, the module that enabled it (from CPython's RuntimeWarning).
    app: str | None = None
    gil_reenabled_by: str | None = None
    # What serves HTTP (absent before the server was a choice: uvicorn, h11, asyncio).
    server: str | None = None  # ftscale.vocab.HttpServer
    server_version: str | None = None
    loop_impl: str | None = None  # the answering loop's class, e.g. "asyncio.SelectorEventLoop"
    unit_kind: str | None = None  # "loop" (one), "thread" (loops in threads) or "process"
    balance: str | None = None  # how connections are spread over the units
    tcp_nodelay_checked: str | None = None  # "every connection" or "this connection"
    # Each limit in force and who enforces it (absent before the service reported them), and
    # what this document leaves out: "full" (nothing) or "minimal" (ftscale.vocab.InfoDetail).
    limits: dict[str, LimitInForce] | None = None
    detail: str | None = None


class MemoryTrend(Model):
    """How a soak's RSS moved after its warm-up (``ftscale.server.rss_trend``): a least-squares
    slope over every sample after ``warmup_s``, and over the last half of those alone. A steady
    rise is both above ``limit_pct_per_min`` (of the mean RSS after the warm-up)."""

    warmup_s: float
    samples: int
    mean_rss_bytes: float
    slope_mb_per_min: float  # MB = 10**6 bytes
    slope_pct_per_min: float
    last_half_slope_mb_per_min: float
    last_half_slope_pct_per_min: float
    limit_pct_per_min: float
    steady_rise: bool
    # The mean RSS of each minute after the warm-up, in MB: a leak climbs minute by minute, an
    # allocator's sawtooth (large calls, sockets coming and going) moves within a minute.
    minute_means_mb: list[float] | None = None


class SoakResult(Model):
    """``python -m ftscale.server.soak``: the service under mixed good, bad and idle clients.

    ``kinds`` maps each kind of request sent to the statuses it got (``"error: <exception>"``
    for a socket error or timeout); ``unexpected`` counts answers outside a kind's expected
    statuses.
    """

    started: str
    duration_s: float
    command: list[str]
    python: str
    gil_enabled: bool | None
    cpus: int
    load_average_before: list[float]
    load_average_after: list[float]
    clients: int
    idle_sockets: int
    kinds: dict[str, dict[str, int]]
    expected: dict[str, list[int]]
    unexpected: int
    requests: int
    rss_start_bytes: int
    rss_end_bytes: int
    rss_change_pct: float
    health_after_ms: dict[str, float]
    processes_start: int
    processes_end: int
    exit_status: int | None
    leftover_processes: int
    info_after: Info | None = None
    passed: bool
    # Added with the memory trend (absent in older files): the design soaked, RSS of the process
    # tree sampled through the soak as [seconds since its start, bytes], and its trend.
    design: str | None = None
    rss_samples: list[tuple[float, int]] | None = None
    memory: MemoryTrend | None = None
