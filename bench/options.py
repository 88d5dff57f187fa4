"""Command-line pieces both benches share: run-directory options, budgets, CPU and thread lists.

Standard library only (plus the vocabulary): ``ftscale <command> --help`` builds its parser from
here on a bare interpreter, before any bench dependency is imported.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from ftscale.errors import UsageError

# Options that say where and how a run is recorded, not what it measures: a resumed run takes
# them from the new command line and everything else from the run's own saved arguments.
RUN_OPTIONS = ("--resume", "--run-id", "--results-dir", "--no-report", "--budget")


def add_run_arguments(parser: argparse.ArgumentParser, kind: str) -> None:
    """The options every bench shares for naming, placing, budgeting and resuming its run."""
    group = parser.add_argument_group("run directory")
    group.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue a run with its own arguments (after an interrupt or --budget)",
    )
    group.add_argument("--run-id", help=f"name of the run directory (default: <time>-{kind}-<host>)")
    group.add_argument(
        "--results-dir", type=Path, default=None, help="where run directories go (default: ./results)"
    )
    group.add_argument("--no-report", action="store_true", help="do not render the report at the end")
    group.add_argument(
        "--budget",
        type=parse_budget,
        metavar="DURATION",
        help="stop before the next cell that would not fit in this much time (e.g. 9m, 540s); "
        "the run is kept and --resume continues it",
    )


def parse_budget(text: str) -> float:
    """``"9m"``, ``"540s"``, ``"1h"``, ``"90"`` (seconds) -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"want a duration such as 9m or 540s, got {text!r}")
    seconds = float(match[1]) * {"s": 1, None: 1, "m": 60, "min": 60, "h": 3600}[match[2]]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return seconds


def strip_run_options(argv: Sequence[str]) -> list[str]:
    """``argv`` without :data:`RUN_OPTIONS` (and their values): what a resumed run re-reads."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in RUN_OPTIONS:
            skip = "=" not in arg and name != "--no-report"
            continue
        out.append(arg)
    return out


def csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_threads(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]: positive integers, sorted, without duplicates."""
    try:
        counts = sorted({int(part) for part in csv(text)})
    except ValueError:
        raise UsageError(f"thread counts must be integers, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise UsageError(f"thread counts must be 1 or more, got {text!r}")
    return counts


def choose(given: str | None, default: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    """Names from a comma-separated option (or ``default``), each checked against ``known``."""
    names = list(dict.fromkeys(csv(given))) if given else list(default)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"unknown {what} {', '.join(unknown) or repr(given)}; known: {', '.join(known)}")
    return names


class Parser(argparse.ArgumentParser):
    """argparse, except that a bad argument raises :class:`UsageError` (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)
