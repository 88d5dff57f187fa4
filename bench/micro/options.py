"""``ftscale micro``'s options: standard library only, so ``--help`` works on a bare interpreter."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from ftscale.bench.env.provision import BUILDS
from ftscale.bench.options import Parser, add_run_arguments
from ftscale.errors import UsageError
from ftscale.vocab import Scaling

DESCRIPTION = (
    "In-process scaling bench: every workload at 1..N threads, under each build, with pyperf "
    "(strong and weak scaling)."
)

QUICK_SIZE_TARGET_S = 0.001
# --quick: one process per cell that calibrates and measures in place (pyperf --in-process), so a
# cell costs one interpreter start instead of three; the full run keeps pyperf's worker processes.
QUICK_PYPERF: dict[str, Any] = {
    "processes": 1,
    "values": 3,
    "warmups": 1,
    "min_time": 0.01,
    "in_process": True,
}


def parse_duration(text: str) -> float:
    """``"1ms"``, ``"500us"``, ``"0.02s"`` -> seconds; a bare number is milliseconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|ms|us|µs)?\s*", text)
    if not match:
        raise UsageError(f"--size-target wants a duration such as 1ms or 500us, got {text!r}")
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, None: 1e-3}[match[2]]
    seconds = float(match[1]) * scale
    if seconds <= 0:
        raise UsageError(f"--size-target must be positive, got {text!r}")
    return seconds


def parse_python(text: str) -> tuple[str, Path]:
    """``[NAME=]PATH``: an interpreter used as it is, labelled NAME (default: its own build name)."""
    name, sep, path = text.partition("=")
    if not sep:
        name, path = "", text
    if name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(f"--python label {name!r}: use letters, digits, '.', '-' and '_'")
    python = Path(path).expanduser()
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise UsageError(f"--python {path}: not an executable")
    return name, python


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 ms sizes, 1 pyperf process x 3 values, threads 1 and the core count",
    )
    p.add_argument("--builds", help=f"comma-separated, of {', '.join(BUILDS)} (default: all)")
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="measure this interpreter as it is (no provisioning); repeatable; excludes --builds",
    )
    p.add_argument("--workloads", help="comma-separated (default: all)")
    p.add_argument("--threads", help="comma-separated counts (default: 1, 2, 4 ... up to the usable cores)")
    p.add_argument("--scaling", default="strong,weak", help=f"{', '.join(Scaling)} or both (default: both)")
    sizes = p.add_mutually_exclusive_group()
    sizes.add_argument(
        "--size-target",
        metavar="DURATION",
        help="calibrate each workload's size to about this long per call, e.g. 1ms (quick: 1ms)",
    )
    sizes.add_argument(
        "--smoke",
        action="store_true",
        help="each workload's smoke size (proves it runs; the timings mean little)",
    )
    p.add_argument(
        "--strong-calls",
        type=int,
        metavar="W",
        help="calls per round in strong scaling (default: the least common multiple of the "
        "thread counts, or the largest count when that is over 4 times bigger)",
    )
    p.add_argument(
        "--weak-calls",
        type=int,
        default=1,
        metavar="K",
        help="calls per thread per round in weak scaling (default 1)",
    )
    pp = p.add_argument_group("pyperf (default: pyperf's own; --quick: in-process, 3 values, 10 ms)")
    pp.add_argument("--processes", type=int, help="worker processes per cell")
    pp.add_argument("--values", type=int, help="values per worker process")
    pp.add_argument("--warmups", type=int, help="warm-up values per worker process")
    pp.add_argument("--loops", type=int, help="rounds per value (default: calibrated by pyperf)")
    pp.add_argument("--min-time", type=float, help="minimum seconds per value when calibrating loops")
    pp.add_argument(
        "--in-process",
        action=argparse.BooleanOptionalAction,
        help="calibrate and measure in the cell's own process, no pyperf workers (default: with --quick)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="after each cell, run its worker once more under Linux perf and break its CPU time into "
        "buckets (Python, refcounting, locks, GC, allocator, kernel ...); never part of the timings",
    )
    add_run_arguments(p, "micro")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ftscale micro", description=DESCRIPTION)
    add_arguments(p)
    return p
