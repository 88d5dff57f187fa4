"""Each design's share of the in-process ceiling: what serving a workload over HTTP costs.

An HTTP run measures, besides its designs, the same workloads in process
(:mod:`ftscale.bench.http.ceiling`): at the same size, the same thread count, on the same server
CPUs. A design's *share* at N threads is its throughput over the in-process throughput of its
build at N threads: requests per second over workload calls per second, the ratio of their
medians. Below 1 it is the part of the interpreter's capacity the service delivers (the rest goes
to HTTP parsing, the event loop, hand-offs to a pool); a GIL build's worker processes can go above
1, since the ceiling is its threads' (no process ran in process). A streamed request computes a
whole stream's chunks in one in-process call, so a streaming design's chunks per second are
divided by the stream's size first.

A share has an interval only where the ceiling does; the pass measures one pyperf process per
cell (one independent sample), so its shares are point estimates. Nothing here formats text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ftscale.bench.report import stats
from ftscale.bench.report.model import Finalist, Point, RunModel, Series, SeriesKey
from ftscale.bench.report.stats import Estimate

CHUNKS_PER_S = "chunks/s"  # a streaming cell's unit: its size is the chunks of one stream


@dataclass(frozen=True)
class Share:
    """One design at one thread count against its build's in-process ceiling there."""

    key: SeriesKey  # the design's series
    point: Point  # the design at N threads (exploration), or its confirmation rounds
    ceiling: Point  # the same build, workload and size in process at N threads on the same CPUs
    share: Estimate  # point's throughput / ceiling's

    @property
    def threads(self) -> int:
        return self.point.threads


def share_of(point: Point, ceiling: Point, unit: str, size: int) -> Estimate:
    """``point``'s median over ``ceiling``'s (per stream for chunks per second)."""
    share = stats.ratio_of_medians(point.samples, ceiling.samples)
    return share.scaled(1 / size) if unit == CHUNKS_PER_S else share


def ceiling_at(model: RunModel, key: SeriesKey, threads: int) -> Point | None:
    """The in-process point of ``key``'s build, workload and size at ``threads`` (None: none)."""
    for series in model.ceilings:
        k = series.key
        if (k.build, k.workload, k.size) == (key.build, key.workload, key.size):
            return next((p for p in series.points if p.threads == threads), None)
    return None


def _share(model: RunModel, key: SeriesKey, point: Point) -> Share | None:
    ceiling = ceiling_at(model, key, point.threads)
    if ceiling is None:
        return None
    return Share(key=key, point=point, ceiling=ceiling, share=share_of(point, ceiling, key.unit, key.size))


def shares(model: RunModel, series: Sequence[Series] | None = None) -> tuple[Share, ...]:
    """Every closed-loop point of ``series`` (default: the run's) that has a ceiling at its threads."""
    found = []
    for s in model.series if series is None else series:
        if s.key.load != "closed":
            continue
        for point in s.points:
            share = _share(model, s.key, point)
            if share is not None:
                found.append(share)
    return tuple(found)


def finalist_share(model: RunModel, finalist: Finalist) -> Share | None:
    """A confirmed candidate's share: its median over the rounds against the ceiling."""
    return _share(model, finalist.key, finalist.point)


def ceiling_series(model: RunModel, workload: str, size: int) -> list[Series]:
    """The in-process series of ``workload`` at ``size``, one per build."""
    return [s for s in model.ceilings if (s.key.workload, s.key.size) == (workload, size)]
