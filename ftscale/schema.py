"""Every shape that crosses a process boundary or lands in a file, declared once.

- The service's ``GET /info`` (:class:`Info`), read by the HTTP bench;
- a load generator's result (:class:`LoadResult`) and its /health probe (:class:`HealthProbe`),
  printed as JSON by the generator process and read by the bench;
- the micro worker's metadata (:class:`MicroWorkerMeta`), written into its pyperf file;
- a run (:class:`RunMeta`, ``run.json``) and its cells (:class:`HttpCell`, :class:`MicroCell`,
  ``cells/<cell-id>.json``), each repetition a typed model too, and a profiled cell's
  :class:`Profile` (``--profile``; its collapsed stacks beside it in ``profiles/<cell-id>.folded``).

Every reader validates with these models, so a renamed field fails loudly where it is read
instead of silently dropping a flag. Files are read through :func:`load_model`, which upgrades
older formats first.

Format history (bump SCHEMA_VERSION and teach :func:`upgrade` the old shape):
  1 (2026-11): first version; repetitions and /info were untyped dictionaries.
  2 (2026-11): typed repetitions (HTTP and micro), typed /info; cells carry ``kind``-specific
     models. Version 1 files are upgraded on read: their dictionaries already had these fields.
  3 (2026-12): HTTP cells of two stages (``stage``: exploration, or confirmation rounds of the
     finalists with the ``selection`` that chose them), the offered ``connections``, repetitions
     disturbed and measured again; each repetition's server start and stop times, machine
     interference, memory as the tree's distinct pages and its confirmation ``round``. Only
     fields were added: version 2 files are read as they are.
  4 (2026-12): an HTTP run's in-process pass (its ceiling): micro cells inside an HTTP run with
     ``stage`` "ceiling" and the server ``cpus`` they were pinned to; the open loop's arrivals,
     their seeds and the requests due and answered inside the window; repeated capacity steps
     with the p99's upper bound and the capacity as an interval. Only fields were added:
     version 3 files are read as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ftscale.errors import UsageError

SCHEMA_VERSION = 4


class ResultError(UsageError):
    """A result file or run directory that cannot be read (bad input); the message names the file."""


class Model(BaseModel):
    """Frozen, and strict about unknown fields: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- interpreters and machines ----------------------------------------------------------------


class BuildFacts(Model):
    """What an interpreter says about itself (``ftscale.buildfacts.describe``)."""

    build: str
    version: str
    implementation: str = "cpython"
    executable: str
    py_gil_disabled: bool
    gil_enabled: bool
    config_args: str
    compiler: str = ""


class Build(BuildFacts):
    """An interpreter build as it ran: what it is, and what was installed into it."""

    packages: dict[str, str] = Field(default_factory=dict)
    gil_reenabled_by: str | None = None
    # Optional packages (the ``servers`` extra) that could not be installed, and why: no binary
    # wheel for this build, usually. The servers that need them are skipped on this build.
    unavailable: dict[str, str] = Field(default_factory=dict)


class Host(Model):
    hostname: str
    platform: str
    machine: str
    cpu_model: str
    logical_cores: int
    affinity: list[int]
    memory_bytes: int | None = None
    # Facts a reader needs to judge the noise (absent where the machine does not tell).
    physical_cores: int | None = None
    smt_siblings: list[list[int]] | None = None  # logical CPUs sharing one physical core
    governor: str | None = None  # cpufreq scaling governor of the CPUs, when uniform
    boost: str | None = None  # turbo / boost state ("on", "off") where Linux exposes it


class Git(Model):
    commit: str | None
    dirty: bool | None


# --- the service ------------------------------------------------------------------------------


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


# --- a user's app (ftscale app, ftscale audit) -------------------------------------------------


class AppCheck(Model):
    """Importing a user's app in a build's environment (``python -m ftscale.server.userapp``).

    ``ok`` is False with ``error`` (one line) when the module does not import, has no such
    attribute, or the attribute is not an ASGI 3 app. ``gil_reenabled_by`` names the module
    CPython's RuntimeWarning named when the GIL came back during the import (a free-threaded
    build only); ``modules`` are the top-level modules outside the standard library that the
    import loaded.
    """

    app: str
    ok: bool
    error: str | None = None
    kind: str | None = None  # the app's type: FastAPI, Starlette, or another ASGI callable
    build: str
    py_gil_disabled: bool
    gil_enabled: bool
    gil_reenabled_by: str | None = None
    gil_warning: str | None = None
    modules: list[str] = Field(default_factory=list)


