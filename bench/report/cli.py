"""Command line of ``python -m bench.report``: argparse mapped to ``cmd_<name>(args)`` functions.

Bad input (a missing directory, invalid JSON, a file off the schema) is one line on stderr and
exit status 2, and nothing is written: every report is rendered in memory before the first write.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.report import comparison_document, output, run_document
from bench.results import RESULTS_DIR, ResultError, find_runs


class ReportError(Exception):
    """Input the reports cannot work with, beyond a bad result file."""


def _one_line(exc: Exception) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def cmd_render(args: argparse.Namespace) -> int:
    """Re-render report.md and report.html of each run directory (default: every run found)."""
    paths: list[Path] = list(args.runs) or find_runs(args.results)
    if not paths:
        raise ReportError(f"no run directories (with a run.json) under {args.results}")
    documents = [run_document(p) for p in paths]
    for directory, document in documents:
        for written in output.write(directory, document):
            print(written)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare runs into one report in --out (default: beside the first run)."""
    paths: list[Path] = list(args.compare)
    if len(paths) < 2:
        raise ReportError("--compare needs at least two run directories")
    document = comparison_document(paths)
    out: Path = (
        args.out or paths[0].resolve().parent / f"compare-{'-vs-'.join(p.resolve().name for p in paths)}"
    )
    for written in output.write(out, document):
        print(written)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Render scaling reports from result files, or compare runs.",
    )
    parser.add_argument(
        "runs", nargs="*", type=Path, help="run directories (default: every run under --results)"
    )
    parser.add_argument(
        "--compare", nargs="+", type=Path, metavar="RUN", help="compare these runs (two or more)"
    )
    parser.add_argument(
        "--out", type=Path, help="directory of the comparison report (default: beside the first run)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR,
        help=f"where to find runs when none is named ({RESULTS_DIR})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.compare and args.runs:
        parser.error("give run directories either as arguments or after --compare, not both")
    if args.out and not args.compare:
        parser.error("--out goes with --compare")
    try:
        return cmd_compare(args) if args.compare else cmd_render(args)
    except (ResultError, ReportError) as exc:
        print(f"bench.report: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bench.report: error: {_one_line(exc)}", file=sys.stderr)
        return 1
