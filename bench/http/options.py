"""``ftscale bench``'s options: standard library only, so ``--help`` works on a bare interpreter."""

from __future__ import annotations

import argparse
from pathlib import Path

from ftscale.bench.env.provision import BUILDS
from ftscale.bench.options import Parser, add_run_arguments

from ftscale.vocab import Mode, Topology

QUICK_BUILDS = ("3.14", "3.14t")
QUICK_WORKLOADS = ("nbody", "sha256_hash", "rag_gateway")
MODES = tuple(str(m) for m in Mode)
TOPOLOGIES = tuple(str(t) for t in Topology if t is not Topology.LOOPS_REUSEPORT)

DESCRIPTION = (
    "HTTP scaling bench: builds x workloads x modes x topologies x threads, one server per cell. "
    "The quick default compares 3.14 and 3.14t; --full covers every build, workload, mode and topology."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--full", action="store_true", help="every build, workload, mode and topology")
    p.add_argument(
        "--builds", help=f"comma-separated, of {', '.join(BUILDS)} (quick: {','.join(QUICK_BUILDS)})"
    )
    p.add_argument("--workloads", help=f"comma-separated (quick: {','.join(QUICK_WORKLOADS)}; full: all)")
    p.add_argument("--modes", help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--topologies", help=f"comma-separated, of {', '.join(TOPOLOGIES)}")
    p.add_argument("--threads", help="comma-separated counts (default: 1, 2, 4 ... up to the server CPUs)")
    p.add_argument(
        "--size", action="append", default=[], metavar="WORKLOAD=N", help="override a workload's size"
    )
    p.add_argument("--duration", type=float, default=3.0, help="seconds per repetition (default 3)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell (default 1)")
    p.add_argument("--repetitions", type=int, default=3, help="repetitions per cell (default 3, minimum 1)")
    p.add_argument("--connections", type=int, help="connections per load (default: 2 x threads, min 4)")
    p.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator (auto: wrk when installed, else the built-in one)",
    )
    p.add_argument("--server-cpus", help="CPUs for the server, e.g. 2-15 (default: an SMT-aware split)")
    p.add_argument(
        "--client-cpus", help="CPUs for the load generator (default: about a quarter of the cores)"
    )
    p.add_argument(
        "--allow-shared-cpus",
        action="store_true",
        help="let server and client CPUs overlap (every cell is then flagged)",
    )
    p.add_argument("--target", help="drive a server already running at this URL instead of starting one")
    p.add_argument(
        "--server-python",
        type=Path,
        metavar="PATH",
        help="run the server with this interpreter (its environment as it is) instead of provisioned builds",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="after each cell, one more repetition on a fresh server under Linux perf, its CPU time "
        "broken into buckets (Python, refcounting, locks, GC, allocator, HTTP stack, kernel ...); "
        "never part of the measured repetitions",
    )
    add_run_arguments(p, "http")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ftscale bench", description=DESCRIPTION)
    add_arguments(p)
    return p
