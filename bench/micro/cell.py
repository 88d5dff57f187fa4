"""One micro cell: what the worker measures, how it is started, and its pyperf file -> ftscale cell.

The orchestrator (:mod:`ftscale.bench.micro.run`) starts ``python -m ftscale.bench.micro.worker`` for a
:class:`MicroCellSpec` under a build's python and gets a pyperf benchmark back, whose values are
seconds per round. :func:`cell_from_benchmark` turns each value into one throughput sample
(``calls_per_round / value``); :func:`add_to_suite` keeps one pyperf file per build, replaced
atomically after each cell, so ``python -m pyperf compare_to`` can pair builds by name.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyperf

from ftscale.bench import results
from ftscale.bench.micro.judge import judge_micro
from ftscale.bench.micro.worker import METADATA_PREFIX, Scaling, bench_name, calls_per_thread
from ftscale.schema import Build, MicroCell, MicroRepetition, MicroWorkerMeta

STDERR_TAIL = 4000


@dataclass(frozen=True)
class PyperfSettings:
    """pyperf options for every cell; None leaves pyperf's own default."""

    processes: int | None = None
    values: int | None = None
    warmups: int | None = None
    loops: int | None = None
    min_time: float | None = None
    in_process: bool = False  # pyperf --in-process: no worker processes
    affinity: str | None = None  # pyperf --affinity: the CPUs (Linux list syntax) it runs on

    def argv(self) -> list[str]:
        flags = {
            "processes": "--processes",
            "values": "--values",
            "warmups": "--warmups",
            "loops": "--loops",
            "min_time": "--min-time",
        }
        out: list[str] = []
        for key, flag in flags.items():
            value = getattr(self, key)
            if value is not None:
                out += [flag, str(value)]
        if self.in_process:
            out.append("--in-process")
        if self.affinity:
            out += ["--affinity", self.affinity]
        return out


@dataclass(frozen=True)
class MicroCellSpec:
    """One cell: what the worker is asked to measure."""

    build: str
    workload: str
    workload_class: str
    size: int
    scaling: Scaling
    threads: int
    calls: int  # per round: in total (strong) or per thread (weak)

    @property
    def key(self) -> str:
        return results.cell_id(self.build, self.workload, self.threads, scaling=self.scaling)

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return (self.key,)

    @property
    def name(self) -> str:
        return bench_name(self.workload, self.scaling, self.threads)

    @property
    def shares(self) -> list[int]:
        return calls_per_thread(self.scaling, self.calls, self.threads)

    @property
    def calls_per_round(self) -> int:
        return sum(self.shares)


def worker_command(python: Path, plan: MicroCellSpec, settings: PyperfSettings, output: Path) -> list[str]:
    cell = ["--build", plan.build, "--workload", plan.workload, "--size", str(plan.size)]
    cell += ["--scaling", plan.scaling, "--threads", str(plan.threads), "--calls", str(plan.calls)]
    return [str(python), "-m", "ftscale.bench.micro.worker", *cell, *settings.argv(), "--output", str(output)]


def cell_from_benchmark(
    plan: MicroCellSpec,
    bench: Any,
    run_id: str,
    build: Build,
    started: str,
    finished: str,
    info_before: dict[str, float] | None = None,
    info_after: dict[str, float] | None = None,
    usable_cores: int | None = None,
) -> MicroCell:
    """A cell from a pyperf benchmark whose values are seconds per round.

    Each value becomes one sample, ``calls_per_round / value`` calls per second; calibration
    runs (no values) and warm-ups are left out, as pyperf itself leaves them out.
    """
    samples: list[float] = []
    reps: list[MicroRepetition] = []
    gil_on = False
    for index, run in enumerate(bench.get_runs()):
        if not run.values:
            continue
        gil_on = gil_on or bool(worker_meta(run.get_metadata()).gil_enabled)
        for value in run.values:
            samples.append(plan.calls_per_round / value)
            rep = MicroRepetition(
                process=index,
                loops=run.get_loops(),
                seconds_per_round=value,
                calls_per_round=plan.calls_per_round,
            )
            reps.append(rep)
    cell = MicroCell(
        **_identity(plan, run_id),
        status="ok" if samples else "failed",
        error=None if samples else "pyperf returned no values",
        unit="calls/s",
        samples=samples,
        repetitions=reps,
        gil_enabled=gil_on,
        info_before=info_before,
        info_after=info_after,
        started=started,
        finished=finished,
    )
    return cell.model_copy(update={"flags": judge_micro(cell, build.py_gil_disabled, usable_cores)})


def worker_meta(metadata: dict[str, Any]) -> MicroWorkerMeta:
    """The micro worker's own metadata from a pyperf run's metadata, validated."""
    ours = {k.removeprefix(METADATA_PREFIX): v for k, v in metadata.items() if k.startswith(METADATA_PREFIX)}
    return MicroWorkerMeta.model_validate(ours)


def failed_cell(plan: MicroCellSpec, run_id: str, error: str, tail: str, started: str) -> MicroCell:
    return MicroCell(
        **_identity(plan, run_id),
        status="failed",
        error=error,
        stderr_tail=tail[-STDERR_TAIL:] or None,
        unit="calls/s",
        started=started,
        finished=results.now(),
    )


def _identity(plan: MicroCellSpec, run_id: str) -> dict[str, Any]:
    """What names a cell, measured or failed: its run, its id and what it measured."""
    return {
        "run_id": run_id,
        "cell_id": plan.key,
        "build": plan.build,
        "workload": plan.workload,
        "workload_class": plan.workload_class,
        "size": plan.size,
        "threads": plan.threads,
        "scaling": plan.scaling,
    }


def _load() -> dict[str, Any]:
    return {"load_avg_1min": os.getloadavg()[0]}


def measure(
    plan: MicroCellSpec, python: Path, settings: PyperfSettings, run_id: str, build: Build, scratch: Path
) -> tuple[MicroCell, Any]:
    """Run one cell's pyperf manager; return its cell and its pyperf benchmark (None if it failed)."""
    output = scratch / f"{plan.key}.json"
    output.unlink(missing_ok=True)
    started, before = results.now(), _load()
    proc = subprocess.run(
        worker_command(python, plan, settings, output), capture_output=True, text=True, check=False
    )
    finished, after = results.now(), _load()
    tail = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or not output.is_file():
        last = tail.splitlines()[-1] if tail else "no output"
        return failed_cell(plan, run_id, f"worker exited with {proc.returncode}: {last}", tail, started), None
    bench = pyperf.Benchmark.load(str(output))
    output.unlink()
    cores = len(os.sched_getaffinity(0))
    try:
        cell = cell_from_benchmark(plan, bench, run_id, build, started, finished, before, after, cores)
    except ValueError as exc:  # the worker's metadata is not what this version writes
        return failed_cell(plan, run_id, f"worker result: {exc}", tail, started), None
    return cell, bench


def add_to_suite(path: Path, bench: Any) -> None:
    """Put ``bench`` into the pyperf file at ``path`` (replacing one of the same name), atomically."""
    kept = []
    if path.exists():
        kept = [
            b
            for b in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks()
            if b.get_name() != bench.get_name()
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.pyperf")
    try:  # pyperf writes only to a path or a text stream: render it there, then replace atomically
        pyperf.BenchmarkSuite([*kept, bench]).dump(str(scratch), replace=True)
        results.write_atomic(path, scratch.read_bytes())
    finally:
        scratch.unlink(missing_ok=True)


def pyperf_path(run_dir: Path, build: str) -> Path:
    return run_dir / "pyperf" / f"{build}.json"
