"""Judging an HTTP cell once, when it is made: its flags, from everything the judging needs.

A cell's flags say why its numbers may not mean what they seem. :func:`judge_http` takes the
measured cell (its repetitions, its /info answers, its capacity search) and the CPUs the run gave
its servers (:class:`CpuContext`), and gives every flag the cell carries: the generator's own
flags (:mod:`.gencheck`), HTTP errors, the GIL back on in a free-threaded build, serving units
left idle or overloaded, Nagle's algorithm on, a machine that disturbed a repetition, samples too
spread to compare, the server and the generator sharing CPUs, more threads than server CPUs.
Reports read the flags as written; runs written before this judge are upgraded when read
(:mod:`ftscale.bench.report.upgrade`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ftscale.bench.http import capacity, gencheck
from ftscale.bench.http.cells import CellSpec
from ftscale.bench.micro.judge import gil_back, noisy
from ftscale.schema import HttpCell, HttpRepetition, Info
from ftscale.vocab import Flag

# A serving unit (worker process, event loop) that served less than this share of its fair share
# (1/N of the requests) in a repetition, or more than OVERLOADED_SHARE times it, makes the cell
# unbalanced: the design ran on fewer units than it was given.
UNBALANCED_SHARE = 0.5
OVERLOADED_SHARE = 1.5


@dataclass(frozen=True)
class CpuContext:
    """The CPUs a run gave its servers, for the flags that depend on them."""

    server_cpus: int | None = None  # how many (None: not known, nothing is oversubscribed)
    shared: bool = False  # the server and the load generator share CPUs (--allow-shared-cpus)


NO_CPU_CONTEXT = CpuContext()  # CPUs not known (fakes, tests): no flag that depends on them


def unbalanced(deltas: dict[str, int] | None, units: int) -> bool:
    """Whether a unit served less than :data:`UNBALANCED_SHARE` of its fair share, or more than
    :data:`OVERLOADED_SHARE` times it."""
    if deltas is None or units < 2:
        return False
    total = sum(deltas.values())
    if total <= 0:
        return False
    counts = sorted(deltas.values()) + [0] * max(0, units - len(deltas))
    return min(counts) / total < UNBALANCED_SHARE / units or max(counts) / total > OVERLOADED_SHARE / units


def gil_came_back(info: Info | None) -> bool:
    """A free-threaded build serving with the GIL on (a GIL build always has it: not a flag)."""
    return info is not None and info.interpreter.py_gil_disabled and info.gil_enabled


def nodelay_info(after: Info | None, before: Info | None) -> Info | None:
    """The /info that says most about TCP_NODELAY: after the load (more connections seen)."""
    for info in (after, before):
        if info is not None and info.tcp_nodelay is not None:
            return info
    return after or before


def error_count(reps: Sequence[HttpRepetition]) -> int:
    """Failed requests over the repetitions (``errors`` maps a status or kind to a count)."""
    return sum(n for r in reps for n in r.load.errors.values())


def flags_for(
    plan: CellSpec, reps: Sequence[HttpRepetition], info: Info | None, target_ms: float | None = None
) -> list[str]:
    """The flags the repetitions and the server's /info imply; ``target_ms``: the cell's p99 target
    (a capacity search's), which the send lag is judged against (:mod:`.gencheck`)."""
    flags: list[Flag] = gencheck.generator_flags(reps, target_ms)
    if any(r.load.errors for r in reps):
        flags.append(Flag.ERRORS)
    if gil_came_back(info) or any(r.gil_came_back for r in reps):
        flags.append(Flag.GIL_ENABLED)
    if any(unbalanced(r.units, plan.units) for r in reps):
        flags.append(Flag.UNBALANCED)
    if info is not None and info.tcp_nodelay is False:
        flags.append(Flag.NAGLE)
    if any(r.interference is not None and r.interference.disturbed for r in reps):
        flags.append(Flag.DISTURBED)  # kept after its one redo: measured on a busy machine
    return [str(f) for f in flags]


def judge_http(plan: CellSpec, cell: HttpCell, cpus: CpuContext) -> list[str]:
    """Every flag of a measured cell (status ok), judged once, when it is made."""
    info = nodelay_info(cell.info_after, cell.info_before)
    target = cell.slo.target_p99_ms if cell.slo else None
    flags = capacity.with_search_flags(flags_for(plan, cell.repetitions, info, target), cell.slo)
    served = cell.info_after or cell.info_before
    more: list[Flag] = []
    if gil_back(cell, served is not None and served.interpreter.py_gil_disabled):
        more.append(Flag.GIL_ENABLED)
    if error_count(cell.repetitions) > 0:
        more.append(Flag.ERRORS)
    if noisy(cell):
        more.append(Flag.HIGH_CV)
    if cpus.shared:
        more.append(Flag.SHARED_CPUS)
    if cpus.server_cpus is not None and cell.threads > cpus.server_cpus:
        more.append(Flag.OVERSUBSCRIBED)
    return flags + [str(f) for f in more if str(f) not in flags]
