"""An HTTP run's in-process pass: the ceiling its designs are judged against.

For every workload, build and thread count the sweep serves, the same workload at the same size
is measured in process: the micro bench's worker (pyperf, a team of threads released together by
a barrier, strong scaling), pinned to the CPUs a design at that thread count is given (the first
N server CPUs), while no server and no load generator runs. The reports divide each design's
requests per second by these calls per second: the design's *share of the in-process ceiling*,
what serving costs (HTTP parsing, the event loop, hand-offs to a pool or to worker processes).
A simulated I/O wait is not run in process (compute only), so for a workload that waits the
ceiling is its compute's.

The pass is short on purpose (:data:`PASS_PYPERF`: one pyperf process per cell, measuring in
place, a warm-up and three values of at least 50 ms): one process is one independent sample, so
a share has no interval, and the ceiling is a reference, not a result of its own. It is measured
before each workload's exploration, written as micro cells of the HTTP run (``stage``
"ceiling", with the CPUs they ran on), and resumed like every other cell.

Not measured: a process pool's or worker processes' own in-process ceiling (N processes of one
thread each). A GIL build's scale-out designs can therefore exceed its threads' ceiling (a share
above 1): there the share says how far processes get beyond what threads could.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ftscale import workloads
from ftscale.bench import results
from ftscale.bench.micro.cell import MicroCellSpec, PyperfSettings, measure
from ftscale.bench.micro.run import default_strong_calls, default_threads
from ftscale.schema import Build, MicroCell
from ftscale.vocab import Flag

PASS_PYPERF = PyperfSettings(processes=1, values=3, warmups=1, min_time=0.05, in_process=True)
# One cell's duration before any was measured: the worker's start (an interpreter importing the
# workloads and pyperf), pyperf's calibration, a warm-up and three values (the 2-core development
# machine, default sizes of about 10 ms a call: the quick preset's 6 cells took 5 s).
CELL_S = 0.85
STAGE = "ceiling"


def thread_counts(http_threads: Sequence[int], server_cpus: int, curve: bool) -> tuple[int, ...]:
    """The thread counts the pass measures: every count the sweep serves, and with ``curve`` the
    in-process speedup curve too (1, 2, 4 … up to the server CPUs, and their number). Each
    round splits :func:`~ftscale.bench.micro.run.default_strong_calls` calls between the
    threads, the same at every count (strong scaling)."""
    return tuple(sorted({*http_threads, *(default_threads(server_cpus) if curve else ())}))


class CeilingSpec(MicroCellSpec):
    """A :class:`~ftscale.bench.micro.cell.MicroCellSpec` of the pass: its key says so (an HTTP
    run's cells are told apart)."""

    @property
    def key(self) -> str:
        return results.cell_id(self.build, self.workload, self.threads, scaling=self.scaling, extra=STAGE)


@dataclass(frozen=True)
class CeilingGroup:
    """The in-process pass of one workload: every build at every thread count, builds side by
    side at each count (so drift hits both alike)."""

    workload: str
    plans: tuple[CeilingSpec, ...]

    @property
    def key(self) -> str:
        return f"{self.workload}__{STAGE}"

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.plans)

    @property
    def threads(self) -> int:
        return max((p.threads for p in self.plans), default=1)


def groups(
    names: Sequence[str], builds: Sequence[str], sizes: Mapping[str, int], threads: Sequence[int]
) -> list[CeilingGroup]:
    """One :class:`CeilingGroup` per workload (none without thread counts)."""
    if not threads:
        return []
    calls = default_strong_calls(threads)
    out = []
    for name in names:
        w = workloads.get(name)
        size = sizes.get(name, w.default_size)
        plans = tuple(
            CeilingSpec(
                build=build,
                workload=name,
                workload_class=str(w.workload_class),
                size=size,
                scaling="strong",
                threads=n,
                calls=calls,
            )
            for n in threads
            for build in builds
        )
        out.append(CeilingGroup(name, plans))
    return out


def cpus_for(server_cpus: Sequence[int], threads: int) -> list[int]:
    """The CPUs a design at ``threads`` threads is given: the first N server CPUs (all of them
    where there are fewer), as :meth:`ftscale.bench.http.real.Launcher.cpus_for` gives them."""
    return list(server_cpus[: max(1, threads)])


def as_ceiling(cell: MicroCell, cpus: Sequence[int]) -> MicroCell:
    """A measured micro cell as a cell of the pass: its stage, its CPUs, and oversubscribed when
    it had more threads than those CPUs (not than the orchestrator's)."""
    flags = [f for f in cell.flags if f != str(Flag.OVERSUBSCRIBED)]
    if cell.status == "ok" and cell.threads > len(cpus):
        flags.append(str(Flag.OVERSUBSCRIBED))
    return cell.model_copy(update={"stage": STAGE, "cpus": list(cpus), "flags": flags})


class InProcess:
    """Measures :class:`CeilingGroup` s with each build's environment python."""

    def __init__(
        self,
        pythons: Mapping[str, Path],
        builds: Mapping[str, Build],
        server_cpus: Sequence[int],
        run_id: str,
        settings: PyperfSettings = PASS_PYPERF,
    ) -> None:
        self.pythons, self.builds, self.server_cpus = dict(pythons), dict(builds), list(server_cpus)
        self.run_id, self.settings = run_id, settings

    def measure(self, group: CeilingGroup, log: Callable[[str], None] = lambda _: None) -> list[MicroCell]:
        cells = []
        with tempfile.TemporaryDirectory(prefix="ftscale-ceiling-") as scratch:
            for plan in group.plans:
                cpus = cpus_for(self.server_cpus, plan.threads)
                affinity = ",".join(map(str, cpus)) if cpus else None
                settings = replace(self.settings, affinity=affinity)
                python, build = self.pythons[plan.build], self.builds[plan.build]
                cell, _ = measure(plan, python, settings, self.run_id, build, Path(scratch))
                cells.append(as_ceiling(cell, cpus))
                if cell.status == "ok":
                    median = statistics.median(cell.samples)
                    log(f"    {plan.key}: {median:,.1f} calls/s in process on CPUs {affinity}")
        return cells
