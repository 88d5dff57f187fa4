"""Charts as PNG bytes (matplotlib's Agg canvas, no pyplot state), drawn from the model only.

Every value plotted is already in the model (medians, intervals, ideal line, fitted USL curve);
the charts only place them. PNG files carry no timestamp, so a re-rendered chart is identical.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from ftscale.bench.report.compare import CeilingComparison
from ftscale.bench.report.labels import series_label
from ftscale.bench.report.model import Series
from ftscale.bench.report.stats import Estimate
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ftscale.vocab import Bucket

DPI = 100
MICRO_X = "threads"
HTTP_X = "threads, workers or event loops"
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _color(index: int) -> str:
    return COLORS[index % len(COLORS)]


def _errors(estimates: Sequence[Estimate]) -> list[list[float]]:
    """Error-bar lengths below and above each value; zero where there is no interval."""
    below = [e.value - e.low if e.has_interval else 0.0 for e in estimates]
    above = [e.high - e.value if e.has_interval else 0.0 for e in estimates]
    return [below, above]


def _finish(ax: Axes, title: str, ylabel: str, xlabel: str = HTTP_X) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)


def scaling(series: Sequence[Series], title: str, xlabel: str) -> bytes:
    """Throughput against threads (ideal line dashed, USL fit dotted) and efficiency against threads."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, s in enumerate(series):
        color, label = _color(i), series_label(s.key)
        threads = [p.threads for p in s.points]
        left.errorbar(
            threads,
            [p.throughput.value for p in s.points],
            yerr=_errors([p.throughput for p in s.points]),
            color=color,
            marker="o",
            capsize=3,
            label=label,
        )
        if s.ideal:
            left.plot(*zip(*s.ideal, strict=True), color=color, linestyle="--", linewidth=0.8, alpha=0.6)
        if s.usl_curve:
            left.plot(*zip(*s.usl_curve, strict=True), color=color, linestyle=":", linewidth=1.2)
        with_base = [p for p in s.points if not math.isnan(p.efficiency.value)]
        if with_base:
            right.errorbar(
                [p.threads for p in with_base],
                [p.efficiency.value for p in with_base],
                yerr=_errors([p.efficiency for p in with_base]),
                color=color,
                marker="o",
                capsize=3,
                label=label,
            )
    unit = series[0].key.unit if series else ""
    _finish(left, f"{title}: throughput (dashed: ideal, dotted: USL fit)", f"throughput ({unit})", xlabel)
    _finish(right, f"{title}: efficiency S(N)/N", "efficiency", xlabel)
    right.axhline(1.0, color="#888", linewidth=0.8)
    left.legend(fontsize=8)
    return _png(fig)


def latency(series: Sequence[Series], title: str) -> bytes:
    """HTTP latency p50 (solid) and p99 (dashed) against threads."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, s in enumerate(series):
        threads = [p.threads for p in s.points]
        label = series_label(s.key)
        ax.plot(
            threads,
            [p.latency_ms["p50"] for p in s.points],
            color=_color(i),
            marker="o",
            label=f"{label} p50",
        )
        ax.plot(
            threads,
            [p.latency_ms["p99"] for p in s.points],
            color=_color(i),
            marker="^",
            linestyle="--",
            label=f"{label} p99",
        )
    _finish(ax, f"{title}: latency (median over repetitions)", "latency (ms)")
    ax.legend(fontsize=8, ncol=2)
    return _png(fig)


def memory(series: Sequence[Series], title: str) -> bytes:
    """Server memory against threads, per series: RSS of all server processes, PSS dashed where measured."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, s in enumerate(series):
        threads = [p.threads for p in s.points]
        label = series_label(s.key)
        ax.plot(
            threads,
            [p.rss_bytes / 2**20 for p in s.points],
            color=_color(i),
            marker="s",
            label=f"{label} RSS",
        )
        if any(math.isfinite(p.pss_bytes) for p in s.points):
            ax.plot(
                threads,
                [p.pss_bytes / 2**20 for p in s.points],
                color=_color(i),
                marker="v",
                linestyle="--",
                label=f"{label} PSS",
            )
    _finish(ax, f"{title}: server memory (RSS solid, PSS dashed)", "MiB")
    ax.legend(fontsize=8)
    return _png(fig)


