"""``ftscale audit``: its options, standard library only."""

from __future__ import annotations

import argparse
from pathlib import Path

from ftscale.bench.app.options import add_project_arguments, add_request_arguments
from ftscale.bench.env.provision import BUILDS
from ftscale.bench.options import Parser

AUDIT_BUILDS = ("3.13t", "3.14t", "3.13", "3.14")
DESCRIPTION = (
    "Which of your requirements stop your app from running free-threaded: per build (3.13t, 3.14t and "
    "their GIL twins for contrast), whether each requirement ships a wheel, builds from source (built "
    "the way pip would, time-limited) and keeps the GIL off, builds and turns the GIL on (the extension "
    "module named), or does not build; each top-level module, and each extension module built, "
    "imported alone in a fresh process. Exit status 1 when on a free-threaded build a module re-enables "
    "the GIL or a requirement does not build (with --no-build: lacks a wheel), except those given with "
    "--allow; 2 for bad input."
)


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    add_project_arguments(p, app_required=False)
    p.add_argument(
        "--python",
        type=Path,
        metavar="PATH",
        help="audit an installed environment instead: its interpreter, and every distribution in it",
    )
    p.add_argument(
        "--builds", help=f"comma-separated, of {', '.join(BUILDS)} (default: {', '.join(AUDIT_BUILDS)})"
    )
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="NAME",
        help="a known exception (a requirement, distribution or module name) that does not fail the audit; "
        "repeatable",
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="with --app and a request: a short throughput check of the app on each free-threaded build, "
        "with the GIL as the imports leave it against PYTHON_GIL=0 (not a benchmark: one load each)",
    )
    add_request_arguments(p)
    p.add_argument(
        "--duration", type=float, default=3.0, help="--measure: seconds of load per run (default: 3)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="--measure: threads of the app's pool (default: the server CPUs, at most 4)",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        help="also write the audit as JSON to FILE ('-': to standard output, instead of the table)",
    )


def build_audit_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ftscale audit", description=DESCRIPTION)
    add_audit_arguments(p)
    return p
