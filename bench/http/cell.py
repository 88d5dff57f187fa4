"""The HTTP bench's state machine, independent of real processes: groups, repetitions, cells.

A *cell* is one design (build, mode, topology) at one thread count for one workload. The bench
measures cells in *groups*: every cell of one workload at one thread count. Inside a group,
repetitions are interleaved — repetition 1 of every cell, then repetition 2 of every cell … —
so drift of the machine (thermal, a noisy neighbour) spreads over every build and design alike
instead of masquerading as a difference between them.

Every repetition runs on a fresh server process: start it, wait until /health answers, read
/info, warm up, read /info (per-unit request counts), apply the load with a concurrent /health
probe while the server's process tree is measured (CPU, RSS, PSS, peak RSS), read /info again,
stop it. Repetitions are therefore independent samples, as the statistics assume. A failure on
the way stops the server, kills what is left, and fails that cell (with the error and the tail
of the server's stderr); the group goes on with its other cells.

Open-loop cells (``Settings.open_shares``) offer fixed rates at shares of the design's own
closed-loop median, with Poisson (or evenly spaced) arrivals from seeds derived from the run's
(``Settings.arrivals``, ``Settings.seed``); latency counts from each request's due time. A
latency target (``Settings.slo_p99_ms``) adds one cell per design that searches its capacity at
that target (:mod:`ftscale.bench.http.capacity`).

Streaming cells (a workload the service streams, ``Plan.stream``) load ``/stream/{name}``: their
samples are chunks per second (every stream of a cell has the same number of chunks, so this is
streams per second times that number), and each repetition keeps the time to first byte, the
gaps between chunks and the chunks counted. A stream holds an admission place for its whole
life, so their servers admit every stream the load can open (:attr:`Plan.server_args`).

Servers and generators come in through the small protocols below, so tests drive the whole
machine with fakes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ftscale.bench import results
from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http import capacity, gencheck, interference, memory, options
from ftscale.bench.http import mix as mixes
from ftscale.bench.http.gencheck import ceiling_key as ceiling_key  # filed by request shape too
from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.procs import ServerError, Usage
from ftscale.bench.profile.http import profiled_repetition
from ftscale.bench.profile.session import Profiler
from ftscale.schema import (
    HealthProbe,
    HttpCell,
    HttpRepetition,
    Info,
    Interference,
    LoadResult,
    Profile,
    Selection,
    SloSearch,
)
from ftscale.vocab import APP_PREFIX, DEFAULT_SERVER, TOPOLOGIES, Arrival, Flag, Topology

# A serving unit (worker process, event loop) that served less than this share of its fair share
# (1/N of the requests) in a repetition, or more than OVERLOADED_SHARE times it, makes the cell
# unbalanced: the design ran on fewer units than it was given.
UNBALANCED_SHARE = 0.5
OVERLOADED_SHARE = 1.5
# A streaming cell's server admits this many streams per connection its load may open.
STREAM_ADMISSION_FACTOR = 2
# Open loops keep this many connections per closed-loop connection (room for requests that queue).
OPEN_CONNECTIONS_FACTOR = 2
# Confirmation rounds by default: each measures every finalist once on a fresh server.
CONFIRM_ROUNDS = options.CONFIRM_ROUNDS


@dataclass(frozen=True)
class AppRequests:
    """What a cell of a user's app (``ftscale app``) sends: its resolved request mix (a
    :class:`~ftscale.schema.LoadMix` file), judged on every fresh server before it is measured."""

    mix_file: str
    prefix: str = APP_PREFIX  # where the served app answers ftscale's /health and /info


@dataclass(frozen=True)
class Plan:
    """What one cell measures: the service's ``/work/{workload}``, or a user's app (``app``)."""

    build: str
    workload: str
    workload_class: str
    size: int
    mode: str
    topology: str
    threads: int
    connections: int
    offered_share: float | None = None  # open loop at this share of the closed-loop median
    slo: bool = False  # the search for the capacity at the latency target
    app: AppRequests | None = None  # a user's app: its request mix instead of /work/{workload}
    server: str = str(DEFAULT_SERVER)  # the HTTP server (ftscale.vocab.HttpServer)
    runtime_threads: int = 1  # granian's Rust I/O threads per worker
    skip_reason: str | None = None  # the design cannot run on this build: nothing is started
    stream: bool = False  # the workload is loaded as a stream (POST /stream/{name})
    stage: str = "explore"  # or "confirm": a finalist measured in paired rounds

    @property
    def path(self) -> str:
        return f"/{'stream' if self.stream else 'work'}/{self.workload}"

    @property
    def unit(self) -> str:
        """What a sample counts: requests, or a streaming cell's chunks, per second."""
        return "chunks/s" if self.stream else "req/s"

    @property
    def load_connections(self) -> int:
        """Connections its loads keep open: ``connections``, more for an open loop."""
        return self.connections * (OPEN_CONNECTIONS_FACTOR if self.load == "open" else 1)

    @property
    def server_args(self) -> tuple[str, ...]:
        """Server options the cell needs beyond its design: admission room for every request its
        load can have in flight (and every stream it may open, among the streams too, which by
        default get half of the places), so the bench measures what the design serves, never 503s
        of its own making. A user's app has no admission of ftscale's."""
        if self.app is not None:
            return ()
        room = str(self.load_connections * (STREAM_ADMISSION_FACTOR if self.stream else 1))
        return ("--queue-limit", room, *(("--max-streams", room) if self.stream else ()))

    @property
    def load(self) -> str:
        return "open" if self.offered_share is not None or self.slo else "closed"

    @property
    def server_label(self) -> str:
        """The server and its own settings, as keys and reports name it (``granian-rt2``)."""
        return server_label(self.server, self.runtime_threads)

    @property
    def key(self) -> str:
        load = None
        if self.offered_share is not None:
            load = f"open{round(self.offered_share * 100):03d}"
        elif self.slo:
            load = "slo"
        # The default server adds nothing: keys of runs made before servers were a choice still match.
        server = None if self.server_label == str(DEFAULT_SERVER) else self.server_label
        stage = "confirm" if self.stage == "confirm" else None
        extra = "-".join(part for part in (server, load, stage) if part) or None
        return results.cell_id(self.build, self.workload, self.threads, self.mode, self.topology, extra=extra)

    @property
    def design(self) -> tuple[str, str, str, str]:
        return (self.build, self.server_label, self.mode, self.topology)

    @property
    def units(self) -> int:
        """Serving units the design spreads connections over (1 for a single process and loop)."""
        return self.threads if TOPOLOGIES[Topology(self.topology)].units == "threads" else 1

    def body(self) -> bytes:
        return f'{{"size": {self.size}}}'.encode()

    def request(self) -> dict[str, Any]:
        """The :class:`LoadSpec` fields saying what this cell sends."""
        if self.app is None:
            return {"path": self.path, "body": self.body()}
        return {"path": "/", "mix_file": self.app.mix_file, "health_path": f"{self.app.prefix}/health"}


