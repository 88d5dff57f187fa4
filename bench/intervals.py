"""Intervals that carry their real coverage: a median, a ratio of two medians, a paired ratio.

Standard library only: the bench (which chooses what to confirm) and the reports (which state
the verdicts) compute them with the same code, and the bench's environment has no SciPy.

- **A median** gets the exact, distribution-free order-statistic interval ``[x(k), x(n+1-k)]``,
  the narrowest reaching the confidence level; below 6 samples none does, and the range of the
  samples is returned with the coverage it really has (75 % for 3 samples).
- **A ratio of two medians** from independent samples gets ``[x(k1)/y(m+1-k2), x(n+1-k1)/y(k2)]``.
  When both sides have the same shape of noise on a log scale its coverage is exact, counted
  over the equally likely orderings of the pooled noises (:func:`ratio_coverage`). Of the pairs
  ``(k1, k2)`` reaching the level, the one chosen is the narrowest *in expectation* (the expected
  spread of the order statistics of a normal sample, so the choice does not look at the data),
  symmetric where two are as narrow.
- **A paired ratio** (confirmation rounds: both designs measured once per round, so drift of
  the machine that moves a whole round cancels) is ``exp`` of the Hodges-Lehmann estimate of
  the per-round log-ratios, with the Wilcoxon signed-rank interval of the Walsh averages. Its
  coverage is exact when the per-round differences are symmetric about their centre; the sign
  test's interval (exact with no assumption, wider) is given beside it.

:func:`decide` turns a ratio's interval into the words a verdict may use, and
:func:`rounds_needed` says roughly how many rounds the observed spread would need to decide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist
from typing import Literal

CONFIDENCE = 0.95
DEFAULT_MARGIN = 0.05  # "equivalent" when the interval lies within 1/1.05 .. 1.05
NAN = math.nan

Decision = Literal["higher", "lower", "equivalent", "inconclusive", "undetermined"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval; ``coverage`` is the interval's real confidence level.

    ``low``/``high``/``coverage`` are NaN when no interval can be given (too few samples).
    ``nominal`` marks a bootstrap interval, whose coverage is the nominal level, not exact.
    """

    value: float
    low: float = NAN
    high: float = NAN
    coverage: float = NAN
    nominal: bool = False

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def contains(self, x: float) -> bool:
        return self.has_interval and self.low <= x <= self.high

    def scaled(self, factor: float) -> Estimate:
        """The same estimate multiplied by a positive constant (efficiency = speedup / N)."""
        return Estimate(
            self.value * factor, self.low * factor, self.high * factor, self.coverage, self.nominal
        )


def exact(value: float) -> Estimate:
    """A value known without uncertainty (the speedup at 1 thread is 1 by definition)."""
    return Estimate(value, value, value, 1.0)


def finite(samples: Iterable[float]) -> list[float]:
    """The finite values of ``samples``, sorted."""
    return sorted(float(x) for x in samples if math.isfinite(float(x)))


def median(samples: Iterable[float]) -> float:
    """Median of the finite values; NaN when there are none."""
    x = finite(samples)
    if not x:
        return NAN
    mid = len(x) // 2
    return x[mid] if len(x) % 2 else (x[mid - 1] + x[mid]) / 2


# --- one median -----------------------------------------------------------------------------------


def order_statistic_coverage(n: int, k: int) -> float:
    """P(x(k) <= true median <= x(n+1-k)) for n independent samples of a continuous variable."""
    below = sum(math.comb(n, i) for i in range(k)) / float(2**n)  # P(fewer than k below the median)
    return 1.0 - 2.0 * below


def median_rank(n: int, level: float = CONFIDENCE) -> int:
    """The k of the narrowest ``[x(k), x(n+1-k)]`` reaching ``level`` (1 when none does)."""
    k = 1
    while k + 1 <= n // 2 and order_statistic_coverage(n, k + 1) >= level:
        k += 1
    return k


def median_ci(samples: Iterable[float], level: float = CONFIDENCE) -> Estimate:
    """The median with its exact order-statistic confidence interval (see the module docstring)."""
    x = finite(samples)
    n = len(x)
    if n == 0:
        return Estimate(NAN)
    value = median(x)
    if n == 1:
        return Estimate(value)
    k = median_rank(n, level)
    return Estimate(value, x[k - 1], x[n - k], order_statistic_coverage(n, k))


# --- a ratio of two medians (independent samples) --------------------------------------------------


