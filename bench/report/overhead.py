"""The single-thread overhead of free threading: each free-threaded build against its GIL twin.

A build's *GIL twin* is the GIL build of the same major.minor version in the same run. The
overhead compares the two at 1 thread, with the same workload, size, design and scaling: what
free threading costs a program that does not use threads. Nothing here formats text.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ftscale.bench.report import stats
from ftscale.bench.report.model import Point, RunModel, Series, SeriesKey
from ftscale.bench.report.stats import Estimate
from ftscale.schema import RunMeta


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
        if s.key.load != "closed":
            continue
        twin = gil_twin(model.meta, s.key.build)
        if twin is None:
            continue
        other = by_key.get(dataclasses.replace(s.key, build=twin))
        ft_point = _one_thread(s)
        gil_point = _one_thread(other) if other is not None else None
        if ft_point is None or gil_point is None:
            continue
        ratio = stats.ratio_of_medians(ft_point.samples, gil_point.samples)
        result.append(
            Overhead(
                key=s.key,
                gil_build=twin,
                free_threaded=ft_point,
                gil=gil_point,
                ratio=ratio,
                time_overhead=stats.slowdown(ratio),
            )
        )
    return tuple(result)