class ModuleCheck(Model):
    """One module imported in a fresh process (``python -m ftscale.buildfacts --import-module``)."""

    module: str
    ok: bool
    error: str | None = None
    gil_enabled: bool
    gil_reenabled_by: str | None = None
    gil_warning: str | None = None
    # Extension modules the import loaded without the Py_mod_gil slot (CPython's verbose mode
    # names each, even where the GIL was already on or the warning was filtered away).
    gil_modules: list[str] = Field(default_factory=list)


# The four classes of a requirement on a free-threaded build (``ftscale audit``, building from
# source): it ships a wheel for the build; it builds from source and its modules keep the GIL off;
# it builds and one of its extension modules turns the GIL on; it does not build here.
AuditOutcome = Literal["wheel", "built-gil-off", "built-gil-on", "does-not-build"]


class AuditRequirement(Model):
    """One requirement on one build: ``wheel`` (it and its dependencies install from wheels),
    ``built`` (the same once ``built`` were built from source by the audit), ``unbuilt``
    (``missing`` did not build: ``detail`` says what it lacked), ``no-wheel`` (``missing`` has
    none for this build: itself or a dependency), ``sdist-only`` (the same, and ``missing`` has a
    source distribution pip would build; the audit did not build, ``--no-build``), ``conflict`` or
    ``error`` (``detail`` says what pip said), or ``installed`` (an environment audited as it is).
    ``outcome``: its class on a free-threaded build, where the audit built from source."""

    requirement: str
    name: str
    status: Literal["wheel", "built", "unbuilt", "no-wheel", "sdist-only", "conflict", "error", "installed"]
    version: str | None = None
    wheel: str | None = None  # the wheel's file name, whose tags say which builds it is for
    missing: str | None = None
    detail: str | None = None
    built: list[str] = Field(default_factory=list)  # distributions built from source for it
    outcome: AuditOutcome | None = None
    gil_reenabled_by: str | None = None  # built-gil-on: the extension module that turned the GIL on


class AuditDistribution(Model):
    """A distribution the requirements bring on one build, and the wheel pip chose for it."""

    name: str
    version: str | None = None
    wheel: str | None = None  # the file name: its tags say which builds it is for
    built: bool = False  # the wheel was built from source for this build by ftscale
    extensions: list[str] = Field(default_factory=list)  # a built one's extension modules, by dotted name


class AuditModule(ModuleCheck):
    distribution: str | None = None  # the distribution that installed it


class AuditLoad(Model):
    """One short closed-loop load of the app (``ftscale audit --measure``)."""

    python_gil: Literal["default", "0"]
    gil_enabled: bool | None
    throughput_rps: float
    requests: int
    errors: dict[str, int] = Field(default_factory=dict)
    latency_ms: dict[str, float | None] = Field(default_factory=dict)


class AuditMeasure(Model):
    threads: int
    duration_s: float
    generator: str
    design: str
    default: AuditLoad | None = None
    gil_off: AuditLoad | None = None
    ratio: float | None = None  # PYTHON_GIL=0 over the default
    error: str | None = None


class AuditBuild(Model):
    build: str
    version: str
    free_threaded: bool
    python: str
    requirements: list[AuditRequirement] = Field(default_factory=list)
    distributions: list[AuditDistribution] = Field(default_factory=list)
    modules: list[AuditModule] = Field(default_factory=list)
    app: AppCheck | None = None
    measure: AuditMeasure | None = None
    problems: list[str] = Field(default_factory=list)  # what fails the audit on this build
    allowed: list[str] = Field(default_factory=list)  # problems --allow excused
    error: str | None = None  # the build could not be audited (no environment)


class AuditReport(Model):
    """``ftscale audit --json``: every build's requirements, modules, app and verdict."""

    schema_version: int = SCHEMA_VERSION
    created: str
    host: str
    source: str  # the requirements files, pyproject or environment audited
    app: str | None = None
    allow: list[str] = Field(default_factory=list)
    builds: list[AuditBuild]
    passed: bool
    problems: list[str]
    # Whether what has no wheel was built from source (False: --no-build, and every audit written
    # before building existed), and each build's time limit.
    build_from_source: bool = False
    build_timeout_s: float | None = None


