"""In-process scaling bench: every workload at 1..N threads, under each build, with pyperf.

``ftscale micro`` (``nox -s micro``) is the orchestrator. It validates every argument,
provisions each build's environment, then measures one *cell* per build x workload x scaling
mode x thread count by starting ``python -m ftscale.bench.micro.worker`` under that build's python:
pyperf calibrates the loops, runs warm-ups and spreads the values over worker processes
(``--quick``: one process per cell that calibrates and measures in place, three values).

- strong scaling: a round is a fixed number of calls (``--strong-calls``) split between the
  threads; the time per round should fall as 1/N.
- weak scaling: a round is ``--weak-calls`` calls on every thread; the time should stay flat.

Both are reported as throughput (workload calls per second), so speedup is throughput at N
over throughput at 1 in either mode. A workload's simulated I/O wait is not run (compute only).

Results: ``results/<run-id>/`` with ``run.json``, one cell per measured point (written as soon
as it is measured, atomically), and ``pyperf/<build>.json`` for ``python -m pyperf compare_to``
(benchmark names such as ``nbody/strong/t2`` are the same for every build). Ctrl-C keeps what
was measured; ``--resume RUN_ID`` finishes the rest (the run engine, :mod:`ftscale.bench.engine`).

What it is not: a latency or HTTP benchmark (see ``ftscale bench``), and it does not pin CPUs or
fix clock frequencies; pyperf's metadata records load average, affinity and CPU configuration
so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import pyperf

from ftscale import workloads
from ftscale.bench import engine, results
from ftscale.bench.env import provision
from ftscale.bench.env import venv as envs
from ftscale.bench.micro import summary as microsummary
from ftscale.bench.micro.cell import MicroCellSpec, PyperfSettings, add_to_suite, measure, pyperf_path
from ftscale.bench.micro.judge import JUDGED_AT_MEASUREMENT
from ftscale.bench.micro.options import (
    QUICK_PYPERF,
    QUICK_SIZE_TARGET_S,
    build_parser,
    parse_duration,
    parse_python,
)
from ftscale.bench.micro.profile import PROFILE_SECONDS, profile_cell
from ftscale.bench.micro.worker import Scaling
from ftscale.bench.options import choose, parse_threads
from ftscale.bench.profile import session as profile
from ftscale.buildfacts import build_name
from ftscale.errors import UsageError
from ftscale.schema import Build, MicroCell, RunConfig, RunMeta
from ftscale.vocab import Scaling as ScalingKind

ROUND = "one pyperf loop = one round: all threads released by a barrier, ended when the last is done"
IO_POLICY = (
    "a workload's simulated I/O wait and a stream's delays between chunks are not run: the micro bench "
    "measures the compute only"
)


def default_threads(cores: int) -> list[int]:
    """1, 2, 4 ... up to ``cores``, and ``cores`` itself."""
    counts = {cores}
    n = 1
    while n < cores:
        counts.add(n)
        n *= 2
    return sorted(counts)


# --- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MicroPlan:
    run_dir: Path
    builds: list[str]
    pythons: dict[str, Path]  # --python interpreters by label; empty for provisioned builds
    workloads: list[str]
    threads: list[int]
    scaling: list[Scaling]
    strong_calls: int
    weak_calls: int
    size_mode: str  # "default", "smoke" or "target"
    size_target_s: float | None
    pyperf: PyperfSettings
    quick: bool
    resume: bool
    saved_sizes: dict[str, int] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    profile: bool = False  # --profile: one extra run of each cell under perf

    def cell_specs(self, sizes: dict[str, int]) -> list[MicroCellSpec]:
        """Cells in measuring order: builds side by side, so that drifting load hits twins alike."""
        out = []
        for name in self.workloads:
            w = workloads.get(name)
            for scaling in self.scaling:
                calls = self.strong_calls if scaling == "strong" else self.weak_calls
                for n in self.threads:
                    for build in self.builds:
                        spec = MicroCellSpec(
                            build=build,
                            workload=name,
                            workload_class=w.workload_class.value,
                            size=sizes[name],
                            scaling=scaling,
                            threads=n,
                            calls=calls,
                        )
                        out.append(spec)
        return out


def default_strong_calls(threads: Sequence[int]) -> int:
    lcm = math.lcm(*threads)
    return lcm if lcm <= 4 * max(threads) else max(threads)


def _positive(value: int | float | None, flag: str, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise UsageError(f"{flag} must be {'0' if allow_zero else '1'} or more, got {value}")


def plan_job(args: argparse.Namespace, argv: list[str]) -> MicroPlan:
    """Validate every argument and work out the whole job; touches nothing."""
    args, place = engine.open_run(args, "micro", lambda saved: build_parser().parse_args(saved))
    saved_sizes: dict[str, int] = {}
    if place.resuming:
        meta = results.RunDir(place.path).read_meta()
        saved_sizes = {str(k): int(v) for k, v in meta.config.get("sizes", {}).items()}
        argv = [str(a) for a in meta.config.get("argv", [])]
    if args.python and args.builds:
        raise UsageError("--python and --builds exclude each other")
    pythons: dict[str, Path] = {}
    if args.python:
        for item in args.python:
            label, python = parse_python(item)
            label = label or _own_build_name(python)
            if label in pythons:
                raise UsageError(f"--python: two interpreters are labelled {label!r}; name them NAME=PATH")
            pythons[label] = python
        builds = list(pythons)
    else:
        builds = choose(args.builds, provision.BUILDS, provision.BUILDS, "build")
    try:
        names = [w.name for w in workloads.select(args.workloads)]
    except workloads.UnknownWorkload as exc:
        raise UsageError(str(exc)) from None
    if not names:
        raise UsageError("no workload selected")
    cores = len(os.sched_getaffinity(0))
    if args.threads:
        threads = parse_threads(args.threads)
    else:
        threads = sorted({1, cores}) if args.quick else default_threads(cores)
    scaling = choose(args.scaling, [], [str(s) for s in ScalingKind], "scaling mode")
    _positive(args.strong_calls, "--strong-calls")
    if args.strong_calls is not None and args.strong_calls < max(threads):
        raise UsageError(f"--strong-calls {args.strong_calls} leaves threads idle at {max(threads)} threads")
    _positive(args.weak_calls, "--weak-calls")
    for flag in ("processes", "values", "loops"):
        _positive(getattr(args, flag), f"--{flag}")
    _positive(args.warmups, "--warmups", allow_zero=True)
    if args.min_time is not None and not args.min_time > 0:
        raise UsageError(f"--min-time must be positive, got {args.min_time}")
    quick = QUICK_PYPERF if args.quick else {}

    def pick(key: str) -> Any:
        return getattr(args, key) if getattr(args, key) is not None else quick.get(key)

    settings = PyperfSettings(
        processes=pick("processes"),
        values=pick("values"),
        warmups=pick("warmups"),
        loops=pick("loops"),
        min_time=pick("min_time"),
        in_process=bool(pick("in_process")),
    )
    if args.smoke:
        size_mode, target = "smoke", None
    elif args.size_target or args.quick:
        size_mode, target = (
            "target",
            parse_duration(args.size_target) if args.size_target else QUICK_SIZE_TARGET_S,
        )
    else:
        size_mode, target = "default", None
    return MicroPlan(
        run_dir=place.path,
        builds=builds,
        pythons=pythons,
        workloads=names,
        threads=threads,
        scaling=[cast(Scaling, s) for s in scaling],
        strong_calls=args.strong_calls or default_strong_calls(threads),
        weak_calls=args.weak_calls,
        size_mode=size_mode,
        size_target_s=target,
        pyperf=settings,
        quick=args.quick,
        resume=place.resuming,
        saved_sizes=saved_sizes,
        argv=argv,
        profile=args.profile,
    )


def _own_build_name(python: Path) -> str:
    code = (
        "import sys, sysconfig; "
        "print(*sys.version_info[:2], sysconfig.get_config_var('Py_GIL_DISABLED') or 0)"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    try:
        major, minor, ft = (int(x) for x in proc.stdout.split())
    except ValueError:
        raise UsageError(f"--python {python}: could not run it ({proc.stderr.strip()[-200:]})") from None
    return build_name((major, minor), bool(ft))


def choose_sizes(job: MicroPlan) -> tuple[dict[str, int], str]:
    """Each workload's size, and how it was chosen (recorded in run.json)."""
    if job.saved_sizes:
        missing = [n for n in job.workloads if n not in job.saved_sizes]
        if missing:
            raise UsageError(f"cannot resume: run.json has no size for {', '.join(missing)}")
        return {n: job.saved_sizes[n] for n in job.workloads}, "as recorded when the run started"
    chosen = {}
    for name in job.workloads:
        w = workloads.get(name)
        if job.size_mode == "smoke":
            chosen[name] = w.smoke_size
        elif job.size_mode == "target" and job.size_target_s is not None:
            chosen[name] = workloads.calibrate(w, job.size_target_s)
        else:
            chosen[name] = w.default_size
    target = (
        f"calibrated to about {(job.size_target_s or 0) * 1000:g} ms per call, once, by the "
        f"orchestrator's python {sys.version.split()[0]}; the same sizes for every build"
    )
    how = {
        "smoke": "each workload's smoke size",
        "default": "each workload's default size (about 10 ms per call)",
        "target": target,
    }[job.size_mode]
    return chosen, how


