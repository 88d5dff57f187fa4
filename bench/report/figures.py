"""A cell's figures over its repetitions, as the reports show them: latency, memory, streams, capacity.

Each function reads what a run's file holds (older formats included: a figure a repetition does
not have is NaN, never a guess) and summarises it over the cell's repetitions: latency
percentiles from the merged histograms (else the medians of the repetitions' own), a streaming
cell's streams (:class:`StreamPoint`), a latency-target cell's capacity interval
(:class:`Capacity`). Nothing here formats text; :mod:`.model` puts the figures into points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ftscale.bench import histogram
from ftscale.bench.http import capacity as capacity_rules
from ftscale.bench.report import stats
from ftscale.schema import HttpCell, LoadResult, RunMeta

LATENCY_PERCENTILES = ("p50", "p90", "p99", "p99.9")
QUANTILES = (50.0, 90.0, 99.0, 99.9)
NAN = math.nan


@dataclass(frozen=True)
class StreamPoint:
    """A streaming cell's streams over all its repetitions (percentiles of the merged histograms).

    The point's throughput is chunks per second; ``streams_per_s`` is the median of the
    repetitions' completed streams per second. Time to first byte and gaps are NaN (0 samples)
    where the generator could not time them (wrk counts chunks only).
    """

    streams_per_s: float
    chunks: int
    ttfb_ms: Mapping[str, float]  # p50, p99
    ttfb_samples: int  # streams timed
    gap_p99_ms: float
    gap_samples: int  # gaps between consecutive chunks timed
    generators: tuple[str, ...]  # the generators that applied the loads


@dataclass(frozen=True)
class CapacityStep:
    """One rate a capacity search tried: its p99 (NaN: none) and the p99's upper confidence bound
    (NaN: none, or a search made before repeated steps), and whether it passed."""

    offered_rps: float
    achieved_rps: float
    p99_ms: float
    p99_upper_ms: float
    passed: bool
    loads: int  # 0: not recorded (one load, before repeated steps)
    samples: int  # latency samples behind the p99 (0: not recorded)
    coverage: float  # the bound's exact coverage (NaN: no bound)
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capacity:
    """A latency-target cell's capacity: it lies in ``[low, high)``.

    ``low``: the highest rate that passed with every lower rate tried passing (NaN: none passed);
    ``high``: the lowest rate that failed (NaN: none did, so the capacity is censored: at least
    ``low``). Per server core divides by the CPUs the server was pinned to (``cores``); per GiB by
    the server's memory at the capacity rate.
    """

    target_ms: float
    low: float
    high: float
    steps: tuple[CapacityStep, ...]  # by offered rate
    cores: float
    memory_bytes: float
    repeated: bool  # repeated steps judged by the p99's upper bound (False: one load per rate, before)
    level: float  # the bound's confidence level (NaN before repeated steps)

    @property
    def censored(self) -> bool:
        return math.isfinite(self.low) and math.isnan(self.high)

    @property
    def at(self) -> CapacityStep | None:
        """The step at the capacity (None: none passed)."""
        return next((s for s in self.steps if s.offered_rps == self.low and s.passed), None)

    @property
    def failing(self) -> CapacityStep | None:
        """The lowest step that failed (None: none did)."""
        return next((s for s in self.steps if s.offered_rps == self.high and not s.passed), None)

    def per(self, divisor: float) -> tuple[float, float]:
        """``(low, high)`` divided by ``divisor`` (NaN where it is not a positive number)."""
        if not (math.isfinite(divisor) and divisor > 0):
            return NAN, NAN
        return self.low / divisor, self.high / divisor


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


def latency(reps: Sequence[LoadResult]) -> tuple[dict[str, float], dict[int, int] | None, int]:
    """Latency percentiles of the merged histograms (else medians of the repetitions' own)."""
    counts = [r.latency_histogram for r in reps]
    if reps and all(c for c in counts):
        merged = histogram.merge(c for c in counts if c)
        percentiles = {p: histogram.percentile_ms(merged, q) for p, q in zip(LATENCY_PERCENTILES, QUANTILES)}
        return percentiles, merged, histogram.count(merged)
    requests = sum(r.requests for r in reps)
    return {p: median_of(reps, "latency_ms", p) for p in LATENCY_PERCENTILES}, None, requests


def _percentiles(
    histograms: Sequence[Mapping[int, int] | None], q: Sequence[float]
) -> tuple[list[float], int]:
    """Percentiles ``q`` of the merged histograms, and how many samples they hold (NaN, 0: none)."""
    merged = histogram.merge(h for h in histograms if h)
    total = histogram.count(merged)
    return [histogram.percentile_ms(merged, x) if total else NAN for x in q], total


def stream_point(reps: Sequence[LoadResult]) -> StreamPoint | None:
    """A streaming cell's figures over its repetitions; None for a cell that did not stream."""
    if not reps or all(r.chunks is None for r in reps):
        return None
    (ttfb_p50, ttfb_p99), ttfb_n = _percentiles([r.ttfb_histogram for r in reps], (50, 99))
    (gap_p99,), gap_n = _percentiles([r.gap_histogram for r in reps], (99,))
    generators = tuple(sorted({r.generator for r in reps if r.generator is not None}))
    return StreamPoint(
        streams_per_s=median_of(reps, "throughput_rps"),
        chunks=sum(r.chunks or 0 for r in reps),
        ttfb_ms={"p50": ttfb_p50, "p99": ttfb_p99},
        ttfb_samples=ttfb_n,
        gap_p99_ms=gap_p99,
        gap_samples=gap_n,
        generators=generators,
    )


def server_cores(meta: RunMeta, threads: int) -> float:
    """CPUs a design at ``threads`` was pinned to: the first ``threads`` server CPUs (all of them
    when fewer); a server started elsewhere (``--target``), or a run that does not say: ``threads``."""
    cpus = meta.config.get("server_cpus")
    if meta.config.get("target") or not isinstance(cpus, list) or not cpus:
        return float(threads)
    return float(min(threads, len(cpus)))


def capacity_of(cell: HttpCell, meta: RunMeta, memory_bytes: float) -> Capacity | None:
    """A latency-target cell's capacity interval, by :func:`~ftscale.bench.http.capacity.interval`
    over its recorded steps (the same rule for searches made before repeated steps)."""
    found = cell.slo
    if found is None:
        return None
    low, high = capacity_rules.interval(found.steps)
    steps = tuple(
        CapacityStep(
            offered_rps=s.offered_rps,
            achieved_rps=s.achieved_rps,
            p99_ms=NAN if s.p99_ms is None else s.p99_ms,
            p99_upper_ms=NAN if s.p99_upper_ms is None else s.p99_upper_ms,
            passed=s.met,
            loads=s.loads or 0,
            samples=s.samples or 0,
            coverage=NAN if s.coverage is None else s.coverage,
            failures=tuple(s.failures),
        )
        for s in sorted(found.steps, key=lambda s: s.offered_rps)
    )
    return Capacity(
        target_ms=found.target_p99_ms,
        low=NAN if low is None else low,
        high=NAN if high is None else high,
        steps=steps,
        cores=server_cores(meta, cell.threads),
        memory_bytes=memory_bytes,
        repeated=found.method is not None,
        level=NAN if found.level is None else found.level,
    )
