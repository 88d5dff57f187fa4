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
closed-loop median; latency counts from each request's due time. A latency target
(``Settings.slo_p99_ms``) adds one cell per design that searches the highest rate whose p99
stays under the target with no errors.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ftscale.bench import results
from ftscale.bench.http import mix as mixes
from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.procs import ServerError, Usage
from ftscale.bench.profile.http import profiled_repetition
from ftscale.bench.profile.session import Profiler
from ftscale.schema import (
    HealthProbe,
    HttpCell,
    HttpRepetition,
    Info,
    LoadResult,
    Profile,
    SloSearch,
    SloStep,
)
from ftscale.vocab import APP_PREFIX, DEFAULT_SERVER, Flag

# A cell is flagged generator-bound when one generator thread (or process) was running or
# waiting for a CPU this share of the time: it then adds its own queueing to every request, and
# the load, not the server, sets the pace. Judged per thread: a thread can use one CPU at most.
SATURATION_BUSY_PCT = 50.0
# ... or when the service answered at this share of what the generator reached against a server
# that costs nothing (its ceiling with the same connections, measured once per run).
SATURATION_CEILING_SHARE = 0.8
# A serving unit (worker process, event loop) that served less than this share of its fair share
# (1/N of the requests) in a repetition makes the cell unbalanced.
UNBALANCED_SHARE = 0.5
# Open loop: a rate is "met" when the service completes at least this share of what was offered.
OPEN_MET_SHARE = 0.97
SLO_BISECTIONS = 4
# A streaming cell's server admits this many streams per closed-loop connection (open loops use
# Settings.open_connections_factor = 2 times the connections).
STREAM_ADMISSION_FACTOR = 2


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

    @property
    def path(self) -> str:
        return f"/{'stream' if self.stream else 'work'}/{self.workload}"

    @property
    def unit(self) -> str:
        """What a sample counts: requests, or a streaming cell's chunks, per second."""
        return "chunks/s" if self.stream else "req/s"

    @property
    def server_args(self) -> tuple[str, ...]:
        """Server options the cell needs beyond its design: room for every stream it may open (in
        the admission places, and among the streams, which by default get half of them)."""
        if not self.stream:
            return ()
        room = str(STREAM_ADMISSION_FACTOR * self.connections)
        return ("--queue-limit", room, "--max-streams", room)

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
        extra = "-".join(part for part in (server, load) if part) or None
        return results.cell_id(self.build, self.workload, self.threads, self.mode, self.topology, extra=extra)

    @property
    def design(self) -> tuple[str, str, str, str]:
        return (self.build, self.server_label, self.mode, self.topology)

    @property
    def units(self) -> int:
        """Serving units the design spreads connections over (1 for a single process and loop)."""
        return self.threads if self.topology in ("workers", "loops", "loops-reuseport") else 1

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
    open_connections_factor: int = 2  # open loop: connections per closed-loop connection


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


def ceiling_key(load: str, connections: int) -> str:
    """How a generator ceiling is filed: by load kind and connection count."""
    return f"{load}:{connections}"


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
    """Whether a unit served less than :data:`UNBALANCED_SHARE` of its fair share."""
    if deltas is None or units < 2:
        return False
    total = sum(deltas.values())
    if total <= 0:
        return False
    counts = sorted(deltas.values()) + [0] * max(0, units - len(deltas))
    return min(counts) / total < UNBALANCED_SHARE / units


def gil_came_back(info: Info | None) -> bool:
    """A free-threaded build serving with the GIL on (a GIL build always has it: not a flag)."""
    return info is not None and info.interpreter.py_gil_disabled and info.gil_enabled