class Expect(Model):
    """What a good answer to one request of a mix looks like.

    ``status``: the status it must have. ``field``: a dotted path into its JSON body
    (``items.0.score``) that must exist, and equal ``value`` where one is given.
    """

    status: int = Field(default=200, ge=100, le=599)
    field: str | None = None
    value: Any = None


class MixRequest(Model):
    """One request of a mix file: what to send, how often, what a good answer is.

    The body is ``json`` (sent as JSON, with ``content-type: application/json`` unless the
    headers say otherwise) or ``body_file`` (its bytes as they are, the path relative to the
    mix file), or nothing. ``weight`` is its share of the requests (relative to the others).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    method: str = "GET"
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body_file: str | None = None
    weight: float = Field(default=1.0, gt=0)
    expect: Expect = Field(default_factory=Expect)


class RequestMix(Model):
    """A request-mix file (JSON or TOML): ``requests``, each a :class:`MixRequest`."""

    requests: list[MixRequest] = Field(min_length=1)


class LoadRequest(Model):
    """One request of a mix, resolved for the load generators: bytes ready to send.

    ``body`` is the body as text, or in base64 where ``base64`` (a body that is not UTF-8);
    ``headers`` keep their order.
    """

    label: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: str = ""
    base64: bool = False
    weight: float
    expect: Expect


class LoadMix(Model):
    """The resolved mix a run sends (``requests.json`` in its run directory)."""

    requests: list[LoadRequest] = Field(min_length=1)
    seed: int = 0  # the built-in generator's choices are drawn from this seed (and its process index)


# --- load generators --------------------------------------------------------------------------

PERCENTILES = ("p50", "p90", "p99", "p99.9")


class LoadResult(Model):
    """One load applied by a generator process (wrk or the built-in one)."""

    generator: str
    requests: int
    duration_s: float
    throughput_rps: float
    latency_ms: dict[str, float | None]
    errors: dict[str, int] = Field(default_factory=dict)
    generator_cpu_pct: float = 0.0
    generator_cpus: int = 1
    open_loop_rate: float | None = None
    # Share of the wall time the generator was running or waiting for a CPU: near 100 % means
    # it never waited for the server, so it (or its CPU share) set the pace. Summed over its
    # threads (or processes); ``generator_busy_max_pct`` is the busiest single one, which is what
    # saturates first: a thread cannot use more than one CPU.
    generator_busy_pct: float | None = None
    generator_busy_max_pct: float | None = None
    generator_threads: int | None = None
    # Successful requests' latency in microseconds as a log-linear histogram
    # (ftscale.bench.histogram: {bucket index: count}); merges exactly across processes.
    latency_histogram: dict[int, int] | None = None
    # Open loop only: how late requests were sent after they could have been (due, and a connection
    # free): the generator's own lag. Time spent waiting for a free connection is not in it.
    send_lag_p99_ms: float | None = None
    # Open loop only (absent in older files): the arrival process and the seed of its schedule
    # (ftscale.bench.http.arrivals), the requests due in the window, and the good answers completed
    # inside it. Throughput counts those alone; requests due in the window and answered after it
    # are latency samples (``requests`` counts every good answer) but not throughput.
    arrivals: str | None = None
    arrival_seed: int | None = None
    due_requests: int | None = None
    window_requests: int | None = None
    # Streamed responses (server-sent events) only, absent otherwise. ``chunks``: events (blocks
    # ending in a blank line) received in completed 2xx streams; ``chunks_per_s``: those over the
    # window. ``ttfb_*``: from sending a request (its due time, in an open loop) to the first byte
    # of its body, the first event (the response head is sent at once: its arrival says nothing);
    # ``gap_*``: between consecutive events of one stream (0 for events that came in one read).
    # Histograms as ``latency_histogram``. wrk sees whole responses only: it counts chunks but
    # cannot time the first byte or the gaps (None).
    chunks: int | None = None
    chunks_per_s: float | None = None
    ttfb_ms: dict[str, float | None] | None = None
    ttfb_histogram: dict[int, int] | None = None
    gap_histogram: dict[int, int] | None = None
    gap_p99_ms: float | None = None


class HealthProbe(Model):
    """/health latency while the server is loaded: the event loop's lag, as a client sees it."""

    p50: float | None
    p99: float | None
    samples: int
    cpu_s: float | None = None  # the probe process's own CPU time (format 3)


# --- cells and their repetitions ----------------------------------------------------------------