def ceiling(comparison: CeilingComparison) -> bytes:
    """Share of the in-process (micro) peak that the service reaches over HTTP, per workload and build."""
    rows = comparison.rows
    fig = Figure(figsize=(11, 1.2 + 0.45 * max(1, len(rows))), layout="constrained")
    ax = fig.subplots()
    labels = [f"{r.workload} · {r.build}" for r in rows]
    positions = list(range(len(rows)))
    ax.barh(
        positions,
        [r.share.value for r in rows],
        xerr=_errors([r.share for r in rows]),
        color=[_color(i) for i in positions],
        capsize=3,
    )
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.axvline(1.0, color="#888", linewidth=0.8)
    ax.set_xlabel("HTTP peak / in-process peak")
    ax.set_title("How much of the in-process ceiling the service reaches", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


# Profiles (--profile): one colour per bucket, the same in every chart; off-CPU time is hatched.
BUCKET_COLORS: dict[str, str] = {
    Bucket.PYTHON: "#1f77b4",
    Bucket.REFCOUNT: "#ff7f0e",
    Bucket.LOCK_WAIT: "#d62728",
    Bucket.LOCK_FAST: "#f4a6a6",
    Bucket.GIL: "#8c564b",
    Bucket.GC: "#2ca02c",
    Bucket.ALLOC: "#9467bd",
    Bucket.HTTP: "#17becf",
    Bucket.KERNEL: "#7f7f7f",
    Bucket.OTHER: "#bcbd22",
    Bucket.IDLE: "#eeeeee",
    Bucket.CPU_WAIT: "#dddddd",
}


OFF_CPU_HATCH: dict[str, str] = {Bucket.IDLE: "//", Bucket.CPU_WAIT: ".."}


def buckets(
    groups: Sequence[tuple[str, Sequence[tuple[int, Mapping[str, float]]]]],
    order: Sequence[str],
    title: str,
    ylabel: str,
) -> bytes:
    """Stacked bars: per group (a design), one bar per thread count, stacked by bucket in ``order``."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax = fig.subplots()
    positions: list[float] = []
    labels: list[str] = []
    x = 0.0
    drawn: set[str] = set()
    for name, bars in groups:
        for threads, segments in bars:
            bottom = 0.0
            for bucket in order:
                height = segments.get(bucket, 0.0)
                if height <= 0:
                    continue
                ax.bar(
                    x, height, bottom=bottom, width=0.8,
                    color=BUCKET_COLORS.get(bucket, "#cccccc"), edgecolor="#555555", linewidth=0.3,
                    hatch=OFF_CPU_HATCH.get(bucket),
                    label=bucket if bucket not in drawn else None,
                )  # fmt: skip
                drawn.add(bucket)
                bottom += height
            positions.append(x)
            labels.append(f"{threads}")
            x += 1.0
        if bars:
            ax.annotate(
                name, xy=(x - 1.0 - (len(bars) - 1) / 2, 0), xycoords=("data", "axes fraction"),
                xytext=(0, -28), textcoords="offset points", ha="center", va="top", fontsize=8,
            )  # fmt: skip
        x += 0.8  # a gap between designs
    ax.set_xticks(positions, labels)
    ax.set_xlabel("threads, per design", labelpad=22)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.axhline(1.0, color="#444444", linewidth=0.8, linestyle="--")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_ylim(bottom=0)
    handles, names = ax.get_legend_handles_labels()
    ranked = sorted(zip(names, handles, strict=True), key=lambda nh: list(order).index(nh[0]))
    ax.legend(
        [h for _, h in ranked],
        [n for n, _ in ranked],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    return _png(fig)
