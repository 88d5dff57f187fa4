"""Upgrading the flags of a run written before each cell was judged when it was made.

The benches judge every cell once, when they make it (:mod:`ftscale.bench.http.judge`,
:mod:`ftscale.bench.micro.judge`), and say so in the run's config (``"judge"``). Runs written
before that carry the flags their bench judged, and three rules were applied when a report read
them: the GIL back on in a free-threaded build, HTTP errors, samples too spread (CV over 5 %, an
open loop aside). :func:`flags_of` applies those three, with the judges' own rule functions, to
such a run's cells as it is read, so every committed run renders as it did; a judged run's flags
are read as written.
"""

from __future__ import annotations

from ftscale.bench.http.judge import error_count
from ftscale.bench.micro.judge import JUDGED_AT_MEASUREMENT, gil_back, noisy
from ftscale.bench.results import AnyCell
from ftscale.schema import HttpCell, RunMeta
from ftscale.vocab import Flag


def free_threaded(meta: RunMeta, build: str) -> bool | None:
    """Whether ``build`` is a free-threaded build, per the run's build records (None: no record)."""
    record = meta.builds.get(build)
    return None if record is None else record.py_gil_disabled


def judged_at_measurement(meta: RunMeta) -> bool:
    """Whether the run's bench judged each cell when it made it (no upgrade needed)."""
    judge = meta.config.get("judge")
    return isinstance(judge, int) and judge >= JUDGED_AT_MEASUREMENT


def upgraded_flags(cell: AnyCell, meta: RunMeta) -> list[str]:
    """The cell's flags with those the report used to judge at read time (the older runs' upgrade)."""
    flags = list(cell.flags)
    more: list[Flag] = []
    if gil_back(cell, free_threaded(meta, cell.build)):
        more.append(Flag.GIL_ENABLED)
    if isinstance(cell, HttpCell) and error_count(cell.repetitions) > 0:
        more.append(Flag.ERRORS)
    if noisy(cell):
        more.append(Flag.HIGH_CV)
    return flags + [str(f) for f in more if str(f) not in flags]


def flags_of(cell: AnyCell, meta: RunMeta) -> list[str]:
    """A cell's flags: as its bench wrote them, upgraded where the run predates judging once."""
    return list(cell.flags) if judged_at_measurement(meta) else upgraded_flags(cell, meta)
