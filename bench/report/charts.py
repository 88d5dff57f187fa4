"""Charts as PNG bytes (matplotlib's Agg canvas, no pyplot state), drawn from the model only.

Every value plotted is already in the model or a finding (medians, intervals, ideal line, fitted
USL curve, merged latency histograms); the charts only place them. Conventions, the same in every
chart of every report: one colour per build (:data:`BUILD_COLORS`), small multiples with one panel
per design and the builds as a few lines in each, thread counts on a log2 axis with a tick at
each measured count, at most :data:`MAX_LEGEND` legend entries. PNG files carry no timestamp, so
a re-rendered chart is identical.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ftscale.bench import histogram
from ftscale.bench.report.findings import Verdict
from ftscale.bench.report.model import Capacity, Series
from ftscale.bench.report.stats import Estimate
from ftscale.vocab import Bucket

DPI = 100
MAX_LEGEND = 8
BUILD_COLORS = {"3.13": "#6baed6", "3.13t": "#08519c", "3.14": "#fd8d3c", "3.14t": "#a63603"}
EXTRA_COLORS = ("#31a354", "#756bb1", "#636363", "#e7298a", "#66a61e", "#e6ab02")
WIDTH = 12.0  # inches at DPI 100: 1200 px, inside a 1280 px page


@dataclass(frozen=True)
class Chart:
    png: bytes
    legend_entries: int
    notes: tuple[str, ...] = ()  # the words written on the chart (tests read them here)


def build_color(build: str) -> str:
    """The colour of a build: fixed for the four builds, stable for any other label."""
    if build in BUILD_COLORS:
        return BUILD_COLORS[build]
    digest = int(hashlib.sha256(build.encode()).hexdigest(), 16)
    return EXTRA_COLORS[digest % len(EXTRA_COLORS)]


def _render(fig: Figure, legend_entries: int, notes: Sequence[str] = ()) -> Chart:
    if legend_entries > MAX_LEGEND:
        raise ValueError(f"a chart with {legend_entries} legend entries (at most {MAX_LEGEND})")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return Chart(buffer.getvalue(), legend_entries, tuple(notes))


def _errors(estimates: Sequence[Estimate]) -> list[list[float]]:
    """Error-bar lengths below and above each value; zero where there is no interval."""
    below = [e.value - e.low if e.has_interval else 0.0 for e in estimates]
    above = [e.high - e.value if e.has_interval else 0.0 for e in estimates]
    return [below, above]


def _threads_axis(ax: Axes, counts: Sequence[int]) -> None:
    """Log2 spacing, a tick at each measured thread count."""
    ax.set_xscale("log", base=2)
    ticks = sorted(set(counts))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    if ticks:
        ax.set_xlim(ticks[0] / 1.3, ticks[-1] * 1.3)


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, max(1, n))
    return math.ceil(n / cols), cols


def _finish_shared_panels(axes: Any, used: int) -> None:
    """Hide the grid's unused panels and start the shared y axis at 0.

    Once, after every panel is drawn: on shared axes a per-panel ``set_ylim`` would freeze the
    top at the first panel's data and hide the others' higher points.
    """
    rows, cols = len(axes), len(axes[0])
    for index in range(used, rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    axes[0][0].set_ylim(bottom=0)


def _builds_legend(
    fig: Figure, builds: Sequence[str], extra: Sequence[tuple[str, dict[str, object]]] = ()
) -> int:
    handles = [Line2D([], [], color=build_color(b), marker="o", label=b) for b in builds]
    handles += [Line2D([], [], color="#555", label=label, **style) for label, style in extra]  # type: ignore[arg-type]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), MAX_LEGEND),
        fontsize=9,
        frameon=False,
    )
    return len(handles)


def designs_of(series: Sequence[Series]) -> list[str]:
    return list(dict.fromkeys(s.key.design for s in series))


def builds_of(series: Sequence[Series]) -> list[str]:
    return sorted(
        {s.key.build for s in series},
        key=lambda b: (b not in BUILD_COLORS, list(BUILD_COLORS).index(b) if b in BUILD_COLORS else 0, b),
    )


# --- the first picture ---------------------------------------------------------------------------


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
        xerr=_errors([b.relative for _, b in rows]),
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
    return _render(fig, 0)


# --- small multiples ------------------------------------------------------------------------------


def scaling(series: Sequence[Series], title: str) -> Chart:
    """One panel per design: throughput against threads for each build (ideal dashed, USL fit dotted)."""
    designs, builds = designs_of(series), builds_of(series)
    rows, cols = _grid(len(designs))
    fig = Figure(figsize=(WIDTH, 1.2 + 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    counts = sorted({p.threads for s in series for p in s.points})
    for index, design in enumerate(designs):
        ax = axes[index // cols][index % cols]
        for s in (s for s in series if s.key.design == design):
            color = build_color(s.key.build)
            ax.errorbar(
                [p.threads for p in s.points],
                [p.throughput.value for p in s.points],
                yerr=_errors([p.throughput for p in s.points]),
                color=color,
                marker="o",
                capsize=3,
            )
            if s.ideal:
                ax.plot(*zip(*s.ideal, strict=True), color=color, linestyle="--", linewidth=0.8, alpha=0.6)
            if s.usl_curve:
                ax.plot(*zip(*s.usl_curve, strict=True), color=color, linestyle=":", linewidth=1.4)
        ax.set_title(design, fontsize=10)
        _threads_axis(ax, counts)
        ax.grid(True, alpha=0.3)
    _finish_shared_panels(axes, len(designs))
    unit = series[0].key.unit if series else ""
    fig.supxlabel("threads (workers or event loops for those topologies)", fontsize=9)
    fig.supylabel(unit, fontsize=9)
    fig.suptitle(f"{title}: throughput by design", fontsize=11)
    extra: list[tuple[str, dict[str, object]]] = [
        ("ideal (1-thread throughput times N)", {"linestyle": "--"})
    ]
    if any(s.usl_curve for s in series):
        extra.append(("USL fit", {"linestyle": ":"}))
    return _render(fig, _builds_legend(fig, builds, extra))


def latency_cdf(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: the latency CDF of each build at its highest measured thread count."""
    with_hist = [s for s in series if any(p.latency_histogram for p in s.points)]
    if not with_hist:
        return None
    designs, builds = designs_of(with_hist), builds_of(with_hist)
    rows, cols = _grid(len(designs))
    fig = Figure(figsize=(WIDTH, 1.2 + 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False)
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
    for index in range(len(designs), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    fig.supxlabel("latency, ms (log scale)", fontsize=9)
    fig.supylabel("share of requests at or below", fontsize=9)
    fig.suptitle(f"{title}: latency distribution", fontsize=11)
    return _render(fig, _builds_legend(fig, builds))


def memory(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: server memory (PSS, else RSS) against threads for each build."""
    if not any(math.isfinite(p.memory_bytes) for s in series for p in s.points):
        return None
    designs, builds = designs_of(series), builds_of(series)
    rows, cols = _grid(len(designs))
    fig = Figure(figsize=(WIDTH, 1.2 + 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
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
        _threads_axis(ax, counts)
        ax.grid(True, alpha=0.3)
    _finish_shared_panels(axes, len(designs))
    fig.supxlabel("threads", fontsize=9)
    fig.supylabel("MiB (PSS; RSS where PSS is not known)", fontsize=9)
    fig.suptitle(f"{title}: server memory", fontsize=11)
    return _render(fig, _builds_legend(fig, builds))


def open_loop(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: p99 latency against the offered rate (open loop), per build."""
    open_series = [s for s in series if s.key.load == "open" and s.key.offered_share is not None]
    if not open_series:
        return None
    designs, builds = designs_of(open_series), builds_of(open_series)
    rows, cols = _grid(len(designs))
    fig = Figure(figsize=(WIDTH, 1.2 + 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, design in enumerate(designs):
        ax = axes[index // cols][index % cols]
        for build in builds:
            mine = [s for s in open_series if s.key.design == design and s.key.build == build]
            points = sorted(
                ((s.key.offered_share or 0.0, p) for s in mine for p in s.points),
                key=lambda sp: (sp[1].threads, sp[0]),
            )
            if not points:
                continue
            top = max(p.threads for _, p in points)
            xs = [share * 100 for share, p in points if p.threads == top]
            ys = [p.latency_ms["p99"] for _, p in points if p.threads == top]
            ax.plot(xs, ys, color=build_color(build), marker="o")
        ax.set_title(f"{design} (highest thread count)", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    for index in range(len(designs), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    fig.supxlabel("offered rate, % of the design's closed-loop median", fontsize=9)
    fig.supylabel("p99 latency, ms (from the due time)", fontsize=9)
    fig.suptitle(f"{title}: open-loop latency", fontsize=11)
    return _render(fig, _builds_legend(fig, builds))


@dataclass(frozen=True)
class CapacityCurve:
    """One design's capacity search, as a panel shows it: ``note`` is its capacity in words."""

    panel: str  # the panel it goes in: a design at a thread count
    build: str
    capacity: Capacity
    note: str


def capacity(curves: Sequence[CapacityCurve], title: str) -> Chart | None:
    """One panel per design and thread count: the p99 at each rate the search tried (filled: passed,
    hollow: failed) with its upper confidence bound as a whisker, the target dashed, the capacity's
    interval shaded (a censored one: a line at its lower end and an arrow), and its words."""
    if not curves:
        return None
    panels = list(dict.fromkeys(c.panel for c in curves))
    builds = sorted(
        {c.build for c in curves},
        key=lambda b: (b not in BUILD_COLORS, list(BUILD_COLORS).index(b) if b in BUILD_COLORS else 0, b),
    )
    rows, cols = _grid(len(panels))
    fig = Figure(figsize=(WIDTH, 1.3 + 2.7 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    notes: list[str] = []
    for index, panel in enumerate(panels):
        ax = axes[index // cols][index % cols]
        mine = [c for c in curves if c.panel == panel]
        for line, curve in enumerate(mine):
            cap, color = curve.capacity, build_color(curve.build)
            steps = [st for st in cap.steps if math.isfinite(st.p99_ms)]
            xs, ys = [st.offered_rps for st in steps], [st.p99_ms for st in steps]
            ax.plot(xs, ys, color=color, linewidth=1)
            for st in steps:
                face = color if st.passed else "white"
                ax.plot([st.offered_rps], [st.p99_ms], marker="o", color=color, markerfacecolor=face)
                if math.isfinite(st.p99_upper_ms):
                    ax.plot([st.offered_rps] * 2, [st.p99_ms, st.p99_upper_ms], color=color, linewidth=1)
                    ax.plot([st.offered_rps], [st.p99_upper_ms], marker="_", color=color, markersize=8)
            if math.isfinite(cap.low) and math.isfinite(cap.high):
                ax.axvspan(cap.low, cap.high, color=color, alpha=0.15, linewidth=0)
            elif cap.censored:  # at least there: a line at the lower end, an arrow to the right
                ax.axvline(cap.low, color=color, linewidth=1.2)
                ax.annotate(
                    "", xy=(1.0, 0.08 + 0.08 * line), xycoords=("axes fraction", "axes fraction"),
                    xytext=(cap.low, 0.08 + 0.08 * line), textcoords=("data", "axes fraction"),
                    arrowprops={"arrowstyle": "->", "color": color},
                )  # fmt: skip
            ax.text(
                0.02, 0.96 - 0.1 * line, curve.note, transform=ax.transAxes, fontsize=8, color=color,
                va="top", ha="left",
            )  # fmt: skip
            notes.append(curve.note)
        target = mine[0].capacity.target_ms
        ax.axhline(target, color="#333", linestyle="--", linewidth=1)
        rates = [st.offered_rps for c in mine for st in c.capacity.steps]
        ax.set_xlim(0, 1.12 * max(rates, default=1.0))
        latencies = [v for c in mine for st in c.capacity.steps for v in (st.p99_ms, st.p99_upper_ms)]
        finite = [v for v in (*latencies, target) if math.isfinite(v) and v > 0]
        ax.set_yscale("log")
        ax.set_ylim(min(finite) / 1.6, max(finite) * 1.6)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("offered rate, req/s", fontsize=8)
        ax.grid(True, alpha=0.3)
    for index in range(len(panels), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    fig.supylabel("p99 latency, ms (log scale; whisker: upper bound)", fontsize=9)
    fig.suptitle(
        f"{title}: p99 latency against the offered rate, and the capacity at the target", fontsize=11
    )
    extra: list[tuple[str, dict[str, object]]] = [
        ("p99 target", {"linestyle": "--"}),
        ("passed", {"marker": "o", "linestyle": "none"}),
        ("failed", {"marker": "o", "markerfacecolor": "white", "linestyle": "none"}),
    ]
    return _render(fig, _builds_legend(fig, builds, extra), notes)


def streams(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: p99 gap between chunks (solid) and p99 time to first byte (dashed)
    against threads, for each build. None when no point has timed streams (wrk counts only)."""
    timed = [s for s in series if any(p.stream is not None and p.stream.gap_samples for p in s.points)]
    if not timed:
        return None
    designs, builds = designs_of(timed), builds_of(timed)
    rows, cols = _grid(len(designs))
    fig = Figure(figsize=(WIDTH, 1.2 + 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
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
        _threads_axis(ax, counts)
        ax.grid(True, alpha=0.3)
    _finish_shared_panels(axes, len(designs))
    fig.supxlabel("threads (workers or event loops for those topologies)", fontsize=9)
    fig.supylabel("ms (p99 over every stream of the repetitions)", fontsize=9)
    fig.suptitle(f"{title}: gaps between chunks and time to first byte", fontsize=11)
    extra: list[tuple[str, dict[str, object]]] = [
        ("p99 gap between chunks", {"marker": "o"}),
        ("p99 time to first byte", {"marker": "s", "linestyle": "--"}),
    ]
    return _render(fig, _builds_legend(fig, builds, extra))


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
    ax.barh(positions, [v.value for v in values], xerr=_errors(values), color=colors, capsize=3)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="#333", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return _render(fig, 0)


# --- profiles (--profile) ----------------------------------------------------------------------------

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
                    x, height, bottom=bottom, width=0.8,
                    color=BUCKET_COLORS.get(bucket, "#bdbdbd"), edgecolor="#555555", linewidth=0.3,
                    hatch=OFF_CPU_HATCH.get(bucket), label=bucket if bucket not in drawn else None,
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
    ranked = sorted(zip(names, handles, strict=True), key=lambda nh: stack.index(nh[0]))
    ax.legend(
        [h for _, h in ranked],
        [n for n, _ in ranked],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    return _render(fig, len(ranked))


# --- the headline: in process against the service ---------------------------------------------------


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
                yerr=_errors([p.speedup for p in points]),
                color=color,
                marker="o",
                capsize=3,
            )
        speed.plot(counts, counts, color="#555", linestyle="--", linewidth=0.8)
        speed.set_title(f"{workload}: speedup in process", fontsize=10)
        _threads_axis(speed, counts)
        speed.set_ylim(bottom=0)
        speed.grid(True, alpha=0.3)
        dots = shares.get(workload, ())
        for build, threads, value in dots:
            share.plot([threads], [value], color=build_color(build), marker="o", linestyle="none", alpha=0.8)
        share.axhline(1.0, color="#555", linestyle="--", linewidth=0.8)
        share.set_title(f"{workload}: share of the ceiling", fontsize=10)
        _threads_axis(share, sorted({t for _, t, _ in dots}) or counts)
        share.set_ylim(bottom=0)
        share.grid(True, alpha=0.3)
    for ax in axes:
        ax.set_xlabel("threads (or workers, loops)", fontsize=8)
    extra: list[tuple[str, dict[str, object]]] = [("ideal speedup; a share of 1", {"linestyle": "--"})]
    return _render(fig, _builds_legend(fig, builds, extra))
