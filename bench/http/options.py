"""``ftscale bench``'s options and presets: standard library only, so ``--help`` works anywhere.

A *design* is how the service spreads CPU work: a mode and a topology (``threadpool/single``,
``process/single``, ``inline/workers`` …). A preset names, per kind of build, the designs it
measures: the fair comparison gives the free-threaded build its thread designs and the GIL build
its scale-out designs (a process pool, worker processes), each at its best, because a GIL build
cannot scale threads by construction and comparing against that would be a straw man.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ftscale.bench.env.provision import BUILDS
from ftscale.bench.intervals import DEFAULT_MARGIN
from ftscale.bench.options import Parser, add_run_arguments
from ftscale.vocab import (
    ARRIVAL_HELP,
    DEFAULT_SERVER,
    SERVER_HELP,
    Generator,
    HttpServer,
    LoadKind,
    Mode,
    Topology,
)

MODES = tuple(str(m) for m in Mode)
SERVERS = tuple(str(s) for s in HttpServer)
TOPOLOGIES = tuple(str(t) for t in Topology if t is not Topology.LOOPS_REUSEPORT)

GENERATOR_CHOICES = ("auto", *(str(g) for g in Generator))  # auto: wrk where installed, else python


class Design(NamedTuple):
    """How the service spreads CPU work: a mode (ftscale.vocab.Mode) and a topology
    (ftscale.vocab.Topology); its label is how options, estimates and logs write it."""

    mode: str
    topology: str

    @property
    def label(self) -> str:
        return f"{self.mode}/{self.topology}"


CONFIRM_ROUNDS = 10  # the same default as ftscale.bench.http.cells.CONFIRM_ROUNDS (this module: stdlib only)

THREAD_DESIGNS: tuple[Design, ...] = (Design("threadpool", "single"), Design("inline", "loops"))
# The GIL build scales out: a process pool, ftscale's balanced workers, and the stock deployments
# people run today (gunicorn --preload with uvicorn workers, uvicorn --workers).
SCALE_OUT_DESIGNS: tuple[Design, ...] = (
    Design("process", "single"),
    Design("inline", "workers"),
    Design("inline", "gunicorn"),
    Design("inline", "uvicorn-workers"),
)
# --full: every mode on one process, and the multi-process / multi-loop topologies with the
# modes that make sense there (one CPU-bound request at a time per worker or loop).
ALL_DESIGNS: tuple[Design, ...] = (
    Design("inline", "single"),
    Design("threadpool", "single"),
    Design("executor", "single"),
    Design("process", "single"),
    Design("inline", "workers"),
    Design("threadpool", "workers"),
    Design("inline", "loops"),
    Design("threadpool", "loops"),
    Design("inline", "gunicorn"),
    Design("inline", "uvicorn-workers"),
)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    builds: tuple[str, ...]
    workloads: tuple[str, ...] | None  # None: every registered workload
    free_threaded_designs: tuple[Design, ...]
    gil_designs: tuple[Design, ...]
    repetitions: int
    duration_s: float
    warmup_s: float
    threads: tuple[int, ...] | None = None  # None: 1, 2, 4 … up to the server CPUs
    load: str = "closed"
    open_shares: tuple[float, ...] = ()
    slo_p99_ms: float | None = None
    rounds: int = CONFIRM_ROUNDS  # confirmation rounds of each build's finalist (0: none)
    # Thread counts when ``threads`` is None: "powers" (1, 2, 4 … up to the server CPUs) or
    # "quarters" (1, N/4, N/2 and N of the N server CPUs, each at least 1, each once).
    thread_rule: str = "powers"
    # The in-process pass (the ceiling) also draws each build's speedup curve: 1, 2, 4 … up to
    # the server CPUs besides the counts the sweep serves.
    ceiling_curve: bool = False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="quick",
            summary="3.14 against 3.14t, one workload per kind of CPU work, the free-threaded build's thread "
            "designs against the GIL build's scale-out designs (stock deployments included), then 10 "
            "confirmation rounds of each build's candidate; about 4 minutes on 2 cores",
            builds=("3.14", "3.14t"),
            workloads=("nbody", "sha256_hash", "rag_gateway"),
            free_threaded_designs=THREAD_DESIGNS,
            gil_designs=SCALE_OUT_DESIGNS,
            repetitions=3,
            duration_s=1.0,
            warmup_s=0.5,
        ),
        Preset(
            name="full",
            summary="every build, workload, mode and topology on every build, 5 repetitions",
            builds=BUILDS,
            workloads=None,
            free_threaded_designs=ALL_DESIGNS,
            gil_designs=ALL_DESIGNS,
            repetitions=5,
            duration_s=3.0,
            warmup_s=1.0,
        ),
        Preset(
            name="headline",
            summary="the many-core answer in one short window: 3.14t against 3.14 on one pure-Python and one "
            "I/O-then-Python workload; in process at 1, 2, 4 … up to the server CPUs, then over HTTP "
            "3.14t's thread designs against 3.14's scale-out designs (stock deployments included) at 1, "
            "N/4, N/2 and N server CPUs, 10 confirmation rounds; at most 8 minutes on a 16-core host "
            "(--dry-run --cpus 16 prints the estimate)",
            builds=("3.14t", "3.14"),
            workloads=("nbody", "rag_gateway"),
            free_threaded_designs=THREAD_DESIGNS,
            gil_designs=SCALE_OUT_DESIGNS,
            repetitions=2,
            duration_s=1.0,
            warmup_s=0.5,
            thread_rule="quarters",
            ceiling_curve=True,
        ),
        Preset(
            name="reference",
            summary="the many-core headline: 4 builds, one workload per class, the fair designs, 1-16 server "
            "CPUs, closed loop and an open loop at 75 % of each design's peak, with a 100 ms p99 target; "
            "about 3.4 h on a 16-core host (--dry-run prints the estimate), meant to run in --budget slots",
            builds=BUILDS,
            workloads=("nbody", "json_roundtrip", "sha256_hash", "rag_gateway", "shared_counter"),
            free_threaded_designs=THREAD_DESIGNS,
            gil_designs=SCALE_OUT_DESIGNS,
            repetitions=3,
            duration_s=2.0,
            warmup_s=0.5,
            threads=(1, 2, 4, 8, 12, 16),
            load="both",
            open_shares=(0.75,),
            slo_p99_ms=100.0,
        ),
    )
}

DESCRIPTION = (
    "HTTP scaling bench: builds x workloads x designs (mode/topology) x threads, a fresh server per "
    "repetition. The quick default compares 3.14t's thread designs with 3.14's scale-out designs."
)
EPILOG = "Presets: " + "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values()) + "."


def parse_designs(text: str) -> tuple[tuple[Design, ...], tuple[Design, ...]]:
    """``"threadpool/single,gil:process/single"`` -> (free-threaded designs, GIL designs).

    An entry without a ``ft:`` or ``gil:`` prefix applies to both kinds of build.
    """
    ft: list[Design] = []
    gil: list[Design] = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        kind, _, design = item.rpartition(":")
        mode, _, topology = design.partition("/")
        if kind not in ("", "ft", "gil") or mode not in MODES or topology not in TOPOLOGIES:
            raise argparse.ArgumentTypeError(
                f"bad design {item!r}: want [ft:|gil:]MODE/TOPOLOGY with MODE in {', '.join(MODES)} "
                f"and TOPOLOGY in {', '.join(TOPOLOGIES)}"
            )
        for target, wanted in ((ft, "ft"), (gil, "gil")):
            if kind in ("", wanted) and Design(mode, topology) not in target:
                target.append(Design(mode, topology))
    return tuple(ft), tuple(gil)


def parse_servers(text: str) -> tuple[str, ...]:
    """``"uvicorn-h11,granian"`` -> the servers, in order, each once."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"bad server {', '.join(unknown) or repr(text)}: "
            f"want a comma-separated list of {', '.join(SERVERS)}"
        )
    return tuple(dict.fromkeys(names))


