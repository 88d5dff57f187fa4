"""report.html opened in headless Chromium: the page loads and every embedded chart decodes.

The page's own inline script marks <body data-charts-ok="yes"> once every <img> has a natural
width; --dump-dom shows the marked DOM. A screenshot must not be blank. Skipped without Chromium,
except under CI (which installs it), where a missing browser fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("scipy")
pytest.importorskip("matplotlib")

from ftscale.bench.report.render import render_run

DATA = Path(__file__).parent / "data"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 1800)


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed (CI must install it: apt-get install -y chromium)")
    pytest.skip("Chromium is not installed (apt-get install -y chromium)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        _browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module", params=["http", "micro"])
def report(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Each fixture run rendered once for the module: the browser only reads the page."""
    run = tmp_path_factory.mktemp("browser") / f"report-{request.param}"
    shutil.copytree(DATA / f"report-{request.param}", run)
    render_run(run)
    return run / "report.html"


@pytest.mark.slow
def test_the_answer_is_on_the_first_screen_at_1280_px_without_scrolling_sideways(
    report: Path, tmp_path: Path
) -> None:
    dom = _chromium(tmp_path, "--window-size=1280,800", "--dump-dom", report.as_uri()).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body[0]))
    assert attributes["charts-ok"] == "yes", attributes
    decoded, total = attributes["charts-decoded"].split("/")
    assert decoded == total and int(total) >= 2, attributes
    assert int(attributes["scroll-width"]) <= 1280, attributes
    assert int(attributes["answer-bottom"]) <= 800, attributes


def test_no_chart_has_more_than_8_legend_entries() -> None:
    from ftscale.bench.report.render import run_document

    for kind in ("http", "micro"):
        _, document = run_document(DATA / f"report-{kind}")
        figures = document.figures()
        assert figures and all(f.legend_entries <= 8 for f in figures)
        assert any(f.legend_entries > 0 for f in figures)  # the small multiples do have legends


@pytest.mark.slow
def test_report_html_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    from matplotlib import image

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", report.as_uri())
    pixels = image.imread(str(shot))
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert float(pixels[..., :3].std()) > 0.05  # text, tables and the first chart, not a white page
