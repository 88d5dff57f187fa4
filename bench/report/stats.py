"""Statistics behind the scaling reports: medians with confidence intervals, ratios, model fits.

Numbers in, numbers out. Nothing here reads a file (:mod:`bench.report.model` does) or formats a
string (the renderers do). Intervals are honest about small samples:

- the median's interval is the exact, distribution-free order-statistic interval: the narrowest
  ``[x(k), x(n+1-k)]`` that covers the median with at least 95%. Below 6 samples no such interval
  exists; the range of the samples is returned with the (lower) coverage it really has, and with
  1 sample there is no interval at all (NaN);
- ratios of medians (speedups, build against build, run against run) get a percentile bootstrap
  interval with a fixed seed, so a report rendered twice is identical; with fewer than
  :data:`MIN_BOOTSTRAP_SAMPLES` samples on a side the interval is NaN rather than a guess;
- Amdahl and USL fits say ``too-few-points`` when there are no more points than parameters.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

CONFIDENCE = 0.95
HIGH_CV = 0.05  # a cell whose coefficient of variation is above this is flagged
MIN_BOOTSTRAP_SAMPLES = 3
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20261101  # fixed: reports are deterministic

FitStatus = Literal["ok", "too-few-points", "failed"]
# The optimiser stops a hair above a bound of 0. A fitted s, sigma or kappa whose term changes the
# model's denominator by less than this (relative) anywhere in the measured range is reported as 0:
# no measurement resolves it, and a kappa of 1e-10 would otherwise "predict" a peak at N* = 60000.
NEGLIGIBLE = 1e-4
ROUNDING = 1e-12  # relative differences below this are floating-point noise, not measurements
FloatArray = NDArray[np.float64]
Values = Sequence[float] | FloatArray  # samples, thread counts or throughputs

NAN = math.nan


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval; ``coverage`` is the interval's real confidence level.

    ``low``/``high``/``coverage`` are NaN when no interval can be given (too few samples).
    """

    value: float
    low: float = NAN
    high: float = NAN
    coverage: float = NAN

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def contains(self, x: float) -> bool:
        return self.has_interval and self.low <= x <= self.high

    def scaled(self, factor: float) -> Estimate:
        """The same estimate multiplied by a positive constant (efficiency = speedup / N)."""
        return Estimate(self.value * factor, self.low * factor, self.high * factor, self.coverage)


def exact(value: float) -> Estimate:
    """A value known without uncertainty (the speedup at 1 thread is 1 by definition)."""
    return Estimate(value, value, value, 1.0)


def _array(samples: Values) -> FloatArray:
    x = np.asarray(samples, dtype=np.float64)
    return x[np.isfinite(x)]


def median(samples: Values) -> float:
    """Median of the finite values; NaN when there are none."""
    x = _array(samples)
    return float(np.median(x)) if x.size else NAN


def order_statistic_coverage(n: int, k: int) -> float:
    """P(x(k) <= true median <= x(n+1-k)) for n independent samples of a continuous variable."""
    return float(1.0 - 2.0 * stats.binom.cdf(k - 1, n, 0.5))


def median_ci(samples: Values, level: float = CONFIDENCE) -> Estimate:
    """The median with its exact order-statistic confidence interval (see the module docstring)."""
    x = np.sort(_array(samples))
    n = int(x.size)
    if n == 0:
        return Estimate(NAN)
    value = float(np.median(x))
    if n == 1:
        return Estimate(value)
    k = 1
    while k + 1 <= n // 2 and order_statistic_coverage(n, k + 1) >= level:
        k += 1
    return Estimate(value, float(x[k - 1]), float(x[n - k]), order_statistic_coverage(n, k))


def _ratio_of_medians(num: FloatArray, den: FloatArray, axis: int = -1) -> FloatArray:
    result: FloatArray = np.median(num, axis=axis) / np.median(den, axis=axis)
    return result


def ratio_of_medians(num: Values, den: Values, level: float = CONFIDENCE) -> Estimate:
    """median(num) / median(den) with a percentile-bootstrap interval (independent samples).

    The samples are sorted first: the bootstrap draws positions, so the same samples in another
    order would give another interval; repetitions have no order that matters.
    """
    a, b = np.sort(_array(num)), np.sort(_array(den))
    if a.size == 0 or b.size == 0:
        return Estimate(NAN)
    bottom = float(np.median(b))
    if bottom <= 0:
        return Estimate(NAN)
    value = float(np.median(a)) / bottom
    if min(a.size, b.size) < MIN_BOOTSTRAP_SAMPLES:
        return Estimate(value)
    with warnings.catch_warnings():
        # identical samples make a degenerate bootstrap distribution: the interval is [v, v]
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (a, b),
            _ratio_of_medians,
            vectorized=True,
            paired=False,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            confidence_level=level,
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return Estimate(value)
    return Estimate(value, min(low, value), max(high, value), level)


def coefficient_of_variation(samples: Values) -> float:
    """Sample standard deviation over mean; NaN with fewer than 2 samples or a zero mean."""
    x = _array(samples)
    if x.size < 2:
        return NAN
    mean = float(np.mean(x))
    return float(np.std(x, ddof=1)) / mean if mean > 0 else NAN


def karp_flatt(speedup: float, threads: int) -> float:
    """Karp-Flatt experimentally determined serial fraction e(N) = (1/S - 1/N) / (1 - 1/N)."""
    if threads <= 1 or not math.isfinite(speedup) or speedup <= 0:
        return NAN
    return (1.0 / speedup - 1.0 / threads) / (1.0 - 1.0 / threads)


