"""``ftscale report`` and ``ftscale compare``: argparse mapped to ``run_<name>(args)`` functions.

Bad input (a missing directory, invalid JSON, a file off the schema) is one line on stderr and
exit status 2, and nothing is written: every report is rendered in memory before the first write.
The parsers use the standard library only; the rendering code is imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ftscale.errors import UsageError

RENDER_DESCRIPTION = "Render report.md and report.html of run directories from their result files."
COMPARE_DESCRIPTION = "Compare runs (hosts, commits, builds) cell by cell into one report."


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", nargs="*", type=Path, help="run directories (default: every run under --results)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="where to find runs when none is named (default: ./results)",
    )


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories (two or more)")
    parser.add_argument(
        "--out", type=Path, help="directory of the comparison report (default: beside the first run)"
    )


def run_render(args: argparse.Namespace) -> int:
    """Re-render report.md and report.html of each run directory (default: every run found)."""
    from ftscale.bench import results
    from ftscale.bench.report import output
    from ftscale.bench.report.render import run_document

    root = args.results or results.default_results_dir()
    paths: list[Path] = list(args.runs) or results.find_runs(root)
    if not paths:
        raise UsageError(f"no run directories (with a run.json) under {root}")
    documents = [run_document(p) for p in paths]
    for directory, document in documents:
        for written in output.write(directory, document):
            print(written)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Compare runs into one report in --out (default: beside the first run)."""
    from ftscale.bench.report import output
    from ftscale.bench.report.render import comparison_document

    paths: list[Path] = list(args.runs)
    if len(paths) < 2:
        raise UsageError("compare needs at least two run directories")
    document = comparison_document(paths)
    out: Path = (
        args.out or paths[0].resolve().parent / f"compare-{'-vs-'.join(p.resolve().name for p in paths)}"
    )
    for written in output.write(out, document):
        print(written)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ftscale.bench.report``: the same as ``ftscale report``."""
    from ftscale.cli import main as ftscale_main

    return ftscale_main(["report", *(sys.argv[1:] if argv is None else argv)])
