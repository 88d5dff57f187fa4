"""The headline picture: each build's speedup in process beside each design's share of that ceiling."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from ftscale.bench.report.charts import canvas
from ftscale.bench.report.charts.canvas import (
    WIDTH,
    Chart,
    build_color,
    builds_legend,
    builds_of,
    errors,
    threads_axis,
)
from ftscale.bench.report.model import Series


def in_process(ceilings: Sequence[Series], shares: Mapping[str, Sequence[tuple[str, int, float]]]) -> Chart:
    """Per workload: each build's speedup in process over its 1-thread point (ideal dashed), and
    beside it each design's share of that build's in-process ceiling against threads.

    ``shares`` maps a workload to (build, threads, share) points of its designs, drawn as dots in
    the build's colour (one dot per design and thread count; the report's table names them).
    """
    workloads = list(dict.fromkeys(s.key.workload for s in ceilings))
    fig = Figure(figsize=(WIDTH, 2.9), layout="constrained")
    axes = fig.subplots(1, 2 * max(1, len(workloads)), squeeze=False)[0]
    builds = builds_of(ceilings)
    for index, workload in enumerate(workloads):
        speed, share = axes[2 * index], axes[2 * index + 1]
        mine = [s for s in ceilings if s.key.workload == workload]
        counts = sorted({p.threads for s in mine for p in s.points})
        for s in mine:
            color = build_color(s.key.build)
            points = [p for p in s.points if math.isfinite(p.speedup.value)]
            speed.errorbar(
                [p.threads for p in points],
                [p.speedup.value for p in points],
                yerr=errors([p.speedup for p in points]),
                color=color,
                marker="o",
                capsize=3,
            )
        speed.plot(counts, counts, color="#555", linestyle="--", linewidth=0.8)
        speed.set_title(f"{workload}: speedup in process", fontsize=10)
        threads_axis(speed, counts)
        speed.set_ylim(bottom=0)
        speed.grid(True, alpha=0.3)
        dots = shares.get(workload, ())
        for build, threads, value in dots:
            share.plot([threads], [value], color=build_color(build), marker="o", linestyle="none", alpha=0.8)
        share.axhline(1.0, color="#555", linestyle="--", linewidth=0.8)
        share.set_title(f"{workload}: share of the ceiling", fontsize=10)
        threads_axis(share, sorted({t for _, t, _ in dots}) or counts)
        share.set_ylim(bottom=0)
        share.grid(True, alpha=0.3)
    for ax in axes:
        ax.set_xlabel("threads (or workers, loops)", fontsize=8)
    extra: list[tuple[str, dict[str, object]]] = [("ideal speedup; a share of 1", {"linestyle": "--"})]
    return canvas.render(fig, builds_legend(fig, builds, extra))