@dataclass(frozen=True)
class Group:
    """Every cell of one workload at one thread count: measured together, interleaved."""

    workload: str
    threads: int
    plans: tuple[Plan, ...]

    @property
    def key(self) -> str:
        return f"{self.workload}__t{self.threads:03d}"

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.plans)


@dataclass(frozen=True)
class Settings:
    duration_s: float = 3.0
    warmup_s: float = 1.0
    repetitions: int = 3
    start_timeout_s: float = 60.0
    open_shares: tuple[float, ...] = ()
    slo_p99_ms: float | None = None
    open_connections_factor: int = OPEN_CONNECTIONS_FACTOR  # open loop: connections per closed-loop one
    rounds: int = CONFIRM_ROUNDS  # confirmation rounds (0: none)
    redo_disturbed: bool = True  # measure a repetition again, once, when the machine disturbed it
    arrivals: str = str(Arrival.POISSON)  # open loop: when requests are due
    seed: int = 0  # the run's seed: every open-loop load's schedule is derived from it
    slo_loads: int = capacity.MIN_LOADS  # a capacity step's loads (at least)
    slo_min_samples: int = capacity.MIN_SAMPLES  # ... and the requests its p99 rests on (at least)


class Server(Protocol):
    host: str
    port: int

    def wait_healthy(self, timeout_s: float) -> None: ...
    def alive(self) -> bool: ...
    def info(self) -> Info: ...
    def usage(self) -> Usage | None: ...
    def stderr_tail(self, limit: int = ...) -> str: ...
    def stop(self, timeout_s: float = ...) -> dict[str, Any]: ...
    def pids(self) -> list[int]: ...  # the server's process tree (empty: not on this machine)


