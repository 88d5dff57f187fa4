"""Closed-loop charts: the answer picture, and each workload's small multiples (throughput, latency,
memory, streams), one panel per design with the builds as lines."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure

from ftscale.bench import histogram
from ftscale.bench.report.charts import canvas
from ftscale.bench.report.charts.canvas import (
    WIDTH,
    Chart,
    build_color,
    builds_legend,
    builds_of,
    designs_of,
    errors,
    finish_shared_panels,
    hide_unused,
    labels,
    panel_grid,
    threads_axis,
)
from ftscale.bench.report.findings import Verdict
from ftscale.bench.report.model import Series


def answer(verdicts: Sequence[Verdict], unit: str) -> Chart:
    """Per workload, each build's candidate design: throughput relative to the reference, and memory.

    Left: every build's candidate against the verdict's reference (the newest GIL twin's
    candidate), with the ratio's interval: the paired ratio of the confirmation rounds where the
    run has them, else the exploration medians; right: its server memory.
    """
    rows = [(v.workload, b) for v in verdicts for b in v.builds]
    fig = Figure(figsize=(WIDTH, 1.4 + 0.42 * max(1, len(rows))), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(3, 1), sharey=True)
    positions = list(range(len(rows)))
    colors = [build_color(b.build) for _, b in rows]
    left.barh(
        positions,
        [b.relative.value for _, b in rows],
        xerr=errors([b.relative for _, b in rows]),
        color=colors,
        capsize=3,
    )
    labels = [f"{w} · {b.build} {b.choice.series.key.design} @{b.choice.point.threads}" for w, b in rows]
    left.set_yticks(positions, labels, fontsize=9)
    left.invert_yaxis()
    left.axvline(1.0, color="#333", linewidth=1)
    left.set_xlabel(f"{unit} relative to the GIL twin's candidate (1 = the same)")
    left.grid(True, axis="x", alpha=0.3)
    memory = [b.choice.point.memory_bytes / 2**20 for _, b in rows]
    right.barh(positions, [m if math.isfinite(m) else 0 for m in memory], color=colors)
    kinds = {b.choice.point.memory_kind for _, b in rows if math.isfinite(b.choice.point.memory_bytes)}
    kind = "distinct pages" if kinds == {"pages"} else ("PSS" if kinds == {"PSS"} else "see report")
    right.set_xlabel(f"server memory, MiB ({kind})" if kinds else "memory not measured")
    right.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Each build's candidate design, against the GIL twin's", fontsize=11)
    return canvas.render(fig, 0)


def scaling(series: Sequence[Series], title: str) -> Chart:
    """One panel per design: throughput against threads for each build (ideal dashed, USL fit dotted)."""
    designs, builds = designs_of(series), builds_of(series)
    fig, axes, cols = panel_grid(len(designs), 2.8, sharey=True)
    counts = sorted({p.threads for s in series for p in s.points})
    for index, design in enumerate(designs):
        ax = axes[index // cols][index % cols]
        for s in (s for s in series if s.key.design == design):
            color = build_color(s.key.build)
            ax.errorbar(
                [p.threads for p in s.points],
                [p.throughput.value for p in s.points],
                yerr=errors([p.throughput for p in s.points]),
                color=color,
                marker="o",
                capsize=3,
            )
            if s.ideal:
                ax.plot(*zip(*s.ideal, strict=True), color=color, linestyle="--", linewidth=0.8, alpha=0.6)
            if s.usl_curve:
                ax.plot(*zip(*s.usl_curve, strict=True), color=color, linestyle=":", linewidth=1.4)
        ax.set_title(design, fontsize=10)
        threads_axis(ax, counts)
        ax.grid(True, alpha=0.3)
    finish_shared_panels(axes, len(designs))
    unit = series[0].key.unit if series else ""
    labels(
        fig, "threads (workers or event loops for those topologies)", unit, f"{title}: throughput by design"
    )
    extra: list[tuple[str, dict[str, object]]] = [
        ("ideal (1-thread throughput times N)", {"linestyle": "--"})
    ]
    if any(s.usl_curve for s in series):
        extra.append(("USL fit", {"linestyle": ":"}))
    return canvas.render(fig, builds_legend(fig, builds, extra))


def latency_cdf(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: the latency CDF of each build at its highest measured thread count."""
    with_hist = [s for s in series if any(p.latency_histogram for p in s.points)]
    if not with_hist:
        return None
    designs, builds = designs_of(with_hist), builds_of(with_hist)
    fig, axes, cols = panel_grid(len(designs), 2.6, sharex=True)
    for index, design in enumerate(designs):
        ax = axes[index // cols][index % cols]
        for s in (s for s in with_hist if s.key.design == design):
            point = max((p for p in s.points if p.latency_histogram), key=lambda p: p.threads)
            assert point.latency_histogram is not None
            cdf = histogram.cdf_ms(point.latency_histogram)
            ax.step([x for x, _ in cdf], [y for _, y in cdf], where="post", color=build_color(s.key.build))
        ax.set_title(f"{design} (highest thread count)", fontsize=10)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.01)
        ax.grid(True, alpha=0.3)
    hide_unused(axes, len(designs))
    labels(fig, "latency, ms (log scale)", "share of requests at or below", f"{title}: latency distribution")
    return canvas.render(fig, builds_legend(fig, builds))