# --- the run ----------------------------------------------------------------------------------


def _prepare(job: MicroPlan) -> dict[str, tuple[Build, Path]]:
    if job.pythons:
        return {
            label: (envs.describe(label, python).model_copy(update={"build": label}), python)
            for label, python in job.pythons.items()
        }
    print(f"preparing builds {', '.join(job.builds)}", flush=True)
    described = envs.prepare(job.builds, log=lambda m: print(m, flush=True))
    return {b: (described[b], envs.env_python(b)) for b in job.builds}


def _config(job: MicroPlan, sizes: dict[str, int], how: str) -> dict[str, Any]:
    return {
        "argv": job.argv,
        "workloads": job.workloads,
        "sizes": sizes,
        "size_source": how,
        "threads": job.threads,
        "usable_cores": len(os.sched_getaffinity(0)),
        "scaling": job.scaling,
        "strong_calls_per_round": job.strong_calls,
        "weak_calls_per_thread": job.weak_calls,
        "pyperf": {**asdict(job.pyperf), "version": pyperf.__version__, "note": "None: pyperf's default"},
        "quick": job.quick,
        "round": ROUND,
        "io_wait": IO_POLICY,
        "sample": "workload calls per second, one per pyperf value",
        "judge": JUDGED_AT_MEASUREMENT,  # every cell's flags were judged when it was made
    }