class Launcher(Protocol):
    def start(self, plan: Plan, env: Mapping[str, str] | None = None) -> Server: ...


class Generator(Protocol):
    name: str

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]: ...


def server_label(server: str | None, runtime_threads: int | None = 1) -> str:
    """``granian`` or, with other than one runtime thread, ``granian-rt2``; None is the default."""
    name = server or str(DEFAULT_SERVER)
    return name if (runtime_threads or 1) == 1 else f"{name}-rt{runtime_threads}"


# --- the order of work ------------------------------------------------------------------------


def interleaved(plans: Sequence[Plan], repetitions: int) -> Iterator[tuple[int, Plan]]:
    """(repetition, plan) in measuring order: every plan's repetition 1, then every repetition 2 ...

    Within a round the order rotates by one each time (A B C, B C A, C A B …), so no design is
    always first after a pause or always last.
    """
    n = len(plans)
    for rep in range(repetitions):
        for k in range(n):
            yield rep, plans[(k + rep) % n]


def rounds_order(count: int, rounds: int) -> Iterator[tuple[int, list[int]]]:
    """(round, the finalists' indices in measuring order): rotated each round (A B, B A, A B …),
    so no finalist is always first after a pause or always last."""
    for r in range(rounds):
        yield r, [(k + r) % count for k in range(count)]


# --- judging a cell ---------------------------------------------------------------------------


def unit_deltas(before: Info | None, after: Info | None, units: int) -> dict[str, int] | None:
    """Work requests each serving unit served between two /info answers (None where not counted)."""
    if before is None or after is None or before.unit_requests is None or after.unit_requests is None:
        return None
    deltas = {k: after.unit_requests.get(k, 0) - before.unit_requests.get(k, 0) for k in after.unit_requests}
    missing = units - len(deltas)
    for i in range(max(0, missing)):  # units that never answered a request have no counter yet
        deltas[f"idle {i}"] = 0
    return deltas


def unbalanced(deltas: dict[str, int] | None, units: int) -> bool:
    """Whether a unit served less than :data:`UNBALANCED_SHARE` of its fair share, or more than
    :data:`OVERLOADED_SHARE` times it."""
    if deltas is None or units < 2:
        return False
    total = sum(deltas.values())
    if total <= 0:
        return False
    counts = sorted(deltas.values()) + [0] * max(0, units - len(deltas))
    return min(counts) / total < UNBALANCED_SHARE / units or max(counts) / total > OVERLOADED_SHARE / units


def gil_came_back(info: Info | None) -> bool:
    """A free-threaded build serving with the GIL on (a GIL build always has it: not a flag)."""
    return info is not None and info.interpreter.py_gil_disabled and info.gil_enabled


def gil_after(out: Outcome) -> bool | None:
    """The GIL as the cell's servers left it: on after any repetition's load, else as /info last said."""
    if any(r.gil_came_back for r in out.reps):
        return True
    info = out.info_after or out.info_before
    return info.gil_enabled if info is not None else None


def flags_for(
    plan: Plan, reps: Sequence[HttpRepetition], info: Info | None, target_ms: float | None = None
) -> list[str]:
    """A cell's flags; ``target_ms``: its p99 target (a capacity search's), which the send lag is
    judged against (:mod:`.gencheck`)."""
    flags: list[Flag] = gencheck.generator_flags(reps, target_ms)
    if any(r.errors for r in reps):
        flags.append(Flag.ERRORS)
    if gil_came_back(info) or any(r.gil_came_back for r in reps):
        flags.append(Flag.GIL_ENABLED)
    if any(unbalanced(r.units, plan.units) for r in reps):
        flags.append(Flag.UNBALANCED)
    if info is not None and info.tcp_nodelay is False:
        flags.append(Flag.NAGLE)
    if any(r.interference is not None and r.interference.disturbed for r in reps):
        flags.append(Flag.DISTURBED)  # kept after its one redo: measured on a busy machine
    return [str(f) for f in flags]


