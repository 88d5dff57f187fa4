"""The micro bench's profiled repetition: the cell's worker once more, under perf.

After a cell's measured pyperf run, the same worker runs again in its own process under
``perf record``: pyperf in process, one value of enough rounds to last about
:data:`PROFILE_SECONDS` (from the measured time per round), no warm-up, and the perf trampoline
on. Its timing is thrown away; only its samples count, and only those of the team's threads
(the main thread's start-up and reference computation are not the cell's work).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from pathlib import Path

from ftscale.bench.micro.cell import MicroCellSpec, PyperfSettings, worker_command
from ftscale.bench.profile.session import Profiler
from ftscale.schema import MicroCell

PROFILE_SECONDS = 2.0
WORK_UNIT = "call"


def profiled_settings(cell: MicroCell) -> PyperfSettings:
    """One in-process value of about :data:`PROFILE_SECONDS`, no warm-up, no calibration."""
    per_round = statistics.median(r.seconds_per_round for r in cell.repetitions)
    loops = max(1, math.ceil(PROFILE_SECONDS / per_round)) if per_round > 0 else 1
    return PyperfSettings(processes=1, values=1, warmups=0, loops=loops, in_process=True)


def profile_cell(profiler: Profiler, plan: MicroCellSpec, python: Path, cell: MicroCell) -> MicroCell:
    """``cell`` with the profile of one more run of its worker (the measured values untouched)."""
    if cell.status != "ok" or not cell.repetitions:
        return cell
    settings = profiled_settings(cell)
    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="ftscale-profiled-") as scratch:
        argv = worker_command(python, plan, settings, Path(scratch) / "profiled.json")
        profile = profiler.launch(
            plan.key,
            argv,
            gil=bool(cell.gil_enabled),
            capacity_cpus=min(plan.threads, cpus),
            work=(settings.loops or 1) * plan.calls_per_round,
            work_unit=WORK_UNIT,
        )
    return cell.model_copy(update={"profile": profile})
