"""The capacity at a latency target, as an interval a capacity plan can quote.

``ftscale bench --slo-p99 MS`` adds one cell per design that looks, on one fresh server, for the
open-loop rates at which the design serves its traffic within the target:

- *A step* is one offered rate, loaded at least :data:`MIN_LOADS` times in a row (each load after
  a warm-up at the same rate, with its own generator processes and its own seeded arrivals).
  Each load's window is at least :data:`WINDOW_PER_TARGET` times the target, and long enough that
  the step's p99 rests on :data:`MIN_SAMPLES` requests; where the arrivals fell short, loads are
  added (up to twice as many).
- *A step passes* when no request failed; the answers completed inside the windows are at least
  :data:`SERVED_SHARE` of the requests due in them (a server that falls behind finishes its backlog
  after the window: latency samples, not throughput); it has :data:`MIN_SAMPLES` latency samples;
  and the p99's one-sided upper confidence bound at :data:`LEVEL` (:func:`upper_bound_ms`: an
  exact order statistic of the step's merged latency histograms) is at or under the target.
  A server that keeps up still has its last requests in flight when a window ends, about its mean
  latency's worth; windows of 50 targets keep that under 2 % of a passing step's rate.
- *The search* tries the shares :data:`GRID` of the design's closed-loop median upwards and stops
  at the first failure; when the first share fails it tries :data:`BELOW` downwards until one
  passes; then it bisects :data:`REFINEMENTS` times between the highest pass and the lowest failure.
- *The capacity* (:func:`interval`) is the highest rate that passed with every lower rate tried
  passing, and the lowest rate that failed: the capacity lies between them. The p99 is not
  assumed to grow with the rate: a pass above a failure does not count. A capacity at the
  closed-loop median, the highest rate tried, is censored: at least that ("≥ X").

Limits: the bound's coverage is exact for independent latencies; requests close in time share the
server's state, so the real coverage is lower than the stated one. The loads of a search run on
one server, one after the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from ftscale.bench import histogram
from ftscale.bench.http import gencheck
from ftscale.schema import HttpRepetition, SloSearch, SloStep, StepFailure
from ftscale.vocab import FLAG_ORDER

GRID = (0.5, 0.7, 0.85, 1.0)  # shares of the closed-loop median, tried upwards
BELOW = (0.25, 0.125)  # tried downwards when GRID's first share fails
REFINEMENTS = 2  # bisections between the highest pass and the lowest failure
MIN_LOADS = 5
MIN_SAMPLES = 1000
SERVED_SHARE = 0.97  # of the requests due inside the windows, completed inside them
LEVEL = 0.95  # one-sided confidence of the p99's upper bound
QUANTILE = 99.0
WINDOW_PER_TARGET = 50  # a load's window is at least this many times the target
MAX_LOAD_S = 60.0  # ... and at most this long (a step at a very low rate may then lack samples)
# Time one load of a search costs on its running server besides its warm-up and its window: the
# generator's processes for the warm-up and the load, the /health probe's, /info and usage reads.
LOAD_OVERHEAD_S = 1.2

Measure = Callable[[float, float], HttpRepetition]  # (rate, window seconds) -> one load at that rate


# --- statistics of one step ---------------------------------------------------------------------------


def quantile_upper_rank(n: int, q: float, level: float = LEVEL) -> tuple[int, float] | None:
    """The smallest rank u whose order statistic x(u) of ``n`` independent samples lies at or above
    the ``q``-quantile (0 < q < 1) with probability at least ``level``, and that probability.

    x(u) is below the quantile exactly when at least u samples are, and the number of samples below
    it is binomial (n, q) for a continuous distribution: the coverage is P(Bin(n, q) <= u - 1),
    exact. None when even the largest sample does not reach ``level`` (n too small).
    """
    if n < 1 or not 0 < q < 1:
        return None
    alpha = 1.0 - level
    log_q, log_rest, log_n = math.log(q), math.log1p(-q), math.lgamma(n + 1)
    tail, rank = 0.0, None  # tail: P(Bin(n, q) >= rank)
    for k in range(n, 0, -1):
        term = math.exp(log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_rest)
        if tail + term > alpha:
            break
        tail, rank = tail + term, k
    return None if rank is None else (rank, 1.0 - tail)


def upper_bound_ms(
    counts: Mapping[int, int], q_pct: float = QUANTILE, level: float = LEVEL
) -> tuple[float, float] | None:
    """An upper confidence bound of the ``q_pct`` percentile of a latency histogram, in ms, and its
    exact coverage: the top of the bucket holding the order statistic of
    :func:`quantile_upper_rank` (None: too few samples for any bound)."""
    found = quantile_upper_rank(histogram.count(counts), q_pct / 100, level)
    if found is None:
        return None
    rank, coverage = found
    seen = 0
    for key in sorted(int(k) for k in counts):
        seen += counts[key]
        if seen >= rank:
            return histogram.bounds_of(key)[1] / 1000, coverage
    raise AssertionError("a rank within the count lies in some bucket")


def _total(values: Iterable[int | None]) -> int | None:
    found = list(values)
    return None if any(v is None for v in found) else sum(v for v in found if v is not None)


def judge(
    rate: float, target_ms: float, reps: Sequence[HttpRepetition], min_samples: int = MIN_SAMPLES
) -> SloStep:
    """One step from its loads at ``rate``: its figures and whether it passed (module docstring)."""
    counts = histogram.merge(r.load.latency_histogram or {} for r in reps)
    n = histogram.count(counts)
    kinds: dict[str, int] = {}
    for r in reps:
        for kind, count in r.load.errors.items():
            kinds[kind] = kinds.get(kind, 0) + count
    errors = sum(kinds.values())
    window = sum(r.load.duration_s for r in reps)
    due = _total(r.load.due_requests for r in reps)
    completed = _total(r.load.window_requests for r in reps)
    if completed is None:  # a generator that does not count them: its throughput is the window's
        completed = round(sum(r.load.throughput_rps * r.load.duration_s for r in reps))
    served = completed >= SERVED_SHARE * (due if due is not None else rate * window)
    bound = upper_bound_ms(counts)
    failures: list[StepFailure] = []
    if errors:
        failures.append("errors")
    if not served:
        failures.append("not-served")
    if n < min_samples:
        failures.append("too-few-samples")
    if bound is None or bound[0] > target_ms:
        failures.append("p99-over-target")
    lags = [r.load.send_lag_p99_ms for r in reps if r.load.send_lag_p99_ms is not None]
    return SloStep(
        offered_rps=rate,
        achieved_rps=completed / window if window > 0 else 0.0,
        p99_ms=round(histogram.percentile_ms(counts, QUANTILE), 4) if n else None,
        errors=errors,
        met=not failures,
        loads=len(reps),
        duration_s=reps[0].load.duration_s if reps else None,
        due=due,
        completed=completed,
        samples=n,
        p50_ms=round(histogram.percentile_ms(counts, 50), 4) if n else None,
        p99_upper_ms=bound[0] if bound else None,
        coverage=round(bound[1], 4) if bound else None,
        send_lag_p99_ms=max(lags) if lags else None,
        failures=failures,
        error_kinds=kinds,
        flags=[str(f) for f in gencheck.generator_flags(reps, target_ms)],
    )


# --- the search --------------------------------------------------------------------------------------


def load_seconds(rate: float, target_ms: float, duration_s: float, loads: int, min_samples: int) -> float:
    """One load's window at ``rate``: the settings' duration, at least :data:`WINDOW_PER_TARGET`
    targets and a share of :data:`MIN_SAMPLES`, at most :data:`MAX_LOAD_S` (tenths of a second)."""
    wanted = max(duration_s, WINDOW_PER_TARGET * target_ms / 1000, min_samples / (loads * rate))
    return min(MAX_LOAD_S, math.ceil(wanted * 10) / 10)


def step(
    measure: Measure, rate: float, target_ms: float, seconds: float, loads: int, min_samples: int
) -> tuple[SloStep, list[HttpRepetition]]:
    """Load ``rate`` ``loads`` times (more where the samples fell short, up to twice) and judge it."""
    reps: list[HttpRepetition] = []
    while len(reps) < loads or (
        sum(histogram.count(r.load.latency_histogram or {}) for r in reps) < min_samples
        and len(reps) < 2 * loads
    ):
        reps.append(measure(rate, seconds))
    return judge(rate, target_ms, reps, min_samples), reps


def interval(steps: Sequence[SloStep]) -> tuple[float | None, float | None]:
    """(capacity, failing): the highest offered rate that passed with every lower rate tried passing
    (None: the lowest failed), and the lowest that failed (None: none did, a censored capacity).

    A failure at the same rate as a pass counts first."""
    capacity = None
    for s in sorted(steps, key=lambda s: (s.offered_rps, s.met)):
        if not s.met:
            return capacity, s.offered_rps
        capacity = s.offered_rps
    return capacity, None


def search(
    measure: Measure,
    cap_rps: float,
    target_ms: float,
    duration_s: float,
    loads: int = MIN_LOADS,
    min_samples: int = MIN_SAMPLES,
) -> tuple[SloSearch, list[HttpRepetition]]:
    """The capacity at ``target_ms`` below ``cap_rps`` (the closed-loop median), and the loads of the
    step at the capacity (where none passed: of the lowest step tried)."""
    tried: dict[float, tuple[SloStep, list[HttpRepetition]]] = {}

    def passes(rate: float) -> bool:
        seconds = load_seconds(rate, target_ms, duration_s, loads, min_samples)
        tried[rate] = step(measure, rate, target_ms, seconds, loads, min_samples)
        return tried[rate][0].met

    passed = failed = None
    for share in GRID:
        if not passes(share * cap_rps):
            failed = share * cap_rps
            break
        passed = share * cap_rps
    if passed is None:
        for share in BELOW:
            if passes(share * cap_rps):
                passed = share * cap_rps
                break
            failed = share * cap_rps
    for _ in range(REFINEMENTS if passed is not None and failed is not None else 0):
        assert passed is not None and failed is not None
        mid = (passed + failed) / 2
        if passes(mid):
            passed = mid
        else:
            failed = mid
    steps = [found for found, _ in tried.values()]
    capacity, failing = interval(steps)
    kept = tried[capacity if capacity is not None else min(tried)][1]
    found = SloSearch(
        target_p99_ms=target_ms,
        steps=steps,
        capacity_rps=capacity,
        method="repeated-steps",
        cap_rps=cap_rps,
        failing_rps=failing,
        censored=capacity is not None and failing is None,
        level=LEVEL,
    )
    return found, kept


def with_search_flags(flags: list[str], found: SloSearch | None) -> list[str]:
    """A cell's ``flags`` and the generator's flags at the two steps that bound its capacity (the
    step at the capacity and the lowest that failed), in vocabulary order."""
    if found is None:
        return flags
    capacity, failing = interval(found.steps)
    bounding = [s for s in found.steps if s.offered_rps in (capacity, failing)]
    merged = set(flags).union(f for s in bounding for f in s.flags)
    order = [str(f) for f in FLAG_ORDER]
    return sorted(merged, key=lambda f: (order.index(f) if f in order else len(order), f))


# --- what a search costs -------------------------------------------------------------------------------

# Shares a search tries when its first grid share passes and the last fails (then it refines near
# the top), and when the first fails (then it goes lower, where each step takes longer).
UPWARD = (*GRID, 0.925, 0.9625)
DOWNWARD = (GRID[0], *BELOW, 0.1875, 0.15625)


def search_seconds(
    cap_rps: float,
    target_ms: float,
    duration_s: float,
    warmup_s: float,
    shares: Sequence[float] = UPWARD,
    loads: int = MIN_LOADS,
    min_samples: int = MIN_SAMPLES,
) -> float:
    """What a search trying ``shares`` of ``cap_rps`` costs on its server (the server's start aside)."""
    total = 0.0
    for share in shares:
        rate = share * cap_rps
        seconds = load_seconds(rate, target_ms, duration_s, loads, min_samples)
        n = max(loads, min(2 * loads, math.ceil(min_samples / (rate * seconds))))
        total += n * (warmup_s + seconds + LOAD_OVERHEAD_S)
    return total