def cell_seconds(job: MicroPlan) -> float:
    """The bench's estimate of one cell's duration before any has been measured."""
    return (3.0 if job.quick else 20.0) + (PROFILE_SECONDS + 2.0 if job.profile else 0.0)


def summary_lines(run_dir: Path) -> list[str]:
    return microsummary.format_summary(microsummary.summarise(results.load_run(run_dir)))


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``ftscale micro``: validate, provision, measure every cell not yet measured, report."""
    slot_started, began = results.now(), time.monotonic()  # the budget counts from here
    job = plan_job(args, list(argv))
    prepared = _prepare(job)  # may provision or fail: still nothing written
    lacking = {f"the {label} environment": build.unavailable for label, (build, _) in prepared.items()}
    if job.size_mode == "target" and not job.saved_sizes:  # sizes are calibrated here, in this process
        lacking["this interpreter"] = workloads.missing_here()
    problem = workloads.unmet(job.workloads, lacking)
    if problem:
        raise UsageError(problem)
    sizes, how = choose_sizes(job)
    rundir = results.RunDir(job.run_dir)
    profiling = profile.open_profiler(job.run_dir) if job.profile else None
    if not rundir.meta_path.exists():
        waits = {n: workloads.get(n).waits() for n in job.workloads}
        notes = [f"{n}: {wait} not run (compute only)" for n, wait in waits.items() if wait]
        config = _config(job, sizes, how)
        if profiling is not None:
            config["profile"] = profile.run_config(profiling)
            notes += profile.run_notes(profiling)
        rundir.write_meta(
            RunMeta(
                run_id=job.run_dir.name,
                kind="micro",
                created=results.now(),
                host=results.collect_host(),
                git=results.collect_git(),
                config=RunConfig.model_validate(config),
                notes=notes,
            )
        )
    for build, _ in prepared.values():
        rundir.add_build(build)
    with tempfile.TemporaryDirectory(prefix="ftscale-micro-") as scratch:

        def one(plan: MicroCellSpec) -> list[MicroCell]:
            build, python = prepared[plan.build]
            cell, bench = measure(plan, python, job.pyperf, job.run_dir.name, build, Path(scratch))
            if bench is not None:
                add_to_suite(pyperf_path(job.run_dir, plan.build), bench)
            if isinstance(profiling, profile.Profiler):  # --profile: one more run, under perf
                cell = profile_cell(profiling, plan, python, cell)
            return [cell]

        outcome = engine.sweep(
            rundir,
            job.cell_specs(sizes),
            one,
            lambda p: f"{p.build:<6} {p.name}",
            cell_seconds(job),
            budget_s=args.budget,
            started=began,
        )
    return engine.finish(
        rundir,
        outcome,
        slot_started,
        f"ftscale micro --resume {job.run_dir.name}",
        args.no_report,
        summary=summary_lines,
    )


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """The ``ftscale micro`` command, with the engine's signal handling and exit statuses."""
    return engine.main_guard("ftscale micro", lambda: run(args, argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return engine.main_guard("ftscale micro", lambda: run(build_parser().parse_args(argv), argv))


if __name__ == "__main__":
    sys.exit(main())