def memory(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: server memory (PSS, else RSS) against threads for each build."""
    if not any(math.isfinite(p.memory_bytes) for s in series for p in s.points):
        return None
    designs, builds = designs_of(series), builds_of(series)
    fig, axes, cols = panel_grid(len(designs), 2.4, sharey=True)
    counts = sorted({p.threads for s in series for p in s.points})
    for index, design in enumerate(designs):
        ax = axes[index // cols][index % cols]
        for s in (s for s in series if s.key.design == design):
            ax.plot(
                [p.threads for p in s.points],
                [p.memory_bytes / 2**20 for p in s.points],
                color=build_color(s.key.build),
                marker="s",
            )
        ax.set_title(design, fontsize=10)
        threads_axis(ax, counts)
        ax.grid(True, alpha=0.3)
    finish_shared_panels(axes, len(designs))
    labels(fig, "threads", "MiB (PSS; RSS where PSS is not known)", f"{title}: server memory")
    return canvas.render(fig, builds_legend(fig, builds))


def streams(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: p99 gap between chunks (solid) and p99 time to first byte (dashed)
    against threads, for each build. None when no point has timed streams (wrk counts only)."""
    timed = [s for s in series if any(p.stream is not None and p.stream.gap_samples for p in s.points)]
    if not timed:
        return None
    designs, builds = designs_of(timed), builds_of(timed)
    fig, axes, cols = panel_grid(len(designs), 2.6, sharey=True)
    counts = sorted({p.threads for s in timed for p in s.points})
    for index, design in enumerate(designs):
        ax = axes[index // cols][index % cols]
        for s in (s for s in timed if s.key.design == design):
            points = [p for p in s.points if p.stream is not None]
            threads = [p.threads for p in points]
            color = build_color(s.key.build)
            ax.plot(threads, [p.stream.gap_p99_ms for p in points if p.stream], color=color, marker="o")
            ax.plot(
                threads,
                [p.stream.ttfb_ms["p99"] for p in points if p.stream],
                color=color,
                marker="s",
                linestyle="--",
            )
        ax.set_title(design, fontsize=10)
        threads_axis(ax, counts)
        ax.grid(True, alpha=0.3)
    finish_shared_panels(axes, len(designs))
    labels(
        fig,
        "threads (workers or event loops for those topologies)",
        "ms (p99 over every stream of the repetitions)",
        f"{title}: gaps between chunks and time to first byte",
    )
    extra: list[tuple[str, dict[str, object]]] = [
        ("p99 gap between chunks", {"marker": "o"}),
        ("p99 time to first byte", {"marker": "s", "linestyle": "--"}),
    ]
    return canvas.render(fig, builds_legend(fig, builds, extra))
