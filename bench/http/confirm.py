"""The second stage of an HTTP run: confirmation rounds of each build's finalist design.

The sweep *explores*: every design at every thread count, a few repetitions each. Picking the
highest of those medians and judging it on the same samples would favour whichever design was
lucky (with 15 % noise and 16 candidates the chosen peak reads 20 % high). So the exploration
only *chooses*, and by a rule that does not reward noise: each build's finalist is its eligible
point with the highest lower confidence bound of the median (the exact order-statistic interval
of :mod:`ftscale.bench.intervals`), not the highest median. Eligible: measured, closed loop, no
more threads than the server has CPUs, no flag that disqualifies (:data:`ftscale.vocab.FLAGS`).
A build with no eligible point sends its best flagged one that is not oversubscribed, and says so.

Then the finalists of every free-threaded build and its GIL twin are measured in *rounds*: each
round measures every finalist once, on a fresh server each, the order rotating from round to
round (A B, B A, A B …), so that whatever drifts over a round (a neighbour, the clock, the
hypervisor) hits both sides alike and cancels in their per-round ratio. The verdict rests on
these rounds alone (:func:`ftscale.bench.intervals.paired_ratio`); the exploration never enters
its ratio. When both finalists were limited by the load generator there is nothing to confirm:
the verdict says what would lift the limit instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ftscale.bench import intervals
from ftscale.bench.http.cells import CellSpec
from ftscale.schema import HttpCell, Selection
from ftscale.vocab import Flag, flag_info

RULE = (
    "the highest lower confidence bound of the median among its eligible exploration points "
    "(closed loop, no more threads than server CPUs, no disqualifying flag)"
)
FALLBACK_RULE = (
    "no eligible point: the highest lower confidence bound among its points that are not "
    "oversubscribed, flags and all"
)


def disqualified(flags: Sequence[str]) -> bool:
    return any((info := flag_info(f)) is not None and info.disqualifies for f in flags)


def oversubscribed(cell: HttpCell, server_cpus: int) -> bool:
    return cell.threads > server_cpus or str(Flag.OVERSUBSCRIBED) in cell.flags


def lower_bound(samples: Sequence[float]) -> tuple[float, float]:
    """(the median's lower confidence bound, its interval's coverage); one sample is its own."""
    estimate = intervals.median_ci(samples)
    if estimate.has_interval:
        return estimate.low, estimate.coverage
    return estimate.value, float("nan")


def candidate(cells: Sequence[HttpCell], server_cpus: int) -> tuple[HttpCell, Selection] | None:
    """A build's finalist among its exploration ``cells`` (see the module docstring)."""
    measured = [
        c for c in cells if c.status == "ok" and c.samples and c.load == "closed" and c.stage == "explore"
    ]
    fitting = [c for c in measured if not oversubscribed(c, server_cpus)]
    eligible = [c for c in fitting if not disqualified(c.flags)]
    pool, rule = (eligible, RULE) if eligible else (fitting, FALLBACK_RULE)
    if not pool:
        return None

    def rank(c: HttpCell) -> tuple[float, float, int]:
        return (lower_bound(c.samples)[0], intervals.median(c.samples), -c.threads)

    best = max(pool, key=rank)
    low, coverage = lower_bound(best.samples)
    return best, Selection(
        explore_cell_id=best.cell_id,
        rule=rule,
        lower_bound=low,
        coverage=coverage,
        median=intervals.median(best.samples),
        candidates=len(eligible),
        ineligible=len(measured) - len(eligible),
    )


def _minor(version: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else None


def twin_pairs(versions: Mapping[str, str], free_threaded: Mapping[str, bool]) -> list[tuple[str, str]]:
    """(free-threaded build, its GIL twin) for every free-threaded build whose twin is here."""
    pairs = []
    for build in sorted(b for b, ft in free_threaded.items() if ft):
        twins = sorted(
            b for b, ft in free_threaded.items() if not ft and _minor(versions[b]) == _minor(versions[build])
        )
        if twins:
            pairs.append((build, twins[0]))
    return pairs


def finalists(
    cells: Sequence[HttpCell],
    plans: Mapping[str, CellSpec],
    pairs: Sequence[tuple[str, str]],
    server_cpus: int,
) -> tuple[list[tuple[CellSpec, Selection]], str | None]:
    """The plans to confirm for one workload, each with why it was chosen; or why there are none."""
    chosen: dict[str, tuple[HttpCell, Selection]] = {}
    for build in dict.fromkeys(b for pair in pairs for b in pair):
        found = candidate([c for c in cells if c.build == build], server_cpus)
        if found is not None:
            chosen[build] = found
    complete = [pair for pair in pairs if pair[0] in chosen and pair[1] in chosen]
    if not complete:
        return [], "no free-threaded build and its GIL twin both have a point to confirm"
    saturated = str(Flag.GENERATOR_SATURATED)
    if all(saturated in chosen[b][0].flags for pair in complete for b in pair):
        return [], "every finalist was limited by the load generator: there is nothing to confirm"
    out = []
    for build in dict.fromkeys(b for pair in complete for b in pair):
        cell, selection = chosen[build]
        plan = plans.get(cell.cell_id)
        if plan is not None:
            out.append((replace(plan, stage="confirm"), selection))
    return out, None


@dataclass(frozen=True)
class ConfirmGroup:
    """The confirmation rounds of one workload, after its exploration groups.

    Its cells are known only once the exploration is on disk: ``keys`` works them out from the
    run directory (the placeholder ``<workload>__confirm`` while they cannot be, so that a run
    resumed before its confirmation still measures it; none when nothing needs confirming).
    """

    workload: str
    plans: tuple[CellSpec, ...]  # the exploration plans of the workload, finalists are chosen among
    keys: Callable[[ConfirmGroup], tuple[str, ...]]

    @property
    def key(self) -> str:
        return f"{self.workload}__confirm"

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return self.keys(self)

    @property
    def threads(self) -> int:
        return max((p.threads for p in self.plans), default=1)
