"""What a run says, in the terms a reader decides by: verdicts and the cost of free threading.

- A *verdict* per workload: the build, mode and topology reaching the highest peak throughput,
  next to the best combination on the other kind of build (GIL against free-threaded), with the
  ratio of their peaks. Flagged points stay candidates: the report shows their flags beside them.
- The *single-thread overhead* of each free-threaded build against its GIL twin (same major.minor
  version), at 1 thread with the same workload, size, mode, topology and scaling.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ftscale.bench.report import stats
from ftscale.bench.report.model import Point, RunModel, Series, SeriesKey, class_rank
from ftscale.bench.report.stats import Estimate

from ftscale.schema import RunMeta


@dataclass(frozen=True)
class Choice:
    series: Series
    point: Point


@dataclass(frozen=True)
class Verdict:
    workload_class: str
    workload: str
    size: int
    scaling: str | None
    best: Choice
    best_free_threaded: bool | None
    alternative: Choice | None  # best on a build of the other kind; None when the run has none
    advantage: Estimate | None  # best peak / alternative peak


def best_choice(series: list[Series]) -> Choice:
    top = max(series, key=lambda s: (s.peak.throughput.value, -s.peak.threads))
    return Choice(top, top.peak)


def verdicts(model: RunModel) -> tuple[Verdict, ...]:
    groups: dict[tuple[str, str, int, str | None], list[Series]] = {}
    for s in model.series:
        groups.setdefault((s.key.workload_class, s.key.workload, s.key.size, s.key.scaling), []).append(s)
    result = []
    for (wclass, workload, size, scaling), series in sorted(
        groups.items(), key=lambda kv: (class_rank(kv[0][0]), kv[0][1], kv[0][2], kv[0][3] or "")
    ):
        best = best_choice(series)
        ft = model.free_threaded(best.series.key.build)
        others = [s for s in series if ft is not None and model.free_threaded(s.key.build) is (not ft)]
        alternative = best_choice(others) if others else None
        advantage = None
        if alternative is not None:
            advantage = stats.ratio_of_medians(best.point.cell.samples, alternative.point.cell.samples)
        result.append(Verdict(wclass, workload, size, scaling, best, ft, alternative, advantage))
    return tuple(result)


@dataclass(frozen=True)
class Overhead:
    """A free-threaded build against its GIL twin at 1 thread."""

    key: SeriesKey  # the free-threaded series
    gil_build: str
    free_threaded: Point
    gil: Point
    ratio: Estimate  # free-threaded / GIL throughput
    time_overhead: Estimate  # extra time per call on the free-threaded build: GIL/FT - 1


def _minor(version: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else None


def gil_twin(meta: RunMeta, build: str) -> str | None:
    """The GIL build of the same major.minor as free-threaded ``build``, if the run has one."""
    record = meta.builds.get(build)
    if record is None or not record.py_gil_disabled or _minor(record.version) is None:
        return None
    twins = sorted(
        name
        for name, other in meta.builds.items()
        if not other.py_gil_disabled and _minor(other.version) == _minor(record.version)
    )
    return twins[0] if twins else None


def _one_thread(series: Series) -> Point | None:
    return next((p for p in series.points if p.threads == 1), None)


def ft_overheads(model: RunModel) -> tuple[Overhead, ...]:
    by_key = {s.key: s for s in model.series}
    result = []
    for s in model.series:
        twin = gil_twin(model.meta, s.key.build)
        if twin is None:
            continue
        other = by_key.get(dataclasses.replace(s.key, build=twin))
        ft_point = _one_thread(s)
        gil_point = _one_thread(other) if other is not None else None
        if ft_point is None or gil_point is None:
            continue
        ratio = stats.ratio_of_medians(ft_point.cell.samples, gil_point.cell.samples)
        result.append(Overhead(s.key, twin, ft_point, gil_point, ratio, stats.slowdown(ratio)))
    return tuple(result)