class Interference(Model):
    """What else used the server's and the generator's CPUs while a load ran (``/proc/stat``)."""

    window_s: float
    cpus: list[int]
    busy_cpu_pct: float  # those CPUs' busy time (100 % = one CPU)
    accounted_cpu_pct: float  # ... of which the server, the generator and the probe account for
    foreign_cpu_pct: float  # the rest: other processes (100 % = one CPU)
    steal_pct: float  # the hypervisor's steal time, as a share of those CPUs' time
    disturbed: bool  # over a threshold of either (ftscale.bench.http.interference)


class HttpRepetition(Model):
    """One timed load against one server, with what the server used meanwhile."""

    throughput_rps: float
    requests: int
    duration_s: float
    latency_ms: dict[str, float | None]
    errors: dict[str, int]
    server_cpu_pct: float | None
    rss_bytes: int | None
    pss_bytes: int | None
    server_processes: int | None
    health_latency_ms: HealthProbe | None
    generator_cpu_pct: float
    generator_busy_pct: float | None
    ceiling_rps: float | None
    # Added in format 2 (absent in older files):
    generator_busy_max_pct: float | None = None  # the busiest generator thread or process
    generator_threads: int | None = None
    latency_histogram: dict[int, int] | None = None  # see LoadResult
    units: dict[str, int] | None = None  # work requests served per serving unit during the load
    peak_rss_bytes: int | None = None  # VmHWM summed over the server's process tree
    offered_rps: float | None = None  # open loop: the rate offered
    send_lag_p99_ms: float | None = None
    # Open loop (see LoadResult; absent in older files, whose throughput counted the drain too).
    arrivals: str | None = None
    arrival_seed: int | None = None
    due_requests: int | None = None
    window_requests: int | None = None
    # Streamed responses only (see LoadResult), and which generator applied the load.
    chunks: int | None = None
    chunks_per_s: float | None = None
    ttfb_ms: dict[str, float | None] | None = None
    ttfb_histogram: dict[int, int] | None = None
    gap_histogram: dict[int, int] | None = None
    gap_p99_ms: float | None = None
    generator: str | None = None
    # Added in format 3:
    server_start: Literal["fork", "spawn"] | None = None  # forked from a pre-imported parent, or not
    start_s: float | None = None  # from asking for the server until its /health answered
    stop_s: float | None = None  # from SIGTERM until the server's process had exited
    usage_window_s: float | None = None  # wall time between the two CPU readings behind server_cpu_pct
    unique_bytes: int | None = None  # distinct pages of the server's tree (ftscale.bench.http.memory)
    interference: Interference | None = None
    round: int | None = None  # confirmation rounds: the round (0, 1 …) this repetition belongs to
    gil_came_back: bool = False  # a free-threaded build's server had the GIL on after this load (format 4)


class MicroRepetition(Model):
    """One pyperf value: seconds per round of ``calls_per_round`` workload calls."""

    process: int
    loops: int
    seconds_per_round: float
    calls_per_round: int


class MicroWorkerMeta(Model):
    """What the micro worker adds to pyperf's metadata (keys prefixed ``ftscale_`` there)."""

    build: str
    py_gil_disabled: int
    gil_enabled: int
    threads: int
    scaling: str
    workload: str
    workload_class: str
    size: int
    size_meaning: str
    calls_per_round: int
    calls_per_thread: str
    io_wait: str
    cpu_affinity: str
    usable_cores: int
    value: str


class ProfileEntry(Model):
    """One line of a profile's detail: a name (function, symbol or call site) and its samples."""

    name: str
    samples: int


