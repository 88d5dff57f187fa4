"""Bar charts: ratios with their intervals (comparisons), and where the CPU time went (profiles)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from ftscale.bench.report.charts import canvas
from ftscale.bench.report.charts.canvas import (
    MAX_LEGEND,
    WIDTH,
    Chart,
    errors,
)
from ftscale.bench.report.stats import Estimate
from ftscale.vocab import Bucket


def ratios(labels: Sequence[str], values: Sequence[Estimate], title: str, xlabel: str) -> Chart:
    """Horizontal bars of ratios with their intervals and a line at 1 (comparisons)."""
    fig = Figure(figsize=(WIDTH, 1.2 + 0.36 * max(1, len(values))), layout="constrained")
    ax = fig.subplots()
    positions = list(range(len(values)))
    colors = [
        "#31a354"
        if v.has_interval and v.low > 1
        else "#de2d26"
        if v.has_interval and v.high < 1
        else "#969696"
        for v in values
    ]
    ax.barh(positions, [v.value for v in values], xerr=errors(values), color=colors, capsize=3)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="#333", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return canvas.render(fig, 0)


# One colour per bucket, the same in every chart; off-CPU time is hatched.
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
SMALL_BUCKETS = "smaller buckets (see the table)"


def buckets(
    groups: Sequence[tuple[str, Sequence[tuple[int, Mapping[str, float]]]]],
    order: Sequence[str],
    title: str,
    ylabel: str,
) -> Chart:
    """Stacked bars: per group (a design), one bar per thread count, stacked by bucket in ``order``.

    At most :data:`MAX_LEGEND` entries: when more buckets occur, the largest seven keep their
    colour and the rest are stacked together as one grey segment.
    """
    totals: dict[str, float] = {}
    for _, bars in groups:
        for _, segments in bars:
            for bucket, height in segments.items():
                totals[bucket] = totals.get(bucket, 0.0) + max(0.0, height)
    present = [b for b in order if totals.get(b, 0.0) > 0]
    kept = (
        set(sorted(present, key=lambda b: -totals[b])[: MAX_LEGEND - 1])
        if len(present) > MAX_LEGEND
        else set(present)
    )
    stack = [b for b in order if b in kept] + ([SMALL_BUCKETS] if len(kept) < len(present) else [])
    fig = Figure(figsize=(WIDTH, 4.8), layout="constrained")
    ax = fig.subplots()
    positions: list[float] = []
    labels: list[str] = []
    x = 0.0
    drawn: set[str] = set()
    for name, bars in groups:
        for threads, segments in bars:
            merged = {b: v for b, v in segments.items() if b in kept}
            merged[SMALL_BUCKETS] = sum(v for b, v in segments.items() if b not in kept)
            bottom = 0.0
            for bucket in stack:
                height = merged.get(bucket, 0.0)
                if height <= 0:
                    continue
                ax.bar(
                    x,
                    height,
                    bottom=bottom,
                    width=0.8,
                    color=BUCKET_COLORS.get(bucket, "#bdbdbd"),
                    edgecolor="#555555",
                    linewidth=0.3,
                    hatch=OFF_CPU_HATCH.get(bucket),
                    label=bucket if bucket not in drawn else None,
                )
                drawn.add(bucket)
                bottom += height
            positions.append(x)
            labels.append(f"{threads}")
            x += 1.0
        if bars:
            ax.annotate(
                name,
                xy=(x - 1.0 - (len(bars) - 1) / 2, 0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -28),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8,
            )
        x += 0.8  # a gap between designs
    ax.set_xticks(positions, labels)
    ax.set_xlabel("threads, per design", labelpad=22)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.axhline(1.0, color="#444444", linewidth=0.8, linestyle="--")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_ylim(bottom=0)
    handles, names = ax.get_legend_handles_labels()
    ranked = sorted(zip(names, handles, strict=True), key=lambda nh: stack.index(nh[0]))
    ax.legend(
        [h for _, h in ranked],
        [n for n, _ in ranked],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    return canvas.render(fig, len(ranked))