def ratio_coverage(n: int, m: int, k1: int, k2: int) -> float:
    """Coverage of ``[x(k1)/y(m+1-k2), x(n+1-k1)/y(k2)]`` for the ratio of the medians of X and Y.

    Exact when log X and log Y have the same noise distribution up to a shift: then every
    ordering of the pooled n + m noises is equally likely, and the interval covers unless the
    k1-th smallest X noise comes after the (m+1-k2)-th smallest Y noise, or the k2-th smallest
    Y noise after the (n+1-k1)-th smallest X noise. Counted by lattice paths over (X seen, Y seen).
    """
    if not (1 <= k1 <= (n + 1) // 2 and 1 <= k2 <= (m + 1) // 2):
        raise ValueError(f"order statistics out of range: n={n}, m={m}, k1={k1}, k2={k2}")
    paths = [[0] * (m + 1) for _ in range(n + 1)]
    paths[0][0] = 1
    for i in range(n + 1):
        for j in range(m + 1):
            if i == j == 0:
                continue
            total = 0
            # an X step from (i-1, j): forbidden when it is the (n+1-k1)-th X and fewer than k2 Y came before
            if i > 0 and not (i == n + 1 - k1 and j < k2):
                total += paths[i - 1][j]
            # a Y step from (i, j-1): forbidden when it is the (m+1-k2)-th Y and fewer than k1 X came before
            if j > 0 and not (j == m + 1 - k2 and i < k1):
                total += paths[i][j - 1]
            paths[i][j] = total
    return paths[n][m] / math.comb(n + m, n)


@cache
def expected_spread(n: int, k: int) -> float:
    """E[z(n+1-k) - z(k)] for n standard normal samples (Blom's approximation of their means)."""
    normal = NormalDist()

    def score(i: int) -> float:
        return normal.inv_cdf((i - 0.375) / (n + 0.25))

    return score(n + 1 - k) - score(k)


def expected_ratio_width(n: int, m: int, k1: int, k2: int) -> float:
    """Expected log-width of the ratio interval ``(k1, k2)`` when both sides have the same noise."""
    return expected_spread(n, k1) + expected_spread(m, k2)


@cache
def ratio_ranks(n: int, m: int, level: float = CONFIDENCE) -> tuple[int, int, float]:
    """(k1, k2, coverage) of the ratio interval used for n against m samples.

    Of the pairs whose coverage reaches ``level``, the narrowest in expectation
    (:func:`expected_ratio_width`); among equally narrow ones, the most symmetric (k1/n closest
    to k2/m). When none reaches ``level``, the widest (1, 1) with the coverage it has.
    """
    best: tuple[float, float, int, int, float] | None = None
    for k1 in range(1, (n + 1) // 2 + 1):
        for k2 in range(1, (m + 1) // 2 + 1):
            coverage = ratio_coverage(n, m, k1, k2)
            if coverage < level:
                continue
            width = round(expected_ratio_width(n, m, k1, k2), 12)
            skew = abs(k1 / (n + 1) - k2 / (m + 1))
            if best is None or (width, skew) < (best[0], best[1]):
                best = (width, skew, k1, k2, coverage)
    if best is None:
        return 1, 1, ratio_coverage(n, m, 1, 1)
    return best[2], best[3], best[4]


def ratio_of_medians(num: Iterable[float], den: Iterable[float], level: float = CONFIDENCE) -> Estimate:
    """median(num) / median(den) with the order-statistic interval of :func:`ratio_ranks`."""
    a, b = finite(num), finite(den)
    if not a or not b:
        return Estimate(NAN)
    bottom = median(b)
    if bottom <= 0 or a[0] <= 0 or b[0] <= 0:
        return Estimate(NAN)
    value = median(a) / bottom
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        return Estimate(value)
    k1, k2, coverage = ratio_ranks(n, m, level)
    low, high = a[k1 - 1] / b[m - k2], a[n - k1] / b[k2 - 1]
    return Estimate(value, min(low, value), max(high, value), coverage)


# --- a paired ratio (confirmation rounds) ------------------------------------------------------------


@cache
def signed_rank_counts(n: int) -> tuple[int, ...]:
    """How many of the 2^n sign patterns give each Wilcoxon signed-rank sum 0 .. n(n+1)/2."""
    counts = [1]
    for rank in range(1, n + 1):
        grown = [0] * (len(counts) + rank)
        for total, ways in enumerate(counts):
            grown[total] += ways  # rank n carries a minus sign
            grown[total + rank] += ways  # ... or a plus sign
        counts = grown
    return tuple(counts)


def walsh_coverage(n: int, k: int) -> float:
    """Coverage of ``[A(k), A(N+1-k)]`` over the N = n(n+1)/2 sorted Walsh averages of n
    differences symmetric about their centre: 1 - 2 P(signed-rank sum <= k - 1)."""
    counts = signed_rank_counts(n)
    return 1.0 - 2.0 * sum(counts[:k]) / float(2**n)


def walsh_rank(n: int, level: float = CONFIDENCE) -> int | None:
    """The k of the narrowest Walsh-average interval reaching ``level`` (None: n too small)."""
    if n < 1 or walsh_coverage(n, 1) < level:
        return None
    total = n * (n + 1) // 2
    k = 1
    while k + 1 <= (total + 1) // 2 and walsh_coverage(n, k + 1) >= level:
        k += 1
    return k


@dataclass(frozen=True)
class Paired:
    """A ratio from paired rounds: ``ratio`` (Hodges-Lehmann, Wilcoxon interval), the sign test's
    interval beside it, and the per-round log-ratios it rests on."""

    ratio: Estimate
    sign: Estimate  # median of the per-round ratios with the sign test's (order-statistic) interval
    log_ratios: tuple[float, ...]

    @property
    def rounds(self) -> int:
        return len(self.log_ratios)

    @property
    def spread(self) -> float:
        """Sample standard deviation of the per-round log-ratios (NaN below 2 rounds)."""
        d = self.log_ratios
        if len(d) < 2:
            return NAN
        mean = sum(d) / len(d)
        return math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))


def paired_ratio(num: Sequence[float], den: Sequence[float], level: float = CONFIDENCE) -> Paired:
    """``num`` against ``den`` measured in the same rounds (``num[i]`` and ``den[i]`` in round i).

    Rounds where either side has no finite positive value are left out.
    """
    if len(num) != len(den):
        raise ValueError(f"paired samples need as many of each: {len(num)} against {len(den)}")
    d = sorted(
        math.log(x / y)
        for x, y in zip(num, den, strict=True)
        if math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0
    )
    n = len(d)
    if n == 0:
        return Paired(Estimate(NAN), Estimate(NAN), ())
    walsh = sorted((d[i] + d[j]) / 2 for i in range(n) for j in range(i, n))
    centre = math.exp(median(walsh))
    k = walsh_rank(n, level)
    if k is None:
        # too few rounds to reach the level: the widest interval, with the coverage it has
        ratio = Estimate(centre)
        if n > 1:
            ratio = Estimate(centre, math.exp(walsh[0]), math.exp(walsh[-1]), walsh_coverage(n, 1))
    else:
        low, high = math.exp(walsh[k - 1]), math.exp(walsh[len(walsh) - k])
        ratio = Estimate(centre, min(low, centre), max(high, centre), walsh_coverage(n, k))
    sign = median_ci([math.exp(x) for x in d], level)
    return Paired(ratio, sign, tuple(d))


# --- words a ratio may carry ---------------------------------------------------------------------


def equivalence_bounds(margin: float) -> tuple[float, float]:
    """The ratios within ``margin`` of 1, symmetric on a log scale: (1/(1+margin), 1+margin)."""
    return 1.0 / (1.0 + margin), 1.0 + margin


def decide(ratio: Estimate | None, margin: float = DEFAULT_MARGIN) -> Decision:
    """What an interval allows a verdict to say about ``ratio`` (contender / reference).

    "higher"/"lower" when the interval excludes 1; "equivalent" when it lies within the margin
    (and includes 1); "inconclusive" otherwise; "undetermined" with no interval at all.
    """
    if ratio is None or not ratio.has_interval or not math.isfinite(ratio.value):
        return "undetermined"
    if ratio.low > 1.0:
        return "higher"
    if ratio.high < 1.0:
        return "lower"
    lo, hi = equivalence_bounds(margin)
    if lo <= ratio.low and ratio.high <= hi:
        return "equivalent"
    return "inconclusive"


def rounds_needed(paired: Paired, margin: float = DEFAULT_MARGIN, level: float = CONFIDENCE) -> int | None:
    """Roughly how many rounds the observed spread needs to decide (a win, or equivalence).

    A normal approximation of the interval's half-width, ``z * sd / sqrt(n)``, inflated by the
    Wilcoxon test's efficiency (3/pi against a t interval for normal data): the smaller of the
    rounds that would exclude 1 from an interval around the observed centre, and the rounds that
    would fit it inside the margin. None when the centre leaves neither possible (it sits on the
    margin) or the spread is unknown.
    """
    sd = paired.spread
    if not math.isfinite(sd) or sd == 0 or paired.rounds < 2 or not paired.ratio.has_interval:
        return None
    z = NormalDist().inv_cdf(0.5 + level / 2)
    centre = abs(math.log(paired.ratio.value))
    targets = [centre, math.log(1.0 + margin) - centre]
    found = [math.ceil((z * sd / t) ** 2 * math.pi / 3) for t in targets if t > 1e-9]
    return max(min(found), paired.rounds + 1) if found else None