class Profile(Model):
    """One extra repetition of a cell run under ``perf record`` (``--profile``), sorted into buckets.

    It is never one of the cell's ``samples`` or ``repetitions``: the sampler and the perf
    trampoline slow the interpreter down, so its own throughput is not comparable. A cell with
    a ``profile`` is a profiled cell. ``buckets`` counts on-CPU samples per
    :class:`~ftscale.vocab.Bucket` (one sample is about ``period_ns`` of CPU time); ``idle`` and
    ``cpu_wait``, in the same unit, split the capacity (``capacity_cpus`` over ``window_s``) that
    none of its threads used: while they slept, or while they were runnable but preempted (from
    perf's context-switch records). ``work`` is what the cell did meanwhile (workload calls or
    requests), so reports can compare the cost per unit of work across thread counts.
    """

    status: Literal["ok", "failed"]
    error: str | None = None
    command: str = ""  # the perf record command line, as run
    event: str = "cpu-clock"
    frequency_hz: int = 0
    call_graph: str = ""  # "dwarf,8192", or "fp" where perf cannot unwind DWARF
    window_s: float = 0.0  # wall seconds the samples cover
    capacity_cpus: float = 0.0  # CPUs the cell could use: its threads, at most its usable CPUs
    period_ns: float = 0.0  # mean sampling period: CPU time one sample stands for
    samples: int = 0  # on-CPU samples kept (the cell's threads, inside the window)
    buckets: dict[str, int] = Field(default_factory=dict)
    idle: int = 0  # samples' worth of capacity unused while the cell's threads slept
    cpu_wait: int = 0  # samples' worth of capacity unused while they were runnable but preempted
    gil: bool = False  # whether the GIL rules applied (a GIL build, or the GIL re-enabled)
    functions: list[ProfileEntry] = Field(default_factory=list)  # nearest Python function, inclusive
    symbols: list[ProfileEntry] = Field(default_factory=list)  # leaf C symbols (self time)
    callers: list[ProfileEntry] = Field(default_factory=list)  # "bucket: frame <- caller" for waits
    work: float | None = None  # workload calls (micro) or requests (http) done in the window
    work_unit: str = ""  # "call" or "request"
    folded: str | None = None  # collapsed stacks, relative to the run directory
    flags: list[str] = Field(default_factory=list)  # e.g. "no-kernel-samples", "no-python-frames"


class _CellBase(Model):
    """One measured point of a sweep.

    ``samples`` holds one throughput per repetition (``unit``: ``calls/s`` for micro cells,
    ``req/s`` for HTTP cells), so the statistics never need to know which bench produced a cell;
    ``repetitions`` keeps each repetition's full detail.
    """

    schema_version: int = SCHEMA_VERSION
    run_id: str
    cell_id: str
    build: str
    workload: str
    workload_class: str
    size: int
    threads: int
    mode: str | None = None
    topology: str | None = None
    scaling: Literal["strong", "weak"] | None = None
    status: Literal["ok", "failed", "skipped"]
    error: str | None = None
    stderr_tail: str | None = None
    # Why a skipped cell could not run on its build (a server without a wheel, a topology the
    # server does not have); nothing was started for it.
    skip_reason: str | None = None
    unit: str
    samples: list[float] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    gil_enabled: bool | None = None
    started: str
    finished: str
    # One extra repetition under perf (--profile), never part of samples or repetitions.
    profile: Profile | None = None


# Why a capacity step failed (ftscale.bench.http.capacity.judge).
StepFailure = Literal["errors", "not-served", "p99-over-target", "too-few-samples"]


class SloStep(Model):
    """One rate tried while looking for the capacity at a latency target (ftscale.bench.http.capacity).

    ``met``: the step passed. Steps of searches made before repeated steps (``SloSearch.method``
    absent) are one load each, judged by its point p99, and their achieved rate counted the
    answers completed after the window too.
    """

    offered_rps: float
    achieved_rps: float
    p99_ms: float | None
    errors: int
    met: bool
    # Repeated steps only (absent in older files):
    loads: int | None = None
    duration_s: float | None = None  # each load's window
    due: int | None = None  # requests due inside the loads' windows
    completed: int | None = None  # good answers completed inside them
    samples: int | None = None  # latency samples (every good answer) the percentiles rest on
    p50_ms: float | None = None
    p99_upper_ms: float | None = None  # the p99's one-sided upper confidence bound (None: no bound)
    coverage: float | None = None  # the bound's exact binomial coverage
    send_lag_p99_ms: float | None = None  # the worst load's
    failures: list[StepFailure] = Field(default_factory=list)
    error_kinds: dict[str, int] = Field(default_factory=dict)  # failed requests by status or kind
    flags: list[str] = Field(default_factory=list)  # the generator's flags at this step


class SloSearch(Model):
    """The capacity at ``target_p99_ms``: the highest rate that passed with every lower rate tried
    passing (``capacity_rps``; None: none passed), and the lowest rate that failed
    (``failing_rps``; None: none did, so the capacity is censored at the highest rate tried)."""

    target_p99_ms: float
    steps: list[SloStep]
    capacity_rps: float | None  # None: not even the lowest rate tried met the target
    # Added with repeated steps (absent in older files, whose search bisected single loads):
    method: Literal["repeated-steps"] | None = None
    cap_rps: float | None = None  # the highest rate tried: the design's closed-loop median
    failing_rps: float | None = None
    censored: bool | None = None
    level: float | None = None  # the confidence level of each step's p99 bound


