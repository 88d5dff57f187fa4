"""One micro benchmark under one interpreter, with pyperf: ``python -m ftscale.bench.micro.worker``.

``ftscale micro`` (the orchestrator, on the host) starts this module once per cell under the
build's own environment python. Here pyperf's :class:`~pyperf.Runner` is the manager: it
spawns worker processes of this same module (``--worker``), which calibrate the loop count,
run the warm-ups and the values, and send their runs back; with pyperf's ``--in-process``
(the micro bench's ``--quick``) this process calibrates and measures itself. The orchestrator
reads the ``--output`` file, so nothing here writes ftscale's results.

A pyperf *loop* is one round of a :class:`~ftscale.bench.micro.threads.ThreadTeam`:

- strong scaling: ``--calls`` calls in total, split between ``--threads`` threads;
- weak scaling: ``--calls`` calls on *each* thread.

pyperf's values are therefore seconds per round: they fall as 1/N under ideal strong scaling
and stay flat under ideal weak scaling. Every call's checksum is compared with a reference
computed before timing, so a thread-safety bug fails the cell instead of producing a number.
A workload's simulated I/O wait (``io_wait_s``) or a stream's delays between chunks are *not*
run: this bench measures how the compute scales with threads; the HTTP bench is where the wait
and the compute meet. (The ORM workload's reads from its database are real I/O, and run.)
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from typing import Any, Literal

import pyperf

from ftscale.bench.machine import parse_cpu_list
from ftscale.bench.micro.threads import ThreadTeam, split_calls
from ftscale.buildfacts import gil_enabled
from ftscale.schema import MicroWorkerMeta
from ftscale.vocab import Scaling as ScalingKind

Scaling = Literal["strong", "weak"]
SCALING_MODES: tuple[str, ...] = tuple(str(s) for s in ScalingKind)
METADATA_PREFIX = "ftscale_"


class ChecksumMismatch(AssertionError):
    """A call returned a different checksum than the single-threaded reference."""


def bench_name(workload: str, scaling: str, threads: int) -> str:
    """pyperf's benchmark name; the same across builds so that ``compare_to`` pairs them."""
    return f"{workload}/{scaling}/t{threads}"


def calls_per_thread(scaling: str, calls: int, threads: int) -> list[int]:
    """How many workload calls each thread makes in one round."""
    if scaling == "strong":
        return split_calls(calls, threads)
    if scaling == "weak":
        return [calls] * threads
    raise ValueError(f"unknown scaling mode {scaling!r}; known: {', '.join(SCALING_MODES)}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ftscale.bench.micro.worker")
    group = parser.add_argument_group("ftscale cell")
    group.add_argument("--build", required=True, help="name of the build, as the orchestrator labels it")
    group.add_argument("--workload", required=True)
    group.add_argument("--size", type=_positive, required=True)
    group.add_argument("--scaling", choices=SCALING_MODES, required=True)
    group.add_argument("--threads", type=_positive, required=True)
    group.add_argument(
        "--calls",
        type=_positive,
        required=True,
        help="workload calls per round: in total (strong) or per thread (weak)",
    )
    return parser


def _forward(cmd: list[str], args: argparse.Namespace) -> None:
    """pyperf's hook to pass our options on to the worker processes it spawns."""
    cmd += ["--build", args.build, "--workload", args.workload, "--size", str(args.size)]
    cmd += ["--scaling", args.scaling, "--threads", str(args.threads), "--calls", str(args.calls)]


def metadata(meta: MicroWorkerMeta) -> dict[str, Any]:
    """``meta`` as pyperf metadata: every key prefixed, so pyperf's own keys never collide."""
    return {METADATA_PREFIX + k: v for k, v in meta.model_dump().items()}


def _metadata(args: argparse.Namespace, shares: list[int], workload: Any) -> dict[str, Any]:
    """What pyperf does not record itself: the build flag, the GIL state, the cell's shape."""
    affinity = sorted(os.sched_getaffinity(0))
    waits = workload.waits()
    io_policy = f"excluded: the {waits} is not run, compute only" if waits else "none"
    return metadata(
        MicroWorkerMeta(
            build=args.build,
            py_gil_disabled=int(bool(sysconfig.get_config_var("Py_GIL_DISABLED"))),
            gil_enabled=int(gil_enabled()),
            threads=args.threads,
            scaling=args.scaling,
            workload=workload.name,
            workload_class=str(workload.workload_class),
            size=args.size,
            size_meaning=workload.size_meaning,
            calls_per_round=sum(shares),
            calls_per_thread=",".join(map(str, shares)),
            io_wait=io_policy,
            cpu_affinity=",".join(map(str, affinity)),
            usable_cores=len(affinity),
            value="seconds per round (all threads released together, round ends when all are done)",
        )
    )


def cmd_worker(args: argparse.Namespace, runner: pyperf.Runner) -> int:
    """Run (pyperf manager) or measure (pyperf worker, or --in-process) the cell in ``args``."""
    name = bench_name(args.workload, args.scaling, args.threads)
    shares = calls_per_thread(args.scaling, args.calls, args.threads)
    if not (args.worker or args.in_process):
        # The manager only spawns workers and collects their runs: it never calls the function.
        runner.bench_time_func(name, _never_called)
        return 0

    from ftscale import workloads

    affinity = getattr(args, "affinity", None)  # pyperf's --affinity
    if affinity:  # pinned now, before the metadata records the affinity (pyperf pins later)
        os.sched_setaffinity(0, parse_cpu_list(affinity))
    workloads.pin_blas_threads()
    workload = workloads.get(args.workload)
    size = workload.check_size(args.size)
    expected = workload.compute(size)
    compute = workload.compute

    def share(index: int) -> None:
        for _ in range(shares[index]):
            if compute(size) != expected:
                raise ChecksumMismatch(f"{workload.name}({size}) returned a different checksum")

    teams: list[ThreadTeam] = []

    def time_rounds(loops: int) -> float:
        if not teams:  # created on first use, outside the timed region, then reused
            teams.append(ThreadTeam(args.threads, share))
        return teams[0].run(loops)

    try:
        runner.bench_time_func(name, time_rounds, metadata=_metadata(args, shares, workload))
    finally:
        for team in teams:
            team.close()
    return 0


def _never_called(loops: int) -> float:
    raise AssertionError("the pyperf manager does not run benchmarks")


def main(argv: list[str] | None = None) -> int:
    runner = pyperf.Runner(
        _argparser=build_parser(),
        program_args=("-m", "ftscale.bench.micro.worker"),
        add_cmdline_args=_forward,
    )
    args = runner.parse_args(argv)
    return cmd_worker(args, runner)


if __name__ == "__main__":
    sys.exit(main())
