"""A run as the reports see it: cells grouped into scaling series, each point with its statistics.

A *series* is one build, workload (and size), mode, topology and scaling, swept over threads.
Each point carries its median throughput with CI, the speedup over the series' own 1-thread
point, efficiency, Karp-Flatt serial fraction, the HTTP detail (latency, memory, CPU) summarised
as medians over repetitions, and its flags: those the bench wrote plus those derived here from the
same file (GIL on in a free-threaded build, HTTP errors, CV over 5%). Nothing here formats text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ftscale.bench.report import stats
from ftscale.bench.report.stats import Estimate
from ftscale.bench.results import AnyCell as Cell
from ftscale.bench.results import Run

from ftscale.schema import HttpCell, RunMeta
from ftscale.vocab import FLAG_ORDER as FLAGS
from ftscale.vocab import Flag, Mode, Scaling, Topology, WorkloadClass

CLASS_ORDER = tuple(str(c) for c in WorkloadClass)
MODE_ORDER = tuple(str(m) for m in Mode)
TOPOLOGY_ORDER = tuple(str(t) for t in Topology)
SCALING_ORDER = tuple(str(s) for s in Scaling)
FLAG_ORDER = tuple(str(f) for f in FLAGS)
LATENCY_PERCENTILES = ("p50", "p90", "p99", "p99.9")
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

    @classmethod
    def of(cls, cell: Cell) -> SeriesKey:
        return cls(
            cell.build,
            cell.workload,
            cell.workload_class,
            cell.size,
            cell.mode,
            cell.topology,
            cell.scaling,
            cell.unit,
        )

    def sort_key(self) -> tuple[Any, ...]:
        return (
            class_rank(self.workload_class),
            self.workload,
            self.size,
            _rank(self.scaling, SCALING_ORDER),
            _rank(self.mode, MODE_ORDER),
            _rank(self.topology, TOPOLOGY_ORDER),
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

    @property
    def threads(self) -> int:
        return self.cell.threads

    @property
    def n_samples(self) -> int:
        return len(self.cell.samples)


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


@dataclass(frozen=True)
class RunModel:
    run: Run
    series: tuple[Series, ...]
    failed: tuple[Cell, ...]  # failed, or "ok" without a single sample

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


def free_threaded(meta: RunMeta, build: str) -> bool | None:
    """Whether ``build`` is a free-threaded build, per the run's build records (None: no record)."""
    record = meta.builds.get(build)
    return None if record is None else record.py_gil_disabled


# --- per-repetition detail --------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def median_of(repetitions: Iterable[object], key: str, sub: str | None = None) -> float:
    """Median over repetitions of ``rep.key`` (or ``rep.key[sub]``); NaN when none has it."""
    values: list[float] = []
    for rep in repetitions:
        value = getattr(rep, key, None)
        if sub is not None:
            value = value.get(sub) if isinstance(value, Mapping) else getattr(value, sub, None)
        number = _number(value)
        if number is not None:
            values.append(number)
    return stats.median(values)


def error_count(repetitions: Iterable[object]) -> int:
    """Failed requests over all repetitions (``errors`` maps a status or kind to a count)."""
    total = 0
    for rep in repetitions:
        errors = getattr(rep, "errors", None)
        if isinstance(errors, Mapping):
            total += sum(int(n) for n in errors.values() if _number(n) is not None)
    return total


def cell_flags(cell: Cell, meta: RunMeta, cv: float, errors: int) -> tuple[str, ...]:
    """The bench's flags plus those the file implies, in :data:`FLAG_ORDER` (unknown ones last)."""
    flags = set(cell.flags)
    if cell.gil_enabled and free_threaded(meta, cell.build):
        flags.add(Flag.GIL_ENABLED)
    if errors > 0:
        flags.add(Flag.ERRORS)
    if math.isfinite(cv) and cv > stats.HIGH_CV:
        flags.add(Flag.HIGH_CV)
    return tuple(sorted((str(f) for f in flags), key=lambda f: _rank(f, FLAG_ORDER)))


# --- building the model -----------------------------------------------------------------------


def _point(cell: Cell, meta: RunMeta, base: Cell | None) -> Point:
    reps: list[object] = list(cell.repetitions) if isinstance(cell, HttpCell) else []
    cv = stats.coefficient_of_variation(cell.samples)
    errors = error_count(reps)
    if base is None:
        speedup = Estimate(NAN)
    elif base is cell:
        speedup = stats.exact(1.0)
    else:
        speedup = stats.ratio_of_medians(cell.samples, base.samples)
    return Point(
        cell=cell,
        throughput=stats.median_ci(cell.samples),
        cv=cv,
        speedup=speedup,
        efficiency=speedup.scaled(1.0 / cell.threads),
        karp_flatt=stats.karp_flatt(speedup.value, cell.threads),
        flags=cell_flags(cell, meta, cv, errors),
        latency_ms={p: median_of(reps, "latency_ms", p) for p in LATENCY_PERCENTILES},
        health_p99_ms=median_of(reps, "health_latency_ms", "p99"),
        rss_bytes=median_of(reps, "rss_bytes"),
        pss_bytes=median_of(reps, "pss_bytes"),
        server_cpu_pct=median_of(reps, "server_cpu_pct"),
        errors=errors,
    )


def _series(key: SeriesKey, cells: list[Cell], meta: RunMeta) -> Series:
    cells = sorted(cells, key=lambda c: c.threads)
    base = next((c for c in cells if c.threads == 1), None)
    points = tuple(_point(c, meta, base) for c in cells)
    threads = [float(p.threads) for p in points]
    medians = [p.throughput.value for p in points]
    usl_fit = stats.fit_usl(threads, medians)
    ideal: tuple[tuple[float, float], ...] = ()
    if base is not None:
        one = points[0].throughput.value
        ideal = tuple((n, one * n) for n in threads)
    curve: tuple[tuple[float, float], ...] = ()
    if usl_fit.status == "ok":
        grid = np.linspace(min(threads), max(threads), CURVE_POINTS)
        fitted = stats.usl(grid, usl_fit.lam, usl_fit.sigma, usl_fit.kappa)
        curve = tuple(zip(grid.tolist(), fitted.tolist(), strict=True))
    return Series(key, points, stats.fit_amdahl(threads, medians), usl_fit, ideal, curve)


def build_model(run: Run) -> RunModel:
    """Group a run's successful cells into series and compute every statistic the reports show."""
    groups: dict[SeriesKey, list[Cell]] = {}
    for cell in run.cells:
        if cell.status == "ok" and cell.samples:
            groups.setdefault(SeriesKey.of(cell), []).append(cell)
    series = tuple(_series(k, groups[k], run.meta) for k in sorted(groups, key=SeriesKey.sort_key))
    failed = tuple(c for c in run.cells if c.status == "failed" or not c.samples)
    return RunModel(run, series, failed)