# --- one repetition -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the repetitions of one cell produced so far."""

    plan: Plan
    started: str
    reps: list[HttpRepetition] = field(default_factory=list)
    info_before: Info | None = None
    info_after: Info | None = None
    error: str | None = None
    stderr_tail: str | None = None
    slo: SloSearch | None = None
    offered_rps: float | None = None
    profile: Profile | None = None
    disturbed: list[HttpRepetition] = field(default_factory=list)  # measured again
    selection: Selection | None = None  # a confirmation cell: why it is a finalist
    loads: int = 0  # open-loop loads applied so far (warm-ups aside): numbers each load's seed


class RepetitionFailed(Exception):
    def __init__(self, state: str, cause: BaseException, tail: str) -> None:
        super().__init__(f"{state}: {cause}")
        self.tail = tail


@dataclass(frozen=True)
class Window:
    """What the server and the machine did between two readings around one load."""

    before: Usage | None
    after: Usage | None
    seconds: float  # wall time between the two usage readings
    interference: Interference | None = None
    unique_bytes: int | None = None


def server_cpu_pct(window: Window) -> float | None:
    """The server tree's CPU over the window its two readings span (100 % = one CPU).

    Divided by the time between the readings, not by the load's own duration: the readings also
    span the generator's start and end, and CPU used then counts against the same window.
    """
    if window.before is None or window.after is None or window.seconds <= 0:
        return None
    return round(100 * (window.after.cpu_seconds - window.before.cpu_seconds) / window.seconds, 1)


def _repetition(
    load: LoadResult,
    health: HealthProbe | None,
    window: Window,
    ceiling: float | None,
    units: dict[str, int] | None,
    offered: float | None,
) -> HttpRepetition:
    after = window.after
    return HttpRepetition(
        **load.model_dump(include=REPETITION_LOAD_FIELDS),
        server_cpu_pct=server_cpu_pct(window),
        rss_bytes=after.rss_bytes if after else None,
        pss_bytes=after.pss_bytes if after else None,
        server_processes=after.processes if after else None,
        health_latency_ms=health,
        ceiling_rps=ceiling,
        units=units,
        peak_rss_bytes=after.peak_rss_bytes if after else None,
        offered_rps=offered,
        usage_window_s=round(window.seconds, 4) if window.before and window.after else None,
        unique_bytes=window.unique_bytes,
        interference=window.interference,
    )


# The load generator's figures a repetition keeps as they are.
REPETITION_LOAD_FIELDS = {
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
}


