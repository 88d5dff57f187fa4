"""Judging a micro cell once, when it is made: its flags, from everything the judging needs.

A cell's flags say why its numbers may not mean what they seem: the GIL back on in a
free-threaded build, more threads than usable cores, samples too spread to compare. The micro
bench judges each cell here, with its build and the CPUs the run had (:func:`judge_micro`); the
HTTP bench's judge (:mod:`ftscale.bench.http.judge`) applies the same sample rules. Reports read
the flags the cells carry; a run written before cells were judged at measurement is upgraded
once when it is read (:mod:`ftscale.bench.report.upgrade`), with these same rules.

Independent samples: an HTTP repetition runs on its own server, so repetitions are independent.
A micro cell's pyperf values are not: values from one worker process share its warm-up, memory
layout and neighbours, so each pyperf *process* counts as one sample (the median of its values).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ftscale.bench import intervals
from ftscale.schema import HttpCell, MicroCell
from ftscale.vocab import Flag

HIGH_CV = 0.05  # a cell whose coefficient of variation is above this is flagged
# Written into a run's config by the benches that judge each cell when it is made; a run without
# it was judged partly at read time and is upgraded when it is read.
JUDGED_AT_MEASUREMENT = 1


def coefficient_of_variation(samples: Sequence[float]) -> float:
    """Sample standard deviation over mean; NaN with fewer than 2 samples or a zero mean."""
    samples = intervals.finite(samples)
    if len(samples) < 2:
        return math.nan
    mean = statistics.fmean(samples)
    return statistics.stdev(samples) / mean if mean > 0 else math.nan


def independent_samples(cell: HttpCell | MicroCell) -> list[float]:
    """A cell's samples as independent units: HTTP repetitions, or micro pyperf processes.

    A micro cell's throughputs (one per pyperf value) are grouped by the process that measured
    them and each process contributes the median of its values.
    """
    if not isinstance(cell, MicroCell) or len(cell.repetitions) != len(cell.samples):
        return list(cell.samples)
    by_process: dict[int, list[float]] = {}
    for rep, sample in zip(cell.repetitions, cell.samples, strict=True):
        by_process.setdefault(rep.process, []).append(sample)
    return [intervals.median(values) for _, values in sorted(by_process.items())]


def noisy(cell: HttpCell | MicroCell) -> bool:
    """Its independent samples vary by more than :data:`HIGH_CV`. An open loop's throughput follows
    its offered rate, and with Poisson arrivals the requests due in a window vary by chance: their
    spread says nothing about the server's noise, so an open-loop cell is never noisy."""
    if isinstance(cell, HttpCell) and cell.load == "open":
        return False
    cv = coefficient_of_variation(independent_samples(cell))
    return math.isfinite(cv) and cv > HIGH_CV


def gil_back(cell: HttpCell | MicroCell, free_threaded: bool | None) -> bool:
    """A free-threaded build that ran the cell with the GIL on (a GIL build always has it)."""
    return bool(cell.gil_enabled and free_threaded)


def judge_micro(cell: MicroCell, free_threaded: bool, usable_cores: int | None) -> list[str]:
    """A measured micro cell's flags: the GIL back on, more threads than the usable cores, noise."""
    flags: list[Flag] = []
    if gil_back(cell, free_threaded):
        flags.append(Flag.GIL_ENABLED)
    if usable_cores is not None and cell.threads > usable_cores:
        flags.append(Flag.OVERSUBSCRIBED)
    if noisy(cell):
        flags.append(Flag.HIGH_CV)
    return [str(f) for f in flags]