def flags_for(plan: Plan, reps: Sequence[HttpRepetition], info: Info | None) -> list[str]:
    flags: list[Flag] = []
    median_rps = statistics.median(r.throughput_rps for r in reps)
    busiest = max((r.generator_busy_max_pct or 0.0) for r in reps)
    ceiling = min((r.ceiling_rps for r in reps if r.ceiling_rps), default=None)
    if busiest >= SATURATION_BUSY_PCT or (ceiling and median_rps >= SATURATION_CEILING_SHARE * ceiling):
        flags.append(Flag.GENERATOR_SATURATED)
    if any(r.errors for r in reps):
        flags.append(Flag.ERRORS)
    if gil_came_back(info):
        flags.append(Flag.GIL_ENABLED)
    if any(unbalanced(r.units, plan.units) for r in reps):
        flags.append(Flag.UNBALANCED)
    if info is not None and info.tcp_nodelay is False:
        flags.append(Flag.NAGLE)
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


class RepetitionFailed(Exception):
    def __init__(self, state: str, cause: BaseException, tail: str) -> None:
        super().__init__(f"{state}: {cause}")
        self.tail = tail


def _repetition(
    load: LoadResult,
    health: HealthProbe | None,
    before: Usage | None,
    after: Usage | None,
    ceiling: float | None,
    units: dict[str, int] | None,
    offered: float | None,
) -> HttpRepetition:
    cpu_pct = None
    if before is not None and after is not None and load.duration_s > 0:
        cpu_pct = round(100 * (after.cpu_seconds - before.cpu_seconds) / load.duration_s, 1)
    return HttpRepetition(
        throughput_rps=load.throughput_rps,
        requests=load.requests,
        duration_s=load.duration_s,
        latency_ms=load.latency_ms,
        errors=load.errors,
        server_cpu_pct=cpu_pct,
        rss_bytes=after.rss_bytes if after else None,
        pss_bytes=after.pss_bytes if after else None,
        server_processes=after.processes if after else None,
        health_latency_ms=health,
        generator_cpu_pct=load.generator_cpu_pct,
        generator_busy_pct=load.generator_busy_pct,
        ceiling_rps=ceiling,
        generator_busy_max_pct=load.generator_busy_max_pct,
        generator_threads=load.generator_threads,
        latency_histogram=load.latency_histogram,
        units=units,
        peak_rss_bytes=after.peak_rss_bytes if after else None,
        offered_rps=offered,
        send_lag_p99_ms=load.send_lag_p99_ms,
        chunks=load.chunks,
        chunks_per_s=load.chunks_per_s,
        ttfb_ms=load.ttfb_ms,
        ttfb_histogram=load.ttfb_histogram,
        gap_histogram=load.gap_histogram,
        gap_p99_ms=load.gap_p99_ms,
        generator=load.generator,
    )


class Session:
    """One fresh server for one repetition (or one latency-target search), always stopped."""

    def __init__(self, plan: Plan, launcher: Launcher, settings: Settings) -> None:
        self.plan, self.launcher, self.settings = plan, launcher, settings
        self.server: Server | None = None
        self.state = "start"

    def __enter__(self) -> Session:
        try:
            self.server = self.launcher.start(self.plan)
            self.state = "health"
            self.server.wait_healthy(self.settings.start_timeout_s)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.stop(timeout_s=5 if exc and exc[0] is not None else 15)

    def spec(self, rate: float | None = None) -> LoadSpec:
        assert self.server is not None
        connections = self.plan.connections * (self.settings.open_connections_factor if rate else 1)
        return LoadSpec(
            host=self.server.host,
            port=self.server.port,
            **self.plan.request(),
            connections=connections,
            duration_s=self.settings.duration_s,
            rate=rate,
            stream=self.plan.stream,
        )

    def measure(
        self, generator: Generator, ceiling: float | None, rate: float | None, out: Outcome
    ) -> HttpRepetition:
        """Warm up, then one measured load; /info before and after it."""
        assert self.server is not None
        server = self.server
        self.state = "info"
        out.info_before = out.info_before or server.info()
        if self.plan.app is not None:  # a fast error page is not speed
            self.state = "check"
            mixes.preflight(server.host, server.port, mixes.read_load_mix(self.plan.app.mix_file))
        if self.settings.warmup_s > 0:
            self.state = "warmup"
            generator.load(replace(self.spec(rate), duration_s=self.settings.warmup_s), probe_health=False)
        self.state = "load"
        before_info = server.info()
        before = server.usage()
        load, health = generator.load(self.spec(rate), probe_health=True)
        after = server.usage()
        if not server.alive():
            raise ServerError("server died during the measurement", server.stderr_tail())
        self.state = "info-after"
        after_info = server.info()
        out.info_after = after_info
        units = unit_deltas(before_info, after_info, self.plan.units)
        return _repetition(load, health, before, after, ceiling, units, rate)


