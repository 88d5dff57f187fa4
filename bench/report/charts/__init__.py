"""Charts as PNG bytes (matplotlib's Agg canvas, no pyplot state), drawn from the model only.

Every value plotted is already in the model or a finding (medians, intervals, ideal line, fitted
USL curve, merged latency histograms); the charts only place them. Conventions, the same in every
chart of every report: one colour per build (:data:`BUILD_COLORS`), small multiples with one panel
per design and the builds as a few lines in each, thread counts on a log2 axis with a tick at
each measured count, at most :data:`MAX_LEGEND` legend entries. PNG files carry no timestamp, so
a re-rendered chart is identical.

One module per kind of chart: :mod:`.canvas` (what they share), :mod:`.closed` (the answer
picture and each workload's small multiples), :mod:`.open_loop` (fixed rates, capacity),
:mod:`.bars` (comparison ratios, profile buckets) and :mod:`.ceiling` (the headline picture). The
names here are the ones the report modules use (``charts.scaling``, ``charts.Chart``).
"""

from __future__ import annotations

from ftscale.bench.report.charts.bars import BUCKET_COLORS, OFF_CPU_HATCH, SMALL_BUCKETS, buckets, ratios
from ftscale.bench.report.charts.canvas import (
    BUILD_COLORS,
    MAX_LEGEND,
    Chart,
    build_color,
    builds_of,
    designs_of,
)
from ftscale.bench.report.charts.ceiling import in_process
from ftscale.bench.report.charts.closed import answer, latency_cdf, memory, scaling, streams
from ftscale.bench.report.charts.open_loop import CapacityCurve, capacity, open_loop

__all__ = [
    "BUCKET_COLORS",
    "BUILD_COLORS",
    "MAX_LEGEND",
    "OFF_CPU_HATCH",
    "SMALL_BUCKETS",
    "CapacityCurve",
    "Chart",
    "answer",
    "buckets",
    "build_color",
    "builds_of",
    "capacity",
    "designs_of",
    "in_process",
    "latency_cdf",
    "memory",
    "open_loop",
    "ratios",
    "scaling",
    "streams",
]