def parse_counts(text: str) -> tuple[int, ...]:
    """``"1,2"`` -> (1, 2): positive integers."""
    try:
        counts = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"want positive integers such as 1,2; got {text!r}")
    return tuple(dict.fromkeys(counts))


def _shares(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(x) / (100 if float(x) > 1.5 else 1) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"want shares such as 0.5,0.75,0.9 (or 50,75,90), got {text!r}"
        ) from None
    if not shares or any(not 0 < s <= 1.5 for s in shares):
        raise argparse.ArgumentTypeError(f"shares must be in (0, 1.5], got {text!r}")
    return shares


def _percent(text: str) -> float:
    """``5`` or ``5%`` -> 0.05; a share in (0, 1) is taken as it is."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a percentage such as 5 or 5%, got {text!r}") from None
    share = value / 100 if value >= 1 else value
    if not 0 < share < 1:
        raise argparse.ArgumentTypeError(f"the margin must be between 0 and 100 %, got {text!r}")
    return share


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset", choices=list(PRESETS), default="quick", help="what to measure (default: quick)"
    )
    p.add_argument(
        "--full", action="store_const", dest="preset", const="full", help="the same as --preset full"
    )
    p.add_argument("--builds", help=f"comma-separated, of {', '.join(BUILDS)} (default: the preset's)")
    p.add_argument("--workloads", help="comma-separated workload names (default: the preset's)")
    p.add_argument(
        "--designs",
        type=parse_designs,
        metavar="[ft:|gil:]MODE/TOPOLOGY,...",
        help=f"designs to measure; MODE in {', '.join(MODES)}, TOPOLOGY in {', '.join(TOPOLOGIES)}; "
        "prefix ft: or gil: for one kind of build only (default: the preset's)",
    )
    p.add_argument(
        "--servers",
        type=parse_servers,
        metavar="SERVER,...",
        help="HTTP servers to run every design under (default: "
        f"{DEFAULT_SERVER}); "
        + "; ".join(f"{name}: {text}" for name, text in SERVER_HELP.items())
        + ". A server that cannot run a design on a build (no wheel, no such topology) gives a skipped "
        "cell with its reason",
    )
    p.add_argument(
        "--runtime-threads",
        type=parse_counts,
        metavar="N,...",
        help="granian only: its Rust I/O threads per worker, each count a variant of granian (default 1)",
    )
    p.add_argument(
        "--size", action="append", default=[], metavar="WORKLOAD=N", help="override a workload's size"
    )
    p.add_argument("--target", help="drive a server already running at this URL instead of starting one")
    p.add_argument(
        "--server-python",
        type=Path,
        metavar="PATH",
        help="run the server with this interpreter (its environment as it is) instead of provisioned builds",
    )
    p.add_argument(
        "--no-ceiling",
        action="store_true",
        help="leave out the in-process pass: each workload at each thread count in process (pyperf) on "
        "the same server CPUs, the ceiling the report divides each design's throughput by",
    )
    p.add_argument(
        "--cpus",
        type=parse_cpu_count,
        metavar="N",
        help="with --dry-run: plan and estimate for a host of N CPUs (one per core), not this machine",
    )
    add_sweep_arguments(p)
    add_run_arguments(p, "http")


def parse_cpu_count(text: str) -> int:
    """``16`` -> 16: a host needs at least 2 CPUs (server and load generator apart)."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 2:
        raise argparse.ArgumentTypeError(f"want a CPU count of 2 or more, got {text!r}")
    return count


