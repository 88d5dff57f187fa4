"""What limits scaling: how each bucket's cost per unit of work changes as threads grow.

A profile says where a cell's capacity went (its CPUs over the profiled window: every on-CPU
bucket plus ``idle`` and ``cpu-wait``). Divided by the work done meanwhile (workload calls,
requests), each bucket becomes a cost per unit of work. Under ideal scaling every cost stays
flat as threads grow: N threads do N times the work in N times the capacity. So the bucket whose
cost per unit of work grows most from the fewest to the most threads is what limits scaling, and
its growth, as a share of the fewest-thread total, is how much efficiency it costs: the growths
of all buckets add up to 1/efficiency - 1 of the profiled repetitions.

The profiled repetitions run under perf, so their absolute costs are inflated; the comparison is
between repetitions profiled the same way. Without a count of the work, shares of the capacity
are compared instead. Statistics only: nothing here formats text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ftscale.schema import Profile
from ftscale.vocab import Bucket

ORDER: tuple[str, ...] = tuple(str(b) for b in Bucket)  # stacking and legend order
MIN_GROWTH = 0.05  # below this share of the fewest-thread cost, no bucket is named


def rank(bucket: str) -> int:
    """A bucket's place in :data:`ORDER` (one this version does not know goes last)."""
    return ORDER.index(bucket) if bucket in ORDER else len(ORDER)


@dataclass(frozen=True)
class Breakdown:
    """One profiled cell: capacity time by bucket, per unit of work (or as shares of the capacity)."""

    threads: int
    profile: Profile
    costs: dict[str, float]  # bucket -> ns per unit of work (per_work) or share of the capacity
    per_work: bool

    @property
    def total(self) -> float:
        return sum(self.costs.values())

    def relative(self, base: Breakdown) -> dict[str, float]:
        """Each bucket's cost as a share of ``base``'s total (the chart's bar segments)."""
        scale = base.total if self.per_work and base.per_work else self.total
        return {b: c / scale for b, c in self.costs.items()} if scale > 0 else {}


def breakdown(profile: Profile | None, threads: int) -> Breakdown | None:
    """A profile as costs; None for a missing or failed profile, or one without samples."""
    if profile is None or profile.status != "ok" or profile.samples <= 0:
        return None
    counts = {**profile.buckets, str(Bucket.IDLE): profile.idle, str(Bucket.CPU_WAIT): profile.cpu_wait}
    if profile.work and profile.work > 0 and profile.period_ns > 0:
        costs = {b: n * profile.period_ns / profile.work for b, n in counts.items()}
        return Breakdown(threads, profile, costs, True)
    total = sum(counts.values())
    return Breakdown(threads, profile, {b: n / total for b, n in counts.items()}, False)


@dataclass(frozen=True)
class Limit:
    """The bucket that grows most from ``low`` to ``high`` threads, and by how much."""

    bucket: str
    low: Breakdown
    high: Breakdown
    growth: float  # (cost at high - cost at low) / total at low
    growths: dict[str, float]  # every bucket's growth, the same way


def growths(low: Breakdown, high: Breakdown) -> dict[str, float]:
    comparable = low.per_work and high.per_work
    base = low.total if comparable else 1.0
    if base <= 0:
        return {}
    lo = low.costs if comparable else low.relative(low)
    hi = high.costs if comparable else high.relative(high)
    return {b: (hi.get(b, 0.0) - lo.get(b, 0.0)) / base for b in ORDER if b in lo or b in hi}


def limiting(breakdowns: Sequence[Breakdown], threshold: float = MIN_GROWTH) -> Limit | None:
    """What limits scaling across these profiles of one series: None with fewer than two thread
    counts, or when no bucket grows by ``threshold`` of the fewest-thread cost."""
    ordered = sorted(breakdowns, key=lambda b: b.threads)
    if len(ordered) < 2 or ordered[0].threads == ordered[-1].threads:
        return None
    low, high = ordered[0], ordered[-1]
    change = growths(low, high)
    if not change:
        return None
    bucket = max(change, key=lambda b: (change[b], -rank(b)))
    if change[bucket] < threshold:
        return None
    return Limit(bucket=bucket, low=low, high=high, growth=change[bucket], growths=change)


OFF_CPU = (str(Bucket.IDLE), str(Bucket.CPU_WAIT))


def largest(b: Breakdown, exclude: Sequence[str] = OFF_CPU) -> str:
    """The bucket with the largest cost in one profile (on-CPU buckets only, by default)."""
    return max((k for k in b.costs if k not in exclude), key=lambda k: (b.costs[k], -rank(k)))