class Session:
    """One fresh server for one repetition (or one latency-target search), always stopped.

    After it has stopped, :attr:`start_s` and :attr:`stop_s` say what the server's start (until
    /health answered) and its stop cost, where the launcher measured them.
    """

    def __init__(self, plan: Plan, launcher: Launcher, settings: Settings) -> None:
        self.plan, self.launcher, self.settings = plan, launcher, settings
        self.server: Server | None = None
        self.state = "start"
        self.start_s: float | None = None
        self.stop_s: float | None = None
        self.forked: bool | None = None

    def __enter__(self) -> Session:
        try:
            self.server = self.launcher.start(self.plan)
            self.forked = getattr(self.server, "forked", None)
            self.state = "health"
            self.server.wait_healthy(self.settings.start_timeout_s)
            self.start_s = getattr(self.server, "start_s", None)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.stop(timeout_s=5 if exc and exc[0] is not None else 15)
            self.stop_s = getattr(server, "stop_s", None)

    def costs(self) -> dict[str, Any]:
        """The server's start and stop, as a repetition records them."""
        how = None if self.forked is None else ("fork" if self.forked else "spawn")
        return {"server_start": how, "start_s": _rounded(self.start_s), "stop_s": _rounded(self.stop_s)}

    def spec(self, rate: float | None = None, seed: int = 0, duration_s: float | None = None) -> LoadSpec:
        assert self.server is not None
        connections = self.plan.connections * (self.settings.open_connections_factor if rate else 1)
        return LoadSpec(
            host=self.server.host,
            port=self.server.port,
            **self.plan.request(),
            connections=connections,
            duration_s=self.settings.duration_s if duration_s is None else duration_s,
            rate=rate,
            stream=self.plan.stream,
            arrivals=self.settings.arrivals,
            seed=seed,
        )

    def measure(
        self,
        generator: Generator,
        ceiling: float | None,
        rate: float | None,
        out: Outcome,
        duration_s: float | None = None,
    ) -> HttpRepetition:
        """Warm up, then one measured load (``duration_s``: other than the settings'); /info before
        and after it, the machine around it. An open loop's schedule is seeded from the run's seed,
        the cell and the number of its loads so far."""
        assert self.server is not None
        server = self.server
        self.state = "info"
        out.info_before = out.info_before or server.info()
        if self.plan.app is not None:  # a fast error page is not speed
            self.state = "check"
            mixes.preflight(server.host, server.port, mixes.read_load_mix(self.plan.app.mix_file))
        seed = schedules.derive_seed(self.settings.seed, self.plan.key, out.loads) if rate else 0
        out.loads += 1 if rate else 0
        if self.settings.warmup_s > 0:
            self.state = "warmup"
            warmup = self.spec(rate, schedules.derive_seed(seed, "warm-up"), self.settings.warmup_s)
            generator.load(warmup, probe_health=False)
        self.state = "load"
        before_info = server.info()
        cpus = getattr(self.launcher, "cpus_for", lambda _: [])(self.plan) + list(
            getattr(generator, "client_cpus", [])
        )
        ticks = interference.read_ticks()
        began = time.monotonic()
        before = server.usage()
        load, health = generator.load(self.spec(rate, seed, duration_s), probe_health=True)
        after = server.usage()
        seconds = time.monotonic() - began
        ticks_after = interference.read_ticks()
        if not server.alive():
            raise ServerError("server died during the measurement", server.stderr_tail())
        server_cpu_s = after.cpu_seconds - before.cpu_seconds if before and after else 0.0
        generator_cpu_s = load.generator_cpu_pct / 100 * load.duration_s
        probe_cpu_s = health.cpu_s if health is not None and health.cpu_s is not None else 0.0
        disturbance = interference.measure(
            ticks, ticks_after, cpus, seconds, server_cpu_s + generator_cpu_s + probe_cpu_s
        )
        self.state = "info-after"
        after_info = server.info()
        out.info_after = after_info
        units = unit_deltas(before_info, after_info, self.plan.units)
        unique = memory.unique_bytes(server.pids()) if server.pids() else None
        window = Window(before, after, seconds, disturbance, unique)
        rep = _repetition(load, health, window, ceiling, units, rate)
        return rep.model_copy(update={"gil_came_back": gil_came_back(after_info)})


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _guarded(session: Session, body: Callable[[], Any]) -> Any:
    """Run ``body`` in ``session``; a server or generator failure becomes :class:`RepetitionFailed`."""
    try:
        with session:
            return body()
    except (ServerError, RuntimeError, OSError, ValueError, KeyError) as exc:
        tail = getattr(exc, "stderr_tail", "") or ""
        raise RepetitionFailed(session.state, exc, tail) from exc


# --- a group ------------------------------------------------------------------------------------


def nodelay_info(out: Outcome) -> Info | None:
    """The /info that says most about TCP_NODELAY: after the load (more connections seen)."""
    for info in (out.info_after, out.info_before):
        if info is not None and info.tcp_nodelay is not None:
            return info
    return out.info_after or out.info_before


def sample(rep: HttpRepetition, plan: Plan) -> float:
    """A repetition's throughput in the cell's unit: requests, or a streaming cell's chunks, per second."""
    return (rep.chunks_per_s or 0.0) if plan.stream else rep.throughput_rps


