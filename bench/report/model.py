"""A run as the reports see it: cells grouped into scaling series, each point with its statistics.

A *series* is one build, workload (and size), HTTP server, mode, topology, scaling and load,
swept over threads. The server is part of a series' key only in a run that measured more than
one (``RunModel.servers`` names those measured); a run of one server keys and labels its series
as before servers were a choice. Each point carries its median throughput with its interval,
the speedup over the series' own 1-thread point (no 1-thread point: no speedup), efficiency,
Karp-Flatt serial fraction, the HTTP detail (latency from the merged histograms with its sample
count, memory, CPU) summarised over repetitions, a streaming cell's stream figures
(:class:`StreamPoint`), a latency-target cell's capacity interval (:class:`Capacity`), and its
flags: those the bench judged when it made the cell (a run written before that is upgraded once,
as it is read: :mod:`.upgrade`). Cells skipped as impossible on their build are
kept apart (``RunModel.skipped``), and so are an HTTP run's in-process cells
(``RunModel.ceilings``: the same workloads in process on the server CPUs, the ceiling each design
is measured against; :mod:`.ceiling`).

Independent samples (:func:`~ftscale.bench.micro.judge.independent_samples`): HTTP repetitions,
or micro pyperf *processes* (the median of each one's values); a cell measured in one process has
no interval. A cell's figures over its repetitions are :mod:`.figures`'. Nothing here formats text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ftscale.bench.http.judge import error_count
from ftscale.bench.micro.judge import independent_samples as independent_samples
from ftscale.bench.report import stats
from ftscale.bench.report.figures import Capacity as Capacity
from ftscale.bench.report.figures import (
    StreamPoint,
    capacity_of,
    latency,
    median_of,
    stream_point,
)
from ftscale.bench.report.stats import Estimate
from ftscale.bench.report.upgrade import flags_of, free_threaded
from ftscale.bench.results import AnyCell as Cell
from ftscale.bench.results import Run
from ftscale.schema import HttpCell, MicroCell, RunMeta, Selection
from ftscale.vocab import (
    DEFAULT_SERVER,
    TOPOLOGIES,
    HttpServer,
    Mode,
    Scaling,
    Topology,
    WorkloadClass,
)
from ftscale.vocab import FLAG_ORDER as FLAGS

CLASS_ORDER = tuple(str(c) for c in WorkloadClass)
MODE_ORDER = tuple(str(m) for m in Mode)
TOPOLOGY_ORDER = tuple(str(t) for t in Topology)
SCALING_ORDER = tuple(str(s) for s in Scaling)
SERVER_ORDER = tuple(str(s) for s in HttpServer)
FLAG_ORDER = tuple(str(f) for f in FLAGS)
CURVE_POINTS = 64  # points on which a fitted curve is evaluated for the charts

NAN = math.nan


def _rank(value: str | None, order: Sequence[str]) -> tuple[int, str]:
    if value is None:
        return (-1, "")
    return (order.index(value), value) if value in order else (len(order), value)


def class_rank(workload_class: str) -> tuple[int, str]:
    return _rank(workload_class, CLASS_ORDER)


@dataclass(frozen=True)
class SeriesKey:
    build: str
    workload: str
    workload_class: str
    size: int
    mode: str | None
    topology: str | None
    scaling: str | None
    unit: str
    load: str = "closed"  # "open": a fixed offered rate (share of the closed-loop median)
    offered_share: float | None = None
    # The HTTP server (``granian``, ``granian-rt2`` with other than one runtime thread), in a run
    # that measured more than one; None otherwise (micro runs, runs of one server).
    server: str | None = None

    @classmethod
    def of(cls, cell: Cell, with_server: bool = False) -> SeriesKey:
        return cls(
            build=cell.build,
            workload=cell.workload,
            workload_class=cell.workload_class,
            size=cell.size,
            mode=cell.mode,
            topology=cell.topology,
            scaling=cell.scaling,
            unit=cell.unit,
            load=cell.load if isinstance(cell, HttpCell) else "closed",
            offered_share=cell.offered_share if isinstance(cell, HttpCell) else None,
            server=server_of(cell) if with_server else None,
        )

    @property
    def design(self) -> str:
        """``mode·topology`` or ``server·mode·topology`` (HTTP), or the scaling kind (micro)."""
        return "·".join(p for p in (self.server, self.mode, self.topology) if p) or (self.scaling or "")

    @property
    def one_process(self) -> bool:
        """An HTTP design served by one process with no process pool (``single``, ``loops``)."""
        if self.topology not in TOPOLOGY_ORDER:
            return False
        return TOPOLOGIES[Topology(self.topology)].one_process and self.mode != Mode.PROCESS

    def sort_key(self) -> tuple[Any, ...]:
        return (
            class_rank(self.workload_class),
            self.workload,
            self.size,
            self.load,
            self.offered_share or 0.0,
            _rank(self.scaling, SCALING_ORDER),
            _rank(self.mode, MODE_ORDER),
            _rank(self.topology, TOPOLOGY_ORDER),
            _rank((self.server or "").split("-rt")[0] or None, SERVER_ORDER),
            self.server or "",
            self.build,
        )


@dataclass(frozen=True)
class Point:
    """One successful cell and everything the reports say about it."""

    cell: Cell
    throughput: Estimate
    cv: float
    speedup: Estimate
    efficiency: Estimate
    karp_flatt: float
    flags: tuple[str, ...]
    latency_ms: Mapping[str, float]
    health_p99_ms: float
    rss_bytes: float
    pss_bytes: float
    server_cpu_pct: float
    errors: int
    samples: tuple[float, ...] = ()  # the independent samples the intervals are computed from
    latency_histogram: Mapping[int, int] | None = None  # merged over repetitions
    latency_requests: int = 0  # requests behind the latency percentiles
    health_samples: int = 0
    peak_rss_bytes: float = NAN
    stream: StreamPoint | None = None  # a streaming cell's time to first byte, gaps and chunks
    unique_bytes: float = NAN  # distinct physical pages of the server's processes (format 3)
    capacity: Capacity | None = None  # a latency-target cell's capacity

    @property
    def threads(self) -> int:
        return self.cell.threads

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def memory_bytes(self) -> float:
        """What the verdict weighs memory by: the server's distinct pages (each counted once, see
        :mod:`ftscale.bench.http.memory`), else PSS (runs before format 3), else RSS."""
        for value in (self.unique_bytes, self.pss_bytes):
            if math.isfinite(value):
                return value
        return self.rss_bytes

    @property
    def memory_kind(self) -> str:
        """How :attr:`memory_bytes` was measured: ``pages``, ``PSS`` or ``RSS``."""
        if math.isfinite(self.unique_bytes):
            return "pages"
        return "PSS" if math.isfinite(self.pss_bytes) else "RSS"


@dataclass(frozen=True)
class Series:
    key: SeriesKey
    points: tuple[Point, ...]
    amdahl: stats.AmdahlFit
    usl: stats.UslFit
    ideal: tuple[tuple[float, float], ...]  # (threads, 1-thread throughput times threads)
    usl_curve: tuple[tuple[float, float], ...]  # (threads, fitted throughput)

    @property
    def peak(self) -> Point:
        """The point of highest median throughput (the first one on a tie)."""
        return max(self.points, key=lambda p: (p.throughput.value, -p.threads))

    @property
    def max_threads(self) -> int:
        return max(p.threads for p in self.points)


def server_of(cell: Cell) -> str | None:
    """The HTTP server of a cell as keys name it (``granian-rt2``); None for a micro cell."""
    if not isinstance(cell, HttpCell):
        return None
    name = cell.server or str(DEFAULT_SERVER)  # older files: the only server there was
    return name if (cell.runtime_threads or 1) == 1 else f"{name}-rt{cell.runtime_threads}"


@dataclass(frozen=True)
class Finalist:
    """One design's confirmation rounds: its point over the rounds and each round's sample."""

    key: SeriesKey
    point: Point
    by_round: Mapping[int, float]  # round -> throughput measured in it
    selection: Selection | None  # why it was chosen (its exploration point and the rule)

    @property
    def series(self) -> Series:
        """The finalist as a one-point series, for what names a design and its unit."""
        return Series(self.key, (self.point,), NO_AMDAHL, NO_USL, (), ())


@dataclass(frozen=True)
class Confirmation:
    """The confirmation rounds of one workload: each build's finalist, measured once per round."""

    workload: str
    workload_class: str
    size: int
    finalists: tuple[Finalist, ...]

    def of_build(self, build: str) -> Finalist | None:
        return next((f for f in self.finalists if f.key.build == build), None)


