"""What every chart shares: the canvas, one colour per build, the legend, the thread axis.

:func:`render` turns a figure into PNG bytes without a timestamp, so a re-rendered chart is
identical; the chart modules call it as ``canvas.render`` (tests replace it to read the figures
themselves).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftscale.bench.report.model import Series
from ftscale.bench.report.stats import Estimate

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


def render(fig: Figure, legend_entries: int, notes: Sequence[str] = ()) -> Chart:
    if legend_entries > MAX_LEGEND:
        raise ValueError(f"a chart with {legend_entries} legend entries (at most {MAX_LEGEND})")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return Chart(buffer.getvalue(), legend_entries, tuple(notes))


def errors(estimates: Sequence[Estimate]) -> list[list[float]]:
    """Error-bar lengths below and above each value; zero where there is no interval."""
    below = [e.value - e.low if e.has_interval else 0.0 for e in estimates]
    above = [e.high - e.value if e.has_interval else 0.0 for e in estimates]
    return [below, above]


def threads_axis(ax: Axes, counts: Sequence[int]) -> None:
    """Log2 spacing, a tick at each measured thread count."""
    ax.set_xscale("log", base=2)
    ticks = sorted(set(counts))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    if ticks:
        ax.set_xlim(ticks[0] / 1.3, ticks[-1] * 1.3)


def grid(n: int) -> tuple[int, int]:
    cols = min(4, max(1, n))
    return math.ceil(n / cols), cols


def panel_grid(
    n: int, per_row: float, top: float = 1.2, *, sharex: bool = False, sharey: bool = False
) -> tuple[Figure, Any, int]:
    """A figure of ``n`` panels on :func:`grid`'s rows and columns, ``per_row`` inches a row
    below ``top`` inches of title and legend, and its columns."""
    rows, cols = grid(n)
    fig = Figure(figsize=(WIDTH, top + per_row * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, sharex=sharex, sharey=sharey, squeeze=False), cols


def hide_unused(axes: Any, used: int) -> None:
    """Hide the grid's panels past the first ``used``."""
    rows, cols = len(axes), len(axes[0])
    for index in range(used, rows * cols):
        axes[index // cols][index % cols].set_visible(False)


def labels(fig: Figure, x: str, y: str, title: str) -> None:
    """The figure's axis labels and title, in the report's sizes."""
    fig.supxlabel(x, fontsize=9)
    fig.supylabel(y, fontsize=9)
    fig.suptitle(title, fontsize=11)


def finish_shared_panels(axes: Any, used: int) -> None:
    """Hide the grid's unused panels and start the shared y axis at 0.

    Once, after every panel is drawn: on shared axes a per-panel ``set_ylim`` would freeze the
    top at the first panel's data and hide the others' higher points.
    """
    hide_unused(axes, used)
    axes[0][0].set_ylim(bottom=0)


def builds_legend(
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
