"""In-process scaling bench: every workload at 1..N threads, under each build, with pyperf.

``python -m bench.micro`` (``nox -s micro``) is the orchestrator. It validates every argument,
provisions each build's environment, then measures one *cell* per build x workload x scaling
mode x thread count by starting ``python -m bench.microworker`` under that build's python:
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
was measured; ``--resume RUN_ID`` finishes the rest.

What it is not: a latency or HTTP benchmark (see ``bench.http``), and it does not pin CPUs or
fix clock frequencies; pyperf's metadata records load average, affinity and CPU configuration
so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn, cast

import pyperf

import workloads
from bench import envs, microsummary, provision, results
from bench.buildinfo import build_name
from bench.microcell import CellPlan, PyperfSettings, add_to_suite, measure, pyperf_path
from bench.microworker import SCALING_MODES, Scaling

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
ROUND = "one pyperf loop = one round: all threads released by a barrier, ended when the last is done"
IO_POLICY = "a workload's simulated I/O wait is not run: the micro bench measures the compute only"


class UsageError(Exception):
    """A bad argument; reported on one line before anything is written."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# --- argument parsing ---------------------------------------------------------------------------


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_threads(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]: positive integers, sorted, without duplicates."""
    try:
        counts = [int(part) for part in _csv(text)]
    except ValueError:
        raise UsageError(f"thread counts must be integers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise UsageError(f"thread counts must be 1 or more, got {text!r}")
    return sorted(set(counts))


def default_threads(cores: int) -> list[int]:
    """1, 2, 4 ... up to ``cores``, and ``cores`` itself."""
    counts = {cores}
    n = 1
    while n < cores:
        counts.add(n)
        n *= 2
    return sorted(counts)


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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m bench.micro", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 ms sizes, 1 pyperf process x 3 values, threads 1 and the core count",
    )
    p.add_argument("--builds", help=f"comma-separated, of {', '.join(provision.BUILDS)} (default: all)")
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="measure this interpreter as it is (no provisioning); repeatable; excludes --builds",
    )
    p.add_argument("--workloads", help="comma-separated (default: all)")
    p.add_argument("--threads", help="comma-separated counts (default: 1, 2, 4 ... up to the usable cores)")
    p.add_argument("--scaling", default="strong,weak", help="strong, weak or both (default: both)")
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
    results.add_run_arguments(p, "micro")
    return p


# --- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
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

    def plans(self, sizes: dict[str, int]) -> list[CellPlan]:
        """Cells in measuring order: builds side by side, so that drifting load hits twins alike."""
        out = []
        for name in self.workloads:
            w = workloads.get(name)
            for scaling in self.scaling:
                calls = self.strong_calls if scaling == "strong" else self.weak_calls
                for n in self.threads:
                    for build in self.builds:
                        out.append(
                            CellPlan(build, name, w.workload_class.value, sizes[name], scaling, n, calls)
                        )
        return out


def default_strong_calls(threads: Sequence[int]) -> int:
    lcm = math.lcm(*threads)
    return lcm if lcm <= 4 * max(threads) else max(threads)


def _positive(value: int | float | None, flag: str, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise UsageError(f"{flag} must be {'0' if allow_zero else '1'} or more, got {value}")


def plan_job(args: argparse.Namespace) -> Job:
    """Validate every argument and work out the whole job; touches nothing."""
    resume = bool(args.resume)
    saved_sizes: dict[str, int] = {}
    if resume:
        run_dir = args.results_dir / args.resume
        try:
            meta = results.RunDir(run_dir).read_meta()
        except results.ResultError as exc:
            raise UsageError(f"cannot resume {args.resume}: {exc}") from None
        if meta.kind != "micro":
            raise UsageError(f"cannot resume {args.resume}: it is a {meta.kind} run")
        saved_sizes = {str(k): int(v) for k, v in meta.config.get("sizes", {}).items()}
        results_dir = args.results_dir
        args = build_parser().parse_args([*meta.config.get("argv", []), "--results-dir", str(results_dir)])
        args.run_id = run_dir.name
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
        builds = _csv(args.builds) if args.builds else list(provision.BUILDS)
        unknown = [b for b in builds if b not in provision.BUILDS]
        if unknown or not builds:
            raise UsageError(f"unknown build {', '.join(unknown) or repr(args.builds)}; "
                             f"known: {', '.join(provision.BUILDS)}")  # fmt: skip
        builds = list(dict.fromkeys(builds))
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
    scaling = list(dict.fromkeys(_csv(args.scaling)))
    bad = [s for s in scaling if s not in SCALING_MODES]
    if bad or not scaling:
        raise UsageError(f"unknown scaling mode {', '.join(bad) or repr(args.scaling)}; "
                         f"known: {', '.join(SCALING_MODES)}")  # fmt: skip
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
        processes=pick("processes"), values=pick("values"), warmups=pick("warmups"),
        loops=pick("loops"), min_time=pick("min_time"), in_process=bool(pick("in_process")),
    )  # fmt: skip
    if args.smoke:
        size_mode, target = "smoke", None
    elif args.size_target or args.quick:
        size_mode, target = (
            "target",
            parse_duration(args.size_target) if args.size_target else QUICK_SIZE_TARGET_S,
        )
    else:
        size_mode, target = "default", None
    run_id = args.run_id or results.new_run_id("micro")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id):
        raise UsageError(f"--run-id {run_id!r}: use letters, digits, '.', '-' and '_'")
    run_dir = args.results_dir / run_id
    if not resume and run_dir.exists():
        raise UsageError(f"{run_dir} already exists; use --resume {run_id} to finish it")
    return Job(
        run_dir=run_dir,
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
        resume=resume,
        saved_sizes=saved_sizes,
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


def choose_sizes(job: Job) -> tuple[dict[str, int], str]:
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
    how = {
        "smoke": "each workload's smoke size",
        "default": "each workload's default size (about 10 ms per call)",
        "target": f"calibrated to about {(job.size_target_s or 0) * 1000:g} ms per call, once, by the "
                  f"orchestrator's python {sys.version.split()[0]}; the same sizes for every build",
    }[job.size_mode]  # fmt: skip
    return chosen, how


# --- measuring one cell ---------------------------------------------------------------------


# --- the run ----------------------------------------------------------------------------------


def _prepare(job: Job) -> dict[str, tuple[results.Build, Path]]:
    if job.pythons:
        return {
            label: (envs.describe(label, python).model_copy(update={"build": label}), python)
            for label, python in job.pythons.items()
        }
    print(f"preparing builds {', '.join(job.builds)}", flush=True)
    described = envs.prepare(job.builds, log=lambda m: print(m, flush=True))
    return {b: (described[b], envs.env_python(b)) for b in job.builds}


def _config(job: Job, sizes: dict[str, int], how: str, argv: Sequence[str]) -> dict[str, Any]:
    return {
        "argv": [a for a in argv],
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
    }


def cmd_run(args: argparse.Namespace) -> int:
    """Validate, provision, measure every cell not yet measured, summarise, render the report."""
    argv: list[str] = list(getattr(args, "argv", []))
    job = plan_job(args)
    prepared = _prepare(job)  # may provision or fail: still nothing written
    sizes, how = choose_sizes(job)
    rundir = results.RunDir(job.run_dir)
    if not rundir.meta_path.exists():
        notes = [f"{n}: {workloads.get(n).io_wait_s * 1000:g} ms simulated I/O wait not run (compute only)"
                 for n in job.workloads if workloads.get(n).io_wait_s]  # fmt: skip
        rundir.write_meta(
            results.RunMeta(
                run_id=job.run_dir.name, kind="micro", created=results.now(), host=results.collect_host(),
                git=results.collect_git(), config=_config(job, sizes, how, argv), notes=notes,
            )
        )  # fmt: skip
    for build, _ in prepared.values():
        rundir.add_build(build)
    plans = job.plans(sizes)
    done = rundir.done()
    todo = [p for p in plans if p.key not in done]
    print(f"run {job.run_dir}: {len(todo)} of {len(plans)} cells to measure "
          f"(threads {job.threads}, scaling {', '.join(job.scaling)})", flush=True)  # fmt: skip
    failed = _sweep(todo, rundir, job, prepared)
    rundir.update_meta(finished=results.now())
    print(f"done: {len(todo) - failed} cells measured, {failed} failed -> {job.run_dir}", flush=True)
    for line in microsummary.format_summary(microsummary.summarise(results.load_run(job.run_dir))):
        print(line)
    if not args.no_report:
        render_report(job.run_dir)
    return 1 if failed else 0


def _sweep(
    todo: list[CellPlan], rundir: results.RunDir, job: Job, prepared: dict[str, tuple[results.Build, Path]]
) -> int:
    failed = 0
    width = len(str(len(todo)))
    with tempfile.TemporaryDirectory(prefix="ftscale-micro-") as scratch:
        for index, plan in enumerate(todo, 1):
            build, python = prepared[plan.build]
            label = f"[{index:>{width}}/{len(todo)}] {plan.build:<6} {plan.name}"
            t0 = time.monotonic()
            cell, bench = measure(plan, python, job.pyperf, job.run_dir.name, build, Path(scratch))
            if bench is not None:
                add_to_suite(pyperf_path(job.run_dir, plan.build), bench)
            rundir.write_cell(cell)
            took = time.monotonic() - t0
            if cell.status == "ok":
                median = sorted(cell.samples)[len(cell.samples) // 2]
                extra = f" [{' '.join(cell.flags)}]" if cell.flags else ""
                print(
                    f"{label}: {median:,.1f} calls/s ({len(cell.samples)} values, {took:.1f} s){extra}",
                    flush=True,
                )
            else:
                failed += 1
                print(f"{label}: FAILED {cell.error}", flush=True)
    return failed


def render_report(run_dir: Path) -> None:
    """Render report.md/report.html with bench.report when it is there; skip quietly otherwise."""
    try:
        from bench.report import render_run
    except ImportError:
        return
    try:
        paths = list(render_run(run_dir))
    except Exception as exc:  # the measurements are kept; the report can be rendered later
        print(f"report: not rendered ({type(exc).__name__}: {exc}); retry with: nox -s report", flush=True)
        return
    for path in paths:
        print(f"report: {path}", flush=True)


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the console summary of a run directory (from its files only)."""
    for line in microsummary.format_summary(microsummary.summarise(results.load_run(args.run_dir))):
        print(line)
    return 0


# --- entry point ------------------------------------------------------------------------------


def parse_args(argv: Iterable[str]) -> argparse.Namespace:
    argv = list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return args


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run the way Ctrl-C does: cells kept


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["summary"]:
            sp = _Parser(prog="python -m bench.micro summary")
            sp.add_argument("run_dir", type=Path)
            return cmd_summary(sp.parse_args(argv[1:]))
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return cmd_run(parse_args(argv))
        finally:
            signal.signal(signal.SIGTERM, previous)
    except UsageError as exc:
        print(f"bench.micro: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (envs.EnvError, provision.ProvisionError, results.ResultError) as exc:
        print(f"bench.micro: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the cells measured so far are kept; finish with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
