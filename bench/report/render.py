"""Rendering a run (or a comparison) from its files: load, model, document, write."""

from __future__ import annotations

from pathlib import Path

from ftscale.bench.report import compare_report, output, run_report
from ftscale.bench.report.compare import compare
from ftscale.bench.report.document import Document
from ftscale.bench.report.model import build_model
from ftscale.bench.results import load_run


def run_document(path: Path | str) -> tuple[Path, Document]:
    """Load a run directory and build its report in memory (raises ``ResultError`` on bad input)."""
    run = load_run(path)
    return run.path, run_report.build(build_model(run))


def comparison_document(paths: list[Path]) -> Document:
    return compare_report.build(compare([build_model(load_run(p)) for p in paths]))


def render_run(path: Path | str) -> list[Path]:
    """Render ``report.md``, ``report.html`` and ``charts/`` into a run directory; return the reports."""
    directory, document = run_document(path)
    return output.write(directory, document)