NO_AMDAHL = stats.AmdahlFit("too-few-points", 1)
NO_USL = stats.UslFit("too-few-points", 1)


@dataclass(frozen=True)
class RunModel:
    run: Run
    series: tuple[Series, ...]
    failed: tuple[Cell, ...]  # failed, or "ok" without a single sample
    skipped: tuple[Cell, ...] = ()  # could not run on their build (a server without a wheel …)
    servers: tuple[str, ...] = ()  # the HTTP servers the run measured (none for a micro run)
    confirmations: tuple[Confirmation, ...] = ()  # the second stage of an HTTP run
    # An HTTP run's in-process pass: one strong-scaling series per build, workload and size.
    ceilings: tuple[Series, ...] = ()

    def confirmation(self, workload: str, size: int) -> Confirmation | None:
        return next((c for c in self.confirmations if (c.workload, c.size) == (workload, size)), None)

    @property
    def server_cpus(self) -> int | None:
        """How many CPUs the server had (an HTTP run), else None."""
        cpus = self.meta.config.get("server_cpus")
        return len(cpus) if isinstance(cpus, list) and cpus else None

    def repetition_overheads(self) -> list[float]:
        """Each HTTP repetition's server start plus stop, in seconds, where it was measured."""
        found = []
        for cell in self.run.cells:
            for rep in cell.repetitions if isinstance(cell, HttpCell) else ():
                if rep.start_s is not None and rep.stop_s is not None:
                    found.append(rep.start_s + rep.stop_s)
        return found

    @property
    def meta(self) -> RunMeta:
        return self.run.meta

    def workloads(self) -> list[tuple[str, str, int]]:
        """(workload, class, size) in report order."""
        seen = dict.fromkeys((s.key.workload, s.key.workload_class, s.key.size) for s in self.series)
        return sorted(seen, key=lambda w: (class_rank(w[1]), w[0], w[2]))

    def series_of(self, workload: str, size: int) -> list[Series]:
        return [s for s in self.series if s.key.workload == workload and s.key.size == size]

    def free_threaded(self, build: str) -> bool | None:
        return free_threaded(self.meta, build)