def _guarded(session: Session, body: Callable[[], Any]) -> Any:
    """Run ``body`` in ``session``; a server or generator failure becomes :class:`RepetitionFailed`."""
    try:
        with session:
            return body()
    except (ServerError, RuntimeError, OSError, ValueError, KeyError) as exc:
        tail = getattr(exc, "stderr_tail", "") or ""
        raise RepetitionFailed(session.state, exc, tail) from exc


# --- the latency-target search ---------------------------------------------------------------------


def slo_search(
    session: Session,
    generator: Generator,
    peak_rps: float,
    target_ms: float,
    ceiling: float | None,
    out: Outcome,
) -> tuple[SloSearch, list[HttpRepetition]]:
    """The highest offered rate meeting ``target_ms`` at p99 (no errors, rate kept up), on one server.

    Tries 90 % of the closed-loop peak, then 100 % if that was met; otherwise bisects between 0
    and 90 % :data:`SLO_BISECTIONS` times. The capacity is the highest rate met. The server's
    /info before and after goes to ``out`` (the cell's record: its build and GIL state).
    """
    steps: list[SloStep] = []
    reps: list[HttpRepetition] = []

    def attempt(rate: float) -> bool:
        rep = session.measure(generator, ceiling, rate, out)
        p99 = rep.latency_ms.get("p99")
        errors = sum(rep.errors.values())
        met = (
            errors == 0
            and p99 is not None
            and p99 <= target_ms
            and rep.throughput_rps >= OPEN_MET_SHARE * rate
        )
        steps.append(
            SloStep(offered_rps=rate, achieved_rps=rep.throughput_rps, p99_ms=p99, errors=errors, met=met)
        )
        reps.append(rep)
        return met

    best: float | None = None
    if attempt(0.9 * peak_rps):
        best = 0.9 * peak_rps
        if attempt(peak_rps):
            best = peak_rps
    else:
        low, high = 0.0, 0.9 * peak_rps
        for _ in range(SLO_BISECTIONS):
            mid = (low + high) / 2
            if attempt(mid):
                best, low = mid, mid
            else:
                high = mid
    return SloSearch(target_p99_ms=target_ms, steps=steps, capacity_rps=best), reps


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
        flags=flags_for(plan, out.reps, nodelay),
        gil_enabled=out.info_before.gil_enabled if out.info_before else None,
    )


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
        out = outcomes[plan.key]
        if out.error is not None:
            return
        session = Session(plan, launcher, settings)
        try:
            rep = _guarded(session, lambda: body(session, out))
        except RepetitionFailed as exc:
            out.error, out.stderr_tail = str(exc), exc.tail
            log(f"    {plan.key}: failed in {exc}")
            return
        if rep is not None:
            out.reps.append(rep)

    def ceiling(plan: Plan, rate: float | None) -> float | None:
        connections = plan.connections * (settings.open_connections_factor if rate else 1)
        return ceilings.get(ceiling_key("open" if rate else "closed", connections))

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
            found, reps = slo_search(s, generator, top, settings.slo_p99_ms, ceiling(p, top), out)
            out.slo = found
            out.offered_rps = found.capacity_rps
            met = [r for r, step in zip(reps, found.steps, strict=True) if step.met]
            out.reps.extend(met[-1:] or reps[-1:])  # the repetition at the capacity (or the last tried)
            return None

        run(plan, search)
    cells = [_cell(outcomes[p.key], run_id) for p in group.plans]
    for cell in cells:
        if cell.status == "ok" and cell.load == "closed":
            median = statistics.median(cell.samples)
            log(f"    {cell.cell_id}: {median:,.1f} {cell.unit} {' '.join(cell.flags)}")
    return cells