# --- scalability models -----------------------------------------------------------------------


def amdahl(n: FloatArray, lam: float, serial: float) -> FloatArray:
    """Amdahl's law as throughput: X(N) = lam N / (1 + s (N-1))."""
    result: FloatArray = lam * n / (1.0 + serial * (n - 1.0))
    return result


def usl(n: FloatArray, lam: float, sigma: float, kappa: float) -> FloatArray:
    """Universal Scalability Law: X(N) = lam N / (1 + sigma (N-1) + kappa N (N-1))."""
    result: FloatArray = lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
    return result


def usl_peak(sigma: float, kappa: float) -> float:
    """Concurrency of the USL's maximum, N* = sqrt((1-sigma)/kappa); infinite when kappa = 0."""
    if not (math.isfinite(sigma) and math.isfinite(kappa)):
        return NAN
    if kappa <= 0:
        return math.inf
    return math.sqrt(max(0.0, 1.0 - sigma) / kappa)


@dataclass(frozen=True)
class AmdahlFit:
    status: FitStatus
    points: int
    lam: float = NAN
    serial_fraction: float = NAN
    r_squared: float = NAN


@dataclass(frozen=True)
class UslFit:
    status: FitStatus
    points: int
    lam: float = NAN
    sigma: float = NAN
    kappa: float = NAN
    peak_threads: float = NAN
    r_squared: float = NAN


def _points(threads: Values, throughput: Values) -> tuple[FloatArray, FloatArray]:
    n = np.asarray(threads, dtype=np.float64)
    x = np.asarray(throughput, dtype=np.float64)
    keep = np.isfinite(n) & np.isfinite(x) & (n >= 1) & (x > 0)
    return n[keep], x[keep]


def r_squared(observed: FloatArray, predicted: FloatArray) -> float:
    """Coefficient of determination; NaN when the observations do not vary (it is undefined).

    "Do not vary" includes differences at the level of rounding (a flat curve computed in floating
    point): dividing by such a total would report an R² of -1e19 for a perfect fit.
    """
    mean = float(np.mean(observed))
    total = float(np.sum((observed - mean) ** 2))
    if total <= observed.size * (ROUNDING * mean) ** 2:
        return NAN
    return 1.0 - float(np.sum((observed - predicted) ** 2)) / total


def _curve_fit(
    func: object, n: FloatArray, y: FloatArray, p0: list[float], lower: list[float], upper: list[float]
) -> FloatArray | None:
    try:
        with warnings.catch_warnings():
            # an unidentifiable covariance (a parameter on its bound) does not spoil the fit itself
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(
                func,
                n,
                y,
                p0=p0,
                bounds=(lower, upper),
                method="trf",
                ftol=1e-12,
                xtol=1e-12,
                gtol=1e-12,
                max_nfev=20000,
            )
    except (RuntimeError, ValueError):
        return None
    result: FloatArray = np.asarray(params, dtype=np.float64)
    return result if bool(np.all(np.isfinite(result))) else None


def _snap(value: float, largest_term: float) -> float:
    """``value``, or 0 when ``value * largest_term`` (its effect at the most threads) is negligible."""
    return 0.0 if value * largest_term < NEGLIGIBLE else value


def fit_amdahl(threads: Values, throughput: Values) -> AmdahlFit:
    """Least-squares fit of Amdahl's law (lam, s with 0 <= s <= 1) to throughput against threads."""
    n, x = _points(threads, throughput)
    if n.size < 3:
        return AmdahlFit("too-few-points", int(n.size))
    scale = float(np.max(x))  # fit in units of the largest throughput: better conditioned
    y = x / scale
    lam0 = float(y[np.argmin(n)] / np.min(n))
    params = _curve_fit(amdahl, n, y, [lam0, 0.05], [1e-12, 0.0], [np.inf, 1.0])
    if params is None:
        return AmdahlFit("failed", int(n.size))
    n_max = float(np.max(n))
    lam, serial = float(params[0]), _snap(float(params[1]), n_max - 1)
    return AmdahlFit("ok", int(n.size), lam * scale, serial, r_squared(y, amdahl(n, lam, serial)))


def fit_usl(threads: Values, throughput: Values) -> UslFit:
    """Least-squares fit of the USL (lam, 0 <= sigma <= 1, kappa >= 0) to throughput against threads."""
    n, x = _points(threads, throughput)
    if n.size < 4:
        return UslFit("too-few-points", int(n.size))
    scale = float(np.max(x))
    y = x / scale
    lam0 = float(y[np.argmin(n)] / np.min(n))
    params = _curve_fit(usl, n, y, [lam0, 0.05, 1e-4], [1e-12, 0.0, 0.0], [np.inf, 1.0, np.inf])
    if params is None:
        return UslFit("failed", int(n.size))
    n_max = float(np.max(n))
    lam = float(params[0])
    sigma, kappa = _snap(float(params[1]), n_max - 1), _snap(float(params[2]), n_max * (n_max - 1))
    return UslFit(
        "ok",
        int(n.size),
        lam * scale,
        sigma,
        kappa,
        usl_peak(sigma, kappa),
        r_squared(y, usl(n, lam, sigma, kappa)),
    )


def slowdown(ratio: Estimate) -> Estimate:
    """Extra time per call implied by a throughput ratio r (new/old): 1/r - 1, interval mapped too."""

    def extra(r: float) -> float:
        return 1.0 / r - 1.0 if r > 0 else NAN

    return Estimate(extra(ratio.value), extra(ratio.high), extra(ratio.low), ratio.coverage)
