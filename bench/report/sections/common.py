"""What the sections of a report share: the interval mark, labels, chart file names and cells.

Also used by :mod:`ftscale.bench.report.compare_report`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ftscale.bench.report import charts, fmt, labels
from ftscale.bench.report.document import Block, Figure
from ftscale.bench.report.findings import Choice
from ftscale.bench.report.model import Series

CI = "[CI]"


def unit_of(series: Sequence[Series]) -> str:
    units = sorted({s.key.unit for s in series})
    return units[0] if len(units) == 1 else "throughput"


def choice_label(choice: Choice) -> str:
    return f"{labels.series_label(choice.series.key)} @{choice.point.threads}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def latency(point_ms: float, requests: int) -> str:
    """A latency percentile with the number of samples it rests on (— where nothing was timed)."""
    return fmt.DASH if math.isnan(point_ms) else f"{fmt.num(point_ms)} ({requests:,})"


def figure(name: str, caption: str, chart: charts.Chart | None) -> list[Block]:
    """A chart as a figure of the report, or nothing where there was nothing to draw."""
    return [] if chart is None else [Figure(name, caption, chart.png, chart.legend_entries)]
