"""Writing a rendered report: ``report.md``, ``report.html`` and ``charts/*.png``, each atomically.

Callers render everything in memory first and write last, so bad input never leaves a report
half-written; each file is replaced in one rename, so readers see the old file or the new one.
"""

from __future__ import annotations

from pathlib import Path

from ftscale.bench.report import html, markdown
from ftscale.bench.report.document import Document
from ftscale.bench.results import write_atomic

MARKDOWN_NAME = "report.md"
HTML_NAME = "report.html"


def write(directory: Path, document: Document) -> list[Path]:
    """Write ``document`` into ``directory``; return the paths of the two reports."""
    charts = directory / markdown.CHARTS_DIR
    names = set()
    for figure in document.figures():
        write_atomic(charts / figure.name, figure.png)
        names.add(figure.name)
    if charts.is_dir():  # charts of an earlier rendering that this one no longer has
        for stale in sorted(charts.glob("*.png")):
            if stale.name not in names:
                stale.unlink()
    md_path, html_path = directory / MARKDOWN_NAME, directory / HTML_NAME
    write_atomic(md_path, markdown.render(document).encode("utf-8"))
    write_atomic(html_path, html.render(document).encode("utf-8"))
    return [md_path, html_path]
