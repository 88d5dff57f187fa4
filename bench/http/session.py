"""One repetition of an HTTP cell on a fresh server, and the protocols servers and generators meet.

Every repetition runs on a fresh server process (:class:`Session`): start it, wait until /health
answers, read /info, warm up, read /info (per-unit request counts), apply the load with a
concurrent /health probe while the server's process tree is measured (CPU, RSS, PSS, peak RSS),
read /info again, stop it. Repetitions are therefore independent samples, as the statistics
assume. A failure on the way stops the server and becomes :class:`RepetitionFailed` (with the
state it failed in and the tail of the server's stderr).

Open-loop loads offer fixed rates with Poisson (or evenly spaced) arrivals from seeds derived
from the run's (``Settings.arrivals``, ``Settings.seed``); latency counts from each request's due
time. Servers and generators come in through the small protocols below, so tests drive the whole
machine with fakes. What a cell's repetitions mean (its flags) is :mod:`.judge`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http import interference, memory
from ftscale.bench.http import mix as mixes
from ftscale.bench.http.cells import CellSpec, Settings
from ftscale.bench.http.judge import gil_came_back
from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.procs import ServerError, Usage
from ftscale.schema import (
    HealthProbe,
    HttpRepetition,
    Info,
    Interference,
    LoadResult,
    Profile,
    Selection,
    SloSearch,
)


class Server(Protocol):
    """One started server, as a repetition uses it."""

    host: str
    port: int

    def wait_healthy(self, timeout_s: float) -> None: ...
    def alive(self) -> bool: ...
    def info(self) -> Info: ...
    def usage(self) -> Usage | None: ...
    def stderr_tail(self, limit: int = ...) -> str: ...
    def stop(self, timeout_s: float = ...) -> dict[str, Any]: ...
    def pids(self) -> list[int]: ...  # the server's process tree (empty: not on this machine)


class ServerStarter(Protocol):
    """Starts a fresh server for one cell (:class:`ftscale.bench.http.real.Launcher`, or a fake)."""

    def start(self, plan: CellSpec, env: Mapping[str, str] | None = None) -> Server: ...


class LoadGenerator(Protocol):
    """Applies one load (:class:`ftscale.bench.http.real.SubprocessGenerator`, or a fake)."""

    name: str

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]: ...


def unit_deltas(before: Info | None, after: Info | None, units: int) -> dict[str, int] | None:
    """Work requests each serving unit served between two /info answers (None where not counted)."""
    if before is None or after is None or before.unit_requests is None or after.unit_requests is None:
        return None
    deltas = {k: after.unit_requests.get(k, 0) - before.unit_requests.get(k, 0) for k in after.unit_requests}
    missing = units - len(deltas)
    for i in range(max(0, missing)):  # units that never answered a request have no counter yet
        deltas[f"idle {i}"] = 0
    return deltas


@dataclass
class CellProgress:
    """What the repetitions of one cell produced so far."""

    plan: CellSpec
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


def repetition(
    load: LoadResult,
    health: HealthProbe | None,
    window: Window,
    ceiling: float | None,
    units: dict[str, int] | None,
    offered: float | None,
) -> HttpRepetition:
    after = window.after
    return HttpRepetition(
        load=load,
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


class Session:
    """One fresh server for one repetition (or one latency-target search), always stopped.

    After it has stopped, :attr:`start_s` and :attr:`stop_s` say what the server's start (until
    /health answered) and its stop cost, where the launcher measured them.
    """

    def __init__(self, plan: CellSpec, launcher: ServerStarter, settings: Settings) -> None:
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
        generator: LoadGenerator,
        ceiling: float | None,
        rate: float | None,
        out: CellProgress,
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
        rep = repetition(load, health, window, ceiling, units, rate)
        return rep.model_copy(update={"gil_came_back": gil_came_back(after_info)})


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def guarded(session: Session, body: Callable[[], Any]) -> Any:
    """Run ``body`` in ``session``; a server or generator failure becomes :class:`RepetitionFailed`."""
    try:
        with session:
            return body()
    except (ServerError, RuntimeError, OSError, ValueError, KeyError) as exc:
        tail = getattr(exc, "stderr_tail", "") or ""
        raise RepetitionFailed(session.state, exc, tail) from exc
