"""Reports rendered from result files only: ``python -m bench.report [run-dir ...]``.

A run directory's ``report.md`` (charts linked from ``charts/``) and self-contained
``report.html`` are functions of its ``run.json`` and ``cells/*.json``: re-rendering gives the same
bytes, and nothing is measured or looked up at render time. ``--compare A B ...`` compares runs
(hosts, commits) cell by cell, and a micro run with an HTTP run. Layers, each its own module:
statistics (:mod:`.stats`), the data model (:mod:`.model`, :mod:`.findings`, :mod:`.compare`),
presentation (:mod:`.run_report`, :mod:`.compare_report`, :mod:`.charts`, :mod:`.fmt`) and writers
(:mod:`.markdown`, :mod:`.html`, :mod:`.output`).
"""

from __future__ import annotations

from pathlib import Path

from bench.report import compare_report, output, run_report
from bench.report.compare import compare
from bench.report.document import Document
from bench.report.model import build_model
from bench.results import load_run


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


__all__ = ["comparison_document", "render_run", "run_document"]