def _cell(out: Outcome, run_id: str) -> HttpCell:
    plan = out.plan
    nodelay = nodelay_info(out)
    common: dict[str, Any] = {
        "run_id": run_id,
        "cell_id": plan.key,
        "build": plan.build,
        "workload": plan.workload,
        "workload_class": plan.workload_class,
        "size": plan.size,
        "threads": plan.threads,
        "mode": plan.mode,
        "topology": plan.topology,
        "unit": plan.unit,
        "started": out.started,
        "finished": results.now(),
        "info_before": out.info_before,
        "info_after": out.info_after,
        "load": plan.load,
        "offered_rps": out.offered_rps,
        "offered_share": plan.offered_share,
        "slo": out.slo,
        "profile": out.profile,
        "server": plan.server,
        "runtime_threads": plan.runtime_threads if plan.runtime_threads != 1 else None,
        "tcp_nodelay": nodelay.tcp_nodelay if nodelay is not None else None,
        "stage": plan.stage,
        "selection": out.selection,
        "connections": plan.load_connections,
        "disturbed": out.disturbed,
    }
    if plan.skip_reason is not None:
        return HttpCell(**common, status="skipped", skip_reason=plan.skip_reason)
    if out.error is not None or not out.reps:
        return HttpCell(
            **common,
            status="failed",
            error=out.error or "no repetition was measured",
            stderr_tail=(out.stderr_tail or "")[-4000:] or None,
        )
    return HttpCell(
        **common,
        status="ok",
        samples=[sample(r, plan) for r in out.reps],
        repetitions=out.reps,
        flags=capacity.with_search_flags(
            flags_for(plan, out.reps, nodelay, out.slo.target_p99_ms if out.slo else None), out.slo
        ),
        gil_enabled=gil_after(out),
    )


def repeat(
    plan: Plan,
    out: Outcome,
    body: Callable[[Session, Outcome], HttpRepetition | None],
    launcher: Launcher,
    settings: Settings,
    log: Callable[[str], None],
    round_index: int | None = None,
) -> None:
    """One repetition of ``plan`` on a fresh server, into ``out``; measured once more, at once,
    when the machine disturbed it (the disturbed one is kept in ``out.disturbed``)."""
    for attempt in range(2):
        if out.error is not None:
            return
        session = Session(plan, launcher, settings)
        try:
            rep = _guarded(session, lambda s=session: body(s, out))  # type: ignore[misc]
        except RepetitionFailed as exc:
            out.error, out.stderr_tail = str(exc), exc.tail
            log(f"    {plan.key}: failed in {exc}")
            return
        if rep is None:
            return
        rep = rep.model_copy(update={**session.costs(), "round": round_index})
        disturbed = rep.interference is not None and rep.interference.disturbed
        if disturbed and attempt == 0 and settings.redo_disturbed:
            out.disturbed.append(rep)
            assert rep.interference is not None
            log(
                f"    {plan.key}: disturbed (other processes {rep.interference.foreign_cpu_pct:.0f} % of a "
                f"CPU, steal {rep.interference.steal_pct:.0f} %): measured again"
            )
            continue
        out.reps.append(rep)
        return