def add_sweep_arguments(
    p: argparse.ArgumentParser,
    connections: str = "2 x threads, min 4; 4 x for I/O workloads; 16 x, min 16, for streams",
) -> None:
    """What every HTTP sweep (``ftscale bench``, ``ftscale app``) takes: threads, repetitions,
    load, generator, CPUs, profiling."""
    p.add_argument("--threads", help="comma-separated counts (default: 1, 2, 4 ... up to the server CPUs)")
    p.add_argument("--duration", type=float, help="seconds per repetition (default: the preset's)")
    p.add_argument(
        "--warmup", type=float, help="warm-up seconds before each repetition (default: the preset's)"
    )
    p.add_argument(
        "--repetitions", type=int, help="repetitions per cell, each on a fresh server (default: the preset's)"
    )
    p.add_argument("--connections", type=int, help=f"connections per load (default: {connections})")
    p.add_argument(
        "--load",
        choices=[*(str(k) for k in LoadKind), "both"],
        help="closed loop, open loop at fixed rates, or both (default: the preset's)",
    )
    p.add_argument(
        "--rates",
        type=_shares,
        metavar="SHARES",
        help="open loop: offered rates as shares of each design's closed-loop median (default 0.5,0.75,0.9)",
    )
    p.add_argument(
        "--slo-p99",
        type=float,
        metavar="MS",
        help="find each design's capacity at a p99 latency of MS milliseconds (implies open load): the "
        "highest rate whose p99 upper confidence bound, over repeated loads, stays at or under MS with no "
        "errors and the rate served, and the lowest rate that fails",
    )
    p.add_argument(
        "--arrivals",
        choices=list(ARRIVAL_HELP),
        help="open loop: when requests are due (default poisson); "
        + "; ".join(f"{name}: {text}" for name, text in ARRIVAL_HELP.items()),
    )
    p.add_argument(
        "--generator",
        choices=list(GENERATOR_CHOICES),
        default="auto",
        help="closed-loop load generator (auto: wrk when installed, else the built-in one); "
        "open loop always uses the built-in one, in one process per client CPU; streams use the "
        "built-in one (it times the first byte and the gaps between chunks) unless wrk is named "
        "(it counts chunks only)",
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
    p.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="confirmation rounds: after the sweep, each build's finalist design is measured once per "
        "round on a fresh server, and the verdict rests on these paired rounds only (default: the "
        f"preset's, {CONFIRM_ROUNDS} for every preset; 0: no confirmation, and no verdict beyond "
        "the exploration)",
    )
    p.add_argument(
        "--margin",
        type=_percent,
        metavar="PCT",
        help="call two designs equivalent when their ratio's interval lies within this margin of 1 "
        f"(default {DEFAULT_MARGIN * 100:g} %%)",
    )
    p.add_argument(
        "--server-start",
        choices=["fork", "spawn"],
        default="fork",
        help="how each repetition's fresh server starts: forked from a pre-imported parent of its build "
        "(fork, about 0.3 s) or as a new interpreter (spawn, 1-4 s); forked servers fork their own "
        "workers and pool children",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="after each cell, one more repetition on a fresh server under Linux perf, its CPU time "
        "broken into buckets (Python, refcounting, locks, GC, allocator, HTTP stack, kernel ...); "
        "never part of the measured repetitions",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the groups, cells and the estimated duration of the run, and measure nothing",
    )


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ftscale bench", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(p)
    return p
