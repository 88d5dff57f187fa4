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

from ftscale.errors import UsageError, guard

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
    parser.add_argument("--summary", action="store_true", help="also print each run's verdict sentences")
    parser.add_argument(
        "--readme",
        type=Path,
        metavar="README",
        help="write the (one) run's verdict sentences and answer picture into README's results section",
    )


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories (two or more)")
    parser.add_argument(
        "--out", type=Path, help="directory of the comparison report (default: beside the first run)"
    )
    parser.add_argument(
        "--fail-above",
        type=_percent,
        metavar="PCT",
        help="exit 1 when a matched cell is slower by more than PCT (e.g. 5%%) beyond its interval",
    )


def _percent(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%")) / 100
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a percentage such as 5%, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"want a percentage from 0 to 100, got {text!r}")
    return value


def run_render(args: argparse.Namespace) -> int:
    """Re-render report.md and report.html of each run directory (default: every run found)."""
    from ftscale.bench import results
    from ftscale.bench.report import output
    from ftscale.bench.report.render import run_document, summary, update_readme

    root = args.results or results.default_results_dir()
    paths: list[Path] = list(args.runs) or results.find_runs(root)
    if not paths:
        raise UsageError(f"no run directories (with a run.json) under {root}")
    if args.readme is not None and len(paths) != 1:
        raise UsageError("--readme takes exactly one run directory")
    documents = [run_document(p) for p in paths]
    for directory, document in documents:
        for written in output.write(directory, document):
            print(written)
        if args.summary:
            for line in summary(directory):
                print(line)
    if args.readme is not None:
        print(update_readme(paths[0], args.readme))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Compare runs into one report in --out (default: beside the first run)."""
    from ftscale.bench.report import output
    from ftscale.bench.report.compare import regressions
    from ftscale.bench.report.render import comparison, comparison_document

    paths: list[Path] = list(args.runs)
    if len(paths) < 2:
        raise UsageError("compare needs at least two run directories")
    found = comparison(paths)
    document = comparison_document(found)
    out: Path = (
        args.out or paths[0].resolve().parent / f"compare-{'-vs-'.join(p.resolve().name for p in paths)}"
    )
    for written in output.write(out, document):
        print(written)
    if args.fail_above is None:
        return 0
    failed = [(c, m) for c in found.runs for m in regressions(c, args.fail_above)]
    for c, m in failed:
        print(
            f"regressed: {m.key.workload} {m.key.build} {m.key.design} @{m.threads}: "
            f"{c.other.meta.run_id} / {c.base.meta.run_id} = {m.ratio.value:.3f} "
            f"[{m.ratio.low:.3f}, {m.ratio.high:.3f}] (more than {args.fail_above:.0%} slower)",
            file=sys.stderr,
        )
    if failed:
        print(
            f"ftscale compare: {len(failed)} cells regressed by more than {args.fail_above:.0%}",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ftscale.bench.report``: the same as ``ftscale report`` (its parser, its guard)."""
    parser = argparse.ArgumentParser(prog="ftscale report", description=RENDER_DESCRIPTION)
    add_render_arguments(parser)
    args = parser.parse_args(argv)
    return guard("ftscale report", lambda: run_render(args))
