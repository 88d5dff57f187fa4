"""A measured cell (``cells/<cell-id>.json``): its repetitions, its profile, its capacity search."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from ftscale.schema.base import SCHEMA_VERSION, Model
from ftscale.schema.load import HealthProbe, LoadResult
from ftscale.schema.service import Info


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
    """One timed load against one server: the load generator's result as it printed it (``load``),
    with what the server used meanwhile."""

    load: LoadResult  # format 5; older files' flat copies of its fields are nested on read
    server_cpu_pct: float | None
    rss_bytes: int | None
    pss_bytes: int | None
    server_processes: int | None
    health_latency_ms: HealthProbe | None
    ceiling_rps: float | None
    # Added in format 2 (absent in older files):
    units: dict[str, int] | None = None  # work requests served per serving unit during the load
    peak_rss_bytes: int | None = None  # VmHWM summed over the server's process tree
    offered_rps: float | None = None  # open loop: the rate offered
    # Added in format 3:
    server_start: Literal["fork", "spawn"] | None = None  # forked from a pre-imported parent, or not
    start_s: float | None = None  # from asking for the server until its /health answered
    stop_s: float | None = None  # from SIGTERM until the server's process had exited
    usage_window_s: float | None = None  # wall time between the two CPU readings behind server_cpu_pct
    unique_bytes: int | None = None  # distinct pages of the server's tree (ftscale.bench.http.memory)
    interference: Interference | None = None
    round: int | None = None  # confirmation rounds: the round (0, 1 …) this repetition belongs to
    gil_came_back: bool = False  # a free-threaded build's server had the GIL on after this load (format 4)


# The fields formats 1 to 4 copied from the generator's result into each repetition, flat; format 5
# keeps that result whole under ``load`` (ftscale.schema.files.upgrade nests the old ones).
FLAT_LOAD_FIELDS = (
    "throughput_rps",
    "requests",
    "duration_s",
    "latency_ms",
    "errors",
    "generator_cpu_pct",
    "generator_busy_pct",
    "generator_busy_max_pct",
    "generator_threads",
    "latency_histogram",
    "send_lag_p99_ms",
    "arrivals",
    "arrival_seed",
    "due_requests",
    "window_requests",
    "chunks",
    "chunks_per_s",
    "ttfb_ms",
    "ttfb_histogram",
    "gap_histogram",
    "gap_p99_ms",
    "generator",
)


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
