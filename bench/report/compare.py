"""Comparisons between runs: the same cell on two runs (hosts, commits, builds), micro against HTTP.

- Runs of the same kind are compared cell by cell against the first run of that kind: a cell
  matches when build, workload, size, mode, topology, scaling, load and threads all agree; the
  ratio of medians (other / base) gets the exact order-statistic interval of :mod:`.stats`.
- A *regression* beyond a threshold t: a matched cell whose whole interval lies below 1 - t
  (``ftscale compare --fail-above``); a cell whose interval reaches above it is not counted.
- A micro run and an HTTP run give the *ceiling share*: for each workload, size and build measured
  by both, the best HTTP peak over all modes and topologies divided by the in-process peak of the
  micro sweep (strong scaling when there is one). How much of what the interpreter can do in
  process the service delivers over HTTP. An HTTP run that measured its own in-process pass (the
  same workloads and sizes on its server CPUs) is also compared with that pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ftscale.bench.report import stats
from ftscale.bench.report.findings import Choice, best_choice
from ftscale.bench.report.model import Point, RunModel, Series, SeriesKey, class_rank
from ftscale.bench.report.stats import Estimate

MatchKey = tuple[str, str, int, str | None, str | None, str | None, str, float | None, int, str | None]


@dataclass(frozen=True)
class CellMatch:
    key: SeriesKey  # the base run's series
    base: Point
    other: Point
    ratio: Estimate  # other / base

    @property
    def threads(self) -> int:
        return self.base.threads


@dataclass(frozen=True)
class RunComparison:
    base: RunModel
    other: RunModel
    matches: tuple[CellMatch, ...]
    only_base: int  # points of the base run without a match
    only_other: int


def _match_key(series: Series, point: Point, only_server: str | None) -> MatchKey:
    """What a point is matched by; a run of one server names it, so that its points match the
    same server's in a run of several."""
    k = series.key
    return (
        k.build,
        k.workload,
        k.size,
        k.mode,
        k.topology,
        k.scaling,
        k.load,
        k.offered_share,
        point.threads,
        k.server or only_server,
    )


def _points(model: RunModel) -> dict[MatchKey, tuple[Series, Point]]:
    only = model.servers[0] if len(model.servers) == 1 else None
    return {_match_key(s, p, only): (s, p) for s in model.series for p in s.points}


def compare_runs(base: RunModel, other: RunModel) -> RunComparison:
    ours, theirs = _points(base), _points(other)
    matches = []
    for key in ours.keys() & theirs.keys():
        series, point = ours[key]
        other_point = theirs[key][1]
        ratio = stats.ratio_of_medians(other_point.samples, point.samples)
        matches.append(CellMatch(key=series.key, base=point, other=other_point, ratio=ratio))
    matches.sort(key=lambda m: (m.key.sort_key(), m.threads))
    common = len(matches)
    return RunComparison(
        base=base,
        other=other,
        matches=tuple(matches),
        only_base=len(ours) - common,
        only_other=len(theirs) - common,
    )


def regressions(comparison: RunComparison, threshold: float) -> tuple[CellMatch, ...]:
    """Matched cells slower by more than ``threshold`` (0.05 = 5 %) beyond their interval."""
    return tuple(m for m in comparison.matches if m.ratio.has_interval and m.ratio.high < 1.0 - threshold)


def improvements(comparison: RunComparison) -> tuple[CellMatch, ...]:
    return tuple(m for m in comparison.matches if m.ratio.has_interval and m.ratio.low > 1.0)


def geometric_mean(matches: Sequence[CellMatch]) -> float:
    values = [m.ratio.value for m in matches if m.ratio.value > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


# A streaming HTTP cell counts chunks per second; its size is the chunks of one stream.
CHUNKS_PER_S = "chunks/s"


@dataclass(frozen=True)
class Ceiling:
    workload: str
    workload_class: str
    size: int
    build: str
    micro: Choice
    http: Choice
    share: Estimate  # HTTP peak / in-process peak (for streams: streams/s over calls/s)


@dataclass(frozen=True)
class CeilingComparison:
    micro: RunModel
    http: RunModel
    same_host: bool
    rows: tuple[Ceiling, ...]


def in_process_series(model: RunModel) -> tuple[Series, ...]:
    """What a run measured in process: a micro run's series, an HTTP run's own in-process pass."""
    return model.series if model.meta.kind == "micro" else model.ceilings


def ceilings(micro: RunModel, http: RunModel) -> CeilingComparison:
    rows = []
    keys = {(s.key.workload, s.key.workload_class, s.key.size, s.key.build) for s in http.series}
    for workload, wclass, size, build in sorted(keys, key=lambda k: (class_rank(k[1]), k[0], k[2], k[3])):
        served = [
            s
            for s in http.series
            if (s.key.workload, s.key.size, s.key.build) == (workload, size, build) and s.key.load == "closed"
        ]
        measured = [
            s
            for s in in_process_series(micro)
            if (s.key.workload, s.key.size, s.key.build) == (workload, size, build)
        ]
        strong = [s for s in measured if s.key.scaling in (None, "strong")]
        if not measured:
            continue
        inproc, best = best_choice(strong or measured), best_choice(served)
        share = stats.ratio_of_medians(best.point.samples, inproc.point.samples)
        if best.series.key.unit == CHUNKS_PER_S:  # a call in process computes a whole stream's chunks
            share = share.scaled(1 / size)
        rows.append(
            Ceiling(
                workload=workload,
                workload_class=wclass,
                size=size,
                build=build,
                micro=inproc,
                http=best,
                share=share,
            )
        )
    a, b = micro.meta.host, http.meta.host
    same_host = (a.hostname, a.cpu_model) == (b.hostname, b.cpu_model)
    return CeilingComparison(micro=micro, http=http, same_host=same_host, rows=tuple(rows))


@dataclass(frozen=True)
class Comparison:
    models: tuple[RunModel, ...]
    runs: tuple[RunComparison, ...]
    ceilings: tuple[CeilingComparison, ...]


def compare(models: Sequence[RunModel]) -> Comparison:
    """Each run against the first run of its kind; every micro run against every HTTP run, and every
    HTTP run with an in-process pass against that pass."""
    first: dict[str, RunModel] = {}
    runs = []
    for model in models:
        base = first.setdefault(model.meta.kind, model)
        if base is not model:
            runs.append(compare_runs(base, model))
    micro = [m for m in models if m.meta.kind == "micro"]
    http = [m for m in models if m.meta.kind == "http"]
    pairs = [(m, h) for m in micro for h in http] + [(h, h) for h in http if h.ceilings]
    return Comparison(tuple(models), tuple(runs), tuple(ceilings(m, h) for m, h in pairs))
