"""Charts drawn from the synthetic HTTP run: what each panel shows, read from the figure itself."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("scipy")
pytest.importorskip("matplotlib")

from matplotlib.figure import Figure

from ftscale.bench.report import charts
from ftscale.bench.report.charts import canvas
from ftscale.bench.report.model import Series, build_model
from ftscale.bench.results import load_run

DATA = Path(__file__).parent / "data"


def _figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure the charts draw from now on, instead of their PNG bytes."""
    drawn: list[Figure] = []

    def keep(fig: Figure, legend_entries: int) -> charts.Chart:
        drawn.append(fig)
        return charts.Chart(b"", legend_entries)

    monkeypatch.setattr(canvas, "render", keep)
    return drawn


def _series(workload: str) -> list[Series]:
    model = build_model(load_run(DATA / "report-http"))
    return [s for s in model.series if s.key.workload == workload and s.key.load == "closed"]


def test_panels_sharing_an_axis_show_every_panels_highest_point(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _figures(monkeypatch)
    loop = _series("loop")
    # The first panel (inline·workers) peaks at 6800 req/s; inline·loops reaches 7200.
    assert charts.designs_of(loop)[0] == "inline·workers"
    charts.scaling(loop, "loop")
    charts.memory(loop, "loop")
    (scaling, memory) = drawn
    top = max(p.throughput.high for s in loop for p in s.points)
    assert all(ax.get_ylim()[1] >= top for ax in scaling.axes if ax.get_visible())
    most = max(p.memory_bytes / 2**20 for s in loop for p in s.points)
    assert all(ax.get_ylim()[1] >= most and ax.get_ylim()[0] == 0 for ax in memory.axes if ax.get_visible())


def test_the_streams_chart_draws_each_builds_gaps_and_first_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _figures(monkeypatch)
    tokens = _series("tokens")
    chart = charts.streams(tokens, "tokens")
    assert chart is not None and chart.legend_entries == 4  # two builds, two kinds of line
    (fig,) = drawn
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["inline·workers", "threadpool·single"]
    # 3.14t at 8 threads: p99 gap 12 + 2 x 8 = 28 ms, p99 first byte 14 + 3 x 8 = 38 ms, both shown
    # although the first panel's highest point is 3.14's 28 ms first byte
    peaks = sorted(max(line.get_ydata()) for line in panels[1].get_lines())
    assert peaks == pytest.approx([28.0, 38.0], rel=0.01)
    assert all(ax.get_ylim()[1] >= 38.0 for ax in panels)
    assert charts.streams(_series("pages"), "pages") is None  # no streams: no chart
