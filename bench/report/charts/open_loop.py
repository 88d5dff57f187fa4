"""Open-loop charts: p99 latency at fixed offered rates, and the capacity search at a latency target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ftscale.bench.report.charts import canvas
from ftscale.bench.report.charts.canvas import (
    BUILD_COLORS,
    Chart,
    build_color,
    builds_legend,
    builds_of,
    designs_of,
    hide_unused,
    labels,
    panel_grid,
)
from ftscale.bench.report.model import Capacity, Series


def open_loop(series: Sequence[Series], title: str) -> Chart | None:
    """One panel per design: p99 latency against the offered rate (open loop), per build."""
    open_series = [s for s in series if s.key.load == "open" and s.key.offered_share is not None]
    if not open_series:
        return None
    designs, builds = designs_of(open_series), builds_of(open_series)
    fig, axes, cols = panel_grid(len(designs), 2.6)
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
    hide_unused(axes, len(designs))
    labels(
        fig,
        "offered rate, % of the design's closed-loop median",
        "p99 latency, ms (from the due time)",
        f"{title}: open-loop latency",
    )
    return canvas.render(fig, builds_legend(fig, builds))


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
    fig, axes, cols = panel_grid(len(panels), 2.7, 1.3)
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
                    "",
                    xy=(1.0, 0.08 + 0.08 * line),
                    xycoords=("axes fraction", "axes fraction"),
                    xytext=(cap.low, 0.08 + 0.08 * line),
                    textcoords=("data", "axes fraction"),
                    arrowprops={"arrowstyle": "->", "color": color},
                )
            ax.text(
                0.02,
                0.96 - 0.1 * line,
                curve.note,
                transform=ax.transAxes,
                fontsize=8,
                color=color,
                va="top",
                ha="left",
            )
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
    hide_unused(axes, len(panels))
    fig.supylabel("p99 latency, ms (log scale; whisker: upper bound)", fontsize=9)
    fig.suptitle(
        f"{title}: p99 latency against the offered rate, and the capacity at the target", fontsize=11
    )
    extra: list[tuple[str, dict[str, object]]] = [
        ("p99 target", {"linestyle": "--"}),
        ("passed", {"marker": "o", "linestyle": "none"}),
        ("failed", {"marker": "o", "markerfacecolor": "white", "linestyle": "none"}),
    ]
    return canvas.render(fig, builds_legend(fig, builds, extra), notes)