class Selection(Model):
    """Why a design is a finalist (a confirmation cell): its exploration point and the rule."""

    explore_cell_id: str  # the exploration cell it was chosen from
    rule: str  # the rule, in words
    lower_bound: float  # the median's lower confidence bound that the rule ranked by
    coverage: float  # of that interval
    median: float
    candidates: int  # eligible exploration points of its build
    ineligible: int  # points of its build that could not be chosen (oversubscribed, flagged)


class HttpCell(_CellBase):
    kind: Literal["http"] = "http"
    server: str | None = None  # the HTTP server (None: written before it was a choice, uvicorn-h11)
    runtime_threads: int | None = None  # granian's runtime threads per worker, when not 1
    tcp_nodelay: bool | None = None  # the server's accepted connections had TCP_NODELAY (from /info)
    repetitions: list[HttpRepetition] = Field(default_factory=list)
    info_before: Info | None = None
    info_after: Info | None = None
    load: Literal["closed", "open"] = "closed"
    offered_rps: float | None = None  # open loop: the rate offered (the same in every repetition)
    offered_share: float | None = None  # ... as a share of the design's closed-loop median
    slo: SloSearch | None = None
    # Added in format 3:
    stage: Literal["explore", "confirm"] = "explore"
    selection: Selection | None = None  # a confirmation cell: why its design was a finalist
    connections: int | None = None  # connections the load kept open (the same across a workload)
    disturbed: list[HttpRepetition] = Field(default_factory=list)  # measured again (interference)


class MicroCell(_CellBase):
    kind: Literal["micro"] = "micro"
    repetitions: list[MicroRepetition] = Field(default_factory=list)
    # Load average around the cell (the micro bench does not pin CPUs; this shows the noise).
    info_before: dict[str, float] | None = None
    info_after: dict[str, float] | None = None
    # Added in format 4. "sweep": a cell of a micro run; "ceiling": a cell of an HTTP run's
    # in-process pass, the same workload and size at the same threads on the same server CPUs
    # (``cpus``, the CPUs the pyperf process was pinned to: the first N of the server's).
    stage: Literal["sweep", "ceiling"] = "sweep"
    cpus: list[int] | None = None


Cell = Annotated[HttpCell | MicroCell, Field(discriminator="kind")]
CELL: TypeAdapter[HttpCell | MicroCell] = TypeAdapter(Cell)


class RunMeta(Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    kind: Literal["micro", "http"]
    created: str
    finished: str | None = None
    host: Host
    git: Git
    config: dict[str, Any] = Field(default_factory=dict)
    builds: dict[str, Build] = Field(default_factory=dict)
    generator: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)
    # Wall-clock slots this run was measured in (a run resumed across slots is still one run).
    slots: list[dict[str, Any]] = Field(default_factory=list)


# --- reading files ------------------------------------------------------------------------------


def upgrade(data: dict[str, Any], source: Path | str) -> dict[str, Any]:
    """Bring a decoded file of any known format to :data:`SCHEMA_VERSION`."""
    version = data.get("schema_version")
    if version == SCHEMA_VERSION:
        return data
    if version in (1, 2, 3):
        # Version 1 wrote the same fields untyped, versions 2 and 3 fewer of them: the models accept all.
        return {**data, "schema_version": SCHEMA_VERSION}
    raise ResultError(
        f"{source}: schema_version {version!r} is not supported (this ftscale reads 1 to {SCHEMA_VERSION})"
    )


M = TypeVar("M", bound=BaseModel)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ResultError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: expected a JSON object")
    return data


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def load_model(model: type[M], path: Path) -> M:
    """Read ``path`` as ``model``, upgrading older formats; :class:`ResultError` names the problem."""
    try:
        return model.model_validate(upgrade(read_json(path), path))
    except ValidationError as exc:
        raise ResultError(f"{path}: does not match the ftscale result schema: {_one_line(exc)}") from None


def load_cell(path: Path) -> HttpCell | MicroCell:
    try:
        return CELL.validate_python(upgrade(read_json(path), path))
    except ValidationError as exc:
        raise ResultError(f"{path}: does not match the ftscale result schema: {_one_line(exc)}") from None


def parse(model: type[M], text: str | bytes, what: str) -> M:
    """Validate JSON ``text`` that another process sent; the error names ``what`` it was."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"{what}: unexpected shape: {_one_line(exc)}") from None
