"""Statistics behind the scaling reports: medians and ratios with honest intervals, model fits.

Numbers in, numbers out. Nothing here reads a file (:mod:`~ftscale.bench.report.model` does) or
formats a string (the renderers do). Every interval carries its real coverage:

- medians, ratios of medians and paired ratios come from :mod:`ftscale.bench.intervals` (shared
  with the bench, which chooses what to confirm with them): exact order-statistic intervals,
  with the coverage they really have when few samples cannot reach 95 %;
- a USL fit gets percentile-bootstrap intervals on sigma, kappa and the peak N* (resampling each point's
  samples; nominal 95 %, labelled as such), or "not identifiable" when the resampled fits fail;
- Amdahl and USL fits say ``too-few-points`` when there are no more points than parameters.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from ftscale.bench.intervals import (
    CONFIDENCE,
    Estimate,
    exact,
    median,
    median_ci,
    order_statistic_coverage,
    ratio_coverage,
    ratio_of_medians,
)

__all__ = [
    "CONFIDENCE",
    "Estimate",
    "exact",
    "median",
    "median_ci",
    "order_statistic_coverage",
    "ratio_coverage",
    "ratio_of_medians",
]

BOOTSTRAP_RESAMPLES = 400  # for the USL parameter intervals
BOOTSTRAP_SEED = 20261101  # fixed: reports are deterministic
IDENTIFIABLE_SHARE = 0.8  # share of resampled USL fits that must converge for intervals to be given

FitStatus = Literal["ok", "too-few-points", "failed"]
# The optimiser stops a hair above a bound of 0. A fitted s, sigma or kappa whose term changes the
# model's denominator by less than this (relative) anywhere in the measured range is reported as 0:
# no measurement resolves it, and a kappa of 1e-10 would otherwise "predict" a peak at N* = 60000.
NEGLIGIBLE = 1e-4
ROUNDING = 1e-12  # relative differences below this are floating-point noise, not measurements
FloatArray = NDArray[np.float64]
Values = Sequence[float] | FloatArray  # samples, thread counts or throughputs

NAN = math.nan


def _array(samples: Values) -> FloatArray:
    x = np.asarray(samples, dtype=np.float64)
    return x[np.isfinite(x)]


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
    # Bootstrap intervals (see usl_intervals); None when not computed or not identifiable.
    sigma_ci: Estimate | None = None
    kappa_ci: Estimate | None = None
    peak_ci: Estimate | None = None
    identifiable: bool | None = None


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
    func: object,
    n: FloatArray,
    y: FloatArray,
    p0: list[float],
    lower: list[float],
    upper: list[float],
    tolerance: float = 1e-12,
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
                ftol=tolerance,
                xtol=tolerance,
                gtol=tolerance,
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


def fit_usl(
    threads: Values, throughput: Values, start: UslFit | None = None, tolerance: float = 1e-12
) -> UslFit:
    """Least-squares fit of the USL (lam, 0 <= sigma <= 1, kappa >= 0) to throughput against threads.

    ``start`` (a fit of nearby data) seeds the optimiser; the bootstrap uses it with a looser
    ``tolerance`` to refit hundreds of resamples quickly.
    """
    n, x = _points(threads, throughput)
    if n.size < 4:
        return UslFit("too-few-points", int(n.size))
    scale = float(np.max(x))
    y = x / scale
    lam0 = float(y[np.argmin(n)] / np.min(n))
    p0 = [lam0, 0.05, 1e-4]
    if start is not None and start.status == "ok":
        p0 = [start.lam / scale, min(max(start.sigma, 1e-6), 1.0), max(start.kappa, 1e-8)]
    params = _curve_fit(usl, n, y, p0, [1e-12, 0.0, 0.0], [np.inf, 1.0, np.inf], tolerance)
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


def _usl_linear(n: FloatArray, x: FloatArray) -> tuple[float, float, float] | None:
    """(sigma, kappa, N*) from the linearised USL: N/X = a + b(N-1) + cN(N-1).

    a = 1/lambda, b = sigma/lambda, c = kappa/lambda; non-negative least squares: about a hundred
    times faster than the non-linear fit, which is what lets the bootstrap refit every resample.
    """
    keep = np.isfinite(n) & np.isfinite(x) & (x > 0)
    n, x = n[keep], x[keep]
    if n.size < 4:
        return None
    design = np.column_stack([np.ones_like(n), n - 1.0, n * (n - 1.0)])
    try:
        solution, _ = optimize.nnls(design, n / x)
    except (RuntimeError, ValueError):
        return None
    a, b, c = (float(v) for v in solution)
    if a <= 0:
        return None
    sigma, kappa = min(b / a, 1.0), c / a
    n_max = float(np.max(n))
    sigma, kappa = _snap(sigma, n_max - 1), _snap(kappa, n_max * (n_max - 1))
    return sigma, kappa, usl_peak(sigma, kappa)


def usl_intervals(threads: Values, samples: Sequence[Values], resamples: int = BOOTSTRAP_RESAMPLES) -> UslFit:
    """The USL fit of the points' medians, with percentile-bootstrap intervals on sigma, kappa, N*.

    Each resample draws every point's samples with replacement and refits the medians (with the
    linearised fit, :func:`_usl_linear`); the intervals are the 2.5 and 97.5 percentiles of the
    refitted values (nominal 95 %). When fewer than :data:`IDENTIFIABLE_SHARE` of the refits
    converge, or a point has a single sample, the parameters are not identifiable from this run.
    """
    arrays = [np.sort(_array(s)) for s in samples]  # sorted: the resamples draw positions
    fit = fit_usl(threads, [median(a) for a in arrays])
    if fit.status != "ok":
        return fit
    if any(a.size < 2 for a in arrays):
        return dataclasses.replace(fit, identifiable=False)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    found: list[tuple[float, float, float]] = []
    n = np.asarray(threads, dtype=np.float64)
    for _ in range(resamples):
        medians = np.asarray([float(np.median(rng.choice(a, size=a.size, replace=True))) for a in arrays])
        again = _usl_linear(n, medians)
        if again is not None:
            found.append(again)
    if len(found) < IDENTIFIABLE_SHARE * resamples:
        return dataclasses.replace(fit, identifiable=False)
    values = np.asarray(found, dtype=np.float64)

    def interval(column: int, point: float) -> Estimate:
        col = values[:, column]  # N* is infinite where a resample fitted kappa = 0: no interpolation
        low = float(np.percentile(col, 2.5, method="lower"))
        high = float(np.percentile(col, 97.5, method="higher"))
        return Estimate(point, min(low, point), max(high, point), CONFIDENCE, nominal=True)

    return dataclasses.replace(
        fit,
        sigma_ci=interval(0, fit.sigma),
        kappa_ci=interval(1, fit.kappa),
        peak_ci=interval(2, fit.peak_threads),
        identifiable=True,
    )


def slowdown(ratio: Estimate) -> Estimate:
    """Extra time per call implied by a throughput ratio r (new/old): 1/r - 1, interval mapped too."""

    def extra(r: float) -> float:
        return 1.0 / r - 1.0 if r > 0 else NAN

    return Estimate(extra(ratio.value), extra(ratio.high), extra(ratio.low), ratio.coverage, ratio.nominal)