def measure_group(
    group: Group,
    run_id: str,
    launcher: Launcher,
    generator: Generator,
    settings: Settings,
    ceilings: dict[str, float],
    log: Callable[[str], None] = lambda _: None,
    profiler: Profiler | None = None,
) -> list[HttpCell]:
    """Measure every cell of ``group``: closed loop interleaved, then open loop, then the searches.

    With a ``profiler`` (``--profile``), each closed-loop cell then gets one more repetition on a
    fresh server under perf (:func:`ftscale.bench.profile.http.profiled_repetition`): it is the
    cell's ``profile``, never a sample. Never raises for a server or generator failure
    (KeyboardInterrupt does, after stopping the server of the repetition in flight).
    """
    outcomes = {p.key: Outcome(p, results.now()) for p in group.plans}
    runnable = [p for p in group.plans if p.skip_reason is None]  # skipped plans start nothing
    closed = [p for p in runnable if p.load == "closed"]

    def run(plan: Plan, body: Callable[[Session, Outcome], HttpRepetition | None]) -> None:
        repeat(plan, outcomes[plan.key], body, launcher, settings, log)

    def ceiling(plan: Plan, rate: float | None) -> float | None:
        connections = plan.connections * (settings.open_connections_factor if rate else 1)
        return gencheck.ceiling_for(ceilings, "open" if rate else "closed", connections, plan.request())

    for _, plan in interleaved(closed, settings.repetitions):
        run(plan, lambda s, out, p=plan: s.measure(generator, ceiling(p, None), None, out))  # type: ignore[misc]

    for plan in closed if profiler is not None else ():
        out = outcomes[plan.key]
        if out.error is not None or not out.reps or profiler is None:
            continue
        spec = LoadSpec(
            host="", port=0, **plan.request(),
            connections=plan.connections, duration_s=settings.duration_s, stream=plan.stream,
        )  # fmt: skip
        out.profile = profiled_repetition(
            plan.key, lambda env, p=plan: launcher.start(p, env=env), generator, spec,  # type: ignore[misc]
            settings.warmup_s, settings.start_timeout_s, profiler,
        )  # fmt: skip
        found = out.profile.error or f"{out.profile.samples} samples"
        log(f"    {plan.key}: profile {out.profile.status} ({found})")

    def peak(plan: Plan) -> float | None:
        base = next((p for p in closed if p.design == plan.design), None)
        done = outcomes[base.key] if base is not None else None
        if done is None or done.error is not None or not done.reps:
            return None
        return statistics.median(r.throughput_rps for r in done.reps)

    open_plans = [p for p in runnable if p.offered_share is not None]
    for _, plan in interleaved(open_plans, settings.repetitions):
        rps = peak(plan)
        if rps is None:
            outcomes[plan.key].error = "no closed-loop measurement of this design to set the rate from"
            continue
        rate = rps * (plan.offered_share or 0.0)
        outcomes[plan.key].offered_rps = rate
        run(plan, lambda s, out, p=plan, r=rate: s.measure(generator, ceiling(p, r), r, out))  # type: ignore[misc]

    for plan in (p for p in runnable if p.slo):
        rps = peak(plan)
        if rps is None or settings.slo_p99_ms is None:
            outcomes[plan.key].error = "no closed-loop measurement of this design to search from"
            continue

        def search(s: Session, out: Outcome, p: Plan = plan, top: float = rps) -> HttpRepetition | None:
            assert settings.slo_p99_ms is not None
            found, reps = capacity.search(
                lambda rate, seconds: s.measure(generator, ceiling(p, rate), rate, out, seconds),
                top, settings.slo_p99_ms, settings.duration_s, settings.slo_loads, settings.slo_min_samples,
            )  # fmt: skip
            out.slo = found
            out.offered_rps = found.capacity_rps
            out.reps.extend(reps)  # the loads of the step at the capacity (or of the lowest tried)
            return None

        run(plan, search)
    cells = [_cell(outcomes[p.key], run_id) for p in group.plans]
    for cell in cells:
        if cell.status == "ok" and cell.load == "closed":
            median = statistics.median(cell.samples)
            log(f"    {cell.cell_id}: {median:,.1f} {cell.unit} {' '.join(cell.flags)}")
    return cells


def measure_confirmation(
    finalists: Sequence[tuple[Plan, Selection]],
    run_id: str,
    launcher: Launcher,
    generator: Generator,
    settings: Settings,
    ceilings: dict[str, float],
    log: Callable[[str], None] = lambda _: None,
) -> list[HttpCell]:
    """Measure the finalists in :attr:`Settings.rounds` rounds (:mod:`ftscale.bench.http.confirm`):
    each round measures every finalist once, on a fresh server, in rotating order; each
    repetition carries its round, so the reports pair them."""
    plans = [plan for plan, _ in finalists]
    outcomes = {plan.key: Outcome(plan, results.now(), selection=why) for plan, why in finalists}

    def body(plan: Plan) -> Callable[[Session, Outcome], HttpRepetition | None]:
        ceiling = gencheck.ceiling_for(ceilings, "closed", plan.connections, plan.request())
        return lambda s, out: s.measure(generator, ceiling, None, out)

    for r, order in rounds_order(len(plans), settings.rounds):
        for index in order:
            plan = plans[index]
            repeat(plan, outcomes[plan.key], body(plan), launcher, settings, log, round_index=r)
    cells = [_cell(outcomes[p.key], run_id) for p in plans]
    for cell in cells:
        if cell.status == "ok":
            median = statistics.median(cell.samples)
            log(f"    {cell.cell_id}: {median:,.1f} {cell.unit} over {len(cell.samples)} rounds")
    return cells