def cell_flags(cell: Cell, meta: RunMeta) -> tuple[str, ...]:
    """The cell's flags (:func:`~ftscale.bench.report.upgrade.flags_of`), in :data:`FLAG_ORDER`
    (unknown ones last)."""
    return tuple(sorted(set(flags_of(cell, meta)), key=lambda f: _rank(f, FLAG_ORDER)))


# --- building the model -----------------------------------------------------------------------


def _point(cell: Cell, meta: RunMeta, base: Cell | None) -> Point:
    reps: list[object] = list(cell.repetitions) if isinstance(cell, HttpCell) else []
    loads = [r.load for r in cell.repetitions] if isinstance(cell, HttpCell) else []
    samples = independent_samples(cell)
    cv = stats.coefficient_of_variation(samples)
    errors = error_count(cell.repetitions) if isinstance(cell, HttpCell) else 0
    if base is None:
        speedup = Estimate(NAN)
    elif base is cell:
        speedup = stats.exact(1.0)
    else:
        speedup = stats.ratio_of_medians(samples, independent_samples(base))
    latency_ms, merged, requests = latency(loads)
    health = [getattr(getattr(r, "health_latency_ms", None), "samples", 0) or 0 for r in reps]
    rss, pss = median_of(reps, "rss_bytes"), median_of(reps, "pss_bytes")
    unique = median_of(reps, "unique_bytes")
    memory = next((m for m in (unique, pss) if math.isfinite(m)), rss)  # as Point.memory_bytes
    return Point(
        cell=cell,
        throughput=stats.median_ci(samples),
        cv=cv,
        speedup=speedup,
        efficiency=speedup.scaled(1.0 / cell.threads),
        karp_flatt=stats.karp_flatt(speedup.value, cell.threads),
        flags=cell_flags(cell, meta),
        latency_ms=latency_ms,
        health_p99_ms=median_of(reps, "health_latency_ms", "p99"),
        rss_bytes=rss,
        pss_bytes=pss,
        unique_bytes=unique,
        server_cpu_pct=median_of(reps, "server_cpu_pct"),
        errors=errors,
        samples=tuple(samples),
        latency_histogram=merged,
        latency_requests=requests,
        health_samples=sum(health),
        peak_rss_bytes=median_of(reps, "peak_rss_bytes"),
        stream=stream_point(loads),
        capacity=capacity_of(cell, meta, memory) if isinstance(cell, HttpCell) else None,
    )


def _series(key: SeriesKey, cells: list[Cell], meta: RunMeta) -> Series:
    cells = sorted(cells, key=lambda c: c.threads)
    base = next((c for c in cells if c.threads == 1), None)
    points = tuple(_point(c, meta, base) for c in cells)
    threads = [float(p.threads) for p in points]
    medians = [p.throughput.value for p in points]
    usl_fit = stats.usl_intervals(threads, [p.samples for p in points])
    ideal: tuple[tuple[float, float], ...] = ()
    if base is not None:
        one = points[0].throughput.value
        ideal = tuple((n, one * n) for n in threads)
    curve: tuple[tuple[float, float], ...] = ()
    if usl_fit.status == "ok":
        grid = np.linspace(min(threads), max(threads), CURVE_POINTS)
        fitted = stats.usl(grid, usl_fit.lam, usl_fit.sigma, usl_fit.kappa)
        curve = tuple(zip(grid.tolist(), fitted.tolist(), strict=True))
    return Series(
        key=key,
        points=points,
        amdahl=stats.fit_amdahl(threads, medians),
        usl=usl_fit,
        ideal=ideal,
        usl_curve=curve,
    )


def confirmed(cell: Cell) -> bool:
    """A cell of the confirmation rounds (not part of any scaling series)."""
    return isinstance(cell, HttpCell) and cell.stage == "confirm"


def _confirmations(cells: Sequence[Cell], meta: RunMeta, with_server: bool) -> tuple[Confirmation, ...]:
    by_workload: dict[tuple[str, str, int], list[Finalist]] = {}
    for cell in cells:
        if not isinstance(cell, HttpCell) or cell.status != "ok" or not cell.samples:
            continue
        by_round = {
            rep.round: sample
            for rep, sample in zip(cell.repetitions, cell.samples, strict=False)
            if rep.round is not None
        }
        finalist = Finalist(
            SeriesKey.of(cell, with_server), _point(cell, meta, None), by_round, cell.selection
        )
        by_workload.setdefault((cell.workload, cell.workload_class, cell.size), []).append(finalist)
    return tuple(
        Confirmation(w, c, s, tuple(sorted(f, key=lambda x: x.key.sort_key())))
        for (w, c, s), f in sorted(by_workload.items(), key=lambda kv: (class_rank(kv[0][1]), kv[0][0]))
    )


def in_process(cell: Cell) -> bool:
    """A cell of an HTTP run's in-process pass (its ceiling), not of a scaling series."""
    return isinstance(cell, MicroCell) and cell.stage == "ceiling"


def _ceilings(cells: Sequence[Cell], meta: RunMeta) -> tuple[Series, ...]:
    groups: dict[SeriesKey, list[Cell]] = {}
    for cell in cells:
        if cell.status == "ok" and cell.samples:
            groups.setdefault(SeriesKey.of(cell), []).append(cell)
    return tuple(_series(k, groups[k], meta) for k in sorted(groups, key=SeriesKey.sort_key))


def build_model(run: Run) -> RunModel:
    """Group a run's successful cells into series and compute every statistic the reports show."""
    measured = [c for c in run.cells if c.status != "skipped" and not confirmed(c) and not in_process(c)]
    named = {name for name in (server_of(c) for c in measured) if name}
    servers = tuple(sorted(named, key=lambda s: (_rank(s.split("-rt")[0], SERVER_ORDER), s)))
    groups: dict[SeriesKey, list[Cell]] = {}
    for cell in measured:
        if cell.status == "ok" and cell.samples:
            groups.setdefault(SeriesKey.of(cell, with_server=len(servers) > 1), []).append(cell)
    series = tuple(_series(k, groups[k], run.meta) for k in sorted(groups, key=SeriesKey.sort_key))
    confirm_cells = [c for c in run.cells if confirmed(c)]
    ceiling_cells = [c for c in run.cells if in_process(c)]
    failed = tuple(
        c for c in [*measured, *confirm_cells, *ceiling_cells] if c.status == "failed" or not c.samples
    )
    skipped = tuple(c for c in run.cells if c.status == "skipped")
    confirmations = _confirmations(confirm_cells, run.meta, len(servers) > 1)
    ceilings = _ceilings(ceiling_cells, run.meta)
    return RunModel(
        run=run,
        series=series,
        failed=failed,
        skipped=skipped,
        servers=servers,
        confirmations=confirmations,
        ceilings=ceilings,
    )
